package pgread_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
	"github.com/partnerhub/customers/projections/readtest"
)

// BenchmarkApplyBatch applies batches of ten new customers to each read
// model, as the projectors do at a few hundred creates per second: the
// time of a batch is mostly its round trips to PostgreSQL.
//
//	go test -run '^$' -bench ApplyBatch -benchtime 2000x ./projections/pgread/
func BenchmarkApplyBatch(b *testing.B) {
	ctx := context.Background()
	// A store, as customerd gives one, for its asynchronous commits; it
	// stays empty: the batches' positions follow on without gaps, so
	// nothing is read from it.
	db, err := pgread.Open(ctx, testenv.PostgresSchema(b), pgread.Options{Store: readtest.Store(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	reg := domain.NewRegistry()
	var pos int64
	batch := func() []eventstore.Event {
		evs := make([]eventstore.Event, 10)
		for i := range evs {
			pos++
			id := uuid.NewString()
			typ, data, err := reg.Marshal(domain.CustomerCreated{CustomerID: id, CompanyName: fmt.Sprint("Customer ", pos),
				PrimaryDomain: fmt.Sprint("c", pos, ".example"), Relationship: domain.RelationshipDirectBill})
			if err != nil {
				b.Fatal(err)
			}
			evs[i] = eventstore.Event{ID: uuid.New(), StreamID: domain.CustomerStream("p1", id), StreamVersion: 1, Position: pos,
				Type: typ, Subject: id, Data: data, RecordedAt: time.Now().UTC(),
				Metadata: eventstore.Metadata{PartnerID: "p1", ActorEmail: "ann@p1.example"}}
		}
		return evs
	}
	for _, p := range []projections.Projector{db.CustomerList(), db.ActivityLog()} {
		b.Run(p.Name(), func(b *testing.B) {
			pos = 0 // each projector's positions follow on from its checkpoint
			for b.Loop() {
				b.StopTimer()
				evs := batch()
				b.StartTimer()
				if err := p.ApplyBatch(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
