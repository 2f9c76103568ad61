package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/sqlite"
)

func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) *sqlite.Store {
	return openStore(t, filepath.Join(t.TempDir(), "data", "events.db"))
}

func ev(typ, partner string, data string) eventstore.NewEvent {
	return eventstore.NewEvent{
		ID: uuid.New(), Type: typ, Subject: "c1", Data: []byte(data),
		Metadata: eventstore.Metadata{PartnerID: partner, ActorID: "u1", ActorEmail: "a@example.com", CorrelationID: "corr", CausationID: "cause"},
	}
}

func mustAppend(t testing.TB, s eventstore.Store, reqs ...eventstore.AppendRequest) []eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), reqs...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

func TestExpectedVersions(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{ev("x", "p", "{}"), ev("x", "p", "{}")}})

	_, err := s.Append(ctx, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, eventstore.ErrConflict) || ce.Actual != 2 || ce.Expected != eventstore.NoStream || ce.StreamID != "a" {
		t.Fatalf("NoStream on existing stream: got %v (%+v), want ConflictError actual 2", err, ce)
	}
	_, err = s.Append(ctx, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: 1, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
	if !errors.As(err, &ce) || ce.Actual != 2 || ce.Expected != 1 {
		t.Fatalf("stale version: got %v, want ConflictError actual 2 expected 1", err)
	}
	_, err = s.Append(ctx, eventstore.AppendRequest{StreamID: "new", ExpectedVersion: 3, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
	if !errors.As(err, &ce) || ce.Actual != 0 {
		t.Fatalf("exact version on missing stream: got %v, want ConflictError actual 0", err)
	}
	res := mustAppend(t, s, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: 2, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
	if res[0].Version != 3 || res[0].FirstPosition != 3 || res[0].LastPosition != 3 {
		t.Fatalf("exact append result = %+v, want version 3 at position 3", res[0])
	}
	res = mustAppend(t, s, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
	if res[0].Version != 4 {
		t.Fatalf("AnyVersion append result = %+v, want version 4", res[0])
	}
	if h, _ := s.Head(ctx); h != 4 {
		t.Fatalf("Head = %d after failed appends, want 4 (nothing stored by conflicts)", h)
	}
}

func TestAppendIsAtomicAcrossRequests(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "b", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
	_, err := s.Append(ctx,
		eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{ev("x", "p", "{}")}, Claims: []string{"k"}},
		eventstore.AppendRequest{StreamID: "b", ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{ev("x", "p", "{}")}},
	)
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("second request conflicts: got %v", err)
	}
	if evs, _ := s.Load(ctx, "a", 1); len(evs) != 0 {
		t.Fatalf("stream a has %d events after a failed multi-append, want 0", len(evs))
	}
	// The claim of the failed append must not be held either.
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "c", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}, Claims: []string{"k"}})
	if h, _ := s.Head(ctx); h != 2 {
		t.Fatalf("Head = %d, want 2", h)
	}
}

func TestClaims(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}, Claims: []string{"domain/p/acme"}})
	// The holder may name its own claim again.
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}, Claims: []string{"domain/p/acme"}})

	_, err := s.Append(ctx, eventstore.AppendRequest{StreamID: "b", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}, Claims: []string{"domain/p/other", "domain/p/acme"}})
	var cl *eventstore.ClaimError
	if !errors.As(err, &cl) || !errors.Is(err, eventstore.ErrClaimTaken) || cl.Claim != "domain/p/acme" {
		t.Fatalf("taken claim: got %v, want ClaimError for domain/p/acme", err)
	}
	if evs, _ := s.Load(ctx, "b", 1); len(evs) != 0 {
		t.Fatalf("stream b stored %d events despite the claim error", len(evs))
	}
	// domain/p/other was rolled back with the append, so it is free.
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "c", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}, Claims: []string{"domain/p/other"}})
}

func TestIdempotentRetry(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "z", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
	reqs := []eventstore.AppendRequest{
		{StreamID: "a", ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{ev("x", "p", "1"), ev("x", "p", "2")}, Claims: []string{"k"}},
		{StreamID: "b", ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{ev("x", "p", "3")}},
	}
	first := mustAppend(t, s, reqs...)
	again := mustAppend(t, s, reqs...) // NoStream would conflict if this were not recognised as a retry
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("retry returned %+v, want the original %+v", again, first)
	}
	if h, _ := s.Head(ctx); h != 4 {
		t.Fatalf("Head = %d after retry, want 4", h)
	}
	// A mix of stored and new ids is not a retry and stores nothing.
	_, err := s.Append(ctx, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "new"), reqs[0].Events[0]}})
	if err == nil {
		t.Fatal("append reusing a stored event id in a new batch succeeded")
	}
	if h, _ := s.Head(ctx); h != 4 {
		t.Fatalf("Head = %d after rejected partial retry, want 4", h)
	}
}

func TestStoredEventsAndHashChain(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("{\"b\": 1,   \"a\":\"\u00e9\"}\n") // odd spacing and key order survive
	first := ev("customer.created", "p1", "")
	first.Data = data
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "c-1", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{first}})
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "c-2", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("customer.created", "p2", "{}")}})
	before := time.Now().UTC()
	mustAppend(t, s, eventstore.AppendRequest{StreamID: "c-1", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("customer.updated", "p1", "{}"), ev("customer.updated", "p1", "{}")}})

	evs, err := s.Load(ctx, "c-1", 1)
	if err != nil || len(evs) != 3 {
		t.Fatalf("Load = %d events, %v; want 3", len(evs), err)
	}
	if !bytes.Equal(evs[0].Data, data) || evs[0].ID != first.ID || evs[0].Metadata != first.Metadata || evs[0].Subject != "c1" {
		t.Fatalf("first event came back changed: %+v", evs[0])
	}
	var prev []byte
	for i, e := range evs {
		if e.StreamVersion != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.StreamVersion)
		}
		if !bytes.Equal(e.PrevHash, prev) || !bytes.Equal(e.Hash, eventstore.ChainHash(prev, e)) {
			t.Fatalf("event %d breaks the hash chain", i)
		}
		if e.RecordedAt.Location() != time.UTC || e.RecordedAt.Nanosecond()%1000 != 0 {
			t.Fatalf("RecordedAt %v is not UTC microseconds", e.RecordedAt)
		}
		prev = e.Hash
	}
	if evs[1].RecordedAt.Before(before.Truncate(time.Microsecond)) {
		t.Fatalf("RecordedAt %v is before the append started (%v)", evs[1].RecordedAt, before)
	}
	if wantPos := []int64{1, 3, 4}; evs[0].Position != wantPos[0] || evs[1].Position != wantPos[1] || evs[2].Position != wantPos[2] {
		t.Fatalf("positions %d %d %d, want 1 3 4", evs[0].Position, evs[1].Position, evs[2].Position)
	}
	tail, _ := s.Load(ctx, "c-1", 3)
	if len(tail) != 1 || tail[0].StreamVersion != 3 {
		t.Fatalf("Load from version 3 = %+v", tail)
	}
	if none, err := s.Load(ctx, "missing", 1); err != nil || len(none) != 0 {
		t.Fatalf("Load of missing stream = %d events, %v", len(none), err)
	}
}

func TestReadAllFilters(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i := range 10 {
		p := []string{"p1", "p2"}[i%2]
		typ := []string{"a", "b", "c"}[i%3]
		mustAppend(t, s, eventstore.AppendRequest{StreamID: fmt.Sprint("s", i%4), ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev(typ, p, "{}")}})
	}
	positions := func(req eventstore.ReadRequest) string {
		evs, err := s.ReadAll(ctx, req)
		if err != nil {
			t.Fatalf("ReadAll(%+v): %v", req, err)
		}
		var ps []int64
		for _, e := range evs {
			ps = append(ps, e.Position)
		}
		return fmt.Sprint(ps)
	}
	for _, c := range []struct {
		req  eventstore.ReadRequest
		want string
	}{
		{eventstore.ReadRequest{}, "[1 2 3 4 5 6 7 8 9 10]"},
		{eventstore.ReadRequest{After: 7}, "[8 9 10]"},
		{eventstore.ReadRequest{After: 2, Limit: 3}, "[3 4 5]"},
		{eventstore.ReadRequest{PartnerID: "p2"}, "[2 4 6 8 10]"},
		{eventstore.ReadRequest{Types: []string{"a", "c"}}, "[1 3 4 6 7 9 10]"},
		{eventstore.ReadRequest{PartnerID: "p1", Types: []string{"a"}, After: 1}, "[7]"},
	} {
		if got := positions(c.req); got != c.want {
			t.Errorf("ReadAll(%+v) positions = %s, want %s", c.req, got, c.want)
		}
	}
}

func TestCheckpoints(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if p, err := s.LoadCheckpoint(ctx, "relay"); err != nil || p != 0 {
		t.Fatalf("unsaved checkpoint = %d, %v; want 0", p, err)
	}
	for _, p := range []int64{5, 3} {
		if err := s.SaveCheckpoint(ctx, "relay", p); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LoadCheckpoint(ctx, "relay"); err != nil || got != p {
			t.Fatalf("checkpoint = %d, %v; want %d", got, err, p)
		}
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	subErr := make(chan error, 1)
	go func() {
		subErr <- s.Subscribe(ctx, 0, func(context.Context, []eventstore.Event) error { return nil })
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := s.ReadAll(ctx, eventstore.ReadRequest{}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadAll after Close: %v", err)
	}
	if _, err := s.Head(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Head after Close: %v", err)
	}
	select {
	case err := <-subErr:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Subscribe ended with %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe still running 5s after Close")
	}
}

// TestSecondProcess is the operator CLI case: a second Open of the same file
// appends while the server's store is open, and the server's subscription
// finds the event by polling (no in-process wake-up reaches it).
func TestSecondProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	server := openStore(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mustAppend(t, server, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})

	got := make(chan eventstore.Event, 10)
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		server.Subscribe(subCtx, 0, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				got <- e
			}
			return nil
		})
	}()
	if e := <-got; e.Position != 1 {
		t.Fatalf("catch-up delivered position %d, want 1", e.Position)
	}

	cli := openStore(t, path) // migrations find nothing to do
	cliEvent := ev("partner.created", "p", `{"name":"acme"}`)
	res := mustAppend(t, cli, eventstore.AppendRequest{StreamID: "partner-1", ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{cliEvent}})
	if res[0].FirstPosition != 2 {
		t.Fatalf("CLI append landed at position %d, want 2", res[0].FirstPosition)
	}
	select {
	case e := <-got:
		if e.ID != cliEvent.ID || e.Position != 2 {
			t.Fatalf("subscriber saw %s at %d, want the CLI's event at 2", e.ID, e.Position)
		}
	case <-ctx.Done():
		t.Fatal("server subscription never saw the CLI's append")
	}
	// And the server keeps appending after the CLI's write.
	res = mustAppend(t, server, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: 1, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
	if res[0].FirstPosition != 3 {
		t.Fatalf("server append after CLI landed at %d, want 3", res[0].FirstPosition)
	}
	stop()
	wg.Wait()
}

// TestConcurrentOpen runs the migrations from two handles at once, as when
// the server and the CLI start together on a new file.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				errs <- err
				return
			}
			_, err = s.Append(context.Background(), eventstore.AppendRequest{StreamID: uuid.NewString(), ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
			errs <- err
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open and append: %v", err)
		}
	}
	s := openStore(t, path)
	if h, _ := s.Head(context.Background()); h != 4 {
		t.Fatalf("Head = %d, want 4", h)
	}
}

func TestSubscribeFollowsInProcessAppends(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan int64, 100)
	go s.Subscribe(ctx, 0, func(_ context.Context, batch []eventstore.Event) error {
		for _, e := range batch {
			got <- e.Position
		}
		return nil
	})
	for i := range 20 {
		mustAppend(t, s, eventstore.AppendRequest{StreamID: fmt.Sprint("s", i%3), ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
	}
	for want := int64(1); want <= 20; want++ {
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("subscriber saw position %d, want %d", p, want)
			}
		case <-ctx.Done():
			t.Fatalf("subscriber stopped before position %d", want)
		}
	}
}

// TestPragmasAndMigrations checks the settings the durability and
// multi-process story rests on, and that a second Open does not re-apply
// migrations.
func TestPragmasAndMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	openStore(t, path)
	s := openStore(t, path)
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"foreign_keys": "1",
		"busy_timeout": "30000",
	} {
		var got string
		if err := s.DB().QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	var n, v int
	if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != v || n < 1 {
		t.Errorf("schema_migrations holds %d rows up to version %d after two opens, want one row per version", n, v)
	}
	// Foreign keys are enforced: a claim cannot name a stream that does not exist.
	_, err := s.DB().ExecContext(ctx, `INSERT INTO claims (claim, stream_id) VALUES ('k', 'no-such-stream')`)
	if err == nil {
		t.Error("inserting a claim for a missing stream succeeded; foreign keys are not enforced")
	}
}

// TestWaitsForOtherWriter holds the write lock from a second handle (another
// process, as far as SQLite is concerned) and checks that Append waits for
// it instead of failing with SQLITE_BUSY.
func TestWaitsForOtherWriter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "events.db")
	server := openStore(t, path)
	cli := openStore(t, path)

	tx, err := cli.DB().BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (name, position) VALUES ('cli', 1)`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := server.Append(ctx, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Append returned (%v) while another handle held the write lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Append after the other writer committed: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Append still waiting after the other writer committed")
	}
	if p, err := server.LoadCheckpoint(ctx, "cli"); err != nil || p != 1 {
		t.Fatalf("the other handle's checkpoint = %d, %v; want 1", p, err)
	}
}

// TestOpenPaths covers paths SQLite would misread if the file: URI were not
// escaped, and the relative default ./data/events.db.
func TestOpenPaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, p := range []string{filepath.Join(dir, "a dir #1", "ev?nts%20.db"), "./data/events.db"} {
		s := openStore(t, p)
		mustAppend(t, s, eventstore.AppendRequest{StreamID: "a", ExpectedVersion: eventstore.AnyVersion, Events: []eventstore.NewEvent{ev("x", "p", "{}")}})
		s.Close()
		if _, err := os.Stat(p); err != nil {
			t.Errorf("database file for %q: %v", p, err)
		}
	}
}
