package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/postgres"
	"github.com/partnerhub/customers/internal/testenv"
)

func benchEvent(i int64) eventstore.NewEvent {
	return eventstore.NewEvent{
		ID:       uuid.New(),
		Type:     "customer.created",
		Subject:  fmt.Sprintf("cust-%d", i),
		Data:     fmt.Appendf(nil, `{"name":"Customer %d","email":"c%d@example.com","tags":["a","b"]}`, i, i),
		Metadata: eventstore.Metadata{PartnerID: "partner-1", ActorID: "user-1", CorrelationID: "corr"},
	}
}

// BenchmarkAppend appends single events to distinct new streams from 1, 4
// and 16 concurrent writers, as commands creating customers do.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st := open(b, testenv.PostgresSchema(b), postgres.Options{})
			ctx := context.Background()
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						_, err := st.Append(ctx, eventstore.AppendRequest{
							StreamID: fmt.Sprintf("customer-%d", i), ExpectedVersion: eventstore.NoStream,
							Events: []eventstore.NewEvent{benchEvent(i)},
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkImport appends 100,000 events over 20,000 new streams in one
// Append per iteration. Run it with a small -benchtime (e.g. 3x).
func BenchmarkImport(b *testing.B) {
	const streams, per = 20000, 5
	st := open(b, testenv.PostgresSchema(b), postgres.Options{})
	var total time.Duration
	for n := range b.N {
		b.StopTimer()
		reqs := make([]eventstore.AppendRequest, streams)
		for i := range reqs {
			evs := make([]eventstore.NewEvent, per)
			for j := range evs {
				evs[j] = benchEvent(int64(i*per + j))
			}
			reqs[i] = eventstore.AppendRequest{StreamID: fmt.Sprintf("import-%d-customer-%d", n, i), ExpectedVersion: eventstore.NoStream, Events: evs}
		}
		b.StartTimer()
		start := time.Now()
		if _, err := st.Append(context.Background(), reqs...); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(b.N*streams*per)/total.Seconds(), "events/s")
}
