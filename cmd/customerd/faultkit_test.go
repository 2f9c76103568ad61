package main

// The fault tests' kit: a customerd process on the test's PostgreSQL schema
// with a NATS server the test itself runs (so it can stop and start it), a
// load generator that records every command and its answer, and the checks
// that nothing answered with success is lost or applied twice.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/partnerhub/customers/internal/natsembed"
	"github.com/partnerhub/customers/internal/testenv"
)

// faultEnv is one customerd with everything it depends on under the test's
// control. Its HTTP and NATS addresses stay the same across restarts.
type faultEnv struct {
	bin      string
	dbURL    string // the test's own connections
	appName  string // application_name of customerd's connections
	natsDir  string
	natsAddr string
	nats     *natsembed.Server
	stream   string
	root     string
	dataDir  string
	addr     string
	base     string
	proc     *process
}

func newFaultEnv(t *testing.T, bin string) *faultEnv {
	t.Helper()
	f := &faultEnv{
		bin: bin, dbURL: testenv.PostgresSchema(t), appName: testenv.UniqueName("customerd_fault_"),
		natsDir: t.TempDir(), natsAddr: "127.0.0.1:0", dataDir: t.TempDir(),
		stream: testenv.UniqueName("FAULT_"),
	}
	f.root = strings.ToLower(f.stream)
	f.startNATS(t)
	f.natsAddr = f.nats.Addr() // restarts reuse the port the first start picked
	t.Cleanup(func() {
		if f.nats != nil {
			f.nats.Shutdown()
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	_ = l.Close()
	f.base = "http://" + f.addr
	return f
}

func (f *faultEnv) startNATS(t *testing.T) {
	t.Helper()
	var err error
	if f.nats, err = natsembed.Start(natsembed.Options{Listen: f.natsAddr, StoreDir: filepath.Join(f.natsDir, "js")}); err != nil {
		t.Fatalf("starting NATS on %s: %v", f.natsAddr, err)
	}
}

func (f *faultEnv) stopNATS() {
	f.nats.Shutdown()
	f.nats = nil
}

// customerdURL is the connection string customerd gets: the test's schema,
// tagged with an application_name so its connections can be found.
func (f *faultEnv) customerdURL(t *testing.T) string {
	u, err := url.Parse(f.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", f.appName)
	u.RawQuery = q.Encode()
	return u.String()
}

// start runs customerd and waits until it serves and is ready.
func (f *faultEnv) start(t *testing.T) {
	t.Helper()
	f.proc = startBinary(t, f.bin, "CUSTOMERD_ADDR="+f.addr, "CUSTOMERD_DATA_DIR="+f.dataDir,
		"CUSTOMERD_DATABASE_URL="+f.customerdURL(t), "CUSTOMERD_NATS_URL=nats://"+f.natsAddr,
		"CUSTOMERD_NATS_STREAM="+f.stream, "CUSTOMERD_NATS_SUBJECT_ROOT="+f.root,
		"CUSTOMERD_BOOTSTRAP_TOKEN="+bootstrapToken)
	f.proc.waitLog(t, "customerd started")
	f.waitReady(t)
}

// kill ends customerd with SIGKILL: no shutdown, no flush, nothing.
func (f *faultEnv) kill(t *testing.T) {
	t.Helper()
	if err := f.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range f.proc.lines { // drained until the reader sees the pipe close
	}
	if err := <-f.proc.done; err == nil {
		t.Fatal("customerd exited 0 after SIGKILL")
	}
}

// terminateBackends cuts every database connection customerd holds, as an
// operator's pg_terminate_backend or a failover would, and returns how many.
func (f *faultEnv) terminateBackends(ctx context.Context, t *testing.T) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, f.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`, f.appName).Scan(&n); err != nil {
		t.Fatalf("terminating customerd's connections: %v", err)
	}
	return n
}

// readyz is one readiness probe; a transport error is status 0.
func (f *faultEnv) readyz() (int, readyAnswer) {
	var rz readyAnswer
	resp, err := http.Get(f.base + "/readyz")
	if err != nil {
		return 0, rz
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&rz)
	return resp.StatusCode, rz
}

type readyAnswer struct {
	Status        string            `json:"status"`
	Checks        map[string]string `json:"checks"`
	RelayPosition int64             `json:"relayPosition"`
}

// waitReady waits for /readyz to answer 200 and, when atLeast > 0, for the
// relay to have published up to that position.
func (f *faultEnv) waitReady(t *testing.T, atLeast ...int64) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		code, rz := f.readyz()
		if code == http.StatusOK && (len(atLeast) == 0 || rz.RelayPosition >= atLeast[0]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("customerd not ready after 45 s: /readyz %d %+v, want relay position %v", code, rz, atLeast)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpClient is the load's client: no keep-alive reuse across a killed
// process matters, but a bounded wait does.
func httpClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
}

// send is one request that reports a transport error instead of failing the
// test (the load runs outside the test goroutine and expects them).
func send(c *http.Client, method, url, body string, headers ...string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+bootstrapToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// attempt is one command the load sent. Its key names the one event the
// command appends, so the event log can be checked against the answers.
type attempt struct {
	key      string // kind ":" marker, e.g. "billing:B w1 n7"
	status   int    // 0: no answer (connection refused or cut)
	position int64  // from a 2xx answer
	tries    int    // sent this many times with one Idempotency-Key
	firstErr error  // why it was sent again
	answered time.Time
	err      error
}

func (a attempt) acked() bool    { return a.status >= 200 && a.status < 300 }
func (a attempt) rejected() bool { return a.status >= 400 && a.status < 500 }

// load runs workers that each create customers and then change them:
// billing profile (GET, then PUT with If-Match), a new tag, an order, the
// second relationship. Every command carries a marker of its own.
type load struct {
	retry5xx bool
	stop     context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	attempts []attempt
}

// loadLimit bounds a load that nobody stops (a test that failed half-way
// still stops it in its cleanup).
const loadLimit = 10 * time.Minute

// startLoad starts the workers. With retry5xx a POST answered 5xx is sent
// again with its Idempotency-Key; without, only a POST that got no answer
// at all is.
func startLoad(t *testing.T, base string, workers int, retry5xx bool) *load {
	ctx, cancel := context.WithTimeout(context.Background(), loadLimit)
	l := &load{stop: cancel, retry5xx: retry5xx}
	for w := range workers {
		l.wg.Go(func() { l.worker(ctx, base, w) })
	}
	t.Cleanup(func() { l.finish() })
	return l
}

// finish stops the load and returns every attempt.
func (l *load) finish() []attempt {
	l.stop()
	l.wg.Wait()
	return l.attempts
}

func (l *load) record(a attempt) {
	a.answered = time.Now()
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
}

func (l *load) worker(ctx context.Context, base string, w int) {
	c := httpClient()
	defer c.CloseIdleConnections()
	// command sends one command. A POST carries an Idempotency-Key and,
	// like a careful client, is sent again with it while its outcome is
	// unknown (no answer, 5xx if retry5xx, or the first try still in
	// progress: a few times, as a crashed first try holds the key for a
	// minute).
	command := func(key, method, path, body string, headers ...string) attempt {
		if method == "POST" {
			headers = append(headers, "Idempotency-Key", uuid.NewString())
		}
		var a attempt
		for try := 0; ; try++ {
			code, _, b, err := send(c, method, base+path, body, headers...)
			first := a.firstErr
			a = attempt{key: key, status: code, err: err, tries: try + 1, firstErr: first}
			if a.acked() {
				var p struct{ Position int64 }
				if json.Unmarshal(b, &p) != nil || p.Position == 0 {
					a.err = fmt.Errorf("answer %d without a position: %s", code, b)
				}
				a.position = p.Position
			} else if err == nil {
				a.err = fmt.Errorf("answer %d: %s", code, b)
			}
			inProgress := code == http.StatusConflict && strings.Contains(string(b), "request-in-progress")
			if err == nil && code < 500 && !inProgress {
				break
			}
			if a.firstErr == nil {
				a.firstErr = a.err
			}
			if inProgress {
				a.status = 0 // not a rejection: the first try's outcome is still unknown
			}
			if method != "POST" || try >= 30 || ctx.Err() != nil ||
				(inProgress && try >= 3) || (err == nil && code >= 500 && !l.retry5xx) {
				break
			}
			time.Sleep(100 * time.Millisecond) // the service is down: don't spin
		}
		l.record(a)
		return a
	}
	var cust string
	var tags int
	var relAdded bool
	for n := 0; ctx.Err() == nil && n < 1_000_000; n++ {
		if cust == "" || tags >= 20 {
			id := uuid.NewString()
			a := command("create:"+id, "POST", "/v1/customers", fmt.Sprintf(
				`{"id":%q,"companyName":"Fault w%d n%d","primaryDomain":"f-w%d-n%d-%s.example","relationship":"direct-bill"}`,
				id, w, n, w, n, id[:8]))
			if a.acked() {
				cust, tags, relAdded = id, 0, false
			}
			continue
		}
		path := "/v1/customers/" + cust
		marker := fmt.Sprintf("w%d n%d", w, n)
		switch {
		case n%4 == 0:
			code, h, _, err := send(c, "GET", base+path, "")
			if err != nil || code != http.StatusOK {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			command("billing:Bill "+marker, "PUT", path+"/billing-profile", `{"companyName":"Bill `+marker+
				`","email":"billing@example.com","firstName":"Jo","lastName":"Doe",`+
				`"defaultAddress":{"addressLine1":"Hauptstr. 1","city":"Berlin","postalCode":"10115","country":"DE"}}`,
				"If-Match", h.Get("ETag"))
		case n%4 == 1:
			command("tag:t-"+strings.ReplaceAll(marker, " ", "-"), "POST", path+"/tags",
				`{"add":["t-`+strings.ReplaceAll(marker, " ", "-")+`"]}`)
			tags++
		case n%4 == 2 && !relAdded:
			command("relationship:"+cust, "POST", path+"/relationships", `{"relationship":"indirect-reseller"}`)
			relAdded = true // once per customer, whatever the outcome
		default:
			command("order:o-"+strings.ReplaceAll(marker, " ", "-"), "POST", path+"/orders",
				`{"catalog":"azure","billingCycle":"monthly","lineItems":[{"offerId":"o-`+
					strings.ReplaceAll(marker, " ", "-")+`","quantity":1}]}`)
		}
	}
}

// storedEvent is one row of the event log.
type storedEvent struct {
	position int64
	version  int64 // in its stream
	id       string
	typ      string
	data     struct {
		CustomerID     string `json:"customerId"`
		CompanyName    string `json:"companyName"`
		Relationship   string `json:"relationship"`
		Name           string `json:"name"`
		BillingProfile struct {
			CompanyName string `json:"companyName"`
		} `json:"billingProfile"`
		LineItems []struct {
			OfferID string `json:"offerId"`
		} `json:"lineItems"`
	}
}

// key is the attempt key of the command that appended the event, "" for
// events no load command appends alone (bootstrap, tag catalog).
func (e storedEvent) key() string {
	switch e.typ {
	case "customer.created":
		return "create:" + e.data.CustomerID
	case "customer.relationship_added":
		return "relationship:" + e.data.CustomerID
	case "customer.billing_profile_updated":
		return "billing:" + e.data.BillingProfile.CompanyName
	case "customer.tag_assigned":
		return "tag:" + e.data.Name
	case "tag.created":
		return "tagcreated:" + e.data.Name
	case "order.created":
		if len(e.data.LineItems) > 0 {
			return "order:" + e.data.LineItems[0].OfferID
		}
	}
	return ""
}

func readEvents(ctx context.Context, t *testing.T, dbURL string) []storedEvent {
	t.Helper()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT position, stream_version, event_id::text, type, data FROM events ORDER BY position`)
	if err != nil {
		t.Fatalf("reading the event log: %v", err)
	}
	var evs []storedEvent
	for rows.Next() {
		var e storedEvent
		var data []byte
		if err := rows.Scan(&e.position, &e.version, &e.id, &e.typ, &data); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &e.data); err != nil {
			t.Fatalf("event %d (%s): %v", e.position, e.typ, err)
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading the event log: %v", err)
	}
	return evs
}

// summary counts the attempts by outcome.
func summary(attempts []attempt) (acked, rejected, unknown, retried int) {
	for _, a := range attempts {
		if a.tries > 1 {
			retried++
		}
		switch {
		case a.acked():
			acked++
		case a.rejected():
			rejected++
		default:
			unknown++
		}
	}
	return
}

// ackedBetween counts the commands answered with success in [from, to).
func ackedBetween(attempts []attempt, from, to time.Time) int {
	n := 0
	for _, a := range attempts {
		if a.acked() && !a.answered.Before(from) && a.answered.Before(to) {
			n++
		}
	}
	return n
}

// verify is the whole check after a fault and recovery: every command
// answered with success is in the event log exactly once, at the position
// it was answered with; no command is in it twice; both read models hold
// every event once; JetStream holds every event once, in log order.
func (f *faultEnv) verify(t *testing.T, attempts []attempt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	acked, rejected, unknown, retried := summary(attempts)
	t.Logf("%d commands: %d answered 2xx, %d 4xx, %d without an answer or 5xx in the end; %d sent more than once",
		len(attempts), acked, rejected, unknown, retried)
	logged := 0
	for _, a := range attempts {
		if (a.tries > 1 || !a.acked()) && logged < 20 {
			logged++
			t.Logf("%s: %d tries, last answer %d %v; first failure: %v", a.key, a.tries, a.status, a.err, a.firstErr)
		}
	}
	if acked < 20 {
		t.Fatalf("only %d commands succeeded: the load proves nothing", acked)
	}

	evs := readEvents(ctx, t, f.dbURL)
	head := evs[len(evs)-1].position
	byKey := map[string][]storedEvent{}
	for _, e := range evs {
		if k := e.key(); k != "" {
			byKey[k] = append(byKey[k], e)
		}
	}
	sent := map[string]bool{}
	for _, a := range attempts {
		// A new tag joins the catalog in the same append as the
		// assignment; the answer's position is the later of the two.
		keys := []string{a.key}
		if name, ok := strings.CutPrefix(a.key, "tag:"); ok {
			keys = append(keys, "tagcreated:"+name)
		}
		var last int64
		for _, k := range keys {
			sent[k] = true
			got := byKey[k]
			switch {
			case a.acked() && len(got) != 1:
				t.Errorf("%s answered %d at position %d: %d %s events in the log", a.key, a.status, a.position, len(got), k)
			case a.rejected() && len(got) != 0:
				t.Errorf("%s answered %d, but %d %s events are in the log", a.key, a.status, len(got), k)
			case len(got) > 1:
				t.Errorf("%s (outcome unknown: %v) is in the log %d times", k, a.err, len(got))
			case len(got) == 1:
				last = max(last, got[0].position)
			}
		}
		if a.acked() && last != 0 && last != a.position {
			t.Errorf("%s answered position %d, its events end at %d", a.key, a.position, last)
		}
	}
	for k := range byKey {
		if !sent[k] {
			t.Errorf("events %s in the log, but no command sent it", k)
		}
	}
	f.waitReady(t, head)
	f.verifyCustomerList(ctx, t, evs, head)
	f.verifyActivity(ctx, t, evs, head)
	f.verifyStream(ctx, t, evs)
}

// readWithMinPosition GETs url until the read model has caught up (a
// minPosition read answers 503 after 5 s) or a minute has passed.
func readWithMinPosition(t *testing.T, url string, v any) {
	t.Helper()
	c := httpClient()
	deadline := time.Now().Add(time.Minute)
	for {
		code, _, body, err := send(c, "GET", url, "")
		if err == nil && code == http.StatusOK {
			if err := json.Unmarshal(body, v); err != nil {
				t.Fatalf("GET %s: %v in %s", url, err, body)
			}
			return
		}
		if time.Now().After(deadline) || (err == nil && code != http.StatusServiceUnavailable) {
			t.Fatalf("GET %s: %d %v %s", url, code, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *faultEnv) verifyCustomerList(ctx context.Context, t *testing.T, evs []storedEvent, head int64) {
	t.Helper()
	type row struct {
		name string
		tags []string
	}
	// What the list must show, folded from the event log.
	want := map[string]*row{} // customer id "/" relationship
	names := map[string]string{}
	tags := map[string][]string{}
	for _, e := range evs {
		d := e.data
		switch e.typ {
		case "customer.created":
			names[d.CustomerID] = d.CompanyName
			want[d.CustomerID+"/"+d.Relationship] = &row{}
		case "customer.relationship_added":
			want[d.CustomerID+"/"+d.Relationship] = &row{}
		case "customer.billing_profile_updated":
			names[d.CustomerID] = d.BillingProfile.CompanyName
		case "customer.tag_assigned":
			tags[d.CustomerID] = append(tags[d.CustomerID], d.Name)
		}
	}
	for k, r := range want {
		id, _, _ := strings.Cut(k, "/")
		r.name, r.tags = names[id], tags[id]
		slices.Sort(r.tags)
	}

	got := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		var page struct {
			Items []struct {
				ID           string   `json:"id"`
				CompanyName  string   `json:"companyName"`
				Relationship string   `json:"relationship"`
				Tags         []string `json:"tags"`
			} `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		readWithMinPosition(t, fmt.Sprintf("%s/v1/customers?limit=500&minPosition=%d&cursor=%s", f.base, head, url.QueryEscape(cursor)), &page)
		for _, it := range page.Items {
			k := it.ID + "/" + it.Relationship
			got[k]++
			w, ok := want[k]
			gotTags := slices.Sorted(slices.Values(it.Tags))
			switch {
			case !ok:
				t.Errorf("customer list row %s: no such customer and relationship in the log", k)
			case it.CompanyName != w.name || !slices.Equal(gotTags, w.tags):
				t.Errorf("customer list row %s: name %q tags %v, the log says %q %v", k, it.CompanyName, gotTags, w.name, w.tags)
			}
		}
		if cursor = page.NextCursor; cursor == "" || pages > 1000 {
			break
		}
	}
	for k := range want {
		if got[k] != 1 {
			t.Errorf("customer list has %d rows for %s, want 1", got[k], k)
		}
	}
}

// activityOperation is the activity operation of each event type the load
// and the bootstrap produce.
var activityOperation = map[string]string{
	"customer.created": "create_customer", "customer.relationship_added": "add_customer_relationship",
	"customer.billing_profile_updated": "update_customer_billing_profile", "customer.tag_assigned": "assign_customer_tag",
	"order.created": "create_order", "tag.created": "create_tag", "user.created": "create_user",
}

func (f *faultEnv) verifyActivity(ctx context.Context, t *testing.T, evs []storedEvent, head int64) {
	t.Helper()
	want := map[int64]string{}
	for _, e := range evs {
		if e.typ != "partner.created" {
			want[e.position] = activityOperation[e.typ]
		}
	}
	got := map[int64]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		var page struct {
			Items []struct {
				Operation string `json:"operation"`
				Position  int64  `json:"position"`
			} `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		readWithMinPosition(t, fmt.Sprintf("%s/v1/activity?limit=500&minPosition=%d&cursor=%s", f.base, head, url.QueryEscape(cursor)), &page)
		for _, it := range page.Items {
			got[it.Position]++
			if op, ok := want[it.Position]; !ok || op != it.Operation {
				t.Errorf("activity entry %s at position %d, the log has %q there", it.Operation, it.Position, op)
			}
		}
		if cursor = page.NextCursor; cursor == "" || pages > 1000 {
			break
		}
	}
	for pos := range want {
		if got[pos] != 1 {
			t.Errorf("activity log has %d entries for position %d, want 1", got[pos], pos)
		}
	}
}

// verifyStream reads the whole JetStream stream with an ordered consumer:
// every event of the log once (by Nats-Msg-Id and CloudEvents id), in log
// order.
func (f *faultEnv) verifyStream(ctx context.Context, t *testing.T, evs []storedEvent) {
	t.Helper()
	nc, err := nats.Connect("nats://" + f.natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	str, err := js.Stream(ctx, f.stream)
	if err != nil {
		t.Fatalf("stream %s: %v", f.stream, err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var last int64
	for read := uint64(0); read < info.State.Msgs; {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("reading stream %s: %v", f.stream, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var env struct {
				ID       string `json:"id"`
				Position int64  `json:"position"`
			}
			if err := json.Unmarshal(msg.Data(), &env); err != nil {
				t.Fatalf("stream message %s: %v", msg.Subject(), err)
			}
			if h := msg.Headers().Get("Nats-Msg-Id"); h != env.ID {
				t.Errorf("message at position %d: Nats-Msg-Id %q, CloudEvents id %q", env.Position, h, env.ID)
			}
			if env.Position <= last {
				t.Errorf("stream has position %d after %d", env.Position, last)
			}
			last = env.Position
			seen[env.ID]++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("reading stream %s: %v", f.stream, err)
		}
		if n == 0 {
			t.Fatalf("stream %s: %d of %d messages read, then nothing", f.stream, read, info.State.Msgs)
		}
		read += uint64(n)
	}
	for _, e := range evs {
		if seen[e.id] != 1 {
			t.Errorf("event %s (%s at %d) is %d times in the stream, want once", e.id, e.typ, e.position, seen[e.id])
		}
		delete(seen, e.id)
	}
	for id, n := range seen {
		t.Errorf("stream has %d messages of event %s, which is not in the log", n, id)
	}
}

// jitter is a short random pause, so that retrying clients do not move in
// lockstep.
func jitter(max time.Duration) { time.Sleep(rand.N(max)) }
