// Package testenv gives tests isolated use of the real PostgreSQL and NATS
// servers: each test gets its own schema, dropped when it ends.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresURL is the server the tests use (CUSTOMERS_TEST_POSTGRES_URL).
func PostgresURL() string {
	if u := os.Getenv("CUSTOMERS_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// NATSURL is the NATS server the tests use (CUSTOMERS_TEST_NATS_URL).
func NATSURL() string {
	if u := os.Getenv("CUSTOMERS_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// UniqueName returns prefix followed by 12 random hex characters.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// PostgresSchema creates a fresh schema and returns a connection string whose
// search_path points at it, so everything the test creates lands there. The
// schema is dropped when the test ends. A test that cannot reach PostgreSQL
// fails; it does not skip.
func PostgresSchema(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := PostgresURL()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connecting to PostgreSQL at %s (set CUSTOMERS_TEST_POSTGRES_URL): %v", base, err)
	}
	defer conn.Close(ctx)
	schema := UniqueName("t_")
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("creating schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Logf("dropping schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Logf("dropping schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(base, schema)
}

// WithSearchPath returns connString with search_path set to schema (pgx sends
// unknown URL parameters as run-time parameters).
func WithSearchPath(connString, schema string) string {
	u, err := url.Parse(connString)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		return connString + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
