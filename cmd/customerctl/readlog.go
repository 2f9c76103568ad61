package main

import (
	"context"
	"fmt"
	"time"

	"github.com/partnerhub/customers/eventstore"
)

// maxPositioner is a store that can tell the highest position stored, settled
// or not. The PostgreSQL store's Head is its gap-safe horizon, which stays
// below a missing position until the transactions in flight when the gap was
// seen have ended; an audit must read past such a gap (a deleted event is
// exactly what it looks for), so it reads up to the stored maximum.
type maxPositioner interface {
	MaxPosition(ctx context.Context) (int64, error)
}

// readLog calls fn with the log (or one partner's part of it) in global
// order, in batches, up to the highest position stored when it starts.
func readLog(ctx context.Context, store eventstore.Store, partnerID string, batchSize int, fn func([]eventstore.Event) error) error {
	target, err := store.Head(ctx)
	if err != nil {
		return fmt.Errorf("reading the head of the log: %w", err)
	}
	if mp, ok := store.(maxPositioner); ok {
		if target, err = mp.MaxPosition(ctx); err != nil {
			return fmt.Errorf("reading the highest stored position: %w", err)
		}
	}
	var after int64
	wait := 5 * time.Millisecond
	for {
		batch, err := store.ReadAll(ctx, eventstore.ReadRequest{After: after, Limit: batchSize, PartnerID: partnerID})
		if err != nil {
			return fmt.Errorf("reading the log after position %d: %w", after, err)
		}
		if len(batch) > 0 {
			for _, e := range batch {
				if e.Position <= after {
					return fmt.Errorf("reading the log: position %d came after %d", e.Position, after)
				}
				after = e.Position
			}
			if err := fn(batch); err != nil {
				return err
			}
			wait = 5 * time.Millisecond
			continue
		}
		if after >= target {
			return nil
		}
		// Nothing (more) for this reader below the horizon: done if the
		// horizon has reached the target, else wait for it to move.
		head, err := store.Head(ctx)
		if err != nil {
			return fmt.Errorf("reading the head of the log: %w", err)
		}
		if head >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the log to settle below position %d: %w", target, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
