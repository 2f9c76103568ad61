package pgread_test

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/relay"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/readtest"
)

// TestProjectorOverJetStream publishes the scenario as the relay would,
// with a poison message and a duplicate in between, stops the projector
// part-way, restarts it, and expects the result of a fresh rebuild.
func TestProjectorOverJetStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	nc, js, root := jetStreamFor(ctx, t)
	stream := root
	store := readtest.Store(t)
	readtest.Scenario(t, store)
	events := readtest.All(t, store)
	publish := func(ev eventstore.Event, msgID string) {
		t.Helper()
		publishEvent(ctx, t, js, root, ev, msgID)
	}
	for _, ev := range events[:8] {
		publish(ev, ev.ID.String())
	}
	if _, err := js.Publish(ctx, root+".p1.customer.created", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	poison, err := nc.SubscribeSync(root + "_poison")
	if err != nil {
		t.Fatal(err)
	}

	live := open(t).Customers
	cfg := projections.Config{Stream: stream, Durable: "customer_list", FilterSubject: root + ".>", BatchSize: 3,
		PoisonSubject: root + "_poison"}
	run := func(until int64) {
		t.Helper()
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- projections.Run(rctx, nc, cfg, live, domain.NewRegistry()) }()
		waitCheckpoint(ctx, t, live, until, 20*time.Second)
		stop()
		if err := <-done; err != nil {
			t.Fatalf("projector run: %v", err)
		}
	}
	run(events[7].Position)
	if _, err := poison.NextMsg(5 * time.Second); err != nil {
		t.Errorf("no message on the poison subject: %v", err)
	}
	// The rest, with an old event redelivered under a new message id.
	publish(events[3], "again-"+events[3].ID.String())
	for _, ev := range events[8:] {
		publish(ev, ev.ID.String())
	}
	run(events[len(events)-1].Position)
	equalsRebuild(ctx, t, live, store)
}

// equalsRebuild compares the projected list with a fresh rebuild from the
// store: both partners' customers and tags.
func equalsRebuild(ctx context.Context, t *testing.T, live projections.CustomerList, store eventstore.Store) {
	t.Helper()
	fresh := open(t).Customers
	if err := fresh.Rebuild(ctx, store, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p1", "p2"} {
		a, _ := live.SearchCustomers(ctx, p, projections.SearchParams{Limit: 500})
		b, _ := fresh.SearchCustomers(ctx, p, projections.SearchParams{Limit: 500})
		if len(a.Items) == 0 || !reflect.DeepEqual(a, b) {
			t.Errorf("partner %s: projected %+v\nrebuilt %+v", p, a.Items, b.Items)
		}
		ta, _ := live.ListTags(ctx, p)
		tb, _ := fresh.ListTags(ctx, p)
		if !reflect.DeepEqual(ta, tb) {
			t.Errorf("partner %s tags: projected %+v, rebuilt %+v", p, ta, tb)
		}
	}
}

// jetStreamFor connects to NATS and creates a stream of its own for the
// test, named root, over the subjects root.>.
func jetStreamFor(ctx context.Context, t *testing.T) (*nats.Conn, jetstream.JetStream, string) {
	t.Helper()
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("connecting to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	root := testenv.UniqueName("T_")
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: root, Subjects: []string{root + ".>"}}); err != nil {
		t.Fatalf("creating stream: %v", err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), root) })
	return nc, js, root
}

// publishEvent publishes ev as the relay would.
func publishEvent(ctx context.Context, t *testing.T, js jetstream.JetStream, root string, ev eventstore.Event, msgID string) {
	t.Helper()
	b, _ := json.Marshal(relay.NewEnvelope(ev))
	if _, err := js.Publish(ctx, relay.Subject(root, ev.PartnerID, ev.Type), b, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatalf("publishing: %v", err)
	}
}

// holding is a projector that applies its first batch and holds the next
// one until its context ends, as a projector stopped in the middle of a
// batch does.
type holding struct {
	projections.Projector
	mu      sync.Mutex
	batches int
	first   int64         // the last position of the first batch
	held    chan struct{} // closed when a batch is held
}

func (h *holding) ApplyBatch(ctx context.Context, events []eventstore.Event) error {
	h.mu.Lock()
	h.batches++
	n := h.batches
	if n == 1 {
		h.first = events[len(events)-1].Position
	}
	h.mu.Unlock()
	switch {
	case n == 2:
		close(h.held)
		<-ctx.Done()
		return ctx.Err()
	case n > 2:
		return ctx.Err() // retries of the held batch
	}
	return h.Projector.ApplyBatch(ctx, events)
}

// TestProjectorStoppedHoldingMessages stops a projector while it holds
// messages: a batch being applied and those that streamed in meanwhile,
// more than two batches' worth. They come again only after their ack wait
// (here far beyond the test's time), behind later ones; the next run must
// go on at once (the consumer lets four batches' worth go unacknowledged),
// complete its batches from the event store and end equal to a fresh
// rebuild.
func TestProjectorStoppedHoldingMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	nc, js, store, events, live, cfg := projectorWithStore(ctx, t)
	cfg.AckWait = 10 * time.Minute
	for _, ev := range events {
		publishEvent(ctx, t, js, cfg.Stream, ev, ev.ID.String())
	}

	h := &holding{Projector: live, held: make(chan struct{})}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- projections.Run(rctx, nc, cfg, h, domain.NewRegistry()) }()
	select {
	case <-h.held:
	case <-ctx.Done():
		t.Fatal("the second batch never came")
	}
	// The first batch may have been one message or two, and the client
	// holds one more or none accordingly: more than 2 × BatchSize either
	// way.
	waitAckPending(ctx, t, js, cfg.Stream, cfg.Durable, 2*cfg.BatchSize+1)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("first run: %v", err)
	}
	if cp, _ := live.Checkpoint(ctx); cp != h.first {
		t.Fatalf("first run ended at %d, want %d (its first batch)", cp, h.first)
	}

	rctx, stop = context.WithCancel(ctx)
	defer stop()
	go func() { done <- projections.Run(rctx, nc, cfg, live, domain.NewRegistry()) }()
	waitCheckpoint(ctx, t, live, events[len(events)-1].Position, 10*time.Second)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("second run: %v", err)
	}
	equalsRebuild(ctx, t, live, store)
}

// TestProjectorConsumerDeleted deletes a running projector's durable
// consumer: the projector must create it again and go on.
func TestProjectorConsumerDeleted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	nc, js, store, events, live, cfg := projectorWithStore(ctx, t)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- projections.Run(rctx, nc, cfg, live, domain.NewRegistry()) }()
	half := len(events) / 2
	for _, ev := range events[:half] {
		publishEvent(ctx, t, js, cfg.Stream, ev, ev.ID.String())
	}
	waitCheckpoint(ctx, t, live, events[half-1].Position, 10*time.Second)
	if err := js.DeleteConsumer(ctx, cfg.Stream, cfg.Durable); err != nil {
		t.Fatalf("deleting the consumer: %v", err)
	}
	for _, ev := range events[half:] {
		publishEvent(ctx, t, js, cfg.Stream, ev, ev.ID.String())
	}
	waitCheckpoint(ctx, t, live, events[len(events)-1].Position, 20*time.Second)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("projector run: %v", err)
	}
	equalsRebuild(ctx, t, live, store)
}

// projectorWithStore sets up a projector test: a stream of its own (named
// as its subject root), a store holding the scenario and its events, and a
// customer list that completes its batches from that store, with the
// projector's config (batches of 2).
func projectorWithStore(ctx context.Context, t *testing.T) (*nats.Conn, jetstream.JetStream, eventstore.Store, []eventstore.Event, projections.CustomerList, projections.Config) {
	t.Helper()
	nc, js, root := jetStreamFor(ctx, t)
	_, store, db := storeBacked(t)
	readtest.Scenario(t, store)
	cfg := projections.Config{Stream: root, Durable: "customer_list", FilterSubject: root + ".>", BatchSize: 2,
		PoisonSubject: root + "_poison"}
	return nc, js, store, readtest.All(t, store), db.CustomerList(), cfg
}

// waitCheckpoint waits until p's checkpoint reaches pos, failing the test
// after within.
func waitCheckpoint(ctx context.Context, t *testing.T, p projections.Projector, pos int64, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; {
		cp, err := p.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp >= pos {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projector stuck at %d of %d after %s", cp, pos, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAckPending waits until a consumer has at least n messages delivered
// and not acknowledged.
func waitAckPending(ctx context.Context, t *testing.T, js jetstream.JetStream, stream, durable string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := js.Consumer(ctx, stream, durable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s has %d messages unacknowledged, want %d", durable, info.NumAckPending, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
