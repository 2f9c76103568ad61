package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/relay"
)

// BenchmarkPublish measures the relay's throughput to the shared NATS: each
// iteration is one event appended to the in-memory store and acknowledged
// by JetStream.
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	s := newMemStore()
	customers := []string{"c1", "c2", "c3", "c4"}
	var reqs []eventstore.AppendRequest
	for i := range b.N {
		reqs = append(reqs, appendRequest("p1", customers[i%len(customers)], i))
	}
	if _, err := s.Append(ctx, reqs...); err != nil {
		b.Fatal(err)
	}
	nc, opts := sharedNATS(b)
	r, err := relay.New(s, s, nc, opts)
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.ResetTimer()
	go func() { defer close(done); _ = r.Run(runCtx) }()
	for r.Position() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
