package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/partnerhub/customers/internal/testenv"
)

const bootstrapToken = "e2e-bootstrap-token-0123456789"

// answer is one HTTP exchange with the running binary.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decoding %s: %v", a.body, err)
	}
}

// call sends one request; headers are name, value pairs.
func call(t *testing.T, method, url, token, body string, headers ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func (p *process) stop(t *testing.T) []string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var stopped []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				if err := <-p.done; err != nil {
					t.Fatalf("customerd after SIGTERM: %v, want exit 0", err)
				}
				return stopped
			}
			if m["msg"] == "component stopped" {
				stopped = append(stopped, fmt.Sprint(m["component"]))
			}
		case <-timeout:
			t.Fatal("customerd still running 30 s after SIGTERM")
		}
	}
}

type activityPage struct {
	Items []struct {
		Operation    string `json:"operation"`
		CustomerID   string `json:"customerId"`
		CustomerName string `json:"customerName"`
		PartnerUser  string `json:"partnerUser"`
		Position     int64  `json:"position"`
	} `json:"items"`
}

type listPage struct {
	Items []struct {
		ID           string   `json:"id"`
		CompanyName  string   `json:"companyName"`
		Relationship string   `json:"relationship"`
		Tags         []string `json:"tags"`
	} `json:"items"`
}

// walk is SPEC's main flow over HTTP against a running customerd with the
// bootstrap admin: create, update billing with If-Match, tag, order, then
// read the effects from both read models with minPosition. It returns the
// customer id and the last command's position.
func walk(t *testing.T, base string) (string, int64) {
	t.Helper()
	created := call(t, "POST", base+"/v1/customers", bootstrapToken,
		`{"companyName":"Müller GmbH","primaryDomain":"mueller.example","relationship":"direct-bill"}`)
	if created.status != http.StatusCreated {
		t.Fatalf("create customer: %d %s", created.status, created.body)
	}
	var c struct {
		ID       string
		Position int64
	}
	created.decode(t, &c)
	cust := base + "/v1/customers/" + c.ID

	got := call(t, "GET", cust, bootstrapToken, "")
	etag := got.header.Get("ETag")
	if got.status != http.StatusOK || etag == "" {
		t.Fatalf("get customer: %d etag %q %s", got.status, etag, got.body)
	}
	bp := `{"companyName":"Müller AG","email":"billing@mueller.example","firstName":"Jo","lastName":"Müller",` +
		`"defaultAddress":{"addressLine1":"Hauptstr. 1","city":"Berlin","postalCode":"10115","country":"DE"}}`
	if upd := call(t, "PUT", cust+"/billing-profile", bootstrapToken, bp); upd.status != http.StatusPreconditionRequired {
		t.Fatalf("billing without If-Match: %d, want 428", upd.status)
	}
	if upd := call(t, "PUT", cust+"/billing-profile", bootstrapToken, bp, "If-Match", etag); upd.status != http.StatusOK {
		t.Fatalf("billing with If-Match %s: %d %s", etag, upd.status, upd.body)
	}
	if upd := call(t, "PUT", cust+"/billing-profile", bootstrapToken, bp, "If-Match", etag); upd.status != http.StatusPreconditionFailed {
		t.Fatalf("billing with the stale If-Match %s: %d, want 412", etag, upd.status)
	}
	if tag := call(t, "POST", cust+"/tags", bootstrapToken, `{"add":["VIP"]}`); tag.status != http.StatusOK {
		t.Fatalf("tag: %d %s", tag.status, tag.body)
	}
	order := call(t, "POST", cust+"/orders", bootstrapToken,
		`{"catalog":"azure","billingCycle":"monthly","lineItems":[{"offerId":"azure-plan","quantity":1}]}`)
	if order.status != http.StatusCreated {
		t.Fatalf("order: %d %s", order.status, order.body)
	}
	var o struct {
		Status   string
		Position int64
	}
	order.decode(t, &o)
	if o.Status != "pending" || o.Position <= c.Position {
		t.Fatalf("order answered %s", order.body)
	}

	// Read your own writes: the effects are in the customer list (the new
	// billing company name, the tag) and in the activity log.
	list := call(t, "GET", fmt.Sprintf("%s/v1/customers?q=muller&minPosition=%d", base, o.Position), bootstrapToken, "")
	var lp listPage
	list.decode(t, &lp)
	if list.status != http.StatusOK || len(lp.Items) != 1 || lp.Items[0].ID != c.ID ||
		lp.Items[0].CompanyName != "Müller AG" || !slices.Equal(lp.Items[0].Tags, []string{"VIP"}) {
		t.Fatalf("search: %d %s", list.status, list.body)
	}
	act := call(t, "GET", fmt.Sprintf("%s/v1/activity?customerId=%s&minPosition=%d", base, c.ID, o.Position), bootstrapToken, "")
	if act.status != http.StatusOK {
		t.Fatalf("activity: %d %s", act.status, act.body)
	}
	if ops := operations(t, act); !slices.Equal(ops, []string{"create_order", "assign_customer_tag", "update_customer_billing_profile", "create_customer"}) {
		t.Fatalf("activity operations (newest first) %v: %s", ops, act.body)
	}
	return c.ID, o.Position
}

func operations(t *testing.T, a answer) []string {
	t.Helper()
	var p activityPage
	a.decode(t, &p)
	var ops []string
	for _, e := range p.Items {
		if e.PartnerUser != "admin@localhost" {
			t.Errorf("activity entry by %q, want admin@localhost", e.PartnerUser)
		}
		ops = append(ops, e.Operation)
	}
	return ops
}

// metricValue returns the value of the sample whose line starts with
// prefix (name and labels), or fails.
func metricValue(t *testing.T, metrics, prefix string) float64 {
	t.Helper()
	for line := range strings.Lines(metrics) {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s in\n%s", prefix, metrics)
	return 0
}

// checkRunningService checks readiness and metrics once the walk is done.
func checkRunningService(t *testing.T, base string, position int64) {
	t.Helper()
	ready := call(t, "GET", base+"/readyz", "", "")
	var rz struct {
		Status string
		Checks map[string]string
	}
	ready.decode(t, &rz)
	if ready.status != http.StatusOK || rz.Status != "ready" ||
		rz.Checks["projector customer_list"] != "ok" || rz.Checks["projector activity_log"] != "ok" || rz.Checks["relay"] != "ok" {
		t.Fatalf("/readyz: %d %s", ready.status, ready.body)
	}
	// The bootstrap user's token hash stays inside the service.
	feed := call(t, "GET", base+"/v1/events?after=0&limit=10", bootstrapToken, "")
	if feed.status != http.StatusOK || !strings.Contains(string(feed.body), `"user.created"`) {
		t.Fatalf("/v1/events: %d %s", feed.status, feed.body)
	}
	if strings.Contains(string(feed.body), "tokenHash") {
		t.Errorf("the event feed publishes a token hash: %s", feed.body)
	}
	m := call(t, "GET", base+"/metrics", "", "")
	if m.status != http.StatusOK {
		t.Fatalf("/metrics: %d", m.status)
	}
	metrics := string(m.body)
	if head := metricValue(t, metrics, "customers_store_head_position"); head < float64(position) {
		t.Errorf("store head %v, want at least %d", head, position)
	}
	if cp := metricValue(t, metrics, `customers_projector_checkpoint_position{projector="customer_list"}`); cp < float64(position) {
		t.Errorf("customer_list checkpoint %v, want at least %d", cp, position)
	}
	metricValue(t, metrics, `customers_projector_lag_events{projector="activity_log"}`)
	metricValue(t, metrics, "customers_relay_position")
	metricValue(t, metrics, "customers_relay_lag_events")
	if n := metricValue(t, metrics, `customers_commands_total{command="update_billing_profile",outcome="precondition"}`); n != 1 {
		t.Errorf("stale billing updates counted %v, want 1", n)
	}
	if n := metricValue(t, metrics, `customers_commands_total{command="create_customer",outcome="ok"}`); n < 1 {
		t.Errorf("customer creations counted %v", n)
	}
	if !strings.Contains(metrics, "customers_http_request_duration_seconds_bucket{") {
		t.Errorf("no HTTP request histogram in /metrics")
	}
}

// afterRestart checks the second run over the same databases: the data is
// there, nothing was applied twice, the bootstrap did not run again, and new
// commands still flow through. It returns the new command's position.
func afterRestart(t *testing.T, base, customerID string, position int64) int64 {
	t.Helper()
	if got := call(t, "GET", base+"/v1/customers", "another-token-0123456789", ""); got.status != http.StatusUnauthorized {
		t.Fatalf("a token the bootstrap never saw: %d", got.status)
	}
	// One more command after the restart, so the projectors must have
	// consumed past the old events again.
	more := call(t, "POST", base+"/v1/customers/"+customerID+"/relationships", bootstrapToken, `{"relationship":"indirect-reseller"}`)
	if more.status != http.StatusOK {
		t.Fatalf("add relationship after restart: %d %s", more.status, more.body)
	}
	var r struct{ Position int64 }
	more.decode(t, &r)
	if r.Position <= position {
		t.Fatalf("position after restart %d, want above %d", r.Position, position)
	}
	wantReadModels(t, base, customerID, r.Position)
	return r.Position
}

// wantReadModels checks both read models hold the walk plus the added
// relationship, each event applied once.
func wantReadModels(t *testing.T, base, customerID string, position int64) {
	t.Helper()
	list := call(t, "GET", fmt.Sprintf("%s/v1/customers?minPosition=%d", base, position), bootstrapToken, "")
	var lp listPage
	list.decode(t, &lp)
	var rels []string
	for _, it := range lp.Items {
		if it.ID != customerID || it.CompanyName != "Müller AG" || !slices.Equal(it.Tags, []string{"VIP"}) {
			t.Fatalf("customer list: %s", list.body)
		}
		rels = append(rels, it.Relationship)
	}
	if slices.Sort(rels); !slices.Equal(rels, []string{"direct-bill", "indirect-reseller"}) {
		t.Fatalf("customer list rows %v: %s", rels, list.body)
	}
	tags := call(t, "GET", base+"/v1/tags", bootstrapToken, "")
	if !strings.Contains(string(tags.body), `"customerCount":1`) {
		t.Fatalf("tags: %s", tags.body)
	}
	act := call(t, "GET", fmt.Sprintf("%s/v1/activity?customerId=%s&minPosition=%d", base, customerID, position), bootstrapToken, "")
	if ops := operations(t, act); !slices.Equal(ops, []string{"add_customer_relationship", "create_order", "assign_customer_tag", "update_customer_billing_profile", "create_customer"}) {
		t.Fatalf("activity %v: %s", ops, act.body)
	}
}

// wantShutdownOrder checks HTTP stops first, the projectors before the
// relay; on PostgreSQL the index upkeep runs too.
func wantShutdownOrder(t *testing.T, stopped []string, postgres bool) {
	t.Helper()
	want := []string{"http", "idempotency purge", "user directory", "projector activity_log", "projector customer_list", "relay"}
	if postgres {
		want = slices.Insert(want, 3, "index upkeep")
	}
	if !slices.Equal(stopped, want) {
		t.Fatalf("components stopped in order %v, want %v", stopped, want)
	}
}

// The default, embedded setup: SQLite files and an embedded NATS in a data
// directory, bootstrapped with a token.
func TestBinaryEmbeddedWalkSurvivesRestart(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	env := []string{"CUSTOMERD_ADDR=127.0.0.1:0", "CUSTOMERD_NATS_LISTEN=127.0.0.1:0", "CUSTOMERD_DATA_DIR=" + dataDir,
		"CUSTOMERD_DATABASE_URL=", "CUSTOMERD_NATS_URL=", "CUSTOMERD_NATS_STREAM=", "CUSTOMERD_NATS_SUBJECT_ROOT=",
		"CUSTOMERD_BOOTSTRAP_TOKEN=" + bootstrapToken}

	p := startBinary(t, bin, env...)
	p.waitLog(t, "bootstrapped an empty store")
	base := "http://" + p.waitLog(t, "customerd started")["addr"].(string)
	id, pos := walk(t, base)
	checkRunningService(t, base, pos)
	wantShutdownOrder(t, p.stop(t), false)

	p = startBinary(t, bin, append(env, "CUSTOMERD_BOOTSTRAP_TOKEN=another-token-0123456789")...)
	p.waitLog(t, "the store has a partner; CUSTOMERD_BOOTSTRAP_TOKEN ignored")
	base = "http://" + p.waitLog(t, "customerd started")["addr"].(string)
	pos = afterRestart(t, base, id, pos)
	p.stop(t)

	// The read models lost (the JetStream consumers have acknowledged
	// everything already): they are refilled from the event store.
	for _, f := range []string{"readmodels.db", "readmodels.db-wal", "readmodels.db-shm"} {
		if err := os.Remove(filepath.Join(dataDir, f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	p = startBinary(t, bin, env...)
	base = "http://" + p.waitLog(t, "customerd started")["addr"].(string)
	wantReadModels(t, base, id, pos)
	p.stop(t)
}

// The production-like setup: PostgreSQL and an external NATS, on a stream
// and subject root of the test's own.
func TestBinaryPostgresWalkSurvivesRestart(t *testing.T) {
	bin := buildBinary(t)
	dbURL := testenv.PostgresSchema(t)
	stream := testenv.UniqueName("CUSTOMERD_")
	root := strings.ToLower(stream)
	t.Cleanup(func() {
		nc, err := nats.Connect(testenv.NATSURL())
		if err != nil {
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		_ = js.DeleteStream(context.Background(), stream)
	})
	env := []string{"CUSTOMERD_ADDR=127.0.0.1:0", "CUSTOMERD_DATA_DIR=" + t.TempDir(),
		"CUSTOMERD_DATABASE_URL=" + dbURL, "CUSTOMERD_NATS_URL=" + testenv.NATSURL(),
		"CUSTOMERD_NATS_STREAM=" + stream, "CUSTOMERD_NATS_SUBJECT_ROOT=" + root,
		"CUSTOMERD_BOOTSTRAP_TOKEN=" + bootstrapToken}

	p := startBinary(t, bin, env...)
	p.waitLog(t, "bootstrapped an empty store")
	base := "http://" + p.waitLog(t, "customerd started")["addr"].(string)
	id, pos := walk(t, base)
	checkRunningService(t, base, pos)

	// The events went to the test's own stream, on its subject root.
	nc, err := nats.Connect(testenv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	str, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	msg, err := str.GetLastMsgForSubject(ctx, root+".*.order.created")
	if err != nil || !bytes.Contains(msg.Data, []byte(id)) {
		t.Fatalf("last order.created on %s: %v", stream, err)
	}
	wantShutdownOrder(t, p.stop(t), true)

	p = startBinary(t, bin, append(env, "CUSTOMERD_BOOTSTRAP_TOKEN=another-token-0123456789")...)
	p.waitLog(t, "the store has a partner; CUSTOMERD_BOOTSTRAP_TOKEN ignored")
	base = "http://" + p.waitLog(t, "customerd started")["addr"].(string)
	afterRestart(t, base, id, pos)
	p.stop(t)
}

// A bootstrap token too short to be a secret is refused before anything
// starts.
func TestShortBootstrapTokenIsRefused(t *testing.T) {
	env := map[string]string{"CUSTOMERD_DATA_DIR": t.TempDir(), "CUSTOMERD_BOOTSTRAP_TOKEN": "tooshort"}
	var stderr bytes.Buffer
	if code := run(nil, func(k string) string { return env[k] }, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "CUSTOMERD_BOOTSTRAP_TOKEN must have at least 16 characters") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

// Until its components run, the process is not ready, and /readyz says
// which ones are missing; /metrics already answers.
func TestNotReadyUntilComponentsRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := LoadConfig(nil, func(k string) string {
		return map[string]string{"CUSTOMERD_ADDR": "127.0.0.1:0", "CUSTOMERD_NATS_LISTEN": "127.0.0.1:0",
			"CUSTOMERD_DATA_DIR": t.TempDir()}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, err := NewApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()

	got := call(t, "GET", srv.URL+"/readyz", "", "")
	var rz struct {
		Status string
		Checks map[string]string
	}
	got.decode(t, &rz)
	if got.status != http.StatusServiceUnavailable || got.header.Get("Retry-After") == "" || rz.Status != "unavailable" ||
		rz.Checks["store"] != "ok" || rz.Checks["nats"] != "ok" ||
		rz.Checks["projector customer_list"] != "not running" || rz.Checks["relay"] != "not running" {
		t.Fatalf("/readyz before Run: %d %s", got.status, got.body)
	}
	if m := call(t, "GET", srv.URL+"/metrics", "", ""); m.status != http.StatusOK ||
		!strings.Contains(string(m.body), "customers_store_head_position 0") {
		t.Fatalf("/metrics before Run: %d %s", m.status, m.body)
	}
}
