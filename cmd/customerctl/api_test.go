package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// seen is one request as the fake API received it.
type seen struct {
	Method, Path, RawPath, Query string
	Header                       http.Header
	Body                         string
}

// fakeAPI serves handler and records every request.
type fakeAPI struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newFakeAPI(t *testing.T, handler http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		handler(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// runCLI runs one invocation in-process with the given environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return out.String(), errb.String(), code
}

func apiEnv(f *fakeAPI) map[string]string {
	return map[string]string{"CUSTOMERCTL_URL": f.srv.URL, "CUSTOMERCTL_TOKEN": "tok-123"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, title, detail string, fields ...[2]string) {
	p := map[string]any{"type": "https://partnerhub.dev/problems/x", "title": title, "status": status, "detail": detail}
	var errs []map[string]string
	for _, f := range fields {
		errs = append(errs, map[string]string{"field": f[0], "message": f[1]})
	}
	if errs != nil {
		p["errors"] = errs
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

func decodeBody(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("request body %q is not a JSON object: %v", s, err)
	}
	return m
}

func assertOneLine(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr should be exactly one line, got %q", stderr)
	}
	if want != "" && !strings.Contains(stderr, want) {
		t.Errorf("stderr = %q, want it to contain %q", stderr, want)
	}
}

func TestUsageErrorsExit2WithOneLine(t *testing.T) {
	env := map[string]string{"CUSTOMERCTL_TOKEN": "t"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"customers"}, "missing subcommand"},
		{[]string{"customers", "delete"}, `unknown subcommand "delete"`},
		{[]string{"customers", "create", "--domain", "a.com", "--relationship", "direct-bill"}, "--company-name is required"},
		{[]string{"customers", "get"}, "missing argument"},
		{[]string{"customers", "get", "a", "b"}, `unexpected argument "b"`},
		{[]string{"customers", "list", "--limit", "ten"}, "invalid value"},
		{[]string{"customers", "list", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"orders", "create", "c1", "--catalog", "azure", "--billing-cycle", "monthly", "--item", "offer"}, "want offerId:quantity"},
		{[]string{"orders", "create", "c1", "--catalog", "azure", "--billing-cycle", "monthly"}, "at least one --item"},
		{[]string{"tags", "assign", "c1"}, "give --add or --remove"},
		{[]string{"activity", "export", "--from", "yesterday"}, `--from "yesterday"`},
		{[]string{"partner", "create"}, "--name is required"},
		{[]string{"user", "create", "--partner", "p", "--email", "a@b.c", "--role", "boss"}, "--role"},
		{[]string{"customers", "list", "--url", "ftp://x"}, "invalid --url"},
	} {
		stdout, stderr, code := runCLI(t, env, tc.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", tc.args, code, stderr)
		}
		if stdout != "" {
			t.Errorf("%v: stdout %q, want nothing", tc.args, stdout)
		}
		assertOneLine(t, stderr, tc.want)
	}
}

func TestHelpPrintsUsageAndExits0(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"customers", "-h"}, {"customers", "list", "-h"}, {"billing", "update", "--help"}} {
		stdout, stderr, code := runCLI(t, nil, args...)
		if code != 0 || stderr != "" {
			t.Errorf("%v: exit %d stderr %q, want 0 and nothing", args, code, stderr)
		}
		if !strings.Contains(stdout, "usage: customerctl") {
			t.Errorf("%v: stdout %q has no usage", args, stdout)
		}
	}
	stdout, _, _ := runCLI(t, nil, "customers", "list", "-h")
	if !strings.Contains(stdout, "-search-by") {
		t.Errorf("customers list -h does not list its flags: %q", stdout)
	}
}

func TestNoTokenIsAUsageError(t *testing.T) {
	_, stderr, code := runCLI(t, nil, "customers", "list")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	assertOneLine(t, stderr, "CUSTOMERCTL_TOKEN")
}

func TestCustomersCreateSendsTheContractBody(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, map[string]any{
			"id": "0b9a4b1c-6f7e-4a4c-9b1e-3c2d1e0f9a8b", "companyName": "Müller GmbH", "primaryDomain": "mueller.de",
			"relationships": []string{"direct-bill"}, "tags": []string{"Gold", "VIP"}, "orders": []any{}, "position": 42,
		})
	})
	stdout, stderr, code := runCLI(t, apiEnv(f), "customers", "create", "--company-name", "Müller GmbH", "--domain", "mueller.de",
		"--relationship", "direct-bill", "--id", "0b9a4b1c-6f7e-4a4c-9b1e-3c2d1e0f9a8b", "--tag", "VIP", "--tag", "Gold")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v1/customers" {
		t.Errorf("request %s %s, want POST /v1/customers", r.Method, r.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer tok-123" {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	body := decodeBody(t, r.Body)
	want := map[string]any{"id": "0b9a4b1c-6f7e-4a4c-9b1e-3c2d1e0f9a8b", "companyName": "Müller GmbH", "primaryDomain": "mueller.de",
		"relationship": "direct-bill", "tags": []any{"VIP", "Gold"}}
	if !jsonEqual(body, want) {
		t.Errorf("body %v, want %v", body, want)
	}
	for _, s := range []string{"0b9a4b1c-6f7e-4a4c-9b1e-3c2d1e0f9a8b", "Müller GmbH", "mueller.de", "direct-bill", "Gold; VIP", "42"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestProblemIsOneLine(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusUnprocessableEntity, "Validation failed", "the customer is not valid",
			[2]string{"primaryDomain", "must be a valid DNS name"}, [2]string{"companyName", "must not be empty"})
	})
	stdout, stderr, code := runCLI(t, apiEnv(f), "customers", "create", "--company-name", " ", "--domain", "x..y", "--relationship", "direct-bill")
	// A blank company name is caught locally as a usage error...
	if code != 2 {
		t.Fatalf("blank --company-name: exit %d, want 2", code)
	}
	// ...anything else the server judges.
	stdout, stderr, code = runCLI(t, apiEnv(f), "customers", "create", "--company-name", "A", "--domain", "x..y", "--relationship", "direct-bill")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	want := "customerctl: Validation failed: the customer is not valid (primaryDomain: must be a valid DNS name, companyName: must not be empty)\n"
	if stderr != want {
		t.Errorf("stderr\n%q\nwant\n%q", stderr, want)
	}
}

func TestNonProblemErrorIsOneLine(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>\n<body>bad gateway</body>\n</html>\n")
	})
	_, stderr, code := runCLI(t, apiEnv(f), "customers", "get", "c1")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	assertOneLine(t, stderr, "customerctl: HTTP 502 Bad Gateway: <html> <body>bad gateway</body> </html>")
}

func TestUnreachableServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	_, stderr, code := runCLI(t, map[string]string{"CUSTOMERCTL_URL": u, "CUSTOMERCTL_TOKEN": "t"}, "tags", "list")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	assertOneLine(t, stderr, "calling GET /v1/tags")
}

func TestCustomersListQueryAndTable(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"items": []map[string]any{
			{"id": "c1", "relationship": "direct-bill", "companyName": "Contoso Ltd.", "primaryDomain": "contoso.com", "tags": []string{"A", "B"}},
			{"id": "c1", "relationship": "indirect-reseller", "companyName": "Contoso Ltd.", "primaryDomain": "contoso.com", "tags": []string{}},
		}, "nextCursor": "abc"})
	})
	// Flags after the options and the --url flag override the environment.
	env := apiEnv(f)
	env["CUSTOMERCTL_URL"] = "http://127.0.0.1:1"
	stdout, stderr, code := runCLI(t, env, "customers", "list", "--q", "contoso", "--search-by", "companyName",
		"--tag", "A", "--tag", "B", "--sort", "-domain", "--limit", "2", "--url", f.srv.URL, "--token", "flagtok")
	if code != 0 {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
	r := f.requests()[0]
	if r.Method != "GET" || r.Path != "/v1/customers" {
		t.Errorf("%s %s", r.Method, r.Path)
	}
	if r.Query != "limit=2&q=contoso&searchBy=companyName&sort=-domain&tag=A&tag=B" {
		t.Errorf("query %q", r.Query)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer flagtok" {
		t.Errorf("Authorization %q: --token must win over the environment", got)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "Contoso Ltd.") || !strings.Contains(lines[1], "A; B") || !strings.Contains(lines[2], "indirect-reseller") {
		t.Errorf("table:\n%s", stdout)
	}
	if stderr != "more: --cursor abc\n" {
		t.Errorf("stderr %q", stderr)
	}
	// --json prints the server's document.
	stdout, _, code = runCLI(t, apiEnv(f), "customers", "list", "--json")
	var doc map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &doc) != nil || doc["nextCursor"] != "abc" {
		t.Errorf("--json: exit %d, stdout %q", code, stdout)
	}
}

func TestBillingUpdateUsesETagAndMergesFlags(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "GET":
			w.Header().Set("ETag", `"7"`)
			writeJSON(w, 200, map[string]any{"id": "c1", "companyName": "Contoso", "billingProfile": map[string]any{
				"companyName": "Contoso", "email": "ap@contoso.com", "firstName": "Ann", "lastName": "Lee",
				"defaultAddress": map[string]any{"addressLine1": "1 Main St", "city": "Seattle", "state": "WA", "postalCode": "98101", "country": "US"},
			}})
		case "PUT":
			if r.Header.Get("If-Match") != `"7"` {
				writeProblem(w, 412, "Precondition failed", "the customer changed since you read it")
				return
			}
			writeJSON(w, 200, map[string]any{"id": "c1", "companyName": "Contoso Inc.", "position": 9})
		}
	})
	stdout, stderr, code := runCLI(t, apiEnv(f), "billing", "update", "c1", "--company-name", "Contoso Inc.", "--city", "Redmond", "--postal-code", "98052")
	if code != 0 {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].Method != "GET" || reqs[0].Path != "/v1/customers/c1" || reqs[1].Method != "PUT" || reqs[1].Path != "/v1/customers/c1/billing-profile" {
		t.Fatalf("requests %+v", reqs)
	}
	if got := reqs[1].Header.Get("If-Match"); got != `"7"` {
		t.Errorf("If-Match %q, want the GET's ETag", got)
	}
	body := decodeBody(t, reqs[1].Body)
	addr := body["defaultAddress"].(map[string]any)
	if body["companyName"] != "Contoso Inc." || body["email"] != "ap@contoso.com" || addr["city"] != "Redmond" || addr["postalCode"] != "98052" || addr["addressLine1"] != "1 Main St" || addr["country"] != "US" {
		t.Errorf("PUT body %s: flags must override the current profile field by field", reqs[1].Body)
	}
	if !strings.Contains(stdout, "Contoso Inc.") {
		t.Errorf("stdout %q", stdout)
	}
}

func TestBillingUpdateFromFile(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" {
			w.Header().Set("ETag", `W/"3"`)
			writeJSON(w, 200, map[string]any{"id": "c1"})
			return
		}
		writeProblem(w, 412, "Precondition Failed", "the customer was changed by someone else; read it again")
	})
	path := filepath.Join(t.TempDir(), "profile.json")
	os.WriteFile(path, []byte(`{"companyName":"Fabrikam","email":"a@fabrikam.com","firstName":"A","lastName":"B","defaultAddress":{"addressLine1":"x","city":"Berlin","postalCode":"10115","country":"DE"}}`), 0o600)
	_, stderr, code := runCLI(t, apiEnv(f), "billing", "update", "c1", "--file", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1 on 412", code)
	}
	if stderr != "customerctl: Precondition Failed: the customer was changed by someone else; read it again\n" {
		t.Errorf("stderr %q", stderr)
	}
	reqs := f.requests()
	if reqs[1].Header.Get("If-Match") != `W/"3"` {
		t.Errorf("If-Match %q", reqs[1].Header.Get("If-Match"))
	}
	body := decodeBody(t, reqs[1].Body)
	if body["companyName"] != "Fabrikam" || body["defaultAddress"].(map[string]any)["city"] != "Berlin" {
		t.Errorf("PUT body %s", reqs[1].Body)
	}

	// A file with an unknown field is refused before anything is sent.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"compnyName":"typo"}`), 0o600)
	n := len(f.requests())
	_, stderr, code = runCLI(t, apiEnv(f), "billing", "update", "c1", "--file", bad)
	if code != 1 || len(f.requests()) != n+1 { // only the GET
		t.Errorf("exit %d, %d requests", code, len(f.requests())-n)
	}
	assertOneLine(t, stderr, `unknown field "compnyName"`)
}

func TestOrdersAndTagsRequests(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/orders"):
			writeJSON(w, 201, map[string]any{"id": "o1", "status": "pending", "catalog": "azure", "billingCycle": "monthly",
				"lineItems": []map[string]any{{"offerId": "DZH318Z0BQ3Q:0001", "quantity": 5, "termDuration": "P1Y"}}, "position": 3})
		default:
			writeJSON(w, 200, map[string]any{"position": 4})
		}
	})
	env := apiEnv(f)
	for _, args := range [][]string{
		{"orders", "create", "c 1", "--catalog", "azure", "--billing-cycle", "monthly", "--item", "DZH318Z0BQ3Q:0001:5:P1Y", "--item", "o2:1"},
		{"orders", "complete", "c1", "o1"},
		{"orders", "cancel", "c1", "o1"},
		{"tags", "create", "VIP"},
		{"tags", "rename", "Old name", "New/name"},
		{"tags", "delete", "New/name"},
		{"tags", "assign", "c1", "--add", "VIP", "--add", "Gold", "--remove", "Old"},
		{"customers", "add-relationship", "c1", "--relationship", "indirect-reseller"},
		{"users", "create", "--email", "s@p.com", "--role", "sales-agent"},
	} {
		if _, stderr, code := runCLI(t, env, args...); code != 0 {
			t.Fatalf("%v: exit %d stderr %q", args, code, stderr)
		}
	}
	want := []struct{ method, rawPath, body string }{
		{"POST", "/v1/customers/c%201/orders", `{"billingCycle":"monthly","catalog":"azure","lineItems":[{"offerId":"DZH318Z0BQ3Q:0001","quantity":5,"termDuration":"P1Y"},{"offerId":"o2","quantity":1}]}`},
		{"POST", "/v1/customers/c1/orders/o1/complete", ""},
		{"POST", "/v1/customers/c1/orders/o1/cancel", ""},
		{"POST", "/v1/tags", `{"name":"VIP"}`},
		{"PATCH", "/v1/tags/Old%20name", `{"name":"New/name"}`},
		{"DELETE", "/v1/tags/New%2Fname", ""},
		{"POST", "/v1/customers/c1/tags", `{"add":["VIP","Gold"],"remove":["Old"]}`},
		{"POST", "/v1/customers/c1/relationships", `{"relationship":"indirect-reseller"}`},
		{"POST", "/v1/users", `{"email":"s@p.com","role":"sales-agent"}`},
	}
	reqs := f.requests()
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, w := range want {
		r := reqs[i]
		if r.Method != w.method || r.RawPath != w.rawPath || strings.TrimSpace(r.Body) != w.body {
			t.Errorf("request %d: %s %s %s\nwant      %s %s %s", i, r.Method, r.RawPath, r.Body, w.method, w.rawPath, w.body)
		}
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			t.Errorf("request %d: Authorization %q", i, r.Header.Get("Authorization"))
		}
	}
}

func TestCustomersExportStreamsToFile(t *testing.T) {
	csv := "\ufeffMicrosoft ID,Company name,Primary domain name,Relationship,Tags\r\nc1,\"Contoso, Ltd.\",contoso.com,Direct bill,A; B\r\n"
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		io.WriteString(w, csv)
	})
	dir := t.TempDir()
	out := filepath.Join(dir, "Customers.csv")
	stdout, stderr, code := runCLI(t, apiEnv(f), "customers", "export", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	got, err := os.ReadFile(out)
	if err != nil || string(got) != csv {
		t.Errorf("file %q (%v), want the server's bytes %q", got, err, csv)
	}
	r := f.requests()[0]
	if r.Method != "GET" || r.Path != "/v1/customers/export" || r.Header.Get("Accept") != "text/csv" {
		t.Errorf("request %s %s Accept %q", r.Method, r.Path, r.Header.Get("Accept"))
	}
	// -o - writes to stdout.
	stdout, _, code = runCLI(t, apiEnv(f), "customers", "export", "-o", "-")
	if code != 0 || stdout != csv {
		t.Errorf("-o -: exit %d stdout %q", code, stdout)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestActivityExportFailureLeavesNoFile(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, 403, "Forbidden", "sales agents cannot export the activity log")
	})
	out := filepath.Join(t.TempDir(), "activity.csv")
	_, stderr, code := runCLI(t, apiEnv(f), "activity", "export", "--from", "2025-01-01", "--to", "2025-02-01T00:00:00+01:00", "-o", out)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	if stderr != "customerctl: Forbidden: sales agents cannot export the activity log\n" {
		t.Errorf("stderr %q", stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output file exists after a failure: %v", err)
	}
	r := f.requests()[0]
	if r.Path != "/v1/activity/export" || r.Query != "from=2025-01-01T00%3A00%3A00Z&to=2025-01-31T23%3A00%3A00Z" {
		t.Errorf("request %s?%s", r.Path, r.Query)
	}
}
