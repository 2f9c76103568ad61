package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

type ctxKey int

const (
	keyState ctxKey = iota
)

// reqState travels in the context of every request: the outer middleware
// creates it, the per-route wrapper fills in the route pattern and the user.
type reqState struct {
	correlationID string
	pattern       string
	principal     *Principal
}

func stateOf(ctx context.Context) *reqState {
	s, _ := ctx.Value(keyState).(*reqState)
	return s
}

// CorrelationID returns the request's correlation id, or "".
func CorrelationID(ctx context.Context) string {
	if s := stateOf(ctx); s != nil {
		return s.correlationID
	}
	return ""
}

// validCorrelationID accepts what a well-behaved client or proxy sends:
// 1 to 128 visible ASCII characters. Anything else is replaced, so that logs
// and headers never carry client-chosen control characters.
func validCorrelationID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Metrics is the HTTP request metrics collector. Register it on a
// *prometheus.Registry (it is a prometheus.Collector).
type Metrics struct {
	latency *prometheus.HistogramVec
}

// NewMetrics returns the request metrics: a latency histogram by route
// pattern and status class (2xx, 4xx, ...).
func NewMetrics() *Metrics {
	return &Metrics{latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "customers",
		Subsystem: "http",
		Name:      "request_duration_seconds",
		Help:      "HTTP request latency by route pattern and status class.",
		Buckets:   prometheus.DefBuckets,
	}, []string{"route", "status_class"})}
}

func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { m.latency.Describe(ch) }
func (m *Metrics) Collect(ch chan<- prometheus.Metric) { m.latency.Collect(ch) }

func (m *Metrics) observe(route string, status int, d time.Duration) {
	m.latency.WithLabelValues(route, strconv.Itoa(status/100)+"xx").Observe(d.Seconds())
}

// outer wraps the whole mux: correlation id, panic recovery, request log and
// metrics. It sees every request, routed or not.
func (s *Server) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cid := r.Header.Get("X-Correlation-ID")
		if !validCorrelationID(cid) {
			cid = uuid.NewString()
		}
		st := &reqState{correlationID: cid, pattern: "unmatched"}
		r = r.WithContext(context.WithValue(r.Context(), keyState, st))
		w.Header().Set("X-Correlation-ID", cid)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request",
					"correlation_id", cid, "panic", v, "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeError(rec, r, s.log, errors.New("panic"))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			s.metrics.observe(st.pattern, status, d)
			attrs := []any{"correlation_id", cid, "method", r.Method, "route", st.pattern,
				"status", status, "duration_ms", float64(d.Microseconds()) / 1000}
			if st.principal != nil {
				attrs = append(attrs, "partner_id", st.principal.PartnerID, "user_id", st.principal.UserID)
			}
			s.log.LogAttrs(r.Context(), levelFor(status), "http request", argsToAttrs(attrs)...)
		}()
		next.ServeHTTP(rec, r)
	})
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}

func argsToAttrs(args []any) []slog.Attr {
	out := make([]slog.Attr, 0, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		out = append(out, slog.Any(args[i].(string), args[i+1]))
	}
	return out
}
