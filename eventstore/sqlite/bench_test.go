package sqlite_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/eventstore"
)

// BenchmarkAppendBatch100k is the import case: one Append of 100,000 events
// over 1,000 new streams.
func BenchmarkAppendBatch100k(b *testing.B) {
	const streams, perStream = 1000, 100
	s := newStore(b)
	ctx := context.Background()
	data := []byte(`{"name":"Acme GmbH","email":"ops@acme.example","phone":"+49 30 1234567"}`)
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		reqs := make([]eventstore.AppendRequest, streams)
		for j := range reqs {
			evs := make([]eventstore.NewEvent, perStream)
			for k := range evs {
				evs[k] = eventstore.NewEvent{ID: uuid.New(), Type: "customer.updated", Subject: "c", Data: data,
					Metadata: eventstore.Metadata{PartnerID: "p", ActorID: "import"}}
			}
			reqs[j] = eventstore.AppendRequest{StreamID: fmt.Sprintf("customer-%d-%d", i, j), ExpectedVersion: eventstore.NoStream, Events: evs}
		}
		b.StartTimer()
		start := time.Now()
		if _, err := s.Append(ctx, reqs...); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(streams*perStream*b.N)/total.Seconds(), "events/s")
}

// BenchmarkAppendSingle appends one event per call from 1, 4 and 16
// goroutines, each to its own streams. Every call is its own commit (one
// fsync with synchronous=FULL), and commits are serialized.
func BenchmarkAppendSingle(b *testing.B) {
	for _, writers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := newStore(b)
			ctx := context.Background()
			data := []byte(`{"name":"Acme GmbH"}`)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := (b.N + writers - 1) / writers
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						_, err := s.Append(ctx, eventstore.AppendRequest{
							StreamID: fmt.Sprintf("w%d-s%d", w, i%50), ExpectedVersion: eventstore.AnyVersion,
							Events: []eventstore.NewEvent{{ID: uuid.New(), Type: "customer.updated", Data: data, Metadata: eventstore.Metadata{PartnerID: "p"}}},
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*writers)/time.Since(start).Seconds(), "events/s")
		})
	}
}
