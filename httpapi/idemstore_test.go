package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerhub/customers/internal/testenv"
)

// postgresIdempotency opens the PostgreSQL store over a pool of at most
// maxConns connections (0: pgx's default) to the database at url.
func postgresIdempotency(t *testing.T, url string, maxConns int32) (*SQLIdempotency, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := NewPostgresIdempotency(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, pool
}

// idempotencyStores runs fn against every adapter, each on a fresh database.
func idempotencyStores(t *testing.T, fn func(t *testing.T, open func() IdempotencyStore)) {
	t.Run("postgres", func(t *testing.T) {
		url := testenv.PostgresSchema(t)
		fn(t, func() IdempotencyStore {
			s, _ := postgresIdempotency(t, url, 0)
			return s
		})
	})
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "api.db")
		fn(t, func() IdempotencyStore {
			s, err := OpenSQLiteIdempotency(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

func TestIdempotencyStore(t *testing.T) {
	idempotencyStores(t, func(t *testing.T, open func() IdempotencyStore) {
		ctx := context.Background()
		s := open()
		t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		fp := []byte("fingerprint-1")
		claim := func(partner, key string, fp []byte, now time.Time) *IdempotencyRecord {
			t.Helper()
			rec, err := s.Claim(ctx, partner, key, fp, now, now.Add(time.Minute), now.Add(24*time.Hour))
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			return rec
		}

		if rec := claim("p1", "k", fp, t0); rec != nil {
			t.Fatalf("first claim found a record: %+v", rec)
		}
		// A duplicate while in flight sees the in-flight record.
		rec := claim("p1", "k", fp, t0.Add(time.Second))
		if rec == nil || rec.Completed || !bytes.Equal(rec.Fingerprint, fp) {
			t.Fatalf("in-flight duplicate got %+v", rec)
		}
		// The same key of another partner is another key.
		if rec := claim("p2", "k", []byte("other"), t0); rec != nil {
			t.Fatalf("other partner's claim found %+v", rec)
		}
		want := IdempotencyRecord{Fingerprint: fp, Completed: true, Status: 201,
			Header: http.Header{"Location": {"/v1/customers/x"}, "Etag": {`"1"`}}, Body: []byte(`{"position":3}`)}
		if err := s.Complete(ctx, "p1", "k", fp, want); err != nil {
			t.Fatal(err)
		}
		rec = claim("p1", "k", fp, t0.Add(time.Hour))
		if rec == nil || !rec.Completed || rec.Status != 201 || string(rec.Body) != `{"position":3}` ||
			rec.Header.Get("Location") != "/v1/customers/x" || rec.Header.Get("ETag") != `"1"` {
			t.Fatalf("replay record = %+v", rec)
		}
		// Another body under the same key: the stored record comes back, with
		// its own fingerprint, for the caller to refuse.
		rec = claim("p1", "k", []byte("fingerprint-2"), t0.Add(time.Hour))
		if rec == nil || !bytes.Equal(rec.Fingerprint, fp) {
			t.Fatalf("reuse with another body got %+v", rec)
		}

		// Keys survive a restart.
		s2 := open()
		rec, err := s2.Claim(ctx, "p1", "k", fp, t0.Add(2*time.Hour), t0.Add(2*time.Hour+time.Minute), t0.Add(26*time.Hour))
		if err != nil || rec == nil || !rec.Completed || rec.Status != 201 {
			t.Fatalf("after reopening: %+v, %v", rec, err)
		}

		// A released claim can be taken again.
		if rec := claim("p1", "gone", fp, t0); rec != nil {
			t.Fatal("fresh key found a record")
		}
		if err := s.Release(ctx, "p1", "gone", fp); err != nil {
			t.Fatal(err)
		}
		if rec := claim("p1", "gone", fp, t0); rec != nil {
			t.Fatalf("released key still held: %+v", rec)
		}
		// An in-flight claim whose lock lapsed is taken over by the same
		// request, not by another one.
		if rec := claim("p1", "gone", []byte("else"), t0.Add(2*time.Minute)); rec == nil {
			t.Fatal("a different request took over a lapsed claim")
		}
		if rec := claim("p1", "gone", fp, t0.Add(2*time.Minute)); rec != nil {
			t.Fatalf("lapsed claim not taken over: %+v", rec)
		}

		// Expired records are purged, live ones kept.
		n, err := s.Purge(ctx, t0.Add(24*time.Hour+time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 { // p1/k and p2/k, claimed at t0; p1/gone was taken over later
			t.Fatalf("purged %d records, want 2", n)
		}
		if rec := claim("p2", "k", []byte("new"), t0.Add(25*time.Hour)); rec != nil {
			t.Fatalf("expired key still held: %+v", rec)
		}
		if rec := claim("p1", "k", []byte("new"), t0.Add(25*time.Hour)); rec != nil {
			t.Fatalf("expired completed key still held: %+v", rec)
		}
	})
}

func TestIdempotencyStoreConcurrentClaims(t *testing.T) {
	idempotencyStores(t, func(t *testing.T, open func() IdempotencyStore) {
		s := open()
		now := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec, err := s.Claim(context.Background(), "p", "race", []byte("fp"), now, now.Add(time.Minute), now.Add(time.Hour))
				if err != nil {
					t.Error(err)
					return
				}
				if rec == nil {
					mu.Lock()
					winners++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if winners != 1 {
			t.Fatalf("%d concurrent claims won, want exactly 1", winners)
		}
	})
}

// The claim and the answer commit asynchronously on PostgreSQL, and the
// setting ends with their own statements: the connection goes back to the
// pool committing synchronously (the next user may be an append).
func TestPostgresIdempotencyAsyncEndsWithStatement(t *testing.T) {
	ctx := context.Background()
	s, pool := postgresIdempotency(t, testenv.PostgresSchema(t), 1) // every statement below on the same connection
	syncCommit := func(after string) {
		t.Helper()
		var v string
		if err := pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "on" {
			t.Fatalf("synchronous_commit = %q after %s, want on", v, after)
		}
	}
	now := time.Now()
	if rec, err := s.Claim(ctx, "p1", "k1", []byte("fp"), now, now.Add(time.Minute), now.Add(time.Hour)); err != nil || rec != nil {
		t.Fatalf("Claim = %+v, %v", rec, err)
	}
	syncCommit("a claim")
	if err := s.Complete(ctx, "p1", "k1", []byte("fp"), IdempotencyRecord{Status: http.StatusCreated, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	syncCommit("an answer")
	rec, err := s.Claim(ctx, "p1", "k1", []byte("fp"), now, now.Add(time.Minute), now.Add(time.Hour))
	if err != nil || rec == nil || !rec.Completed || rec.Status != http.StatusCreated || !bytes.Equal(rec.Body, []byte(`{}`)) {
		t.Fatalf("claim of an answered key = %+v, %v", rec, err)
	}
}
