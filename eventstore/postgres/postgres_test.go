package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/postgres"
	"github.com/partnerhub/customers/eventstore/storetest"
	"github.com/partnerhub/customers/internal/testenv"
)

func open(tb testing.TB, connString string, opts postgres.Options) *postgres.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, connString, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func conformance(t *testing.T, base postgres.Options) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return open(t, testenv.PostgresSchema(t), base)
	}, storetest.Options{
		NewStoreWithHook: func(t *testing.T, beforeCommit func(context.Context) error) eventstore.Store {
			opts := base
			opts.BeforeCommit = beforeCommit
			return open(t, testenv.PostgresSchema(t), opts)
		},
	})
}

func TestConformance(t *testing.T) { conformance(t, postgres.Options{}) }

// TestConformanceBulk sends every append down the COPY path.
func TestConformanceBulk(t *testing.T) { conformance(t, postgres.Options{BulkThreshold: 1}) }

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	conn := testenv.PostgresSchema(t)
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, 3)
	errs := make([]error, 3)
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(t.Context(), conn, postgres.Options{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	again := open(t, conn, postgres.Options{}) // and once more, later
	var applied int
	if err := again.Pool().QueryRow(t.Context(), "SELECT count(*) FROM eventstore_schema_migrations").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if applied != len(files) {
		t.Errorf("%d migrations recorded, want %d (one per file)", applied, len(files))
	}
	// Both stores work on the one schema.
	ev := eventstore.NewEvent{ID: uuid.New(), Type: "t", Data: []byte("{}")}
	if _, err := stores[0].Append(t.Context(), eventstore.AppendRequest{StreamID: "s", ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{ev}}); err != nil {
		t.Fatal(err)
	}
	if evs, err := stores[1].Load(t.Context(), "s", 0); err != nil || len(evs) != 1 {
		t.Fatalf("second store loads %d events, %v", len(evs), err)
	}
}

// TestSubscribeSurvivesTerminatedConnections kills every connection of a
// subscribing store, including its LISTEN connection. Another store (another
// process) keeps appending; the subscriber, which only polls once an hour,
// must keep delivering: it reconnects and listens again.
func TestSubscribeSurvivesTerminatedConnections(t *testing.T) {
	schema := testenv.PostgresSchema(t)
	app := testenv.UniqueName("es_sub_")
	sub := open(t, schema+"&application_name="+app, postgres.Options{PollInterval: time.Hour})
	writer := open(t, schema, postgres.Options{})

	got := make(chan eventstore.Event, 100)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- sub.Subscribe(ctx, 0, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				got <- e
			}
			return nil
		})
	}()
	appendOne := func(i int) uuid.UUID {
		t.Helper()
		ev := eventstore.NewEvent{ID: uuid.New(), Type: "t", Data: fmt.Appendf(nil, `{"i":%d}`, i)}
		if _, err := writer.Append(t.Context(), eventstore.AppendRequest{StreamID: "s", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev}}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		return ev.ID
	}
	expect := func(id uuid.UUID) {
		t.Helper()
		select {
		case e := <-got:
			if e.ID != id {
				t.Fatalf("delivered %s, want %s", e.ID, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("subscriber delivered nothing within 10s")
		}
	}
	waitListening := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var n int
			_ = writer.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
				WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&n)
			if n > 0 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("the subscriber's store never listened")
	}

	waitListening()
	expect(appendOne(0))
	for round := 1; round <= 2; round++ {
		var killed int
		err := writer.Pool().QueryRow(t.Context(), `SELECT count(*) FROM
			(SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) AS k`, app).Scan(&killed)
		if err != nil || killed == 0 {
			t.Fatalf("terminating the subscriber's connections: %d killed, %v", killed, err)
		}
		waitListening()
		expect(appendOne(round))
	}
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Errorf("Subscribe returned %v, want context.Canceled", err)
	}
}

// The pool has Options.MaxConns connections (24 by default) unless the
// connection string says pool_max_conns, which wins.
func TestPoolSize(t *testing.T) {
	url := testenv.PostgresSchema(t)
	if got := open(t, url, postgres.Options{}).Pool().Config().MaxConns; got != 24 {
		t.Errorf("default pool: %d connections, want 24", got)
	}
	if got := open(t, url, postgres.Options{MaxConns: 5}).Pool().Config().MaxConns; got != 5 {
		t.Errorf("Options.MaxConns 5: %d connections", got)
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	if !strings.Contains(url, "://") {
		sep = " "
	}
	if got := open(t, url+sep+"pool_max_conns=3", postgres.Options{MaxConns: 5}).Pool().Config().MaxConns; got != 3 {
		t.Errorf("pool_max_conns=3 in the URL: %d connections, want 3", got)
	}
}
