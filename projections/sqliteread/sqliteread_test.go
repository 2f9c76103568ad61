package sqliteread_test

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/readtest"
	"github.com/partnerhub/customers/projections/sqliteread"
)

func openDB(t testing.TB, path string) *sqliteread.DB {
	t.Helper()
	db, err := sqliteread.Open(context.Background(), path, sqliteread.Options{})
	if err != nil {
		t.Fatalf("opening read models: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func tempDB(t testing.TB) *sqliteread.DB {
	return openDB(t, filepath.Join(t.TempDir(), "readmodels.db"))
}

func open(t *testing.T) readtest.Models {
	db := tempDB(t)
	return readtest.Models{Customers: db.CustomerList(), Activity: db.ActivityLog()}
}

func TestReadModels(t *testing.T) { readtest.Run(t, open) }

func TestReadModelsWithStore(t *testing.T) {
	readtest.RunWithStore(t, func(t *testing.T, store eventstore.Store) readtest.Models {
		db, err := sqliteread.Open(context.Background(), filepath.Join(t.TempDir(), "readmodels.db"), sqliteread.Options{Store: store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return readtest.Models{Customers: db.CustomerList(), Activity: db.ActivityLog()}
	})
}

// applyAll applies events in batches of 250 to both projectors.
func applyAll(t testing.TB, db *sqliteread.DB, events []eventstore.Event) {
	t.Helper()
	applyTo(t, db.CustomerList(), events)
	applyTo(t, db.ActivityLog(), events)
}

func applyTo(t testing.TB, p projections.Projector, events []eventstore.Event) {
	t.Helper()
	for i := 0; i < len(events); i += 250 {
		if err := p.ApplyBatch(context.Background(), events[i:min(i+250, len(events))]); err != nil {
			t.Fatalf("%s: applying batch at %d: %v", p.Name(), i, err)
		}
	}
}

// snapshot is everything the queries show for a partner.
type snapshot struct {
	Customers []projections.CustomerItem
	Tags      []projections.TagCount
	Activity  []projections.ActivityEntry
}

func snap(t testing.TB, db *sqliteread.DB, partner string) snapshot {
	t.Helper()
	ctx := context.Background()
	var s snapshot
	if err := db.CustomerList().ExportCustomers(ctx, partner, 100, func(b []projections.CustomerItem) error {
		s.Customers = append(s.Customers, b...)
		return nil
	}); err != nil {
		t.Fatalf("exporting %s: %v", partner, err)
	}
	var err error
	if s.Tags, err = db.CustomerList().ListTags(ctx, partner); err != nil {
		t.Fatal(err)
	}
	for cursor := ""; ; {
		page, err := db.ActivityLog().QueryActivity(ctx, partner, projections.ActivityParams{Limit: 500, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		s.Activity = append(s.Activity, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return s
		}
	}
}

// TestSearchAgreesWithSubstringOracle runs short queries (instr on the
// folded text) and long ones (FTS5 trigram) on every field against plain
// strings.Contains over the in-memory projection, paging with cursors.
func TestSearchAgreesWithSubstringOracle(t *testing.T) {
	ctx := context.Background()
	events := genLog(3000, 1)
	db := tempDB(t)
	applyAll(t, db, events)
	state := projections.NewCustomerListState()
	if err := projections.ApplyCustomerList(ctx, state, domain.NewRegistry(), events); err != nil {
		t.Fatal(err)
	}
	rows := state.Rows()

	queries := []string{"m", "mu", "mül", "MULLER", "ss", "strasse", "ae", "aer", "lodz", "%", "_r", "100%_", `"d`, `quote"d`,
		"c1", "c12.ex", "0", "1", "renamed", "e", "caf", "café", " neu", "ß", "0a"}
	r := rand.New(rand.NewPCG(7, 7))
	for len(queries) < 60 {
		text := rows[r.IntN(len(rows))].CompanyName + rows[r.IntN(len(rows))].PrimaryDomain
		runes := []rune(projections.Fold(text))
		i := r.IntN(len(runes))
		if q := strings.TrimSpace(string(runes[i:min(len(runes), i+1+r.IntN(5))])); q != "" {
			queries = append(queries, q)
		}
	}
	matches := func(row projections.CustomerRow, by, f string) bool {
		tag := false
		for _, name := range row.Tags {
			tag = tag || strings.Contains(projections.Fold(name), f)
		}
		switch by {
		case projections.SearchAll:
			return tag || strings.Contains(projections.SearchText(row.CompanyName, row.PrimaryDomain, row.ID), f)
		case projections.SearchCompanyName:
			return strings.Contains(row.CompanyKey, f)
		case projections.SearchDomain:
			return strings.Contains(row.PrimaryDomain, f)
		case projections.SearchID:
			return strings.Contains(strings.ToLower(row.ID), f)
		}
		return tag
	}
	checked := 0
	for _, partner := range []string{"p0", "p1", "p2"} {
		for _, q := range queries {
			for _, by := range []string{projections.SearchAll, projections.SearchCompanyName, projections.SearchDomain, projections.SearchID, projections.SearchTag} {
				var want []string
				for _, row := range rows {
					if row.PartnerID == partner && matches(row, by, projections.Fold(q)) {
						want = append(want, row.ID+" "+row.Relationship)
					}
				}
				var got []string
				for cursor := ""; ; {
					page, err := db.CustomerList().SearchCustomers(ctx, partner, projections.SearchParams{Q: q, SearchBy: by, Limit: 40, Cursor: cursor})
					if err != nil {
						t.Fatalf("search %q by %s: %v", q, by, err)
					}
					for _, it := range page.Items {
						got = append(got, it.ID+" "+it.Relationship)
					}
					if cursor = page.NextCursor; cursor == "" {
						break
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: search %q by %s: got %d rows, want %d\n got %v\nwant %v", partner, q, by, len(got), len(want), got, want)
				}
				checked += len(want)
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d matches over all queries: the generated data does not exercise search", checked)
	}
}

// TestRebuildWhileLive rebuilds while the live projector moves past the
// rebuild's end and queries keep running: the result equals a database
// that only ever applied live, and queries during the swap see the old
// tables.
func TestRebuildWhileLive(t *testing.T) {
	ctx := context.Background()
	events := genLog(4000, 2)
	db := tempDB(t)
	applyAll(t, db, events[:2000])
	for _, p := range []projections.Projector{db.CustomerList(), db.ActivityLog()} {
		log := &memLog{events: events[:3000]}
		var before snapshot
		swaps := 0
		log.onRead = func(after int64) {
			switch {
			case after == 0 && len(log.events) == 3000:
				// First read of the rebuild: the live projector goes on
				// past the head the rebuild started from.
				applyTo(t, p, events[2000:3500])
				log.events = events[:3500]
				before = snap(t, db, "p1")
			case after == 3000:
				// The swap's catch-up, inside its write transaction:
				// queries still answer, from the old tables.
				swaps++
				if !reflect.DeepEqual(snap(t, db, "p1"), before) {
					t.Errorf("%s: queries during the swap did not answer from the old tables", p.Name())
				}
			}
		}
		if err := p.Rebuild(ctx, log, nil); err != nil {
			t.Fatalf("rebuilding %s: %v", p.Name(), err)
		}
		if swaps != 1 {
			t.Errorf("%s: swap caught up %d times, want once", p.Name(), swaps)
		}
		if cp, err := p.Checkpoint(ctx); err != nil || cp != 3500 {
			t.Errorf("%s checkpoint after rebuild = %d, %v; want 3500", p.Name(), cp, err)
		}
	}
	live := tempDB(t)
	applyAll(t, live, events[:3500])
	for _, p := range []string{"p0", "p1", "p2"} {
		got, want := snap(t, db, p), snap(t, live, p)
		if len(want.Customers) == 0 || len(want.Activity) == 0 {
			t.Fatalf("partner %s has no data: the test checks nothing", p)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("partner %s after rebuild differs from live-only projection:\n got %d customers, %d tags, %d entries\nwant %d, %d, %d",
				p, len(got.Customers), len(got.Tags), len(got.Activity), len(want.Customers), len(want.Tags), len(want.Activity))
		}
	}
	// A second rebuild finds no leftovers of the first (index and table
	// names are free again).
	if err := db.CustomerList().Rebuild(ctx, &memLog{events: events[:3500]}, nil); err != nil {
		t.Fatalf("second rebuild: %v", err)
	}
	if got := snap(t, db, "p2"); !reflect.DeepEqual(got, snap(t, live, "p2")) {
		t.Errorf("second rebuild differs from live")
	}
}

// TestConcurrentOpenMigratesOnce opens one file from several handles at
// once, as two processes starting together would.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "readmodels.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	dbs := make([]*sqliteread.DB, 4)
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = sqliteread.Open(context.Background(), path, sqliteread.Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	events := genLog(100, 3)
	if err := dbs[0].CustomerList().ApplyBatch(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	// Another handle sees the commit: same file, one schema.
	if cp, err := dbs[3].CustomerList().Checkpoint(context.Background()); err != nil || cp != 100 {
		t.Errorf("checkpoint through another handle = %d, %v; want 100", cp, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "readmodels.db")
	openDB(t, path).Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if _, err := sqliteread.Open(context.Background(), path, sqliteread.Options{}); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("opening a newer file: error = %v, want one naming version 99", err)
	}
}

// TestExportIsOneSnapshot commits a customer in the middle of an export:
// the export does not show it, a query afterwards does.
func TestExportIsOneSnapshot(t *testing.T) {
	ctx := context.Background()
	db := tempDB(t)
	events := genLog(600, 4)
	applyAll(t, db, events)
	const lateID = "ffffffff-0000-0000-0000-000000000000"
	late := func() []eventstore.Event {
		typ, data, _ := domain.NewRegistry().Marshal(domain.CustomerCreated{CustomerID: lateID, CompanyName: "zzz Late", PrimaryDomain: "late.example", Relationship: domain.RelationshipDirectBill})
		return []eventstore.Event{{Position: 601, Type: typ, Data: data, Metadata: eventstore.Metadata{PartnerID: "p0"}}}
	}
	var exported []projections.CustomerItem
	batches := 0
	err := db.CustomerList().ExportCustomers(ctx, "p0", 5, func(b []projections.CustomerItem) error {
		if batches++; batches == 1 {
			if err := db.CustomerList().ApplyBatch(ctx, late()); err != nil {
				return err
			}
		}
		exported = append(exported, b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if batches < 3 {
		t.Fatalf("export came in %d batches; the test needs several", batches)
	}
	for _, it := range exported {
		if it.ID == lateID {
			t.Errorf("export shows a customer committed after it started")
		}
	}
	page, _ := db.CustomerList().SearchCustomers(ctx, "p0", projections.SearchParams{Q: "late.example", SearchBy: "domain"})
	if len(page.Items) != 1 {
		t.Errorf("search after the export finds %d late customers, want 1", len(page.Items))
	}
	stop := errors.New("client went away")
	if err := db.CustomerList().ExportCustomers(ctx, "p0", 5, func([]projections.CustomerItem) error { return stop }); err != stop {
		t.Errorf("export with failing yield = %v, want the yield's error itself", err)
	}
}

// TestFailedBatchLeavesNothing: rows and checkpoint commit together, so a
// batch with an undecodable event writes neither.
func TestFailedBatchLeavesNothing(t *testing.T) {
	ctx := context.Background()
	db := tempDB(t)
	events := genLog(20, 5)
	bad := append(append([]eventstore.Event{}, events...), eventstore.Event{Position: 21, Type: domain.TypeCustomerCreated, Data: []byte("not json")})
	for _, p := range []projections.Projector{db.CustomerList(), db.ActivityLog()} {
		var de *projections.DecodeError
		if err := p.ApplyBatch(ctx, bad); !errors.As(err, &de) || de.Position != 21 {
			t.Errorf("%s: applying a bad batch = %v, want a DecodeError at 21", p.Name(), err)
		}
		if cp, err := p.Checkpoint(ctx); err != nil || cp != 0 {
			t.Errorf("%s checkpoint after failed batch = %d, %v; want 0", p.Name(), cp, err)
		}
	}
	for _, p := range []string{"p0", "p1", "p2"} {
		if s := snap(t, db, p); len(s.Customers)+len(s.Tags)+len(s.Activity) != 0 {
			t.Errorf("partner %s shows rows of a failed batch: %+v", p, s)
		}
	}
	applyAll(t, db, events)
	if s := snap(t, db, "p0"); len(s.Activity) == 0 {
		t.Errorf("the good events applied afterwards show nothing")
	}
}

// TestOddPaths: the path goes into a file: URI, so characters that mean
// something there must still name the file given, relative paths included.
func TestOddPaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, p := range []string{"rel/readmodels.db", filepath.Join(dir, "a b#c?d=%20", "readmodels.db")} {
		db := openDB(t, p)
		if err := db.CustomerList().ApplyBatch(context.Background(), genLog(10, 6)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		db.Close()
		if cp, err := openDB(t, p).CustomerList().Checkpoint(context.Background()); err != nil || cp != 10 {
			t.Errorf("%s reopened: checkpoint = %d, %v; want 10 (same file)", p, cp, err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
