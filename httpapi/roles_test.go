package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestRoles calls every endpoint as each kind of caller, each call on a fresh
// fixture, and checks the exact status (SPEC "Tenancy and roles"). Another
// partner's customer is 404, never 403.
func TestRoles(t *testing.T) {
	env := newSharedEnv(t)
	type row struct {
		method, path, body  string
		headers             []string
		admin, sales, other int // other: partner B's admin
	}
	const (
		ok      = http.StatusOK
		created = http.StatusCreated
		forbid  = http.StatusForbidden
		missing = http.StatusNotFound
	)
	cust := "/v1/customers/{c}"
	order := cust + "/orders/{o}"
	rows := []row{
		{"GET", "/healthz", "", nil, ok, ok, ok},
		{"GET", "/readyz", "", nil, ok, ok, ok},
		{"GET", "/metrics", "", nil, ok, ok, ok},
		{"GET", "/v1/openapi.json", "", nil, ok, ok, ok},
		{"POST", "/v1/customers", `{"companyName":"Fabrikam","primaryDomain":"fabrikam.com","relationship":"direct-bill"}`, nil, created, created, created},
		{"GET", "/v1/customers", "", nil, ok, ok, ok},
		{"GET", "/v1/customers/export", "", nil, ok, ok, ok},
		{"GET", cust, "", nil, ok, ok, missing},
		{"POST", cust + "/relationships", `{"relationship":"indirect-reseller"}`, nil, ok, ok, missing},
		{"PUT", cust + "/billing-profile", `{"companyName":"Contoso","email":"a@contoso.com","firstName":"A","lastName":"B","defaultAddress":{"addressLine1":"1 Way","city":"Seattle","postalCode":"98052","country":"US"}}`,
			[]string{"If-Match", `"2"`}, ok, ok, missing},
		{"POST", cust + "/orders", `{"catalog":"azure","billingCycle":"monthly","lineItems":[{"offerId":"x","quantity":2}]}`, nil, created, created, missing},
		{"GET", cust + "/orders", "", nil, ok, ok, missing},
		{"POST", order + "/complete", "", nil, ok, ok, missing},
		{"POST", order + "/cancel", "", nil, ok, ok, missing},
		{"POST", cust + "/tags", `{"add":["gold"]}`, nil, ok, forbid, missing},
		{"POST", "/v1/tag-assignments", `{"customerIds":["{c}"],"add":["gold"]}`, nil, ok, forbid, missing},
		{"GET", "/v1/tags", "", nil, ok, ok, ok},
		{"POST", "/v1/tags", `{"name":"new"}`, nil, created, forbid, created},
		{"PATCH", "/v1/tags/vip", `{"name":"VIP+"}`, nil, ok, forbid, missing},
		{"DELETE", "/v1/tags/vip", "", nil, ok, forbid, missing},
		{"GET", "/v1/activity", "", nil, ok, forbid, ok},
		{"GET", "/v1/activity/export", "", nil, ok, forbid, ok},
		{"GET", "/v1/events", "", nil, ok, forbid, ok},
		{"POST", "/v1/users", `{"email":"new@x","role":"sales-agent"}`, nil, created, forbid, created},
	}
	covered := map[string]bool{}
	for _, rw := range rows {
		pattern := rw.method + " " + strings.NewReplacer("{c}", "{id}", "{o}", "{orderId}").Replace(rw.path)
		pattern = strings.Replace(pattern, "/v1/tags/vip", "/v1/tags/{name}", 1)
		covered[pattern] = true
		public := !strings.HasPrefix(rw.path, "/v1/") || rw.path == "/v1/openapi.json"
		callers := []struct {
			name, token string
			want        int
		}{
			{"admin-agent", tokAdminA, rw.admin},
			{"sales-agent", tokSalesA, rw.sales},
			{"other-partner", tokAdminB, rw.other},
			{"no-token", "", http.StatusUnauthorized},
			{"bad-token", "not-a-token", http.StatusUnauthorized},
		}
		for _, c := range callers {
			want := c.want
			if public {
				want = rw.admin
			}
			t.Run(pattern+"/"+c.name, func(t *testing.T) {
				f := newFixture(t, env)
				r := strings.NewReplacer("{c}", f.customerID, "{o}", f.orderID)
				got := f.do(t, rw.method, r.Replace(rw.path), c.token, r.Replace(rw.body), rw.headers...)
				if got.status != want {
					t.Fatalf("%s %s as %s: status %d, want %d; body %s", rw.method, rw.path, c.name, got.status, want, got.body)
				}
				if want >= 400 {
					got.problem(t)
				}
				if want == http.StatusUnauthorized && !strings.HasPrefix(got.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 without WWW-Authenticate: Bearer (got %q)", got.header.Get("WWW-Authenticate"))
				}
				if want >= 400 && f.b.commands != 0 {
					t.Fatalf("a refused request ran %d commands", f.b.commands)
				}
				if rw.method != "GET" && want < 300 && rw.path != "/metrics" && !strings.Contains(string(got.body), `"position":`) {
					t.Fatalf("command answer without position: %s", got.body)
				}
			})
		}
	}
	// Every registered route has a row: a new endpoint cannot skip this test.
	f := newFixture(t, env)
	for _, p := range f.srv.Routes() {
		if !covered[p] {
			t.Errorf("route %s has no row in TestRoles", p)
		}
	}
}
