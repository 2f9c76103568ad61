package pgread_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
	"github.com/partnerhub/customers/projections/readtest"
)

// countedConn counts what the client writes to PostgreSQL: one write per
// exchange (pgx sends a pipeline in one write).
type countedConn struct {
	net.Conn
	writes *atomic.Int32
}

func (c countedConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// countedPool is a pool of one connection whose writes are counted.
func countedPool(t *testing.T, url string) (*pgxpool.Pool, *atomic.Int32) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	writes := &atomic.Int32{}
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countedConn{Conn: c, writes: writes}, nil
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, writes
}

// A batch that follows on from the projector's last commit (here one that
// reads no activity name) is one round trip once the connection has its
// statements prepared. When the
// checkpoint is not where this process left it, the guard rolls the batch
// back and the general way takes over: after a crash took commits back it
// refills them from the store; after another process moved it on, it skips
// what the checkpoint covers.
func TestFollowingBatchIsOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresSchema(t)
	store := readtest.Store(t)
	var ids []string
	for range 12 {
		ids = append(ids, createCustomer(t, store))
	}
	evs := readtest.All(t, store)
	pool, writes := countedPool(t, url)
	db, err := pgread.New(ctx, pool, pgread.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	list := db.CustomerList()
	apply := func(from, to int) {
		t.Helper()
		if err := list.ApplyBatch(ctx, evs[from:to]); err != nil {
			t.Fatal(err)
		}
		if cp, err := list.Checkpoint(ctx); err != nil || cp != evs[to-1].Position {
			t.Fatalf("checkpoint %d, %v; want %d", cp, err, evs[to-1].Position)
		}
	}
	apply(0, 2) // the general way: nothing committed by this process yet
	apply(2, 4) // following on; prepares its statements
	writes.Store(0)
	apply(4, 6)
	if n := writes.Load(); n != 2 { // the batch and the checkpoint read above
		t.Errorf("following batch and a checkpoint read: %d round trips, want 2", n)
	}

	// A crash took the last batch back: checkpoint and rows.
	if _, err := pool.Exec(ctx, `UPDATE rm_checkpoints SET position = $1 WHERE name = $2`, evs[3].Position, projections.CustomerListName); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM rm_customers WHERE customer_id = ANY($1)`, ids[4:6]); err != nil {
		t.Fatal(err)
	}
	apply(6, 8)

	// Another process applied the next two (rows not copied here, so
	// that they show whether this one applied them again).
	if _, err := pool.Exec(ctx, `UPDATE rm_checkpoints SET position = $1 WHERE name = $2`, evs[9].Position, projections.CustomerListName); err != nil {
		t.Fatal(err)
	}
	apply(8, 12)

	page, err := list.SearchCustomers(ctx, "p1", projections.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, it := range page.Items {
		got[it.ID] = true
	}
	for i, id := range ids {
		if want := i < 8 || i >= 10; got[id] != want {
			t.Errorf("customer %d listed %v, want %v", i+1, got[id], want)
		}
	}
}

// An activity batch that follows on and whose entry needs a customer's
// name from the table reads it (through the pool, under the checkpoint's
// guard) and writes the right name.
func TestFollowingActivityReadsNames(t *testing.T) {
	ctx := context.Background()
	_, store, db := storeBacked(t)
	id := createCustomer(t, store)
	other := createCustomer(t, store)
	readtest.Append(t, store, "p1", domain.CustomerStream("p1", id), "ann@p1.example",
		domain.CustomerRelationshipAdded{CustomerID: id, Relationship: domain.RelationshipIndirectReseller})
	evs := readtest.All(t, store)
	log := db.ActivityLog()
	for _, batch := range [][]int{{0, 2}, {2, 3}} { // the second follows on, and needs id's name
		if err := log.ApplyBatch(ctx, evs[batch[0]:batch[1]]); err != nil {
			t.Fatal(err)
		}
	}
	page, err := log.QueryActivity(ctx, "p1", projections.ActivityParams{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range page.Items {
		if it.Operation == projections.OpAddCustomerRelationship {
			names = append(names, it.CustomerName)
		}
	}
	if len(names) != 1 || names[0] != "Customer "+id[:8] {
		t.Errorf("relationship entry names %q, want [%q] (other customer %s)", names, "Customer "+id[:8], other[:8])
	}
}
