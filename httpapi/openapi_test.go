package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestOpenAPICoversRoutes fails when a registered route is missing from
// openapi.json, or the document lists an operation no route serves.
func TestOpenAPICoversRoutes(t *testing.T) {
	f := newFixture(t, newSharedEnv(t))
	got := f.do(t, "GET", "/v1/openapi.json", "", "")
	if got.status != 200 || !bytes.Equal(got.body, openAPIDoc) {
		t.Fatalf("GET /v1/openapi.json: %d, %d bytes", got.status, len(got.body))
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(got.body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	registered := map[string]bool{}
	for _, pattern := range f.srv.Routes() {
		registered[pattern] = true
		method, path, _ := strings.Cut(pattern, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in openapi.json", pattern)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if p := strings.ToUpper(method) + " " + path; !registered[p] {
				t.Errorf("openapi.json documents %s, which no route serves", p)
			}
		}
	}
}
