// Package projections is the read side: the customer-list and activity-log
// read models, the queries the HTTP API calls, the projector runtime that
// feeds them from NATS JetStream, rebuilds from the event store, and the
// minPosition Waiter.
//
// The logic of what each event does to a read model lives here, in pure Go
// (CustomerListState, ActivityFor, DecodeEvents); the backends in pgread and
// sqliteread turn it into SQL. Every backend passes readtest.Run.
//
// Both projectors are at-least-once consumers made exactly-once in effect:
// each Apply writes its rows and its checkpoint (the global position of the
// last event applied) in one transaction and skips every event at or below
// the checkpoint.
package projections

import (
	"context"

	"github.com/partnerhub/customers/eventstore"
)

// Projector names, also the checkpoint keys.
const (
	CustomerListName = "customer_list"
	ActivityLogName  = "activity_log"
)

// Projector is one read model's write side, as the runtime and rebuild use it.
type Projector interface {
	Name() string
	// ApplyBatch applies events in one transaction together with the
	// checkpoint; events at or below the checkpoint are skipped.
	ApplyBatch(ctx context.Context, events []eventstore.Event) error
	// Checkpoint is the position of the last event applied (0: none).
	Checkpoint(ctx context.Context) (int64, error)
	// Rebuild replays the whole log into fresh tables and swaps them in
	// atomically; queries keep answering from the old tables meanwhile.
	Rebuild(ctx context.Context, store eventstore.Store, progress func(done, total int64)) error
}

// CustomerList is the customer-list read model: projector plus queries.
type CustomerList interface {
	Projector
	SearchCustomers(ctx context.Context, partnerID string, p SearchParams) (CustomerPage, error)
	ListTags(ctx context.Context, partnerID string) ([]TagCount, error)
	// ExportCustomers calls yield with the partner's whole list, ordered by
	// company name, then id, then relationship, in batches of at most
	// batchSize rows, all read from one consistent snapshot. Rows passed to
	// yield are only valid during the call. A yield error stops the export
	// and is returned.
	ExportCustomers(ctx context.Context, partnerID string, batchSize int, yield func([]CustomerItem) error) error
}

// ActivityLog is the activity-log read model: projector plus queries.
type ActivityLog interface {
	Projector
	QueryActivity(ctx context.Context, partnerID string, p ActivityParams) (ActivityPage, error)
}
