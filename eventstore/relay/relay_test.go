package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/relay"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/partnerhub/customers/internal/natsembed"
	"github.com/partnerhub/customers/internal/testenv"
)

// store is what the relay needs from a backend.
type store interface {
	eventstore.Store
	eventstore.Checkpoints
}

func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connecting to NATS at %s (set CUSTOMERS_TEST_NATS_URL): %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// sharedNATS gives the test a unique stream and subject root on the shared
// server, deleted when the test ends.
func sharedNATS(t testing.TB) (*nats.Conn, relay.Options) {
	t.Helper()
	nc := connect(t, testenv.NATSURL())
	opts := relay.Options{
		Stream:      testenv.UniqueName("RELAY_"),
		SubjectRoot: testenv.UniqueName("relaytest_"),
		RetryMin:    20 * time.Millisecond,
		RetryMax:    200 * time.Millisecond,
	}
	t.Cleanup(func() {
		js, _ := jetstream.New(nc)
		_ = js.DeleteStream(context.Background(), opts.Stream)
	})
	return nc, opts
}

// appendEvents appends n events for each of customers, one append per event,
// so the log interleaves customers.
func appendEvents(t *testing.T, ctx context.Context, s eventstore.Store, partner string, customers []string, n int) {
	t.Helper()
	for i := range n {
		for _, c := range customers {
			if _, err := s.Append(ctx, appendRequest(partner, c, i)); err != nil {
				t.Fatalf("appending: %v", err)
			}
		}
	}
}

func appendRequest(partner, customer string, n int) eventstore.AppendRequest {
	return eventstore.AppendRequest{
		StreamID:        "customer-" + partner + "-" + customer,
		ExpectedVersion: eventstore.AnyVersion,
		Events: []eventstore.NewEvent{{
			ID: uuid.New(), Type: "order.created", Subject: customer,
			Data: []byte(fmt.Sprintf(`{"customerId":%q,"n":%d}`, customer, n)),
			Metadata: eventstore.Metadata{PartnerID: partner, ActorID: "u1", ActorEmail: "a@example.com",
				CorrelationID: "corr", CausationID: "cause"},
		}},
	}
}

type running struct {
	r    *relay.Relay
	stop func()
}

func start(t *testing.T, s store, nc *nats.Conn, opts relay.Options) running {
	t.Helper()
	r, err := relay.New(s, s, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	stop := sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop)
	return running{r: r, stop: stop}
}

func waitPosition(t *testing.T, r *relay.Relay, want int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for r.Position() < want {
		if time.Now().After(deadline) {
			t.Fatalf("relay at position %d after 20 s, want %d", r.Position(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamContents returns every message of the stream in stream order.
func streamContents(t *testing.T, nc *nats.Conn, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("looking up stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			t.Fatalf("reading message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// checkStream asserts the stream holds exactly the log, once, in order.
func checkStream(t *testing.T, nc *nats.Conn, opts relay.Options, s eventstore.Store) {
	t.Helper()
	log, err := s.ReadAll(context.Background(), eventstore.ReadRequest{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	msgs := streamContents(t, nc, opts.Stream)
	if len(msgs) != len(log) {
		t.Fatalf("stream holds %d messages, log has %d events", len(msgs), len(log))
	}
	for i, m := range msgs {
		e := log[i]
		var env relay.Envelope
		if err := json.Unmarshal(m.Data, &env); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		if env.Position != e.Position || env.ID != e.ID.String() {
			t.Fatalf("message %d is event %s at position %d, want %s at %d", i+1, env.ID, env.Position, e.ID, e.Position)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != e.ID.String() {
			t.Fatalf("message %d: Nats-Msg-Id = %q, want %s", i+1, got, e.ID)
		}
		if want := relay.Subject(opts.SubjectRoot, e.PartnerID, e.Type); m.Subject != want {
			t.Fatalf("message %d: subject %q, want %q", i+1, m.Subject, want)
		}
	}
}

// backends are the stores the end-to-end tests run on: the in-memory fake
// and the real embedded store.
func backends() map[string]func(t *testing.T) store {
	return map[string]func(t *testing.T) store{
		"mem": func(t *testing.T) store { return newMemStore() },
		"sqlite": func(t *testing.T) store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
}

func TestPublishesEveryEventOnceInLogOrder(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) { testPublishesEveryEventOnceInLogOrder(t, open(t)) })
	}
}

func testPublishesEveryEventOnceInLogOrder(t *testing.T, s store) {
	ctx := context.Background()
	nc, opts := sharedNATS(t)
	appendEvents(t, ctx, s, "p1", []string{"c1", "c2", "c3"}, 100)
	r := start(t, s, nc, opts)
	waitPosition(t, r.r, 300)
	appendEvents(t, ctx, s, "p2", []string{"c4"}, 50) // followed live
	waitPosition(t, r.r, 350)
	r.stop()
	checkStream(t, nc, opts, s)
	if cp, _ := s.LoadCheckpoint(ctx, "relay"); cp != 350 {
		t.Fatalf("checkpoint = %d, want 350", cp)
	}
}

func TestEnvelopeOnTheWire(t *testing.T) {
	ctx := context.Background()
	nc, opts := sharedNATS(t)
	s := newMemStore()
	id := uuid.New()
	data := `{"customerId":"c-1", "note": "<b> & spaces kept"}`
	if _, err := s.Append(ctx, eventstore.AppendRequest{StreamID: "customer-p-c-1", Events: []eventstore.NewEvent{{
		ID: id, Type: "customer.created", Subject: "c-1", Data: []byte(data),
		Metadata: eventstore.Metadata{PartnerID: "p", ActorID: "u-9", ActorEmail: "ann@example.com", CorrelationID: "co", CausationID: "ca"},
	}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, eventstore.AppendRequest{StreamID: "tags-p", Events: []eventstore.NewEvent{{
		ID: uuid.New(), Type: "tag.created", Data: []byte(`{}`), Metadata: eventstore.Metadata{PartnerID: "p"},
	}}}); err != nil {
		t.Fatal(err)
	}
	r := start(t, s, nc, opts)
	waitPosition(t, r.r, 2)
	msgs := streamContents(t, nc, opts.Stream)
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(msgs))
	}
	if want := opts.SubjectRoot + ".p.customer.created"; msgs[0].Subject != want {
		t.Fatalf("subject %q, want %q", msgs[0].Subject, want)
	}
	if ct := msgs[0].Header.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(msgs[0].Data, &got); err != nil {
		t.Fatal(err)
	}
	recorded := s.events[0].RecordedAt.Format("2006-01-02T15:04:05.000000Z")
	want := map[string]any{
		"specversion": "1.0", "id": id.String(), "source": "/customers/partners/p", "type": "customer.created",
		"subject": "c-1", "time": recorded, "datacontenttype": "application/json",
		"data":     map[string]any{"customerId": "c-1", "note": "<b> & spaces kept"},
		"position": 1.0, "streamid": "customer-p-c-1", "streamversion": 1.0, "partnerid": "p",
		"actor": "ann@example.com", "actorid": "u-9", "correlationid": "co", "causationid": "ca",
	}
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Fatalf("envelope\n got %s\nwant %s", g, w)
	}
	var second map[string]any
	_ = json.Unmarshal(msgs[1].Data, &second)
	for _, k := range []string{"subject", "actor", "actorid", "correlationid", "causationid"} {
		if v, ok := second[k]; ok {
			t.Errorf("event without %s carries %q = %v, want it omitted", k, k, v)
		}
	}
}

// A crash between publishing and saving the checkpoint makes the relay
// start from an older checkpoint. The duplicate window here is shorter than
// the outage, so only the relay's resume-from-stream-tail prevents
// duplicates.
func TestRepublishAfterCrashAddsNoDuplicate(t *testing.T) {
	ctx := context.Background()
	nc, opts := sharedNATS(t)
	opts.Duplicates = 100 * time.Millisecond
	s := newMemStore()
	appendEvents(t, ctx, s, "p1", []string{"c1", "c2"}, 10)
	r := start(t, s, nc, opts)
	waitPosition(t, r.r, 20)
	r.stop()
	if err := s.SaveCheckpoint(ctx, "relay", 3); err != nil { // the "crash"
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // outlive the duplicate window
	appendEvents(t, ctx, s, "p1", []string{"c1"}, 5)
	r = start(t, s, nc, opts)
	waitPosition(t, r.r, 25)
	r.stop()
	checkStream(t, nc, opts, s)
}

// The contract names on an embedded server that is stopped and started
// again on the same port and store while events keep coming.
func TestSurvivesNATSRestart(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) { testSurvivesNATSRestart(t, open(t)) })
	}
}

func testSurvivesNATSRestart(t *testing.T, s store) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Options{Listen: "127.0.0.1:-1", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	defer func() { srv.Shutdown() }()
	nc := connect(t, srv.ClientURL())
	opts := relay.Options{RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, AckTimeout: time.Second}
	r := start(t, s, nc, opts)
	appendEvents(t, ctx, s, "p1", []string{"c1", "c2"}, 100)
	waitPosition(t, r.r, 200)

	srv.Shutdown()
	appendEvents(t, ctx, s, "p1", []string{"c1", "c2"}, 100) // while NATS is down
	time.Sleep(200 * time.Millisecond)
	srv, err = natsembed.Start(natsembed.Options{Listen: addr, StoreDir: dir})
	if err != nil {
		t.Fatalf("restarting NATS on %s: %v", addr, err)
	}
	appendEvents(t, ctx, s, "p2", []string{"c3"}, 100)
	waitPosition(t, r.r, 500)
	r.stop()
	checkStream(t, nc, relay.Options{Stream: relay.DefaultStream, SubjectRoot: relay.DefaultSubjectRoot}, s)
}

func TestSubject(t *testing.T) {
	for _, c := range []struct{ partner, typ, want string }{
		{"0b6f", "order.created", "customers.0b6f.order.created"},
		{"a.b*c>", "tag.created", "customers.a_b_c_.tag.created"},
		{"", "user.created", "customers._.user.created"},
	} {
		if got := relay.Subject("customers", c.partner, c.typ); got != c.want {
			t.Errorf("Subject(%q, %q) = %q, want %q", c.partner, c.typ, got, c.want)
		}
	}
}

func TestPublicDataRewritesWhatIsPublished(t *testing.T) {
	ctx := context.Background()
	nc, opts := sharedNATS(t)
	opts.PublicData = func(eventType string, data []byte) []byte {
		if eventType == "user.created" {
			return []byte(`{"userId":"u-1"}`)
		}
		return data
	}
	s := newMemStore()
	for _, typ := range []string{"user.created", "tag.created"} {
		if _, err := s.Append(ctx, eventstore.AppendRequest{StreamID: "s-" + typ, Events: []eventstore.NewEvent{{
			ID: uuid.New(), Type: typ, Data: []byte(`{"userId":"u-1","tokenHash":"secret"}`), Metadata: eventstore.Metadata{PartnerID: "p"},
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	r := start(t, s, nc, opts)
	waitPosition(t, r.r, 2)
	msgs := streamContents(t, nc, opts.Stream)
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(msgs))
	}
	var user, tag struct{ Data map[string]any }
	_ = json.Unmarshal(msgs[0].Data, &user)
	_ = json.Unmarshal(msgs[1].Data, &tag)
	if _, ok := user.Data["tokenHash"]; ok || user.Data["userId"] != "u-1" {
		t.Errorf("user.created published as %v, want the rewritten data", user.Data)
	}
	if tag.Data["tokenHash"] != "secret" {
		t.Errorf("tag.created published as %v, want it unchanged", tag.Data)
	}
}

// saveCounter counts the relay's checkpoint saves.
type saveCounter struct {
	*memStore
	saves atomic.Int32
}

func (s *saveCounter) SaveCheckpoint(ctx context.Context, name string, position int64) error {
	s.saves.Add(1)
	return s.memStore.SaveCheckpoint(ctx, name, position)
}

// The position is saved at most once per CheckpointEvery while publishing,
// and once more when the relay stops, so the saved position ends current.
func TestCheckpointSavesAreSpaced(t *testing.T) {
	ctx := context.Background()
	nc, opts := sharedNATS(t)
	opts.CheckpointEvery = time.Hour
	s := &saveCounter{memStore: newMemStore()}
	r := start(t, s, nc, opts)
	for i := range 20 { // twenty batches, each published before the next
		appendEvents(t, ctx, s, "p1", []string{fmt.Sprintf("c%d", i)}, 1)
		waitPosition(t, r.r, int64(i+1))
	}
	if n := s.saves.Load(); n != 0 {
		t.Errorf("%d checkpoint saves while publishing within CheckpointEvery, want 0", n)
	}
	r.stop()
	if n := s.saves.Load(); n != 1 {
		t.Errorf("%d checkpoint saves after stopping, want 1", n)
	}
	if cp, _ := s.LoadCheckpoint(ctx, "relay"); cp != 20 {
		t.Errorf("checkpoint after stopping = %d, want 20", cp)
	}
}

// After a crash (no save on the way out), with a stream whose tail holds
// other writers' messages and none of the relay's, the relay starts from its
// checkpoint, a while behind, and publishes those events again: JetStream
// drops them as duplicates, and the relay gets past them at once rather
// than after a back-off each.
func TestRepublishedDuplicatesPassQuickly(t *testing.T) {
	ctx := context.Background()
	nc, opts := sharedNATS(t)
	opts.RetryMin, opts.RetryMax = time.Second, time.Second
	s := newMemStore()
	appendEvents(t, ctx, s, "p1", []string{"c1", "c2"}, 10)
	r := start(t, s, nc, opts)
	waitPosition(t, r.r, 20)
	r.stop()
	// More of another writer's messages than the relay looks back through.
	const others = 100
	publishOthers(t, nc, opts, others)
	if err := s.SaveCheckpoint(ctx, "relay", 8); err != nil { // the crash's older checkpoint
		t.Fatal(err)
	}
	appendEvents(t, ctx, s, "p1", []string{"c3"}, 1)
	began := time.Now()
	r = start(t, s, nc, opts)
	waitPosition(t, r.r, 21)
	r.stop()
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("relay took %v to pass 12 republished events (a back-off after each?)", d.Round(time.Millisecond))
	}
	msgs := streamContents(t, nc, opts.Stream)
	if len(msgs) != 20+others+1 { // 20 events, the other writer's messages, the new event
		t.Fatalf("stream holds %d messages, want %d (duplicates dropped)", len(msgs), 20+others+1)
	}
	var env relay.Envelope
	if err := json.Unmarshal(msgs[len(msgs)-1].Data, &env); err != nil || env.Position != 21 {
		t.Fatalf("last message %s (%v), want the event at position 21", msgs[len(msgs)-1].Data, err)
	}
}

// After a crash, with a few of another writer's messages after the relay's
// last, one of them deleted and the last a copy of an envelope (another
// writer forwarding GET /v1/events, say), the relay finds its own last
// message behind them and publishes nothing a second time, and nothing
// is skipped.
func TestRestartPassesOtherWritersMessages(t *testing.T) {
	ctx := context.Background()
	nc, opts := sharedNATS(t)
	s := newMemStore()
	appendEvents(t, ctx, s, "p1", []string{"c1", "c2"}, 10)
	r := start(t, s, nc, opts)
	waitPosition(t, r.r, 20)
	r.stop()
	publishOthers(t, nc, opts, 3)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, opts.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, 23); err != nil {
		t.Fatal(err)
	}
	copied := fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"type":"customer.created","position":999}`, uuid.NewString())
	if _, err := js.Publish(ctx, opts.SubjectRoot+".other.copy", copied); err != nil { // the stream's last
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "relay", 8); err != nil { // the crash's older checkpoint
		t.Fatal(err)
	}
	// Every publish reaches a plain subscriber, duplicates too.
	var again atomic.Int32
	sub, err := nc.Subscribe(opts.SubjectRoot+".>", func(m *nats.Msg) {
		var env relay.Envelope
		if json.Unmarshal(m.Data, &env) == nil && env.Position > 0 && env.Position <= 20 {
			again.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	appendEvents(t, ctx, s, "p1", []string{"c3"}, 1)
	r = start(t, s, nc, opts)
	waitPosition(t, r.r, 21)
	r.stop()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := again.Load(); n != 0 {
		t.Errorf("relay published events at positions 1-20 again %d times, want none", n)
	}
	msgs := streamContents(t, nc, opts.Stream)
	if len(msgs) != 24 { // 20 events, two of the other writer's messages, its copy, the new event
		t.Fatalf("stream holds %d messages, want 24", len(msgs))
	}
	var env relay.Envelope
	if err := json.Unmarshal(msgs[23].Data, &env); err != nil || env.Position != 21 {
		t.Fatalf("last message %s (%v), want the event at position 21", msgs[23].Data, err)
	}
}

// publishOthers publishes n messages of another writer into the relay's
// stream.
func publishOthers(t *testing.T, nc *nats.Conn, opts relay.Options, n int) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := js.Publish(context.Background(), opts.SubjectRoot+".other.note", fmt.Appendf(nil, "not an envelope %d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// While publishing, the position is saved once CheckpointEvery has passed.
func TestCheckpointSavedWhilePublishing(t *testing.T) {
	ctx := context.Background()
	nc, opts := sharedNATS(t)
	opts.CheckpointEvery = 50 * time.Millisecond
	s := newMemStore()
	r := start(t, s, nc, opts)
	defer r.stop()
	appendEvents(t, ctx, s, "p1", []string{"c1"}, 1)
	waitPosition(t, r.r, 1)
	time.Sleep(100 * time.Millisecond)
	appendEvents(t, ctx, s, "p1", []string{"c2"}, 1)
	waitPosition(t, r.r, 2)
	deadline := time.Now().Add(5 * time.Second)
	for {
		cp, _ := s.LoadCheckpoint(ctx, "relay")
		if cp == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %d while running, want 2", cp)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
