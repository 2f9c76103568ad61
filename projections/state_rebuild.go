package projections

import (
	"context"
	"fmt"
	"runtime"
	"sync"

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
