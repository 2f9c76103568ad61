package httpapi

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed openapi.json
var openAPIDoc []byte

// Config lists the server's dependencies. New checks them all at once.
type Config struct {
	Commands     Commands
	Customers    CustomerReader
	CustomerList CustomerQueries
	Activity     ActivityQueries
	Events       EventFeed
	Users        Users
	Idempotency  IdempotencyStore
	// ListWaiter and ActivityWaiter wait for the customer-list and the
	// activity-log read models (minPosition).
	ListWaiter     PositionWaiter
	ActivityWaiter PositionWaiter
	// Ready reports whether the service can serve (GET /readyz).
	Ready func(ctx context.Context) error
	// Registry receives the request metrics and is served at GET /metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Optional.
	Now         func() time.Time // default time.Now
	WaitTimeout time.Duration    // minPosition wait; default 5 s
}

func (c Config) validate() error {
	var missing []string
	check := func(name string, nilValue bool) {
		if nilValue {
			missing = append(missing, name)
		}
	}
	check("Commands", c.Commands == nil)
	check("Customers", c.Customers == nil)
	check("CustomerList", c.CustomerList == nil)
	check("Activity", c.Activity == nil)
	check("Events", c.Events == nil)
	check("Users", c.Users == nil)
	check("Idempotency", c.Idempotency == nil)
	check("ListWaiter", c.ListWaiter == nil)
	check("ActivityWaiter", c.ActivityWaiter == nil)
	check("Ready", c.Ready == nil)
	check("Registry", c.Registry == nil)
	check("Logger", c.Logger == nil)
	if len(missing) > 0 {
		return fmt.Errorf("httpapi: config is missing %s", strings.Join(missing, ", "))
	}
	if c.WaitTimeout < 0 {
		return errors.New("httpapi: WaitTimeout must not be negative")
	}
	return nil
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	mux     *http.ServeMux
	handler http.Handler
	routes  []route
}

// New builds the server and registers its metrics on cfg.Registry.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = 5 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: NewMetrics(), mux: http.NewServeMux()}
	if err := cfg.Registry.Register(s.metrics); err != nil {
		return nil, fmt.Errorf("httpapi: registering metrics: %w", err)
	}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	s.mux.Handle("/", s.wrap(route{pattern: "unmatched", handle: s.fallback}))
	s.handler = s.outer(s.mux)
	return s, nil
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Routes returns the registered route patterns ("METHOD /path").
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.pattern
	}
	return out
}

// Run purges expired idempotency keys every interval until ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.cfg.Idempotency.Purge(ctx, s.now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.ErrorContext(ctx, "purging idempotency keys", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "purged idempotency keys", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Server) now() time.Time { return s.cfg.Now() }

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one line of the route table. roles nil means no authentication.
type route struct {
	pattern string
	roles   []string
	handle  handlerFunc
	summary string
}

// routeTable is the one place that says which role may call what (SPEC
// "Tenancy and roles").
func (s *Server) routeTable() []route {
	return []route{
		{"GET /healthz", nil, s.healthz, "liveness"},
		{"GET /readyz", nil, s.readyz, "readiness"},
		{"GET /metrics", nil, s.metricsHandler(), "Prometheus metrics"},
		{"GET /v1/openapi.json", nil, s.openAPI, "this API's OpenAPI document"},

		{"POST /v1/customers", anyAgent(), s.createCustomer, "create a customer"},
		{"GET /v1/customers", anyAgent(), s.searchCustomers, "list and search customers"},
		{"GET /v1/customers/export", anyAgent(), s.exportCustomers, "Customers.csv"},
		{"GET /v1/customers/{id}", anyAgent(), s.getCustomer, "one customer"},
		{"POST /v1/customers/{id}/relationships", anyAgent(), s.addRelationship, "add a relationship"},
		{"PUT /v1/customers/{id}/billing-profile", anyAgent(), s.updateBillingProfile, "replace the billing profile"},
		{"POST /v1/customers/{id}/orders", anyAgent(), s.createOrder, "create an order"},
		{"GET /v1/customers/{id}/orders", anyAgent(), s.listOrders, "the customer's orders"},
		{"POST /v1/customers/{id}/orders/{orderId}/complete", anyAgent(), s.completeOrder, "complete an order"},
		{"POST /v1/customers/{id}/orders/{orderId}/cancel", anyAgent(), s.cancelOrder, "cancel an order"},
		{"POST /v1/customers/{id}/tags", adminOnly(), s.changeCustomerTags, "assign and unassign tags"},
		{"POST /v1/tag-assignments", adminOnly(), s.assignTags, "bulk tag assignment"},
		{"GET /v1/tags", anyAgent(), s.listTags, "the tag catalog"},
		{"POST /v1/tags", adminOnly(), s.createTag, "create a tag"},
		{"PATCH /v1/tags/{name}", adminOnly(), s.renameTag, "rename a tag"},
		{"DELETE /v1/tags/{name}", adminOnly(), s.deleteTag, "delete a tag"},
		{"GET /v1/activity", adminOnly(), s.activity, "the activity log"},
		{"GET /v1/activity/export", adminOnly(), s.exportActivity, "the activity log as CSV"},
		{"GET /v1/events", adminOnly(), s.events, "the partner's event feed"},
		{"POST /v1/users", adminOnly(), s.createUser, "create a user"},
	}
}

// wrap applies authentication, the role check and, for POST, idempotency.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r.Context())
		if st == nil { // served without outer: give it its own state
			st = &reqState{}
			r = r.WithContext(context.WithValue(r.Context(), keyState, st))
		}
		st.pattern = rt.pattern
		if err := s.serve(w, r, st, rt); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, st *reqState, rt route) error {
	if rt.roles == nil {
		return rt.handle(w, r)
	}
	tok, ok := bearerToken(r)
	if !ok {
		return unauthorized("an Authorization: Bearer token is required")
	}
	p, ok, err := s.cfg.Users.UserByToken(r.Context(), tok)
	if err != nil {
		// The directory could not reach the store: not the client's fault,
		// and worth a retry.
		s.log.ErrorContext(r.Context(), "authenticating", "err", err)
		return &apiError{status: http.StatusServiceUnavailable, slug: "unavailable",
			detail: "cannot check the token right now", retryAfter: 1}
	}
	if !ok {
		return unauthorized("the bearer token is not valid")
	}
	st.principal = &p
	if !roleAllowed(p.Role, rt.roles) {
		return &apiError{status: http.StatusForbidden, slug: "forbidden",
			detail: fmt.Sprintf("the role %s may not do this", p.Role)}
	}
	if r.Method == http.MethodPost {
		return s.idempotent(w, r, p, rt.handle)
	}
	return rt.handle(w, r)
}

// fallback answers what no route matched: 405 with Allow when the path
// exists for other methods, else 404, both as problems.
func (s *Server) fallback(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pat := s.mux.Handler(probe); pat != "" && pat != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return &apiError{status: http.StatusNotFound, slug: "not-found", detail: "no such endpoint"}
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Allow", strings.Join(append(allow, http.MethodOptions), ", "))
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return &apiError{status: http.StatusMethodNotAllowed, slug: "method-not-allowed",
		detail: "the endpoint does not support " + r.Method,
		header: http.Header{"Allow": {strings.Join(allow, ", ")}}}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Ready(ctx); err != nil {
		s.log.WarnContext(r.Context(), "not ready", "err", err)
		return &apiError{status: http.StatusServiceUnavailable, slug: "not-ready",
			detail: "the service is not ready", retryAfter: 1}
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metricsHandler() handlerFunc {
	h := promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})
	return func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	}
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
	return nil
}
