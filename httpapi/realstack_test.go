package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/postgres"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
	"github.com/partnerhub/customers/projections/sqliteread"
	"github.com/prometheus/client_golang/prometheus"
)

// TestRealStack runs the API over the real command handlers, event store,
// read models, user directory and idempotency store of each backend. The
// projectors are fed straight from the store (the NATS leg is the relay's
// and the projections' own business).
func TestRealStack(t *testing.T) { forEachBackend(t, testRealStack) }

func testRealStack(t *testing.T, rs *realStack) {
	ctx := context.Background()
	f, store, mkUser := rs.f, rs.store, rs.mkUser
	_, adminA := mkUser("A", "admin@a.example")
	_, adminB := mkUser("B", "admin@b.example")

	eventCount := func() int {
		evs, err := store.ReadAll(ctx, eventstore.ReadRequest{Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}

	body := `{"companyName":"Müller GmbH","primaryDomain":"Mueller.example","relationship":"direct-bill"}`
	first := f.do(t, "POST", "/v1/customers", adminA, body, "Idempotency-Key", "create-1")
	if first.status != 201 {
		t.Fatalf("create: %d %s", first.status, first.body)
	}
	var created struct {
		ID            string
		PrimaryDomain string
		Position      int64
	}
	if err := json.Unmarshal(first.body, &created); err != nil || created.Position == 0 || created.PrimaryDomain != "mueller.example" {
		t.Fatalf("create answered %s", first.body)
	}
	if first.header.Get("ETag") != `"1"` || first.header.Get("Location") != "/v1/customers/"+created.ID {
		t.Fatalf("create headers %v", first.header)
	}
	n := eventCount()
	again := f.do(t, "POST", "/v1/customers", adminA, body, "Idempotency-Key", "create-1")
	if again.status != 201 || string(again.body) != string(first.body) || eventCount() != n {
		t.Fatalf("retry: %d %s; events %d -> %d", again.status, again.body, n, eventCount())
	}
	if got := f.do(t, "POST", "/v1/customers", adminA, body); got.status != 409 {
		t.Fatalf("same domain again without key: %d %s", got.status, got.body)
	}
	if got := f.do(t, "POST", "/v1/customers", adminA, `{"companyName":"","primaryDomain":"not a domain","relationship":"both"}`); got.status != 422 || len(got.problem(t).Errors) < 2 {
		t.Fatalf("invalid create: %d %s", got.status, got.body)
	}

	// Read your own write through the read model, accent-insensitively.
	got := f.do(t, "GET", fmt.Sprintf("/v1/customers?q=muller&minPosition=%d", created.Position), adminA, "")
	if got.status != 200 || !strings.Contains(string(got.body), created.ID) {
		t.Fatalf("search: %d %s", got.status, got.body)
	}
	// Another partner sees nothing of it.
	if got := f.do(t, "GET", "/v1/customers/"+created.ID, adminB, ""); got.status != 404 {
		t.Fatalf("other partner's GET: %d", got.status)
	}
	if got := f.do(t, "GET", "/v1/customers?q=muller&minPosition="+fmt.Sprint(created.Position), adminB, ""); strings.Contains(string(got.body), created.ID) {
		t.Fatalf("other partner's search shows the customer: %s", got.body)
	}

	bp := `{"companyName":"Müller AG","email":"billing@mueller.example","firstName":"Jo","lastName":"Müller","defaultAddress":{"addressLine1":"Hauptstr. 1","city":"Berlin","postalCode":"10115","country":"DE"}}`
	path := "/v1/customers/" + created.ID + "/billing-profile"
	if got := f.do(t, "PUT", path, adminA, bp); got.status != 428 {
		t.Fatalf("no If-Match: %d", got.status)
	}
	if got := f.do(t, "PUT", path, adminA, bp, "If-Match", `"7"`); got.status != 412 {
		t.Fatalf("stale If-Match: %d %s", got.status, got.body)
	}
	upd := f.do(t, "PUT", path, adminA, bp, "If-Match", `"1"`)
	if upd.status != 200 || upd.header.Get("ETag") != `"2"` || !strings.Contains(string(upd.body), `"companyName":"Müller AG"`) {
		t.Fatalf("update: %d %v %s", upd.status, upd.header, upd.body)
	}

	// A user created over the API can call it at once.
	u := f.do(t, "POST", "/v1/users", adminA, `{"email":"sales@a.example","role":"sales-agent"}`)
	var user struct{ Token string }
	if err := json.Unmarshal(u.body, &user); u.status != 201 || err != nil || user.Token == "" {
		t.Fatalf("create user: %d %s", u.status, u.body)
	}
	if got := f.do(t, "GET", "/v1/customers/"+created.ID, user.Token, ""); got.status != 200 || got.header.Get("ETag") != `"2"` {
		t.Fatalf("new sales agent GET: %d", got.status)
	}
	if got := f.do(t, "POST", "/v1/customers/"+created.ID+"/tags", user.Token, `{"add":["x"]}`); got.status != 403 {
		t.Fatalf("sales agent tagging: %d", got.status)
	}

	var pos struct{ Position int64 }
	_ = json.Unmarshal(upd.body, &pos)
	act := f.do(t, "GET", fmt.Sprintf("/v1/activity?minPosition=%d", pos.Position), adminA, "")
	if act.status != 200 || !strings.Contains(string(act.body), `"operation":"update_customer_billing_profile"`) ||
		!strings.Contains(string(act.body), `"operation":"create_customer"`) {
		t.Fatalf("activity: %d %s", act.status, act.body)
	}
	ev := f.do(t, "GET", "/v1/events?after=0&limit=100", adminA, "")
	if ev.status != 200 || !strings.Contains(string(ev.body), `"specversion":"1.0"`) || !strings.Contains(string(ev.body), `"type":"customer.created"`) ||
		strings.Contains(string(ev.body), "admin@b.example") {
		t.Fatalf("events: %d %s", ev.status, ev.body)
	}
	csv := f.do(t, "GET", fmt.Sprintf("/v1/customers/export?minPosition=%d", pos.Position), adminA, "")
	if csv.status != 200 || !strings.Contains(string(csv.body), created.ID+",Müller AG,mueller.example,Direct bill,\r\n") {
		t.Fatalf("export: %d %q", csv.status, csv.body)
	}
	if got := f.do(t, "GET", "/readyz", "", ""); got.status != 200 {
		t.Fatalf("readyz: %d", got.status)
	}
}

// realStack is the API over real commands, a real store and read models,
// fed straight from the store.
type realStack struct {
	f      *fixture
	store  eventstore.Store
	cmds   *commands.Commands
	mkUser func(partnerName, email string) (partnerID, token string)
}

// forEachBackend runs a test on the real stack of each backend: PostgreSQL,
// and the embedded default (SQLite files).
func forEachBackend(t *testing.T, test func(t *testing.T, rs *realStack)) {
	for _, backend := range []string{"postgres", "sqlite"} {
		t.Run(backend, func(t *testing.T) { test(t, newRealStack(t, backend)) })
	}
}

// realBackend opens a backend's store, read models and idempotency store.
func realBackend(t *testing.T, ctx context.Context, backend string, onCommit func(string, int64)) (eventstore.Store, projections.CustomerList, projections.ActivityLog, IdempotencyStore) {
	t.Helper()
	if backend == "sqlite" {
		dir := t.TempDir()
		store, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.DefaultFile))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		db, err := sqliteread.Open(ctx, filepath.Join(dir, sqliteread.DefaultFile), sqliteread.Options{OnCommit: onCommit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		idem, err := OpenSQLiteIdempotency(ctx, filepath.Join(dir, "api.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { idem.Close() })
		return store, db.CustomerList(), db.ActivityLog(), idem
	}
	url := testenv.PostgresSchema(t)
	store, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	db, err := pgread.New(ctx, store.Pool(), pgread.Options{OnCommit: onCommit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	idem, err := NewPostgresIdempotency(ctx, store.Pool())
	if err != nil {
		t.Fatal(err)
	}
	return store, db.CustomerList(), db.ActivityLog(), idem
}

func newRealStack(t *testing.T, backend string) *realStack {
	ctx, cancel := context.WithCancel(context.Background())
	var waiter *projections.Waiter
	store, list, actlog, idem := realBackend(t, ctx, backend, func(name string, pos int64) { waiter.Committed(name, pos) })
	waiter = projections.NewWaiter(20*time.Millisecond, list, actlog)
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		_ = store.Subscribe(ctx, 0, func(ctx context.Context, batch []eventstore.Event) error {
			if err := list.ApplyBatch(ctx, batch); err != nil {
				return err
			}
			return actlog.ApplyBatch(ctx, batch)
		})
	}()
	t.Cleanup(func() { cancel(); <-feedDone })

	reg := domain.NewRegistry()
	cmds := commands.New(store, reg)
	mkUser := func(partnerName, email string) (partnerID, token string) {
		p, err := cmds.CreatePartner.Handle(ctx, commands.Meta{}, commands.CreatePartner{Name: partnerName})
		if err != nil {
			t.Fatal(err)
		}
		u, err := cmds.CreateUser.Handle(ctx, commands.Meta{PartnerID: p.ID}, commands.CreateUser{Email: email, Role: domain.RoleAdminAgent})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID, u.Token
	}

	write := WriteSide{C: cmds}
	read := ReadSide{List: list, Log: actlog}
	srv, err := New(Config{
		Commands: write, Customers: write, CustomerList: read, Activity: read, Events: StoreFeed{Store: store},
		Users: NewDirectory(store), Idempotency: idem,
		ListWaiter:     ProjectionWaiter{W: waiter, Name: projections.CustomerListName},
		ActivityWaiter: ProjectionWaiter{W: waiter, Name: projections.ActivityLogName},
		Ready:          func(ctx context.Context) error { _, err := store.Head(ctx); return err },
		Registry:       prometheus.NewRegistry(),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &realStack{f: &fixture{srv: srv, ts: ts}, store: store, cmds: cmds, mkUser: mkUser}

}
