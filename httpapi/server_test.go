package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/prometheus/client_golang/prometheus"
)

const newCustomer = `{"companyName":"Fabrikam","primaryDomain":"fabrikam.com","relationship":"direct-bill"}`

func TestProblems(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	cases := []struct {
		name        string
		method      string
		path, body  string
		contentType string
		status      int
		field       string // the field error expected, if any
	}{
		{"malformed JSON", "POST", "/v1/customers", `{"companyName":`, "", 400, ""},
		{"not JSON", "POST", "/v1/customers", `hello`, "", 400, ""},
		{"empty body", "POST", "/v1/customers", ``, "", 400, ""},
		{"array body", "POST", "/v1/customers", `[]`, "", 400, ""},
		{"unknown field", "POST", "/v1/customers", `{"companyName":"x","colour":"red"}`, "", 400, "colour"},
		{"wrong type", "POST", "/v1/customers", `{"companyName":5}`, "", 400, "companyName"},
		{"wrong nested type", "POST", "/v1/customers", `{"companyName":"x","billingProfile":{"defaultAddress":{"city":1}}}`, "", 400, "billingProfile.defaultAddress.city"},
		{"trailing data", "POST", "/v1/customers", newCustomer + `{}`, "", 400, ""},
		{"huge number", "POST", "/v1/customers/{c}/orders", `{"catalog":"azure","billingCycle":"monthly","lineItems":[{"offerId":"x","quantity":1e30}]}`, "", 400, "lineItems.quantity"},
		{"wrong media type", "POST", "/v1/customers", newCustomer, "text/plain", 415, ""},
		{"too large", "POST", "/v1/customers", `{"companyName":"` + strings.Repeat("a", 1<<20) + `"}`, "", 413, ""},
		{"validation", "POST", "/v1/customers", `{"companyName":"  ","relationship":"direct-bill"}`, "", 422, "companyName"},
		{"bad customer id in body", "POST", "/v1/customers", `{"id":"nope","companyName":"x","relationship":"direct-bill"}`, "", 422, "id"},
		{"unknown customer", "GET", "/v1/customers/6f1c9a52-8f0e-4c55-9f33-0d2b8c1e4a10", "", "", 404, ""},
		{"customer id not a UUID", "GET", "/v1/customers/..%2f..%2fetc", "", "", 404, ""},
		{"duplicate relationship", "POST", "/v1/customers/{c}/relationships", `{"relationship":"direct-bill"}`, "", 409, ""},
		{"bad limit", "GET", "/v1/customers?limit=0", "", "", 400, "limit"},
		{"bad sort", "GET", "/v1/customers?sort=size", "", "", 400, "sort"},
		{"bad minPosition", "GET", "/v1/customers?minPosition=-1", "", "", 400, "minPosition"},
		{"bad cursor", "GET", "/v1/customers?cursor=zzz", "", "", 422, "cursor"},
		{"bad from", "GET", "/v1/activity?from=yesterday", "", "", 400, "from"},
		{"from after to", "GET", "/v1/activity?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "", "", 400, "from"},
		{"bad after", "GET", "/v1/events?after=x", "", "", 400, "after"},
		{"bulk with bad id", "POST", "/v1/tag-assignments", `{"customerIds":["x"],"add":["a"]}`, "", 422, "customerIds[0]"},
		{"unknown route", "GET", "/v1/nothing", "", "", 404, ""},
		{"wrong method", "DELETE", "/v1/customers", "", "", 405, ""},
		{"panic", "POST", "/v1/customers", `{"companyName":"panic!","relationship":"direct-bill"}`, "", 500, ""},
		{"internal error", "POST", "/v1/customers", `{"companyName":"internal!","relationship":"direct-bill"}`, "", 500, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := strings.ReplaceAll(c.path, "{c}", f.customerID)
			var headers []string
			if c.contentType != "" {
				headers = []string{"Content-Type", c.contentType}
			}
			got := f.do(t, c.method, path, tokAdminA, c.body, headers...)
			if got.status != c.status {
				t.Fatalf("status %d, want %d; body %s", got.status, c.status, got.body)
			}
			p := got.problem(t)
			if c.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != c.field) {
				t.Fatalf("errors %+v, want field %q", p.Errors, c.field)
			}
			if c.status == 500 && p.Detail != "internal error" {
				t.Fatalf("500 leaks detail %q", p.Detail)
			}
			if c.status == 405 && got.header.Get("Allow") != "GET, POST" {
				t.Fatalf("Allow = %q", got.header.Get("Allow"))
			}
			if p.CorrelationID == "" || p.CorrelationID != got.header.Get("X-Correlation-ID") {
				t.Fatalf("problem correlation id %q, header %q", p.CorrelationID, got.header.Get("X-Correlation-ID"))
			}
		})
	}
	if !strings.Contains(f.logs.String(), "hunter2") {
		t.Error("the internal error was not logged")
	}
	if !strings.Contains(f.logs.String(), "fake command panics") {
		t.Error("the panic was not logged")
	}
}

func TestCorrelationAndRequestLog(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	got := f.do(t, "GET", "/v1/customers/"+f.customerID, tokAdminA, "", "X-Correlation-ID", "abc-123")
	if got.header.Get("X-Correlation-ID") != "abc-123" {
		t.Fatalf("correlation id not echoed: %q", got.header.Get("X-Correlation-ID"))
	}
	got = f.do(t, "GET", "/healthz", "", "", "X-Correlation-ID", "bad id with spaces")
	if id := got.header.Get("X-Correlation-ID"); len(id) != 36 {
		t.Fatalf("invalid client correlation id was kept or none generated: %q", id)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["correlation_id"] == "abc-123" {
			found = true
			if rec["route"] != "GET /v1/customers/{id}" || rec["method"] != "GET" || rec["status"] != float64(200) ||
				rec["partner_id"] != partnerA || rec["duration_ms"] == nil {
				t.Fatalf("request log %v", rec)
			}
		}
	}
	if !found {
		t.Fatalf("no request log with the correlation id in %s", f.logs.String())
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	f.do(t, "POST", "/v1/customers", tokAdminA, newCustomer)
	f.do(t, "GET", "/v1/nothing", tokAdminA, "")
	got := f.do(t, "GET", "/metrics", "", "")
	for _, want := range []string{
		`customers_http_request_duration_seconds_count{route="POST /v1/customers",status_class="2xx"} 1`,
		`customers_http_request_duration_seconds_count{route="unmatched",status_class="4xx"} 1`,
	} {
		if !strings.Contains(string(got.body), want) {
			t.Errorf("metrics lack %s:\n%s", want, got.body)
		}
	}
}

func TestGetCustomerAndIfMatch(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	path := "/v1/customers/" + f.customerID
	got := f.do(t, "GET", path, tokSalesA, "")
	if got.status != 200 || got.header.Get("ETag") != `"2"` {
		t.Fatalf("GET: %d ETag %q", got.status, got.header.Get("ETag"))
	}
	var c Customer
	if err := json.Unmarshal(got.body, &c); err != nil || c.ID != f.customerID || len(c.Orders) != 1 || c.Relationships[0] != "direct-bill" {
		t.Fatalf("customer %s (%v)", got.body, err)
	}
	bp := `{"companyName":"Contoso Renamed","email":"a@contoso.com","firstName":"A","lastName":"B","defaultAddress":{"addressLine1":"1 Way","city":"Seattle","postalCode":"98052","country":"US"}}`
	for _, c := range []struct {
		ifMatch string
		status  int
	}{
		{"", 428}, {`"1"`, 412}, {`W/"2"`, 412}, {`"abc"`, 412}, {`2`, 400}, {`"1", "2"`, 400},
	} {
		var h []string
		if c.ifMatch != "" {
			h = []string{"If-Match", c.ifMatch}
		}
		got := f.do(t, "PUT", path+"/billing-profile", tokAdminA, bp, h...)
		if got.status != c.status {
			t.Fatalf("If-Match %q: status %d, want %d: %s", c.ifMatch, got.status, c.status, got.body)
		}
		got.problem(t)
	}
	if f.b.commands != 0 {
		t.Fatal("a refused update changed the customer")
	}
	got = f.do(t, "PUT", path+"/billing-profile", tokAdminA, bp, "If-Match", `"2"`)
	if got.status != 200 || got.header.Get("ETag") != `"3"` || !strings.Contains(string(got.body), `"companyName":"Contoso Renamed"`) {
		t.Fatalf("update: %d ETag %q %s", got.status, got.header.Get("ETag"), got.body)
	}
	// The same If-Match again is stale now.
	if got := f.do(t, "PUT", path+"/billing-profile", tokAdminA, bp, "If-Match", `"2"`); got.status != 412 {
		t.Fatalf("stale update: %d", got.status)
	}
}

func TestIdempotentPost(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	first := f.do(t, "POST", "/v1/customers", tokAdminA, newCustomer, "Idempotency-Key", "k1")
	if first.status != 201 || first.header.Get("Location") == "" {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	again := f.do(t, "POST", "/v1/customers", tokAdminA, newCustomer, "Idempotency-Key", "k1")
	if again.status != 201 || string(again.body) != string(first.body) ||
		again.header.Get("Location") != first.header.Get("Location") || again.header.Get("ETag") != first.header.Get("ETag") ||
		again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry answered %d %v %s, first %s", again.status, again.header, again.body, first.body)
	}
	if f.b.commands != 1 {
		t.Fatalf("%d commands ran for one request retried", f.b.commands)
	}
	other := f.do(t, "POST", "/v1/customers", tokAdminA, strings.Replace(newCustomer, "Fabrikam", "Other", 1), "Idempotency-Key", "k1")
	if other.status != 422 {
		t.Fatalf("same key, another body: %d %s", other.status, other.body)
	}
	other.problem(t)
	// Keys belong to a partner: B's k1 is a new request.
	if got := f.do(t, "POST", "/v1/customers", tokAdminB, newCustomer, "Idempotency-Key", "k1"); got.status != 201 || f.b.commands != 2 {
		t.Fatalf("other partner's key: %d, commands %d", got.status, f.b.commands)
	}
	// Failures below 500 are answers too and are replayed.
	bad := `{"companyName":"","relationship":"direct-bill"}`
	if got := f.do(t, "POST", "/v1/customers", tokAdminA, bad, "Idempotency-Key", "k2"); got.status != 422 {
		t.Fatalf("invalid: %d", got.status)
	}
	if got := f.do(t, "POST", "/v1/customers", tokAdminA, bad, "Idempotency-Key", "k2"); got.status != 422 || got.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("invalid retried: %d %v", got.status, got.header)
	}
	// A 500 is not stored: the retry runs again.
	boom := `{"companyName":"internal!","relationship":"direct-bill"}`
	for range 2 {
		if got := f.do(t, "POST", "/v1/customers", tokAdminA, boom, "Idempotency-Key", "k3"); got.status != 500 || got.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("500 retried: %d %v", got.status, got.header)
		}
	}
	if got := f.do(t, "POST", "/v1/customers", tokAdminA, newCustomer, "Idempotency-Key", strings.Repeat("x", 300)); got.status != 400 {
		t.Fatalf("overlong key: %d", got.status)
	}
}

func TestIdempotentPostInFlight(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	body := `{"companyName":"block","relationship":"direct-bill"}`
	var wg sync.WaitGroup
	var first resp
	wg.Add(1)
	go func() {
		defer wg.Done()
		first = f.do(t, "POST", "/v1/customers", tokAdminA, body, "Idempotency-Key", "slow")
	}()
	// Wait until the first request holds the key, then send the duplicate.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec, err := f.idem.Claim(context.Background(), partnerA, "slow", fingerprint("POST", "/v1/customers", []byte(body)),
			time.Now(), time.Now().Add(time.Minute), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if rec != nil {
			break
		}
		// We took the key ourselves: the first request has not arrived yet.
		if err := f.idem.Release(context.Background(), partnerA, "slow", fingerprint("POST", "/v1/customers", []byte(body))); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("first request never claimed the key")
		}
		time.Sleep(5 * time.Millisecond)
	}
	dup := f.do(t, "POST", "/v1/customers", tokAdminA, body, "Idempotency-Key", "slow")
	close(f.b.block)
	wg.Wait()
	if dup.status != 409 || dup.header.Get("Retry-After") == "" {
		t.Fatalf("in-flight duplicate: %d %v %s", dup.status, dup.header, dup.body)
	}
	if first.status != 201 || f.b.commands != 1 {
		t.Fatalf("first: %d, commands %d", first.status, f.b.commands)
	}
}

func TestMinPosition(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	created := f.do(t, "POST", "/v1/customers", tokAdminA, newCustomer)
	var ans struct{ Position int64 }
	if err := json.Unmarshal(created.body, &ans); err != nil || ans.Position == 0 {
		t.Fatalf("create answered %s", created.body)
	}
	for _, path := range []string{"/v1/customers", "/v1/tags", "/v1/activity", "/v1/customers/export"} {
		if got := f.do(t, "GET", fmt.Sprintf("%s?minPosition=%d", path, ans.Position), tokAdminA, ""); got.status != 200 {
			t.Fatalf("%s at its own write: %d %s", path, got.status, got.body)
		}
		got := f.do(t, "GET", fmt.Sprintf("%s?minPosition=%d", path, ans.Position+100), tokAdminA, "")
		if got.status != 503 || got.header.Get("Retry-After") == "" {
			t.Fatalf("%s ahead of the read model: %d %v", path, got.status, got.header)
		}
		got.problem(t)
	}
}

func TestUserCreatedTokenWorksAtOnce(t *testing.T) {
	env := newSharedEnv(t)
	f := newFixture(t, env)
	got := f.do(t, "POST", "/v1/users", tokAdminA, `{"email":"new@a","role":"sales-agent"}`)
	var u struct{ ID, Email, Role, Token string }
	if err := json.Unmarshal(got.body, &u); got.status != 201 || err != nil || u.Token == "" || u.Role != domain.RoleSalesAgent {
		t.Fatalf("create user: %d %s", got.status, got.body)
	}
	if got.header.Get("Cache-Control") != "no-store" {
		t.Error("the token answer may be cached")
	}
	// The directory has not seen the event; the miss catches up.
	if got := f.do(t, "GET", "/v1/customers", u.Token, ""); got.status != 200 {
		t.Fatalf("new token: %d", got.status)
	}
	if got := f.do(t, "GET", "/v1/activity", u.Token, ""); got.status != 403 {
		t.Fatalf("new sales agent reading activity: %d", got.status)
	}
	// The token's partner is the creator's.
	if got := f.do(t, "GET", "/v1/customers/"+f.customerID, u.Token, ""); got.status != 200 {
		t.Fatalf("new user reading own partner's customer: %d", got.status)
	}
}

// Run catches up now and then: a user added to the store (by customerctl,
// say) is in the directory before any request asks for it.
func TestDirectoryCatchesUpWithStore(t *testing.T) {
	env := newSharedEnv(t)
	store := &headCounter{Store: env.store}
	dir := NewDirectory(store)
	dir.Refresh = 20 * time.Millisecond
	var runErrs []error
	dir.OnError = func(err error) { runErrs = append(runErrs, err) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dir.Run(ctx) }()
	// The user comes after Run's second catch-up has begun (each reads the
	// head first), so only a periodic one can find it.
	for start := time.Now(); store.heads.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("Run did not catch up a second time")
		}
	}
	if _, err := addUser(ctx, env.store, domain.NewRegistry(), partnerB, "u-new", "x@b", domain.RoleSalesAgent, "followed"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if p, ok := dir.lookup(TokenHash("followed")); ok {
			if p.PartnerID != partnerB || p.Role != domain.RoleSalesAgent || p.Email != "x@b" || p.UserID != "u-new" {
				t.Fatalf("principal %+v", p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the directory did not catch up with the new user")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(runErrs) > 0 {
		t.Errorf("Run's catch-ups failed: %v", runErrs)
	}
	if _, ok, err := dir.UserByToken(context.Background(), "never-issued"); ok || err != nil {
		t.Fatalf("unknown token: %v %v", ok, err)
	}
}

// headCounter counts a store's Head calls.
type headCounter struct {
	eventstore.Store
	heads atomic.Int32
}

func (h *headCounter) Head(ctx context.Context) (int64, error) {
	h.heads.Add(1)
	return h.Store.Head(ctx)
}

func TestCustomersCSV(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	f.do(t, "POST", "/v1/customers/"+f.customerID+"/relationships", tokAdminA, `{"relationship":"indirect-reseller"}`)
	f.do(t, "POST", "/v1/customers/"+f.customerID+"/tags", tokAdminA, `{"add":["b","A"]}`)
	f.do(t, "POST", "/v1/customers", tokAdminA, `{"companyName":"=HYPERLINK(\"x\")","primaryDomain":"evil.com","relationship":"direct-bill"}`)
	got := f.do(t, "GET", "/v1/customers/export?q=nothing-matches", tokSalesA, "")
	if got.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		got.header.Get("Content-Disposition") != `attachment; filename="Customers.csv"` {
		t.Fatalf("headers %v", got.header)
	}
	id := f.customerID
	want := "\ufeffMicrosoft ID,Company name,Primary domain name,Relationship,Tags\r\n" +
		id + ",Contoso Ltd.,contoso.com,Direct bill,A; b\r\n" +
		id + ",Contoso Ltd.,contoso.com,Indirect reseller,A; b\r\n"
	body := string(got.body)
	if !strings.HasPrefix(body, "\ufeffMicrosoft ID,Company name,Primary domain name,Relationship,Tags\r\n") {
		t.Fatalf("export without BOM and header row:\n%q", body)
	}
	if !strings.Contains(body, `"'=HYPERLINK(""x"")",evil.com,Direct bill,`+"\r\n") {
		t.Fatalf("formula not neutralised:\n%q", body)
	}
	if !strings.Contains(body, want[len("\ufeffMicrosoft ID,Company name,Primary domain name,Relationship,Tags\r\n"):]) {
		t.Fatalf("dual-partner rows missing:\n%q", body)
	}
	act := f.do(t, "GET", "/v1/activity/export", tokAdminA, "")
	if !strings.HasPrefix(string(act.body), "\ufeffDate-Time,Affected customer,Customer ID,Action,Partner user,Old value,New value\r\n2026-01-02T03:04:05Z,'=cmd(),,create_customer,admin@a,,\r\n") {
		t.Fatalf("activity export %q", act.body)
	}
}

type brokenUsers struct{}

func (brokenUsers) UserByToken(context.Context, string) (Principal, bool, error) {
	return Principal{}, false, fmt.Errorf("store unreachable")
}

func TestDirectoryFailureIs503(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	cfg := f.srv.cfg
	cfg.Users = brokenUsers{}
	cfg.Registry = nil
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "Registry") {
		t.Fatalf("New with a missing dependency: %v", err)
	}
	cfg.Registry = prometheus.NewRegistry()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	f.ts = ts
	got := f.do(t, "GET", "/v1/customers", tokAdminA, "")
	if got.status != 503 || got.header.Get("Retry-After") == "" {
		t.Fatalf("broken directory: %d %v", got.status, got.header)
	}
	got.problem(t)
}
