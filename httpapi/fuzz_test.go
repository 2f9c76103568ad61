package httpapi

import (
	"strings"
	"testing"
)

// FuzzJSONHandlers sends arbitrary bodies to every JSON endpoint: no input
// may answer 500 (or panic, which the recoverer would turn into a 500).
func FuzzJSONHandlers(f *testing.F) {
	for _, seed := range []string{
		newCustomer,
		`{"id":"6f1c9a52-8f0e-4c55-9f33-0d2b8c1e4a10","companyName":"Müller GmbH","primaryDomain":"mueller.de","relationship":"indirect-reseller","billingProfile":{"companyName":"Müller","email":"a@b.de","firstName":"A","lastName":"B","defaultAddress":{"addressLine1":"x","city":"Berlin","postalCode":"10115","country":"DE"}},"tags":["vip"]}`,
		`{"relationship":"indirect-reseller"}`,
		`{"catalog":"azure","billingCycle":"monthly","lineItems":[{"offerId":"x","quantity":2,"termDuration":"P1Y"}]}`,
		`{"add":["gold"],"remove":["vip"]}`,
		`{"customerIds":["6f1c9a52-8f0e-4c55-9f33-0d2b8c1e4a10"],"add":["a"]}`,
		`{"name":"new tag"}`,
		`{"email":"x@y","role":"sales-agent"}`,
		`{"companyName":"x","billingProfile":{"defaultAddress":{"city":1}}}`,
		`{"lineItems":[{"quantity":1e400}]}`,
		`[]`, `null`, `"x"`, `{}{}`, "\xff\xfe", `{"a":`,
	} {
		f.Add(seed)
	}
	env := newSharedEnv(f)
	fx := newFixture(f, env)
	targets := []struct{ method, path string }{
		{"POST", "/v1/customers"},
		{"POST", "/v1/customers/{c}/relationships"},
		{"PUT", "/v1/customers/{c}/billing-profile"},
		{"POST", "/v1/customers/{c}/orders"},
		{"POST", "/v1/customers/{c}/orders/{o}/complete"},
		{"POST", "/v1/customers/{c}/tags"},
		{"POST", "/v1/tag-assignments"},
		{"POST", "/v1/tags"},
		{"PATCH", "/v1/tags/vip"},
		{"POST", "/v1/users"},
	}
	f.Fuzz(func(t *testing.T, body string) {
		if strings.Contains(body, "panic!") || strings.Contains(body, "internal!") || strings.Contains(body, `"block"`) {
			t.Skip("the fake's deliberate failure triggers")
		}
		r := strings.NewReplacer("{c}", fx.customerID, "{o}", fx.orderID)
		for _, tg := range targets {
			got := fx.do(t, tg.method, r.Replace(tg.path), tokAdminA, body, "If-Match", `"2"`)
			if got.status >= 500 {
				t.Fatalf("%s %s with %q: %d %s", tg.method, tg.path, body, got.status, got.body)
			}
		}
	})
}
