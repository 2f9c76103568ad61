package httpapi

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestRealStackSearchAndExport runs the search cases users meet and the
// Customers.csv contract through the real server, on each backend.
func TestRealStackSearchAndExport(t *testing.T) { forEachBackend(t, testRealStackSearchAndExport) }

func testRealStackSearchAndExport(t *testing.T, rs *realStack) {
	f := rs.f
	_, admin := rs.mkUser("A", "admin@a.example")
	_, other := rs.mkUser("B", "admin@b.example")
	var last int64
	post := func(path, body string) map[string]any {
		t.Helper()
		got := f.do(t, "POST", path, admin, body)
		if got.status != 200 && got.status != 201 {
			t.Fatalf("POST %s %s: %d %s", path, body, got.status, got.body)
		}
		var out map[string]any
		if err := json.Unmarshal(got.body, &out); err != nil {
			t.Fatal(err)
		}
		if p, ok := out["position"].(float64); ok {
			last = int64(p)
		}
		return out
	}
	create := func(name, dom, rel string, extra ...string) string {
		t.Helper()
		body := fmt.Sprintf(`{"companyName":%q,"primaryDomain":%q,"relationship":%q%s}`, name, dom, rel, strings.Join(extra, ""))
		return post("/v1/customers", body)["id"].(string)
	}
	mullerAG := create("Muller AG", "muller-ag.example", "direct-bill", `,"tags":["Gold"]`)
	mullerGmbH := create("Müller GmbH", "mueller-gmbh.example", "indirect-reseller")
	const knownID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	contoso := create("Contoso Ltd.", "contoso.com", "direct-bill", `,"id":"`+strings.ToUpper(knownID)+`","tags":["Gold","beta"]`)
	post("/v1/customers/"+contoso+"/relationships", `{"relationship":"indirect-reseller"}`)
	evil := create(`=HYPERLINK("http://x")`, "evil.example", "direct-bill", `,"tags":["-1+1"]`)
	quoted := create(`Fabrikam, "The Best" Inc.`, "fabrikam.example", "direct-bill")
	gebr := create("Gebrüder Müller KG", "gebr-mueller.example", "direct-bill")
	if contoso != knownID {
		t.Fatalf("supplied id came back as %s", contoso)
	}
	// Partner B's customer must never show up in A's answers.
	if got := f.do(t, "POST", "/v1/customers", other, `{"companyName":"Müller B","primaryDomain":"b-mueller.example","relationship":"direct-bill"}`); got.status != 201 {
		t.Fatalf("partner B create: %d", got.status)
	}

	type item struct {
		ID, Relationship, CompanyName, PrimaryDomain string
		Tags                                         []string
	}
	type page struct {
		Items      []item
		NextCursor string
	}
	list := func(query string) page {
		t.Helper()
		got := f.do(t, "GET", fmt.Sprintf("/v1/customers?minPosition=%d&%s", last, query), admin, "")
		if got.status != 200 {
			t.Fatalf("GET /v1/customers?%s: %d %s", query, got.status, got.body)
		}
		var p page
		if err := json.Unmarshal(got.body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rows := func(query string) []string {
		t.Helper()
		var out []string
		for _, it := range list(query).Items {
			out = append(out, it.ID+"/"+it.Relationship)
		}
		return out
	}
	expect := func(query string, want ...string) {
		t.Helper()
		if got := rows(query); !slices.Equal(got, want) {
			t.Errorf("GET /v1/customers?%s\n got %v\nwant %v", query, got, want)
		}
	}
	d, i := "/direct-bill", "/indirect-reseller"
	expect("q="+url.QueryEscape("müller"), gebr+d, mullerAG+d, mullerGmbH+i)
	expect("q=muller&searchBy=companyName", gebr+d, mullerAG+d, mullerGmbH+i)
	expect("q="+url.QueryEscape("MÜLLER G"), mullerGmbH+i)
	expect("q=ntoso.c&searchBy=domain", contoso+d, contoso+i)
	expect("q=ntoso.c&searchBy=companyName")
	expect("q=3F2504&searchBy=id", contoso+d, contoso+i)
	expect("q=3f2504", contoso+d, contoso+i)
	expect("q=gol&searchBy=tag", contoso+d, contoso+i, mullerAG+d)
	expect("q=BETA", contoso+d, contoso+i)
	expect("tag=gold&tag=Beta", contoso+d, contoso+i)
	expect("tag=gold&relationship=indirect-reseller", contoso+i)
	expect("tag=no-such-tag")
	expect("q=contoso", contoso+d, contoso+i) // a dual partner appears once per relationship
	expect("q=%25")                           // LIKE wildcards are literal
	if got := list("q=contoso").Items[0].Tags; !slices.Equal(got, []string{"beta", "Gold"}) {
		t.Errorf("tags = %v, want sorted by name as the CSV has them", got)
	}
	for _, bad := range []string{"sort=name", "searchBy=email", "limit=0", "limit=501", "cursor=xyz", "relationship=both"} {
		got := f.do(t, "GET", "/v1/customers?"+bad, admin, "")
		if got.status != 400 && got.status != 422 {
			t.Errorf("GET /v1/customers?%s: %d, want 400 or 422", bad, got.status)
		}
	}

	// Keyset pages stay right while rows are added and renamed between
	// them: rows seen are not repeated, rows not yet reached are not
	// skipped, and the order holds.
	for si, sort := range []string{"companyName", "-companyName", "domain", "-domain"} {
		before := rows("limit=500&sort=" + sort)
		var seen []item
		cursor := ""
		for n := 0; ; n++ {
			p := list(fmt.Sprintf("limit=2&sort=%s&cursor=%s", sort, url.QueryEscape(cursor)))
			seen = append(seen, p.Items...)
			// Between pages: a customer sorting first, one sorting last, and
			// a rename that keeps a row on its side of the cursor.
			create(fmt.Sprintf("AAA %s %d", sort, n), fmt.Sprintf("aaa-%d-%d.example", si, n), "direct-bill")
			create(fmt.Sprintf("zzz %s %d", sort, n), fmt.Sprintf("zzz-%d-%d.example", si, n), "direct-bill")
			bp := fmt.Sprintf(`{"companyName":"Fabrikam, \"The Best\" Inc. %d","email":"a@fabrikam.example","firstName":"Jo","lastName":"Doe",
				"defaultAddress":{"addressLine1":"Main St 1","city":"Berlin","postalCode":"10115","country":"DE"}}`, n)
			got := f.do(t, "PUT", "/v1/customers/"+quoted+"/billing-profile", admin, bp, "If-Match", "*")
			var pos struct{ Position int64 }
			if err := json.Unmarshal(got.body, &pos); got.status != 200 || err != nil {
				t.Fatalf("rename: %d %s", got.status, got.body)
			}
			last = max(last, pos.Position)
			if cursor = p.NextCursor; cursor == "" || n > 500 {
				break
			}
		}
		count := map[string]int{}
		for _, it := range seen {
			count[it.ID+"/"+it.Relationship]++
		}
		for k, c := range count {
			if c > 1 {
				t.Errorf("sort %s: %s seen %d times", sort, k, c)
			}
		}
		for _, k := range before {
			if count[k] != 1 {
				t.Errorf("sort %s: %s present before paging was seen %d times", sort, k, count[k])
			}
		}
		less := func(a, b item) bool {
			ka, kb := strings.ToLower(a.CompanyName), strings.ToLower(b.CompanyName)
			if strings.HasSuffix(sort, "domain") {
				ka, kb = a.PrimaryDomain, b.PrimaryDomain
			}
			if strings.HasPrefix(sort, "-") {
				ka, kb = kb, ka
			}
			return ka < kb
		}
		for k := 1; k < len(seen); k++ {
			if less(seen[k], seen[k-1]) && seen[k].ID != quoted && seen[k-1].ID != quoted {
				t.Errorf("sort %s: %q came after %q", sort, seen[k].CompanyName, seen[k-1].CompanyName)
			}
		}
	}

	// Customers.csv: the whole list whatever the query, byte for byte as
	// the SPEC says.
	export := func(query string) []byte {
		t.Helper()
		got := f.do(t, "GET", fmt.Sprintf("/v1/customers/export?minPosition=%d&%s", last, query), admin, "")
		if got.status != 200 || got.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			got.header.Get("Content-Disposition") != `attachment; filename="Customers.csv"` {
			t.Fatalf("export: %d %v", got.status, got.header)
		}
		return got.body
	}
	whole := export("")
	if filtered := export("q=contoso&tag=Gold&relationship=direct-bill&sort=-domain&limit=1&searchBy=tag"); !bytes.Equal(filtered, whole) {
		t.Errorf("a filter on the request changed the export")
	}
	const head = "\ufeffMicrosoft ID,Company name,Primary domain name,Relationship,Tags\r\n"
	if !bytes.HasPrefix(whole, []byte(head)) || !bytes.HasSuffix(whole, []byte("\r\n")) {
		t.Fatalf("export does not start with BOM and header or end with CRLF: %q", whole[:min(len(whole), 120)])
	}
	if bytes.Count(whole, []byte("\n")) != bytes.Count(whole, []byte("\r\n")) {
		t.Errorf("export has bare LF line ends")
	}
	for _, want := range []string{
		evil + `,"'=HYPERLINK(""http://x"")",evil.example,Direct bill,'-1+1` + "\r\n",
		contoso + ",Contoso Ltd.,contoso.com,Direct bill,beta; Gold\r\n",
		contoso + ",Contoso Ltd.,contoso.com,Indirect reseller,beta; Gold\r\n",
		mullerGmbH + ",Müller GmbH,mueller-gmbh.example,Indirect reseller,\r\n",
	} {
		if !bytes.Contains(whole, []byte(want)) {
			t.Errorf("export lacks row %q", want)
		}
	}
	records, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(whole, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatalf("parsing the export: %v", err)
	}
	// Parsed back, it is the read model's list in the default order.
	var want [][]string
	want = append(want, []string{"Microsoft ID", "Company name", "Primary domain name", "Relationship", "Tags"})
	labels := map[string]string{"direct-bill": "Direct bill", "indirect-reseller": "Indirect reseller"}
	for _, it := range list("limit=500").Items {
		want = append(want, []string{it.ID, csvCell(it.CompanyName), it.PrimaryDomain, labels[it.Relationship], csvCell(strings.Join(it.Tags, "; "))})
	}
	if len(records) != len(want) {
		t.Fatalf("export has %d records, the list %d", len(records), len(want))
	}
	for k := range want {
		if !slices.Equal(records[k], want[k]) {
			t.Errorf("export record %d = %q, list says %q", k, records[k], want[k])
		}
	}
	if bytes.Contains(whole, []byte("Müller B")) {
		t.Errorf("export shows another partner's customer")
	}

	// The activity range is bounded: over 366 days is refused, naming from.
	got := f.do(t, "GET", "/v1/activity?from=2024-01-01T00:00:00Z&to=2025-01-02T00:00:01Z", admin, "")
	if p := got.problem(t); got.status != 400 || len(p.Errors) != 1 || p.Errors[0].Field != "from" {
		t.Errorf("activity over 366 days: %d %s", got.status, got.body)
	}
	if got := f.do(t, "GET", "/v1/activity?from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", admin, ""); got.status != 200 {
		t.Errorf("activity over exactly 366 days: %d %s", got.status, got.body)
	}
}
