package projections

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// rebuildPage is how many events a rebuild asks the store for at a time:
// large enough that round trips do not dominate, small enough that a few
// pages in flight stay a few megabytes.
const rebuildPage = 10000

// FoldCustomerList replays the log up to the head seen at the start into a
// fresh CustomerListState. Reading, decoding and folding overlap: one
// goroutine reads the next pages while others decode (one page each) and
// the caller's goroutine folds pages in log order. It returns the state and
// the position it covers; progress, if not nil, sees (position reached,
// head) after each page.
func FoldCustomerList(ctx context.Context, store eventstore.Store, reg *domain.Registry, progress func(done, total int64)) (*CustomerListState, int64, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the log's head: %w", err)
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	state := NewCustomerListState()
	err = replayDecoded(ctx, store, reg, head, customerListReads, func(evs []eventstore.Event, decoded []domain.Event) error {
		for i, ev := range evs {
			if err := applyCustomerEvent(ctx, state, ev, decoded[i]); err != nil {
				return err
			}
		}
		progress(evs[len(evs)-1].Position, head)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	progress(head, head)
	return state, head, nil
}

// decodeJob is one page of the log on its way from the reader through a
// decoder to the folder.
type decodeJob struct {
	evs     []eventstore.Event
	decoded []domain.Event
	err     error
	done    chan struct{}
}

// replayDecoded calls apply with each page of events up to upTo, those of
// the wanted types decoded (the others nil), in log order. (It reads every type: asking the store for a few types
// makes PostgreSQL sort all of them above the cursor for every page.) Reading and decoding run ahead of apply
// by a few pages.
func replayDecoded(ctx context.Context, store eventstore.Store, reg *domain.Registry, upTo int64, wanted func(eventType string) bool,
	apply func([]eventstore.Event, []domain.Event) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(1, runtime.GOMAXPROCS(0))
	ordered := make(chan *decodeJob, workers+1) // pages in log order, for apply
	work := make(chan *decodeJob, workers+1)    // the same pages, for the decoders
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range work {
				j.decoded = make([]domain.Event, len(j.evs))
				for i, ev := range j.evs {
					if !wanted(ev.Type) {
						continue // left nil: skipped
					}
					if j.decoded[i], j.err = Decode(reg, ev); j.err != nil {
						break
					}
				}
				close(j.done)
			}
		})
	}
	var readErr error
	wg.Go(func() {
		defer close(ordered)
		defer close(work)
		readErr = ReadLog(ctx, store, 0, upTo, rebuildPage, func(evs []eventstore.Event) error {
			j := &decodeJob{evs: evs, done: make(chan struct{})}
			select {
			case ordered <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
			work <- j // never blocks longer than a decoder takes: it has as much room as ordered
			return nil
		})
	})
	var err error
	for j := range ordered {
		if err != nil {
			continue // drain, so the reader can finish
		}
		<-j.done
		if err = j.err; err == nil {
			err = apply(j.evs, j.decoded)
		}
		if err != nil {
			cancel()
		}
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return readErr
}

// ReadLog hands the events after `after` up to upTo to page, pageSize at a
// time. Events above upTo (appended since the caller read the head) are left
// out, so a rebuild and its later catch-up agree on where one ends. It stops
// at the first error page returns, or when the log ends before upTo.
func ReadLog(ctx context.Context, store eventstore.Store, after, upTo int64, pageSize int, page func([]eventstore.Event) error) error {
	for after < upTo {
		evs, err := store.ReadAll(ctx, eventstore.ReadRequest{After: after, Limit: pageSize})
		if err != nil {
			return fmt.Errorf("reading the log after %d: %w", after, err)
		}
		n := len(evs)
		for n > 0 && evs[n-1].Position > upTo {
			n--
		}
		if n > 0 {
			if err := page(evs[:n]); err != nil {
				return err
			}
		}
		if n == 0 || n < len(evs) {
			return nil
		}
		after = evs[n-1].Position
	}
	return nil
}

// ReadThrough returns the log's events after `after` through `through`, a
// position known to hold an event (a checkpoint). A reader may not see the
// last ones yet (it waits out gaps of transactions still open): it tries
// again for a while, and fails rather than return a short read, after
// which a checkpoint would move past events never applied.
func ReadThrough(ctx context.Context, store eventstore.Store, after, through int64) ([]eventstore.Event, error) {
	var out []eventstore.Event
	deadline := time.Now().Add(readThroughWait)
	for {
		err := ReadLog(ctx, store, after, through, readThroughPage, func(evs []eventstore.Event) error {
			out = append(out, evs...)
			after = evs[len(evs)-1].Position
			return nil
		})
		if err != nil {
			return nil, err
		}
		if after >= through {
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the log reads only through %d of %d", after, through)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readThroughWait bounds ReadThrough's retries.
const readThroughWait = 10 * time.Second

// readThroughPage is how many events ReadThrough asks for at a time.
const readThroughPage = 5000

// MissingThrough returns the position through which a projector batch at
// checkpoint cp has to be completed from the event store before it is
// applied, 0 when it needs nothing: the last of its events above cp that
// does not follow the one before (or cp) directly. JetStream sends a
// message whose ack was lost again only after its ack wait, behind later
// ones; applied without it, the batch would move the checkpoint past it
// for good. A position rolled back in the store, or an undecodable event,
// leaves such a gap too; the read then adds nothing.
func MissingThrough(cp int64, events []eventstore.Event) int64 {
	var through int64
	prev := cp
	for _, ev := range events {
		if ev.Position <= prev {
			continue
		}
		if ev.Position > prev+1 {
			through = ev.Position
		}
		prev = ev.Position
	}
	return through
}

// WithMissing returns events with the log's events after cp through
// `through` added before them (the decodable ones), in position order:
// a projector batch completed as MissingThrough asks. Duplicates stay;
// After drops them.
func WithMissing(ctx context.Context, store eventstore.Store, reg *domain.Registry, cp, through int64, events []eventstore.Event) ([]eventstore.Event, error) {
	missing, err := ReadThrough(ctx, store, cp, through)
	if err != nil {
		return nil, err
	}
	out := append(Decodable(reg, missing, nil), events...)
	slices.SortStableFunc(out, func(a, b eventstore.Event) int { return cmp.Compare(a.Position, b.Position) })
	return out, nil
}
