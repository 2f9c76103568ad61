package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ReadFunc reads up to limit events with positions above after, in global
// order, honouring the ReadAll contract (no event is returned while an event
// below it may still become visible).
type ReadFunc func(ctx context.Context, after int64, limit int) ([]Event, error)

// FollowOptions tunes Follow. The zero value is usable.
type FollowOptions struct {
	// BatchSize is the read limit; default 500.
	BatchSize int
	// PollInterval bounds the wait for new events when no wake-up arrives
	// (wake-ups are hints and may be lost); default 500ms.
	PollInterval time.Duration
	// Stalled, if set, reports that the reader knows of events it may not
	// return yet (a position gap that may still fill). Follow then reads
	// again after StalledPoll instead of waiting for a wake-up.
	Stalled func() bool
	// StalledPoll is the re-read delay while Stalled; default 5ms.
	StalledPoll time.Duration
	// MinBackoff and MaxBackoff bound the exponential delay between retries
	// of a failing read; defaults 50ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// OnReadError, if set, sees every read error that Follow retries (for
	// logging). Reads are retried until ctx ends; only ErrClosed stops them.
	OnReadError func(error)
}

func (o FollowOptions) withDefaults() FollowOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.StalledPoll <= 0 {
		o.StalledPoll = 5 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = 5 * time.Second
		if o.MaxBackoff < o.MinBackoff {
			o.MaxBackoff = o.MinBackoff
		}
	}
	return o
}

// Follow is the subscription loop both backends share: it reads batches
// after position after and hands them to handle, and once caught up waits
// for a wake-up on wake (a hint; nil means poll only) or the poll interval.
// The wake channel should be buffered (capacity 1) and fed with
// non-blocking sends, one channel per subscriber, so a wake-up that arrives
// while a batch is being read or handled is not lost.
//
// Failing reads are retried with backoff (a dropped database connection
// must not end a subscription), except ErrClosed, which is returned. Follow
// returns ctx.Err() when ctx ends and handle's error, unchanged, when handle
// fails.
func Follow(ctx context.Context, read ReadFunc, wake <-chan struct{}, after int64, opts FollowOptions, handle func(ctx context.Context, batch []Event) error) error {
	opts = opts.withDefaults()
	backoff := opts.MinBackoff
	poll := time.NewTimer(time.Hour)
	defer poll.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := read(ctx, after, opts.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, ErrClosed) {
				return err
			}
			if opts.OnReadError != nil {
				opts.OnReadError(err)
			}
			if err := sleep(ctx, poll, backoff); err != nil {
				return err
			}
			backoff = min(2*backoff, opts.MaxBackoff)
			continue
		}
		backoff = opts.MinBackoff
		if len(batch) > 0 {
			// A backend bug here would silently duplicate or skip events
			// downstream, so it ends the subscription loudly instead.
			prev := after
			for _, e := range batch {
				if e.Position <= prev {
					return fmt.Errorf("eventstore: follow: read after %d returned position %d after %d", after, e.Position, prev)
				}
				prev = e.Position
			}
			if err := handle(ctx, batch); err != nil {
				return err
			}
			after = prev
			if len(batch) >= opts.BatchSize {
				continue // probably more to catch up on
			}
		}
		if opts.Stalled != nil && opts.Stalled() {
			if err := sleep(ctx, poll, opts.StalledPoll); err != nil {
				return err
			}
			continue
		}
		resetTimer(poll, opts.PollInterval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake: // a nil channel blocks forever: poll only
		case <-poll.C:
		}
	}
}

func sleep(ctx context.Context, t *time.Timer, d time.Duration) error {
	resetTimer(t, d)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// resetTimer relies on Go >= 1.23 timer semantics: Reset discards a pending
// expiry, so no drain is needed.
func resetTimer(t *time.Timer, d time.Duration) { t.Reset(d) }
