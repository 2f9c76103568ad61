package projections

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/partnerhub/customers/domain"
)

// Waiter lets queries wait for minPosition: Wait blocks until a projector's
// checkpoint reaches a position. Projectors call Committed after each
// commit (an in-process broadcast); a poll of Checkpoint at PollEvery is the
// fallback for commits made by another process on the same database.
type Waiter struct {
	mu        sync.Mutex
	pos       map[string]int64
	heard     map[string]time.Time // when Committed last came for a projector
	changed   chan struct{}        // closed and replaced whenever a position is reached (Committed, or a poll)
	load      func(ctx context.Context, name string) (int64, error)
	pollEvery time.Duration
}

// NewWaiter takes the projectors whose checkpoints it may poll.
func NewWaiter(pollEvery time.Duration, projectors ...Projector) *Waiter {
	byName := map[string]Projector{}
	for _, p := range projectors {
		byName[p.Name()] = p
	}
	if pollEvery <= 0 {
		pollEvery = 250 * time.Millisecond
	}
	return &Waiter{
		pos: map[string]int64{}, heard: map[string]time.Time{}, changed: make(chan struct{}), pollEvery: pollEvery,
		load: func(ctx context.Context, name string) (int64, error) {
			p, ok := byName[name]
			if !ok {
				return 0, nil
			}
			return p.Checkpoint(ctx)
		},
	}
}

// Committed records a projector's new checkpoint and wakes the waiters.
func (w *Waiter) Committed(name string, position int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.heard[name] = time.Now()
	w.reached(name, position)
}

// reached records a checkpoint and wakes the waiters; w.mu held. A
// checkpoint found by polling comes here without Committed's mark: it
// says nothing about this process's projector committing.
func (w *Waiter) reached(name string, position int64) {
	if position > w.pos[name] {
		w.pos[name] = position
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// quiet reports whether projector name has not committed in this process
// for the poll interval, so that only a read of its checkpoint can tell.
func (w *Waiter) quiet(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Since(w.heard[name]) >= w.pollEvery
}

// Wait returns nil once projector name has applied position, or a
// domain.CodeUnavailable error after timeout (the API answers 503).
func (w *Waiter) Wait(ctx context.Context, name string, position int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(w.pollEvery)
	defer tick.Stop()
	// A projector of this process that committed within the poll interval
	// will broadcast the position: reading the checkpoint first as well was
	// a round trip per waiting request (a tenth of customerd's CPU at 1,000
	// creates/s). Otherwise (idle, or applied by another process) read it.
	// The same holds at every tick: while the list lagged by more than the
	// interval, every waiter read the checkpoint at each tick, hundreds of
	// reads a second that slowed the database and so the projector.
	poll := w.quiet(name)
	for {
		w.mu.Lock()
		reached, changed := w.pos[name] >= position, w.changed
		w.mu.Unlock()
		if reached {
			return nil
		}
		if poll {
			cp, err := w.load(ctx, name)
			if err == nil && cp >= position {
				w.mu.Lock()
				w.reached(name, cp)
				w.mu.Unlock()
				return nil
			}
		}
		select {
		case <-changed:
			poll = false
		case <-tick.C:
			poll = w.quiet(name)
		case <-ctx.Done():
			return &domain.Error{Code: domain.CodeUnavailable, Message: fmt.Sprintf("the %s read model has not reached position %d yet", name, position)}
		}
	}
}
