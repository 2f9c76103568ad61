package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/projections"
)

// catchUp applies the store's events after p's checkpoint, up to the head,
// before p consumes JetStream. The durable consumer remembers what it
// delivered, not what the read model holds: a read-model database that was
// lost or replaced (checkpoint behind the consumer) would otherwise miss
// those events for good. Usually the checkpoint is at the head and this
// reads nothing. Undecodable events are skipped, as the JetStream runtime
// sends them to the poison subject.
func catchUp(ctx context.Context, store eventstore.Store, p projections.Projector, reg *domain.Registry, log *slog.Logger) error {
	head, err := store.Head(ctx)
	if err != nil {
		return fmt.Errorf("reading the store head: %w", err)
	}
	after, err := p.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("reading the %s checkpoint: %w", p.Name(), err)
	}
	from, applied := after, 0
	err = projections.ReadLog(ctx, store, after, head, projectorBatch, func(evs []eventstore.Event) error {
		ok := projections.Decodable(reg, evs, func(ev eventstore.Event, err error) {
			log.Warn("skipping an undecodable event", "position", ev.Position, "err", err)
		})
		if err := p.ApplyBatch(ctx, ok); err != nil {
			return fmt.Errorf("applying events after %d to %s: %w", after, p.Name(), err)
		}
		applied += len(ok)
		after = evs[len(evs)-1].Position
		return nil
	})
	if err != nil {
		return fmt.Errorf("catching %s up from the event store: %w", p.Name(), err)
	}
	if applied > 0 {
		log.Info("caught up from the event store", "from", from, "to", after, "events", applied)
	}
	return nil
}
