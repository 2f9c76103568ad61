package pgread_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
	"github.com/partnerhub/customers/projections/readtest"
)

// roundTrips counts what a pool sends: single statements (begin, a lock,
// commit are one each) and pipelines.
type roundTrips struct{ queries, batches atomic.Int32 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.queries.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.batches.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// A batch that follows on from the projector's last commit is one round
// trip; when the checkpoint has moved behind its back (a rebuild's swap,
// another process), the guard rolls that back and the general way skips
// what the checkpoint already covers.
func TestFollowingBatchIsOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresSchema(t)
	store := readtest.Store(t)
	var ids []string
	for range 8 {
		ids = append(ids, createCustomer(t, store))
	}
	evs := readtest.All(t, store)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	trips := &roundTrips{}
	cfg.ConnConfig.Tracer = trips
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db, err := pgread.New(ctx, pool, pgread.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	list := db.CustomerList()
	if err := list.ApplyBatch(ctx, evs[:2]); err != nil {
		t.Fatal(err)
	}
	trips.queries.Store(0)
	trips.batches.Store(0)
	if err := list.ApplyBatch(ctx, evs[2:4]); err != nil {
		t.Fatal(err)
	}
	if q, b := trips.queries.Load(), trips.batches.Load(); q != 0 || b != 1 {
		t.Errorf("following batch: %d statements and %d pipelines, want 0 and 1", q, b)
	}
	if cp, err := list.Checkpoint(ctx); err != nil || cp != evs[3].Position {
		t.Fatalf("checkpoint %d, %v; want %d", cp, err, evs[3].Position)
	}

	// Another process applied the next two meanwhile (rows not copied
	// here, so that they show whether this one applied them again).
	if _, err := pool.Exec(ctx, `UPDATE rm_checkpoints SET position = $1 WHERE name = $2`, evs[5].Position, projections.CustomerListName); err != nil {
		t.Fatal(err)
	}
	if err := list.ApplyBatch(ctx, evs[4:]); err != nil {
		t.Fatal(err)
	}
	if cp, err := list.Checkpoint(ctx); err != nil || cp != evs[7].Position {
		t.Fatalf("checkpoint %d, %v; want %d", cp, err, evs[7].Position)
	}
	page, err := list.SearchCustomers(ctx, "p1", projections.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, it := range page.Items {
		got[it.ID] = true
	}
	for i, id := range ids {
		if want := i < 4 || i >= 6; got[id] != want {
			t.Errorf("customer %d listed %v, want %v", i+1, got[id], want)
		}
	}
}
