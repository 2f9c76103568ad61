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
	reg := domain.NewRegistry()
	for _, model := range []struct {
		name string
		of   func(*pgread.DB) projections.Projector
	}{
		{projections.CustomerListName, func(db *pgread.DB) projections.Projector { return db.CustomerList() }},
		{projections.ActivityLogName, func(db *pgread.DB) projections.Projector { return db.ActivityLog() }},
	} {
		b.Run(model.name, func(b *testing.B) {
			// Fresh read models for every run (-count runs a sub-benchmark
			// again), so that positions follow on from the checkpoint. A
			// store, as customerd gives one, for its asynchronous commits;
			// it stays empty: with no gaps, nothing is read from it.
			db, err := pgread.Open(ctx, testenv.PostgresSchema(b), pgread.Options{Store: readtest.Store(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			p := model.of(db)
			var pos int64
			for b.Loop() {
				b.StopTimer()
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
				b.StartTimer()
				if err := p.ApplyBatch(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			if cp, err := p.Checkpoint(ctx); err != nil || cp != pos {
				b.Fatalf("checkpoint %d, %v after %d events", cp, err, pos)
			}
		})
	}
}
