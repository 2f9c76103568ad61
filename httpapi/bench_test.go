package httpapi

import (
	"fmt"
	"testing"
)

// BenchmarkGetCustomer is one authenticated GET through the whole middleware
// chain (correlation id, log, metrics, auth, role check) over loopback HTTP.
func BenchmarkGetCustomer(b *testing.B) {
	f := newFixture(b, newSharedEnv(b))
	path := "/v1/customers/" + f.customerID
	for b.Loop() {
		if got := f.do(b, "GET", path, tokAdminA, ""); got.status != 200 {
			b.Fatal(got.status)
		}
	}
}

// BenchmarkIdempotentPost is a POST with a fresh Idempotency-Key each time:
// claim and complete in the SQLite store around the command.
func BenchmarkIdempotentPost(b *testing.B) {
	f := newFixture(b, newSharedEnv(b))
	i := 0
	for b.Loop() {
		i++
		if got := f.do(b, "POST", "/v1/tags", tokAdminA, fmt.Sprintf(`{"name":"t%d"}`, i), "Idempotency-Key", fmt.Sprint("k", i)); got.status != 201 {
			b.Fatal(got.status, string(got.body))
		}
	}
}

// BenchmarkIdempotentReplay answers a retried POST from the store.
func BenchmarkIdempotentReplay(b *testing.B) {
	f := newFixture(b, newSharedEnv(b))
	f.do(b, "POST", "/v1/tags", tokAdminA, `{"name":"once"}`, "Idempotency-Key", "same")
	for b.Loop() {
		if got := f.do(b, "POST", "/v1/tags", tokAdminA, `{"name":"once"}`, "Idempotency-Key", "same"); got.status != 201 {
			b.Fatal(got.status)
		}
	}
}
