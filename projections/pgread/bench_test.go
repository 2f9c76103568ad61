package pgread_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections/pgread"
)

var benchEvents = flag.Int("rebuild-events", 100_000, "events in BenchmarkRebuildCustomerList (1000000 for the full target)")

// genStore serves a generated log: per customer one customer.created and
// one tag_assigned, over 100 partners with 20 tags each. It measures the
// rebuild (decode, fold, COPY, index, swap), not an event store.
type genStore struct {
	eventstore.Store
	n    int64
	data [][]byte
}

func (g *genStore) Head(context.Context) (int64, error) { return g.n, nil }

func (g *genStore) ReadAll(_ context.Context, req eventstore.ReadRequest) ([]eventstore.Event, error) {
	reg := domain.NewRegistry()
	var out []eventstore.Event
	for pos := req.After + 1; pos <= g.n && len(out) < req.Limit; pos++ {
		c := (pos - 1) / 2
		partner := fmt.Sprintf("p%02d", c%100)
		id := fmt.Sprintf("%08d-0000-0000-0000-000000000000", c)
		var e domain.Event = domain.CustomerCreated{CustomerID: id, CompanyName: fmt.Sprintf("Cömpany %d GmbH", c), PrimaryDomain: fmt.Sprintf("c%d.example", c), Relationship: domain.RelationshipDirectBill}
		if pos%2 == 0 {
			e = domain.CustomerTagAssigned{CustomerID: id, TagID: fmt.Sprintf("t%d", c%20), Name: fmt.Sprintf("Tag %d", c%20)}
		}
		typ, data, _ := reg.Marshal(e)
		out = append(out, eventstore.Event{ID: uuid.New(), Position: pos, Type: typ, Data: data, RecordedAt: time.Now(),
			Metadata: eventstore.Metadata{PartnerID: partner}})
	}
	return out, nil
}

func BenchmarkRebuildCustomerList(b *testing.B) {
	ctx := context.Background()
	db, err := pgread.Open(ctx, testenv.PostgresSchema(b), pgread.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	store := &genStore{n: int64(*benchEvents)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := db.CustomerList().Rebuild(ctx, store, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(int64(b.N)*store.n)/b.Elapsed().Seconds(), "events/s")
}
