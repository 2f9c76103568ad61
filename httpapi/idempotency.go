package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"

	"github.com/partnerhub/customers/domain"
)

// IdempotencyRecord is what is kept for one (partner, Idempotency-Key).
type IdempotencyRecord struct {
	Fingerprint []byte // SHA-256 of method, path and body
	Completed   bool   // false while the first request is in flight
	Status      int
	Header      http.Header // only the headers worth replaying
	Body        []byte
}

// IdempotencyStore keeps Idempotency-Key records. Both adapters (PostgreSQL,
// SQLite) pass the same suite in idempotency_test.go.
type IdempotencyStore interface {
	// Claim takes (partnerID, key) for a new request unless a live record
	// holds it. It returns nil when the caller now owns the key, or the live
	// record: a completed one until expiresAt, an in-flight one until its lock
	// lapses (lockUntil), after which a retry with the same fingerprint may
	// take it over.
	Claim(ctx context.Context, partnerID, key string, fingerprint []byte, now, lockUntil, expiresAt time.Time) (*IdempotencyRecord, error)
	// Complete stores the answer of the request that claimed the key.
	Complete(ctx context.Context, partnerID, key string, fingerprint []byte, rec IdempotencyRecord) error
	// Release forgets an in-flight claim (the request failed), so a retry
	// runs again.
	Release(ctx context.Context, partnerID, key string, fingerprint []byte) error
	// Purge deletes records that expired before now and says how many.
	Purge(ctx context.Context, now time.Time) (int64, error)
}

// How long keys live and how long an in-flight claim blocks a duplicate.
const (
	idempotencyTTL  = 24 * time.Hour
	idempotencyLock = time.Minute
)

// replayedHeaders are stored with an answer and sent again on a replay.
var replayedHeaders = [...]string{"Content-Type", "Location", "ETag"}

func fingerprint(method, path string, body []byte) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", method, path)
	h.Write(body)
	return h.Sum(nil)
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}

// bufferedWriter holds a handler's whole answer so it can be stored before it
// is sent.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func sendRecord(w http.ResponseWriter, rec *IdempotencyRecord, replay bool) {
	for _, h := range replayedHeaders {
		if v := rec.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if replay {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
}

// idempotent runs a POST handler at most once per (partner, key): a retry
// with the same method, path and body gets the stored answer again; the same
// key with another request is 422; a duplicate while the first is still
// running is 409. Answers of 500 and above are not stored, so they can be
// retried.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, p Principal, h handlerFunc) error {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return h(w, r)
	}
	if !validIdempotencyKey(key) {
		return badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters",
			domain.FieldError{Field: "Idempotency-Key", Message: "invalid"})
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	r.Body = http.NoBody
	if len(body) > 0 {
		r.Body = readCloser{bytes.NewReader(body)}
	}
	fp := fingerprint(r.Method, r.URL.EscapedPath(), body)
	now := s.now()
	prev, err := s.cfg.Idempotency.Claim(r.Context(), p.PartnerID, key, fp, now, now.Add(idempotencyLock), now.Add(idempotencyTTL))
	if err != nil {
		return fmt.Errorf("claiming idempotency key: %w", err)
	}
	if prev != nil {
		switch {
		case !bytes.Equal(prev.Fingerprint, fp):
			return &apiError{status: http.StatusUnprocessableEntity, slug: "idempotency-key-reused",
				detail: "this Idempotency-Key was used for a different request"}
		case !prev.Completed:
			return &apiError{status: http.StatusConflict, slug: "request-in-progress",
				detail: "a request with this Idempotency-Key is still in progress", retryAfter: 1}
		}
		sendRecord(w, prev, true)
		return nil
	}
	buf := &bufferedWriter{header: http.Header{}}
	herr := h(buf, r)
	if herr != nil {
		writeError(buf, r, s.log, herr)
	}
	rec := IdempotencyRecord{Fingerprint: fp, Completed: true, Status: buf.status, Header: http.Header{}, Body: buf.body.Bytes()}
	if rec.Status == 0 {
		rec.Status = http.StatusOK
	}
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	// Detach from the client: the outcome must be recorded even when the
	// client hangs up, or its retry would run the command a second time.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if rec.Status >= 500 {
		if err := s.cfg.Idempotency.Release(ctx, p.PartnerID, key, fp); err != nil {
			s.log.ErrorContext(ctx, "releasing idempotency key", "err", err)
		}
	} else {
		for _, k := range replayedHeaders {
			if v := buf.header.Get(k); v != "" {
				rec.Header.Set(k, v)
			}
		}
		if err := s.cfg.Idempotency.Complete(ctx, p.PartnerID, key, fp, rec); err != nil {
			// The command ran; answer it, but a retry would run it again.
			s.log.ErrorContext(ctx, "storing idempotent answer", "err", err)
		}
	}
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
	return nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
