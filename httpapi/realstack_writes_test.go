package httpapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// TestRealStackEveryWrite sends every write of the contract through the real
// server on each backend and checks what a client sees: the status, the
// answer's position, and the effect in later reads.
func TestRealStackEveryWrite(t *testing.T) { forEachBackend(t, testEveryWrite) }

func testEveryWrite(t *testing.T, rs *realStack) {
	f := rs.f
	_, admin := rs.mkUser("A", "admin@a.example")
	var last int64
	call := func(method, path, body string, want int) map[string]any {
		t.Helper()
		got := f.do(t, method, path, admin, body)
		if got.status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, got.status, got.body, want)
		}
		var m map[string]any
		if err := json.Unmarshal(got.body, &m); err != nil {
			t.Fatalf("%s %s answered %s: %v", method, path, got.body, err)
		}
		if method != "GET" {
			pos, _ := m["position"].(float64)
			if int64(pos) <= last {
				t.Fatalf("%s %s: position %v, want above %d", method, path, m["position"], last)
			}
			last = int64(pos)
		}
		return m
	}
	customer := func(id string) map[string]any { return call("GET", "/v1/customers/"+id, "", 200) }

	a := call("POST", "/v1/customers", `{"companyName":"Alpha","primaryDomain":"alpha.example","relationship":"direct-bill"}`, 201)["id"].(string)
	b := call("POST", "/v1/customers", `{"companyName":"Bravo","primaryDomain":"bravo.example","relationship":"indirect-reseller"}`, 201)["id"].(string)
	call("POST", "/v1/customers/"+a+"/relationships", `{"relationship":"indirect-reseller"}`, 200)
	if rels := customer(a)["relationships"].([]any); len(rels) != 2 {
		t.Fatalf("relationships %v, want both", rels)
	}

	// Orders: create, complete one, cancel another; a second move is 409.
	order := func() string {
		return call("POST", "/v1/customers/"+a+"/orders", `{"catalog":"software","billingCycle":"annual","lineItems":[{"offerId":"o-1","quantity":3,"termDuration":"P1Y"}]}`, 201)["id"].(string)
	}
	o1, o2 := order(), order()
	if got := call("POST", "/v1/customers/"+a+"/orders/"+o1+"/complete", "", 200); got["status"] != "completed" {
		t.Fatalf("complete answered %v", got)
	}
	if got := call("POST", "/v1/customers/"+a+"/orders/"+o2+"/cancel", "", 200); got["status"] != "cancelled" {
		t.Fatalf("cancel answered %v", got)
	}
	if got := f.do(t, "POST", "/v1/customers/"+a+"/orders/"+o1+"/cancel", admin, ""); got.status != 409 {
		t.Fatalf("cancelling a completed order: %d %s", got.status, got.body)
	}
	var statuses []string
	for _, o := range call("GET", "/v1/customers/"+a+"/orders", "", 200)["items"].([]any) {
		statuses = append(statuses, o.(map[string]any)["status"].(string))
	}
	slices.Sort(statuses)
	if !slices.Equal(statuses, []string{"cancelled", "completed"}) {
		t.Fatalf("order statuses %v", statuses)
	}

	// Tags: catalog, per-customer and bulk assignment, rename, delete.
	call("POST", "/v1/tags", `{"name":"Renewal Q3"}`, 201)
	call("POST", "/v1/customers/"+a+"/tags", `{"add":["renewal q3","New One"]}`, 200)
	if tags := fmt.Sprint(customer(a)["tags"]); tags != "[New One Renewal Q3]" {
		t.Fatalf("tags of a: %s (a name matching the catalog keeps the catalog's spelling)", tags)
	}
	call("POST", "/v1/tag-assignments", fmt.Sprintf(`{"customerIds":[%q,%q],"add":["Bulk"],"remove":["New One"]}`, a, b), 200)
	call("PATCH", "/v1/tags/Bulk", `{"name":"Wholesale"}`, 200)
	call("DELETE", "/v1/tags/renewal%20q3", "", 200)
	if ta, tb := fmt.Sprint(customer(a)["tags"]), fmt.Sprint(customer(b)["tags"]); ta != "[Wholesale]" || tb != "[Wholesale]" {
		t.Fatalf("after bulk, rename and delete: a %s, b %s; want [Wholesale] each", ta, tb)
	}
	list := call("GET", fmt.Sprintf("/v1/tags?minPosition=%d", last), "", 200)["items"].([]any)
	var catalog []string
	for _, it := range list {
		m := it.(map[string]any)
		catalog = append(catalog, fmt.Sprintf("%s:%v", m["name"], m["customerCount"]))
	}
	if !slices.Equal(catalog, []string{"New One:0", "Wholesale:2"}) {
		t.Fatalf("tag catalog %v", catalog)
	}

	// Users.
	u := call("POST", "/v1/users", `{"email":"sales@a.example","role":"sales-agent"}`, 201)
	if tok, _ := u["token"].(string); len(tok) < 22 || u["role"] != "sales-agent" {
		t.Fatalf("user answer %v", u)
	}
	// The list shows every change (read your writes).
	page := call("GET", fmt.Sprintf("/v1/customers?minPosition=%d&tag=Wholesale", last), "", 200)["items"].([]any)
	if len(page) != 3 { // a twice (dual partner), b once
		t.Fatalf("list with tag Wholesale: %v", page)
	}
}
