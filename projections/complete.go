package projections

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// A projector's batch comes from JetStream; the event store is the truth.
// These helpers complete a batch from the store when it leaves positions
// out. Read with no transaction open on the store's database: a reader of
// the PostgreSQL log waits out transactions older than a gap, and one's
// own would keep it waiting (see eventstore/postgres).

// CompleteBatch returns a projector's batch at checkpoint cp with the
// log's events after cp through `through` (see MissingThrough) read from
// store and added, the decodable ones, in position order. Events the batch
// already held may come twice; After keeps one.
func CompleteBatch(ctx context.Context, store eventstore.Store, reg *domain.Registry, cp, through int64, events []eventstore.Event) ([]eventstore.Event, error) {
	missing, err := ReadThrough(ctx, store, cp, through)
	if err != nil {
		return nil, fmt.Errorf("completing a batch from the store (positions %d to %d): %w", cp+1, through, err)
	}
	out := append(Decodable(reg, missing, nil), events...)
	slices.SortStableFunc(out, func(a, b eventstore.Event) int { return cmp.Compare(a.Position, b.Position) })
	return out, nil
}

// MissingThrough returns the position through which a projector batch at
// checkpoint cp has to be completed from the event store before it is
// applied, 0 when it needs nothing:
//   - the last of its events above cp that does not follow the one before
//     (or cp) directly. JetStream sends a message whose ack was lost again
//     only after its ack wait, behind later ones; applied without it, the
//     batch would move the checkpoint past it for good. A position rolled
//     back in the store, or an undecodable event, leaves such a gap too;
//     the read then adds nothing (check again from Completed.From);
//   - reach, when the batch ends before it: a position the read model is
//     known to have held (0 for none).
func MissingThrough(cp int64, events []eventstore.Event, reach int64) int64 {
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
	if reach > prev {
		through = reach
	}
	return through
}

// Completed is the stretch of the log a batch was completed with
// (CompleteBatch's cp and through): the batch holds every event there, so
// a position still missing in it is a hole in the log (an append that took
// it and rolled back, or an undecodable event), not a late message. A
// projector that checks a batch again after completing it starts the
// check at From, or it would read the same stretch again and again.
type Completed struct{ After, Through int64 }

// From is where a batch at checkpoint cp may still lack events: after
// what was read from the store, if that read started at or below cp.
func (c Completed) From(cp int64) int64 {
	if c.Through > 0 && c.After <= cp {
		return max(cp, c.Through)
	}
	return cp
}

// ReadThrough returns the log's events after `after` through `through`, a
// position known to hold an event (a checkpoint this process committed, or
// an event in hand). A reader may not see the last ones yet (it waits out
// gaps of transactions still open): it tries again for a while, and fails
// rather than return a short read, after which a checkpoint would move
// past events never applied.
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

const (
	readThroughWait = 10 * time.Second // how long ReadThrough retries
	readThroughPage = 5000             // events ReadThrough asks for at a time
)
