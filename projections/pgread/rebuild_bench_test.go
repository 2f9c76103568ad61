package pgread_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/postgres"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections/pgread"
)

var (
	rebuildEvents = flag.Int("rebuild-events", 100_000, "events in BenchmarkRebuildCustomerList (1000000 for the full target)")
	rebuildSchema = flag.String("rebuild-schema", "", "keep the preloaded log in this schema and reuse it on later runs (saves the load; drop it by hand)")
)

// BenchmarkRebuildCustomerList rebuilds the customer list from a real
// PostgreSQL event store preloaded (before the timer) with a busy tenant's
// mix of events; the figure covers reading the log, decoding, folding,
// COPY, index builds and the swap.
//
//	go test -run '^$' -bench RebuildCustomerList -benchtime 1x ./projections/pgread/ -rebuild-events=1000000
func BenchmarkRebuildCustomerList(b *testing.B) {
	ctx := context.Background()
	store, n := preloadedStore(ctx, b, *rebuildEvents)
	db, err := pgread.New(ctx, store.Pool(), pgread.Options{})
	if err != nil {
		b.Fatal(err)
	}
	// As customerctl runs a rebuild (GOGC in the environment wins there too).
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(pgread.RebuildGCPercent))
	}
	b.ResetTimer()
	for b.Loop() {
		if err := db.CustomerList().Rebuild(ctx, store, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(int64(b.N)*n)/b.Elapsed().Seconds(), "events/s")
}

// keptSchema creates schema if missing (a benchmark's data kept between
// runs; never dropped) and returns a connection string using it.
func keptSchema(ctx context.Context, b *testing.B, schema string) string {
	c, err := pgx.Connect(ctx, testenv.PostgresURL())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		b.Fatal(err)
	}
	return testenv.WithSearchPath(testenv.PostgresURL(), schema)
}

// preloadedStore returns a store holding n generated events, and n.
func preloadedStore(ctx context.Context, b *testing.B, n int) (*postgres.Store, int64) {
	conn := testenv.PostgresSchema(b)
	if *rebuildSchema != "" {
		conn = keptSchema(ctx, b, *rebuildSchema)
	}
	store, err := postgres.Open(ctx, conn, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	switch {
	case head == int64(n):
		return store, head
	case head != 0:
		b.Fatalf("schema %s holds %d events, not %d", *rebuildSchema, head, n)
	}
	var batch []eventstore.Event
	flush := func() {
		if err := appendInOrder(ctx, store, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	genTenantLog(n, 9, func(ev eventstore.Event) {
		if batch = append(batch, ev); len(batch) == 20000 {
			flush()
		}
	})
	flush()
	if head, err = store.Head(ctx); err != nil || head != int64(n) {
		b.Fatalf("preloaded log head = %d (%v), want %d", head, err, n)
	}
	// Autovacuum would analyze a table this size soon after the load; until
	// it has, PostgreSQL plans each page of ReadAll as a sort of the whole
	// rest of the log (~100x slower), which no long-lived store sees.
	if _, err := store.Pool().Exec(ctx, "ANALYZE events"); err != nil {
		b.Fatal(err)
	}
	return store, head
}

// appendInOrder appends a batch in one Append (the COPY path), one request
// per stream in order of first appearance. Events of one stream keep their
// order, and a customer's events never come before its creation, so the
// log tells the same story as the generator.
func appendInOrder(ctx context.Context, store eventstore.Store, evs []eventstore.Event) error {
	if len(evs) == 0 {
		return nil
	}
	idx := map[string]int{}
	var reqs []eventstore.AppendRequest
	for _, ev := range evs {
		i, ok := idx[ev.StreamID]
		if !ok {
			i = len(reqs)
			idx[ev.StreamID] = i
			reqs = append(reqs, eventstore.AppendRequest{StreamID: ev.StreamID, ExpectedVersion: eventstore.AnyVersion})
		}
		reqs[i].Events = append(reqs[i].Events, eventstore.NewEvent{ID: ev.ID, Type: ev.Type, Subject: ev.Subject, Data: ev.Data, Metadata: ev.Metadata})
	}
	_, err := store.Append(ctx, reqs...)
	return err
}

var rebuildWords = []string{"Müller", "Straße", "Ærø", "Contoso", "Fabrikam", "Søhne", "Łódź", "Café", "Northwind", "Adventure", "Works", "Tailspin"}

// genTenantLog yields a reproducible history of n events over 50 partners:
// customers (some with a second relationship), a tag catalog with
// assignments, renames and deletes, billing-profile renames and orders.
func genTenantLog(n int, seed uint64, yield func(eventstore.Event)) {
	r := rand.New(rand.NewPCG(seed, 2))
	reg := domain.NewRegistry()
	type cust struct{ partner, id string }
	var custs []cust
	tags := map[string][]string{}
	count := 0
	add := func(partner, stream, subject string, e domain.Event) {
		typ, data, err := reg.Marshal(e)
		if err != nil {
			panic(err)
		}
		count++
		yield(eventstore.Event{ID: uuid.New(), StreamID: stream, Type: typ, Subject: subject, Data: data,
			Metadata: eventstore.Metadata{PartnerID: partner, ActorID: "u1", ActorEmail: "admin@" + partner + ".example"}})
	}
	addCust := func(c cust, e domain.Event) { add(c.partner, domain.CustomerStream(c.partner, c.id), c.id, e) }
	for count < n {
		partner := fmt.Sprintf("p%02d", r.IntN(50))
		switch k := r.IntN(20); {
		case k < 8 || len(custs) == 0:
			c := cust{partner, uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%d-%d", seed, count)).String()}
			name := rebuildWords[r.IntN(len(rebuildWords))] + " " + rebuildWords[r.IntN(len(rebuildWords))] + fmt.Sprintf(" %d", r.IntN(1000))
			rel := domain.RelationshipDirectBill
			if r.IntN(2) == 0 {
				rel = domain.RelationshipIndirectReseller
			}
			addCust(c, domain.CustomerCreated{CustomerID: c.id, CompanyName: name, PrimaryDomain: fmt.Sprintf("c%d.example", len(custs)), Relationship: rel})
			custs = append(custs, c)
		case k < 9:
			tid := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "t%d-%d", seed, count)).String()
			add(partner, domain.TagCatalogStream(partner), "", domain.TagCreated{TagID: tid, Name: rebuildWords[r.IntN(len(rebuildWords))] + fmt.Sprint(count%97)})
			tags[partner] = append(tags[partner], tid)
		case k < 13:
			c := custs[r.IntN(len(custs))]
			if ts := tags[c.partner]; len(ts) > 0 {
				addCust(c, domain.CustomerTagAssigned{CustomerID: c.id, TagID: ts[r.IntN(len(ts))], Name: "assigned"})
			}
		case k < 14:
			c := custs[r.IntN(len(custs))]
			if ts := tags[c.partner]; len(ts) > 0 {
				addCust(c, domain.CustomerTagUnassigned{CustomerID: c.id, TagID: ts[r.IntN(len(ts))], Name: "unassigned"})
			}
		case k < 15:
			if ts := tags[partner]; len(ts) > 0 {
				if r.IntN(3) == 0 {
					add(partner, domain.TagCatalogStream(partner), "", domain.TagDeleted{TagID: ts[r.IntN(len(ts))], Name: "deleted"})
				} else {
					add(partner, domain.TagCatalogStream(partner), "", domain.TagRenamed{TagID: ts[r.IntN(len(ts))], OldName: "old", NewName: fmt.Sprintf("Renamed %d", count)})
				}
			}
		case k < 16:
			c := custs[r.IntN(len(custs))]
			addCust(c, domain.CustomerRelationshipAdded{CustomerID: c.id, Relationship: domain.RelationshipDirectBill})
		case k < 17:
			c := custs[r.IntN(len(custs))]
			addCust(c, domain.CustomerBillingProfileUpdated{CustomerID: c.id,
				BillingProfile: domain.BillingProfile{CompanyName: rebuildWords[r.IntN(len(rebuildWords))] + " Neu", Email: "billing@x.example"}})
		default:
			c := custs[r.IntN(len(custs))]
			addCust(c, domain.OrderCreated{CustomerID: c.id, OrderID: uuid.NewString(), Catalog: "azure", BillingCycle: "monthly",
				LineItems: []domain.LineItem{{OfferID: "offer-1", Quantity: 1}}})
		}
	}
}
