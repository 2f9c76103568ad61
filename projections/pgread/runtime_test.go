package pgread_test

import (
	"context"
	"encoding/json"
	"reflect"
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
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatalf("connecting to NATS: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	root := testenv.UniqueName("T_")
	stream := root
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{root + ".>"}}); err != nil {
		t.Fatalf("creating stream: %v", err)
	}
	defer js.DeleteStream(context.Background(), stream)
	store := readtest.Store(t)
	readtest.Scenario(t, store)
	events := readtest.All(t, store)
	publish := func(ev eventstore.Event, msgID string) {
		b, _ := json.Marshal(relay.NewEnvelope(ev))
		if _, err := js.Publish(ctx, relay.Subject(root, ev.PartnerID, ev.Type), b, jetstream.WithMsgID(msgID)); err != nil {
			t.Fatalf("publishing: %v", err)
		}
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
		MaxWait: 50 * time.Millisecond, PoisonSubject: root + "_poison"}
	run := func(until int64) {
		t.Helper()
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- projections.Run(rctx, nc, cfg, live, domain.NewRegistry()) }()
		for {
			cp, err := live.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cp >= until {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("projector stuck at %d, want %d", cp, until)
			case <-time.After(20 * time.Millisecond):
			}
		}
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
