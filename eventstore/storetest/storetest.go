// Package storetest is the conformance suite every eventstore backend must
// pass: the behaviour callers rely on, checked against the real backend.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/eventstore"
)

// Options tells the suite how to reach a backend's test hooks.
type Options struct {
	// NewStoreWithHook opens a fresh, empty store that calls beforeCommit
	// inside every append transaction after its events are written and
	// before it commits. When beforeCommit returns an error the append must
	// roll back and return an error. The gap-safety test uses it to hold
	// commits open and to abort some of them at random; it is required.
	NewStoreWithHook func(t *testing.T, beforeCommit func(ctx context.Context) error) eventstore.Store
}

// Run runs the suite. newStore must return a fresh, empty store that also
// implements eventstore.Checkpoints; the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store, opts Options) {
	s := suite{newStore: newStore, opts: opts}
	t.Run("ExpectedVersion", s.expectedVersion)
	t.Run("AtomicMultiRequest", s.atomicMultiRequest)
	t.Run("Claims", s.claims)
	t.Run("Load", s.load)
	t.Run("ReadAll", s.readAll)
	t.Run("MetadataRoundTrip", s.metadataRoundTrip)
	t.Run("HashChain", s.hashChain)
	t.Run("Idempotent", s.idempotent)
	t.Run("ConcurrentConflictingAppenders", s.concurrentConflicts)
	t.Run("ConcurrentClaims", s.concurrentClaims)
	t.Run("GapSafety", s.gapSafety)
	t.Run("Unicode", s.unicode)
	t.Run("LargePayload", s.largePayload)
	t.Run("LargeBatch", s.largeBatch)
	t.Run("Subscribe", s.subscribe)
	t.Run("Head", s.head)
	t.Run("Checkpoints", s.checkpoints)
	t.Run("Closed", s.closed)
}

type suite struct {
	newStore func(t *testing.T) eventstore.Store
	opts     Options
}

func (s suite) open(t *testing.T) eventstore.Store {
	t.Helper()
	st := s.newStore(t)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newEvent(typ string) eventstore.NewEvent {
	id := uuid.New()
	return eventstore.NewEvent{
		ID:       id,
		Type:     typ,
		Subject:  "subject-" + id.String()[:8],
		Data:     []byte(`{"n": "` + id.String() + `"}`),
		Metadata: eventstore.Metadata{PartnerID: "partner-1", ActorID: "actor-1"},
	}
}

func newEvents(n int, typ string) []eventstore.NewEvent {
	out := make([]eventstore.NewEvent, n)
	for i := range out {
		out[i] = newEvent(typ)
	}
	return out
}

func appendOK(t *testing.T, st eventstore.Store, reqs ...eventstore.AppendRequest) []eventstore.AppendResult {
	t.Helper()
	res, err := st.Append(ctxFor(t), reqs...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(res) != len(reqs) {
		t.Fatalf("Append returned %d results for %d requests", len(res), len(reqs))
	}
	return res
}

func req(stream string, expected int64, events ...eventstore.NewEvent) eventstore.AppendRequest {
	return eventstore.AppendRequest{StreamID: stream, ExpectedVersion: expected, Events: events}
}

func load(t *testing.T, st eventstore.Store, stream string, from int64) []eventstore.Event {
	t.Helper()
	evs, err := st.Load(ctxFor(t), stream, from)
	if err != nil {
		t.Fatalf("Load(%q, %d): %v", stream, from, err)
	}
	return evs
}

func readAll(t *testing.T, st eventstore.Store, r eventstore.ReadRequest) []eventstore.Event {
	t.Helper()
	evs, err := st.ReadAll(ctxFor(t), r)
	if err != nil {
		t.Fatalf("ReadAll(%+v): %v", r, err)
	}
	return evs
}

// readEverything pages through the whole log.
func readEverything(t *testing.T, st eventstore.Store) []eventstore.Event {
	t.Helper()
	var all []eventstore.Event
	after := int64(0)
	for {
		evs := readAll(t, st, eventstore.ReadRequest{After: after, Limit: 1000})
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Position
	}
}

func head(t *testing.T, st eventstore.Store) int64 {
	t.Helper()
	h, err := st.Head(ctxFor(t))
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

func versions(evs []eventstore.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.StreamVersion
	}
	return out
}

func wantConflict(t *testing.T, err error, stream string, expected, actual int64) {
	t.Helper()
	var ce *eventstore.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v, want *ConflictError", err)
	}
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Errorf("errors.Is(%v, ErrConflict) is false", err)
	}
	if ce.StreamID != stream || ce.Expected != expected || ce.Actual != actual {
		t.Errorf("ConflictError = %+v, want stream %q expected %d actual %d", *ce, stream, expected, actual)
	}
}

func (s suite) expectedVersion(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)

	res := appendOK(t, st, req("any", eventstore.AnyVersion, newEvent("a")))
	if res[0].Version != 1 || res[0].StreamID != "any" {
		t.Errorf("AnyVersion on a new stream: result %+v, want version 1", res[0])
	}
	res = appendOK(t, st, req("any", eventstore.AnyVersion, newEvents(2, "a")...))
	if res[0].Version != 3 {
		t.Errorf("AnyVersion on a stream at 1 with 2 events: version %d, want 3", res[0].Version)
	}
	if res[0].LastPosition <= res[0].FirstPosition {
		t.Errorf("two events: FirstPosition %d, LastPosition %d", res[0].FirstPosition, res[0].LastPosition)
	}

	res = appendOK(t, st, req("new", eventstore.NoStream, newEvent("a")))
	if res[0].Version != 1 {
		t.Errorf("NoStream on a new stream: version %d, want 1", res[0].Version)
	}

	before := readEverything(t, st)
	_, err := st.Append(ctx, req("any", eventstore.NoStream, newEvent("a")))
	wantConflict(t, err, "any", eventstore.NoStream, 3)

	res = appendOK(t, st, req("any", 3, newEvent("a")))
	if res[0].Version != 4 {
		t.Errorf("exact version 3: version %d, want 4", res[0].Version)
	}
	before = readEverything(t, st)

	_, err = st.Append(ctx, req("any", 3, newEvent("a"), newEvent("a")))
	wantConflict(t, err, "any", 3, 4)
	_, err = st.Append(ctx, req("any", 7, newEvent("a")))
	wantConflict(t, err, "any", 7, 4)
	_, err = st.Append(ctx, req("missing", 2, newEvent("a")))
	wantConflict(t, err, "missing", 2, 0)

	// No partial write: the failed appends left the log exactly as it was.
	if after := readEverything(t, st); len(after) != len(before) {
		t.Errorf("log has %d events after failed appends, want %d", len(after), len(before))
	}
	if got := versions(load(t, st, "any", 0)); !slices.Equal(got, []int64{1, 2, 3, 4}) {
		t.Errorf("stream versions %v, want [1 2 3 4]", got)
	}
	if evs := load(t, st, "missing", 0); len(evs) != 0 {
		t.Errorf("a conflicting append created stream %q with %d events", "missing", len(evs))
	}
}

func (s suite) atomicMultiRequest(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	appendOK(t, st, req("b", eventstore.NoStream, newEvent("a")))
	h := head(t, st)

	_, err := st.Append(ctx,
		req("a", eventstore.NoStream, newEvent("a"), newEvent("a")),
		req("c", eventstore.AnyVersion, newEvent("a")),
		req("b", eventstore.NoStream, newEvent("a")), // wrong: b exists
	)
	wantConflict(t, err, "b", eventstore.NoStream, 1)
	for _, stream := range []string{"a", "c"} {
		if evs := load(t, st, stream, 0); len(evs) != 0 {
			t.Errorf("failed multi-request append stored %d events in stream %q", len(evs), stream)
		}
	}
	if got := head(t, st); got != h {
		t.Errorf("Head moved from %d to %d after a failed append", h, got)
	}

	res := appendOK(t, st,
		req("a", eventstore.NoStream, newEvent("a"), newEvent("a")),
		req("b", 1, newEvent("a")),
		req("a", 2, newEvent("a")), // the same stream twice in one append
	)
	want := []struct {
		stream  string
		version int64
	}{{"a", 2}, {"b", 2}, {"a", 3}}
	for i, w := range want {
		if res[i].StreamID != w.stream || res[i].Version != w.version {
			t.Errorf("result %d = %+v, want stream %q version %d", i, res[i], w.stream, w.version)
		}
		if res[i].FirstPosition > res[i].LastPosition {
			t.Errorf("result %d: FirstPosition %d > LastPosition %d", i, res[i].FirstPosition, res[i].LastPosition)
		}
		if i > 0 && res[i].FirstPosition <= res[i-1].LastPosition {
			t.Errorf("result %d starts at %d, not after result %d's last position %d", i, res[i].FirstPosition, i-1, res[i-1].LastPosition)
		}
	}
	if got := versions(load(t, st, "a", 0)); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("stream a versions %v, want [1 2 3]", got)
	}
}

func (s suite) claims(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	r := req("owner", eventstore.NoStream, newEvent("a"))
	r.Claims = []string{"domain/p1/example.com", "email/p1/ä@example.com"}
	appendOK(t, st, r)
	h := head(t, st)

	r = req("thief", eventstore.NoStream, newEvent("a"))
	r.Claims = []string{"domain/p1/other.com", "domain/p1/example.com"}
	_, err := st.Append(ctx, r)
	var ce *eventstore.ClaimError
	if !errors.As(err, &ce) || !errors.Is(err, eventstore.ErrClaimTaken) {
		t.Fatalf("second claim of a key: got %v, want *ClaimError", err)
	}
	if ce.Claim != "domain/p1/example.com" {
		t.Errorf("ClaimError.Claim = %q, want the taken key", ce.Claim)
	}
	if evs := load(t, st, "thief", 0); len(evs) != 0 {
		t.Errorf("failed claim stored %d events", len(evs))
	}
	if got := head(t, st); got != h {
		t.Errorf("Head moved from %d to %d after a failed claim", h, got)
	}

	// The failed append did not take its other claim either, and a claim in
	// a later request of one append fails the earlier requests too.
	r1 := req("first", eventstore.NoStream, newEvent("a"))
	r1.Claims = []string{"domain/p1/other.com"}
	r2 := req("second", eventstore.NoStream, newEvent("a"))
	r2.Claims = []string{"email/p1/ä@example.com"}
	_, err = st.Append(ctx, r1, r2)
	if !errors.As(err, &ce) || ce.Claim != "email/p1/ä@example.com" {
		t.Fatalf("claim in second request: got %v, want *ClaimError for the email", err)
	}
	if evs := load(t, st, "first", 0); len(evs) != 0 {
		t.Errorf("first request stored %d events though the second failed its claim", len(evs))
	}
	appendOK(t, st, r1) // other.com is still free

	// A wrong expected version is reported before a taken claim.
	// Its own claim, then another's.
	r = req("owner", eventstore.NoStream, newEvent("a"))
	r.Claims = []string{"domain/p1/example.com"}
	_, err = st.Append(ctx, r)
	wantConflict(t, err, "owner", eventstore.NoStream, 1)
	r = req("owner", eventstore.NoStream, newEvent("a"))
	r.Claims = []string{"email/p1/ä@example.com", "domain/p1/other.com"} // other.com is first's now
	_, err = st.Append(ctx, r)
	wantConflict(t, err, "owner", eventstore.NoStream, 1)
}

func (s suite) load(t *testing.T) {
	st := s.open(t)
	appendOK(t, st, req("s", eventstore.NoStream, newEvents(3, "a")...))
	appendOK(t, st, req("other", eventstore.NoStream, newEvents(2, "a")...))
	appendOK(t, st, req("s", 3, newEvents(2, "a")...))

	for _, tc := range []struct {
		from int64
		want []int64
	}{
		{0, []int64{1, 2, 3, 4, 5}},
		{1, []int64{1, 2, 3, 4, 5}},
		{3, []int64{3, 4, 5}},
		{5, []int64{5}},
		{6, []int64{}},
	} {
		evs := load(t, st, "s", tc.from)
		if got := versions(evs); !slices.Equal(got, tc.want) {
			t.Errorf("Load from %d: versions %v, want %v", tc.from, got, tc.want)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Position <= evs[i-1].Position {
				t.Errorf("Load: positions %d then %d, want increasing", evs[i-1].Position, evs[i].Position)
			}
		}
		for _, e := range evs {
			if e.StreamID != "s" {
				t.Errorf("Load(s) returned an event of stream %q", e.StreamID)
			}
		}
	}
	if evs := load(t, st, "nope", 0); len(evs) != 0 {
		t.Errorf("Load of a missing stream returned %d events", len(evs))
	}
}

func (s suite) readAll(t *testing.T) {
	st := s.open(t)
	if evs := readAll(t, st, eventstore.ReadRequest{}); len(evs) != 0 {
		t.Fatalf("empty store: ReadAll returned %d events", len(evs))
	}
	var ids []uuid.UUID
	for i := range 10 {
		e := newEvent([]string{"customer.created", "customer.updated", "user.invited"}[i%3])
		e.PartnerID = []string{"p1", "p2"}[i%2]
		ids = append(ids, e.ID)
		appendOK(t, st, req(fmt.Sprintf("s%d", i%4), eventstore.AnyVersion, e))
	}
	all := readAll(t, st, eventstore.ReadRequest{Limit: 100})
	if len(all) != 10 {
		t.Fatalf("ReadAll returned %d events, want 10", len(all))
	}
	for i, e := range all {
		if e.ID != ids[i] {
			t.Errorf("event %d is %s, want append order (%s)", i, e.ID, ids[i])
		}
		if e.Position < 1 || (i > 0 && e.Position <= all[i-1].Position) {
			t.Errorf("event %d at position %d after %d: want strictly increasing positions >= 1", i, e.Position, all[max(i-1, 0)].Position)
		}
	}

	page := readAll(t, st, eventstore.ReadRequest{After: all[2].Position, Limit: 3})
	if len(page) != 3 || page[0].ID != all[3].ID || page[2].ID != all[5].ID {
		t.Errorf("After %d Limit 3: got %d events starting %v, want events 4-6", all[2].Position, len(page), page)
	}
	if evs := readAll(t, st, eventstore.ReadRequest{After: all[9].Position}); len(evs) != 0 {
		t.Errorf("ReadAll after the last position returned %d events", len(evs))
	}
	if evs := readAll(t, st, eventstore.ReadRequest{}); len(evs) != 10 {
		t.Errorf("ReadAll with Limit 0 (backend default) returned %d events, want 10", len(evs))
	}

	filter := func(keep func(eventstore.Event) bool) []uuid.UUID {
		var out []uuid.UUID
		for _, e := range all {
			if keep(e) {
				out = append(out, e.ID)
			}
		}
		return out
	}
	idsOf := func(evs []eventstore.Event) []uuid.UUID {
		out := []uuid.UUID{}
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		req  eventstore.ReadRequest
		keep func(eventstore.Event) bool
	}{
		{"partner", eventstore.ReadRequest{PartnerID: "p2"}, func(e eventstore.Event) bool { return e.PartnerID == "p2" }},
		{"types", eventstore.ReadRequest{Types: []string{"customer.created", "user.invited"}},
			func(e eventstore.Event) bool { return e.Type != "customer.updated" }},
		{"partner and type", eventstore.ReadRequest{PartnerID: "p1", Types: []string{"customer.created"}},
			func(e eventstore.Event) bool { return e.PartnerID == "p1" && e.Type == "customer.created" }},
		{"partner after", eventstore.ReadRequest{PartnerID: "p1", After: all[4].Position},
			func(e eventstore.Event) bool { return e.PartnerID == "p1" && e.Position > all[4].Position }},
		{"unknown partner", eventstore.ReadRequest{PartnerID: "p3"}, func(eventstore.Event) bool { return false }},
	} {
		want := filter(tc.keep)
		if want == nil {
			want = []uuid.UUID{}
		}
		if got := idsOf(readAll(t, st, tc.req)); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, want)
		}
	}
	r := eventstore.ReadRequest{PartnerID: "p1", Limit: 2}
	if got := idsOf(readAll(t, st, r)); !slices.Equal(got, filter(func(e eventstore.Event) bool { return e.PartnerID == "p1" })[:2]) {
		t.Errorf("partner with limit 2: got %v", got)
	}
}

func (s suite) metadataRoundTrip(t *testing.T) {
	st := s.open(t)
	e := eventstore.NewEvent{
		ID:      uuid.New(),
		Type:    "customer.created",
		Subject: "cust-42",
		// Not canonical JSON on purpose: the bytes must come back unchanged.
		Data: []byte("{\"b\": 1,  \"a\":[1.50, 2e3],\n\"z\":null }"),
		Metadata: eventstore.Metadata{
			PartnerID:     "partner-7",
			ActorID:       "user-9",
			ActorEmail:    "ops@example.com",
			CorrelationID: "corr-1",
			CausationID:   "cause-2",
		},
	}
	before := time.Now().Add(-time.Second)
	res := appendOK(t, st, req("meta", eventstore.NoStream, e))
	after := time.Now().Add(time.Second)

	check := func(from string, got eventstore.Event) {
		t.Helper()
		if got.ID != e.ID || got.Type != e.Type || got.Subject != e.Subject || got.Metadata != e.Metadata {
			t.Errorf("%s: got %+v, want fields of %+v", from, got, e)
		}
		if !bytes.Equal(got.Data, e.Data) {
			t.Errorf("%s: data %q, want %q byte for byte", from, got.Data, e.Data)
		}
		if got.StreamID != "meta" || got.StreamVersion != 1 || got.Position != res[0].FirstPosition {
			t.Errorf("%s: stream %q version %d position %d, want meta 1 %d", from, got.StreamID, got.StreamVersion, got.Position, res[0].FirstPosition)
		}
		if got.RecordedAt.Location() != time.UTC {
			t.Errorf("%s: RecordedAt in %v, want UTC", from, got.RecordedAt.Location())
		}
		if got.RecordedAt.Nanosecond()%1000 != 0 {
			t.Errorf("%s: RecordedAt %v has sub-microsecond digits", from, got.RecordedAt)
		}
		if got.RecordedAt.Before(before) || got.RecordedAt.After(after) {
			t.Errorf("%s: RecordedAt %v, want about now", from, got.RecordedAt)
		}
	}
	loaded := load(t, st, "meta", 0)
	read := readAll(t, st, eventstore.ReadRequest{})
	if len(loaded) != 1 || len(read) != 1 {
		t.Fatalf("Load returned %d, ReadAll %d events; want 1", len(loaded), len(read))
	}
	check("Load", loaded[0])
	check("ReadAll", read[0])
	if !loaded[0].RecordedAt.Equal(read[0].RecordedAt) || !bytes.Equal(loaded[0].Hash, read[0].Hash) {
		t.Errorf("Load and ReadAll disagree: %v %x vs %v %x", loaded[0].RecordedAt, loaded[0].Hash, read[0].RecordedAt, read[0].Hash)
	}
}

// verifyChain checks a whole stream's hash chain as an auditor would.
func verifyChain(t *testing.T, evs []eventstore.Event) {
	t.Helper()
	var prev []byte
	for i, e := range evs {
		if e.StreamVersion != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.StreamVersion)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			t.Errorf("version %d: PrevHash %x, want the previous event's hash %x", e.StreamVersion, e.PrevHash, prev)
		}
		if want := eventstore.ChainHash(e.PrevHash, e); !bytes.Equal(e.Hash, want) {
			t.Errorf("version %d: Hash %x, want ChainHash %x", e.StreamVersion, e.Hash, want)
		}
		if len(e.Hash) != 32 {
			t.Errorf("version %d: hash has %d bytes, want 32", e.StreamVersion, len(e.Hash))
		}
		prev = e.Hash
	}
}

func (s suite) hashChain(t *testing.T) {
	st := s.open(t)
	appendOK(t, st, req("h", eventstore.NoStream, newEvents(3, "a")...))
	e := newEvent("b")
	e.Subject, e.ActorEmail, e.CorrelationID = "", "x@example.com", "c"
	appendOK(t, st, req("h", 3, e), req("h2", eventstore.NoStream, newEvents(2, "a")...))
	appendOK(t, st, req("h", eventstore.AnyVersion, newEvent("c")))
	evs := load(t, st, "h", 0)
	if len(evs) != 5 {
		t.Fatalf("stream has %d events, want 5", len(evs))
	}
	if len(evs[0].PrevHash) != 0 {
		t.Errorf("version 1 PrevHash %x, want empty", evs[0].PrevHash)
	}
	verifyChain(t, evs)
	verifyChain(t, load(t, st, "h2", 0))
	// The chain covers the content: a changed field gives another hash.
	tampered := evs[1]
	tampered.Data = append([]byte(nil), tampered.Data...)
	tampered.Data[0] = ' '
	if bytes.Equal(eventstore.ChainHash(tampered.PrevHash, tampered), evs[1].Hash) {
		t.Error("hash did not change when the data changed")
	}
}

func (s suite) idempotent(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	r1 := req("i", eventstore.NoStream, newEvents(2, "a")...)
	r2 := req("j", eventstore.AnyVersion, newEvent("a"))
	r2.Claims = []string{"unique/j"}
	first := appendOK(t, st, r1, r2)
	appendOK(t, st, req("i", 2, newEvent("a"))) // the stream moves on
	h := head(t, st)

	// A retry of the first append, whose expected version is now stale and
	// whose claim is taken (by itself), succeeds with the original results.
	again, err := st.Append(ctx, r1, r2)
	if err != nil {
		t.Fatalf("retrying an append: %v", err)
	}
	if !slices.Equal(again, first) {
		t.Errorf("retry returned %+v, want the original %+v", again, first)
	}
	if got := head(t, st); got != h {
		t.Errorf("Head moved from %d to %d on a retry", h, got)
	}
	if got := versions(load(t, st, "i", 0)); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("stream i versions %v after retry, want [1 2 3]", got)
	}
	if got := len(readEverything(t, st)); got != 4 {
		t.Errorf("log holds %d events after a retry, want 4", got)
	}
	// Retrying one request of it alone works too.
	single, err := st.Append(ctx, r2)
	if err != nil || len(single) != 1 || single[0] != first[1] {
		t.Errorf("retrying the second request alone: %+v, %v; want %+v", single, err, first[1])
	}
}

func (s suite) concurrentConflicts(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	const writers, rounds = 6, 8
	var mu sync.Mutex
	wins := map[int64]int{} // version -> winners
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range rounds {
				evs, err := st.Load(ctx, "contended", 0)
				if err != nil {
					t.Errorf("Load: %v", err)
					return
				}
				v := int64(len(evs))
				res, err := st.Append(ctx, req("contended", v, newEvent(fmt.Sprintf("w%d", w))))
				var ce *eventstore.ConflictError
				switch {
				case err == nil:
					if res[0].Version != v+1 {
						t.Errorf("append at %d returned version %d", v, res[0].Version)
					}
					mu.Lock()
					wins[v+1]++
					mu.Unlock()
				case errors.As(err, &ce):
					if ce.Actual <= v {
						t.Errorf("conflict at expected %d reports actual %d; someone must have won", v, ce.Actual)
					}
				default:
					t.Errorf("append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	evs := load(t, st, "contended", 0)
	if len(evs) != len(wins) {
		t.Errorf("stream has %d events but %d versions were won", len(evs), len(wins))
	}
	for v, n := range wins {
		if n != 1 {
			t.Errorf("version %d was won by %d appenders, want exactly 1", v, n)
		}
	}
	verifyChain(t, evs)
}

func (s suite) concurrentClaims(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for i := range n {
		wg.Go(func() {
			r := req(fmt.Sprintf("claimer-%d", i), eventstore.NoStream, newEvent("a"))
			r.Claims = []string{"domain/p/contested"}
			_, err := st.Append(ctx, r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, eventstore.ErrClaimTaken):
				lost++
			default:
				t.Errorf("append: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 || lost != n-1 {
		t.Errorf("%d appends won the claim and %d lost, want 1 and %d", won, lost, n-1)
	}
	if got := len(readEverything(t, st)); got != 1 {
		t.Errorf("log holds %d events, want 1", got)
	}
}

// gapSafety has many writers commit at random moments, some of them rolling
// back after their events were written, while two readers (Subscribe and a
// ReadAll loop) follow the log. Each reader must see every committed event
// exactly once, never an aborted one, with positions strictly increasing.
func (s suite) gapSafety(t *testing.T) {
	if s.opts.NewStoreWithHook == nil {
		t.Fatal("storetest: Options.NewStoreWithHook is required: without delayed commits gap safety is not tested")
	}
	errAbort := errors.New("storetest: aborted on purpose")
	var rngMu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	hook := func(ctx context.Context) error {
		rngMu.Lock()
		r := rng.IntN(100)
		d := time.Duration(rng.IntN(4000)) * time.Microsecond
		rngMu.Unlock()
		time.Sleep(d)
		if r < 10 {
			return errAbort
		}
		return nil
	}
	st := s.opts.NewStoreWithHook(t, hook)
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()

	const writers, perWriter = 16, 25
	var mu sync.Mutex
	committed := map[uuid.UUID]bool{}
	aborted := map[uuid.UUID]bool{}

	type reader struct {
		name string
		mu   sync.Mutex
		seen map[uuid.UUID]int
		last int64
		bad  []string
	}
	observe := func(r *reader, batch []eventstore.Event) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range batch {
			if e.Position <= r.last {
				r.bad = append(r.bad, fmt.Sprintf("position %d after %d", e.Position, r.last))
			}
			r.last = e.Position
			r.seen[e.ID]++
		}
	}
	sub := &reader{name: "Subscribe", seen: map[uuid.UUID]int{}}
	poll := &reader{name: "ReadAll loop", seen: map[uuid.UUID]int{}}
	readers, stopReaders := context.WithCancel(ctx)
	defer stopReaders()
	var rwg sync.WaitGroup
	rwg.Go(func() {
		err := st.Subscribe(readers, 0, func(_ context.Context, batch []eventstore.Event) error {
			observe(sub, batch)
			return nil
		})
		if err != nil && readers.Err() == nil {
			t.Errorf("Subscribe ended: %v", err)
		}
	})
	rwg.Go(func() {
		after := int64(0)
		for readers.Err() == nil {
			evs, err := st.ReadAll(readers, eventstore.ReadRequest{After: after, Limit: 7})
			if err != nil {
				if readers.Err() == nil {
					t.Errorf("ReadAll: %v", err)
				}
				return
			}
			observe(poll, evs)
			if len(evs) > 0 {
				after = evs[len(evs)-1].Position
			} else {
				time.Sleep(time.Millisecond)
			}
		}
	})

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				e := newEvent("gap")
				_, err := st.Append(ctx, req(fmt.Sprintf("w%d-%d", w, i), eventstore.NoStream, e))
				mu.Lock()
				if err == nil {
					committed[e.ID] = true
				} else if errors.Is(err, errAbort) || strings.Contains(err.Error(), errAbort.Error()) {
					aborted[e.ID] = true
				} else {
					t.Errorf("append: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(aborted) == 0 || len(committed) == 0 {
		t.Fatalf("%d committed, %d aborted: the hook was not called as documented", len(committed), len(aborted))
	}

	// Wait until both readers have everything (or time runs out).
	done := func(r *reader) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.seen) >= len(committed)
	}
	// Generous: on a shared, loaded server a reader at a gap waits for every
	// transaction that was running when it found the gap, other tests' too.
	caughtUp := time.Now().Add(60 * time.Second)
	for !(done(sub) && done(poll)) && ctx.Err() == nil && time.Now().Before(caughtUp) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let a stray duplicate show up
	stopReaders()
	rwg.Wait()

	final := readEverything(t, st)
	positionOf := map[uuid.UUID]int64{}
	for _, e := range final {
		positionOf[e.ID] = e.Position
	}
	for _, r := range []*reader{sub, poll} {
		r.mu.Lock()
		for _, b := range r.bad {
			t.Errorf("%s: %s", r.name, b)
		}
		var missing []int64
		for id := range committed {
			if r.seen[id] == 0 {
				missing = append(missing, positionOf[id])
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			t.Errorf("%s missed %d of %d committed events, at positions %v; it got up to %d", r.name, len(missing), len(committed), missing, r.last)
		}
		for id, n := range r.seen {
			if n > 1 {
				t.Errorf("%s saw event %s %d times", r.name, id, n)
			}
			if aborted[id] {
				t.Errorf("%s saw aborted event %s", r.name, id)
			} else if !committed[id] {
				t.Errorf("%s saw unknown event %s", r.name, id)
			}
		}
		r.mu.Unlock()
	}
	if got := len(final); got != len(committed) {
		t.Errorf("log holds %d events, want the %d committed", got, len(committed))
	}
}

func (s suite) unicode(t *testing.T) {
	st := s.open(t)
	e := eventstore.NewEvent{
		ID:      uuid.New(),
		Type:    "kunde.geändert",
		Subject: "Jürgen 😀",
		Data:    []byte(`{"name":"Zoë Größe 😀 日本語","note":"naïve café"}`),
		Metadata: eventstore.Metadata{
			PartnerID: "partner-ß", ActorID: "akteur-ü", ActorEmail: "jürgen@bücher.example",
			CorrelationID: "korrelation-é", CausationID: "ursache-😀",
		},
	}
	stream := "kunde-Jürgen-😀"
	appendOK(t, st, req(stream, eventstore.NoStream, e, newEvent("b")))
	evs := load(t, st, stream, 0)
	if len(evs) != 2 {
		t.Fatalf("Load(%q) returned %d events, want 2", stream, len(evs))
	}
	got := evs[0]
	if got.StreamID != stream || got.Type != e.Type || got.Subject != e.Subject || got.Metadata != e.Metadata || !bytes.Equal(got.Data, e.Data) {
		t.Errorf("unicode round trip: got %+v, want %+v", got, e)
	}
	verifyChain(t, evs)
	filtered := readAll(t, st, eventstore.ReadRequest{PartnerID: "partner-ß", Types: []string{"kunde.geändert"}})
	if len(filtered) != 1 || filtered[0].ID != e.ID {
		t.Errorf("filtering by unicode partner and type returned %d events", len(filtered))
	}
}

func (s suite) largePayload(t *testing.T) {
	st := s.open(t)
	big := make([]byte, 0, 1<<20)
	big = append(big, `{"blob":"`...)
	for len(big) < 1<<20-2 {
		big = append(big, "äbc😀"[len(big)%3])
	}
	big = append(big[:1<<20-2], `"}`...)
	e := newEvent("big")
	e.Data = big
	appendOK(t, st, req("big", eventstore.NoStream, e, newEvent("small")))
	evs := load(t, st, "big", 0)
	if len(evs) != 2 || !bytes.Equal(evs[0].Data, big) {
		t.Fatalf("1 MiB payload did not round-trip (%d events)", len(evs))
	}
	verifyChain(t, evs)
	if r := readAll(t, st, eventstore.ReadRequest{}); len(r) != 2 || !bytes.Equal(r[0].Data, big) {
		t.Errorf("ReadAll did not return the 1 MiB payload intact")
	}
}

// largeBatch appends many requests at once, the way an import does.
func (s suite) largeBatch(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	appendOK(t, st, req("imp-0", eventstore.NoStream, newEvent("pre")))
	const streams, per = 300, 5
	reqs := make([]eventstore.AppendRequest, streams)
	for i := range reqs {
		reqs[i] = req(fmt.Sprintf("imp-%d", i), eventstore.NoStream, newEvents(per, "import")...)
		reqs[i].Claims = []string{fmt.Sprintf("import/%d", i)}
	}
	h := head(t, st)
	_, err := st.Append(ctx, reqs...)
	wantConflict(t, err, "imp-0", eventstore.NoStream, 1)
	if got := head(t, st); got != h {
		t.Fatalf("a failed import moved Head from %d to %d", h, got)
	}
	reqs[0].ExpectedVersion = 1
	res := appendOK(t, st, reqs...)
	for i, r := range res {
		want := int64(per)
		if i == 0 {
			want = per + 1
		}
		if r.StreamID != reqs[i].StreamID || r.Version != want || r.LastPosition < r.FirstPosition {
			t.Fatalf("result %d = %+v, want stream %s version %d", i, r, reqs[i].StreamID, want)
		}
		if i > 0 && r.FirstPosition <= res[i-1].LastPosition {
			t.Fatalf("result %d starts at %d, not after %d", i, r.FirstPosition, res[i-1].LastPosition)
		}
	}
	all := readEverything(t, st)
	if len(all) != streams*per+1 {
		t.Fatalf("log holds %d events, want %d", len(all), streams*per+1)
	}
	for _, i := range []int{0, 1, streams - 1} {
		evs := load(t, st, reqs[i].StreamID, 0)
		verifyChain(t, evs)
		if evs[len(evs)-1].ID != reqs[i].Events[per-1].ID {
			t.Errorf("stream %s does not end with its last imported event", reqs[i].StreamID)
		}
	}
	again, err := st.Append(ctx, reqs...)
	if err != nil || !slices.Equal(again, res) {
		t.Errorf("retrying the import: %v (results equal: %v)", err, slices.Equal(again, res))
	}
	if got := len(readEverything(t, st)); got != streams*per+1 {
		t.Errorf("log holds %d events after retrying the import", got)
	}
}

func (s suite) subscribe(t *testing.T) {
	st := s.open(t)
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	appendOK(t, st, req("sub", eventstore.NoStream, newEvents(3, "a")...))

	got := make(chan eventstore.Event, 100)
	errc := make(chan error, 1)
	go func() {
		errc <- st.Subscribe(ctx, 0, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				got <- e
			}
			return nil
		})
	}()
	next := func() eventstore.Event {
		t.Helper()
		select {
		case e := <-got:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("Subscribe delivered nothing within 5s")
			return eventstore.Event{}
		}
	}
	for v := int64(1); v <= 3; v++ {
		if e := next(); e.StreamVersion != v {
			t.Fatalf("catch-up delivered version %d, want %d", e.StreamVersion, v)
		}
	}
	// Following: new appends arrive without re-subscribing.
	start := time.Now()
	res := appendOK(t, st, req("sub", 3, newEvents(2, "b")...))
	if e := next(); e.Position != res[0].FirstPosition || e.Type != "b" {
		t.Fatalf("followed event at %d (%s), want %d", e.Position, e.Type, res[0].FirstPosition)
	}
	next()
	t.Logf("append to delivery: %v", time.Since(start))

	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe returned %v after cancel, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after its context ended")
	}

	// Starting in the middle skips what came before; handle's error ends it.
	boom := errors.New("boom")
	var seen []int64
	second := load(t, st, "sub", 2)[0]
	err := st.Subscribe(ctxFor(t), second.Position, func(_ context.Context, batch []eventstore.Event) error {
		for _, e := range batch {
			seen = append(seen, e.StreamVersion)
		}
		return boom
	})
	if err != boom {
		t.Errorf("Subscribe returned %v, want handle's error", err)
	}
	if len(seen) == 0 || seen[0] != 3 {
		t.Errorf("Subscribe after the second event delivered versions %v, want to start at 3", seen)
	}
}

func (s suite) head(t *testing.T) {
	st := s.open(t)
	if h := head(t, st); h != 0 {
		t.Errorf("empty store: Head %d, want 0", h)
	}
	appendOK(t, st, req("a", eventstore.NoStream, newEvent("a")))
	res := appendOK(t, st, req("b", eventstore.NoStream, newEvents(2, "a")...))
	if h := head(t, st); h != res[0].LastPosition {
		t.Errorf("Head %d, want the last position %d", h, res[0].LastPosition)
	}
}

func (s suite) checkpoints(t *testing.T) {
	st := s.open(t)
	cp, ok := st.(eventstore.Checkpoints)
	if !ok {
		t.Fatalf("%T does not implement eventstore.Checkpoints", st)
	}
	ctx := ctxFor(t)
	if p, err := cp.LoadCheckpoint(ctx, "relay"); err != nil || p != 0 {
		t.Errorf("missing checkpoint: %d, %v; want 0, nil", p, err)
	}
	for _, p := range []int64{42, 7, 1 << 40} {
		if err := cp.SaveCheckpoint(ctx, "relay", p); err != nil {
			t.Fatalf("SaveCheckpoint: %v", err)
		}
		if got, err := cp.LoadCheckpoint(ctx, "relay"); err != nil || got != p {
			t.Errorf("after saving %d: loaded %d, %v", p, got, err)
		}
	}
	if err := cp.SaveCheckpoint(ctx, "projector-ü", 5); err != nil {
		t.Fatalf("SaveCheckpoint: %v", err)
	}
	if got, _ := cp.LoadCheckpoint(ctx, "relay"); got != 1<<40 {
		t.Errorf("saving another name changed relay's checkpoint to %d", got)
	}
}

func (s suite) closed(t *testing.T) {
	st := s.newStore(t)
	appendOK(t, st, req("c", eventstore.NoStream, newEvent("a")))
	ctx := ctxFor(t)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("%s on a closed store: %v, want ErrClosed", op, err)
		}
	}
	_, err := st.Append(ctx, req("c", eventstore.AnyVersion, newEvent("a")))
	check("Append", err)
	_, err = st.Load(ctx, "c", 0)
	check("Load", err)
	_, err = st.ReadAll(ctx, eventstore.ReadRequest{})
	check("ReadAll", err)
	_, err = st.Head(ctx)
	check("Head", err)
	check("Subscribe", st.Subscribe(ctx, 0, func(context.Context, []eventstore.Event) error { return nil }))
	if cp, ok := st.(eventstore.Checkpoints); ok {
		_, err = cp.LoadCheckpoint(ctx, "x")
		check("LoadCheckpoint", err)
		check("SaveCheckpoint", cp.SaveCheckpoint(ctx, "x", 1))
	}
	_ = st.Close() // a second Close must not panic
}
