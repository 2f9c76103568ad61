package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/relay"
	"github.com/partnerhub/customers/httpapi"
	"github.com/partnerhub/customers/internal/natsembed"
	"github.com/partnerhub/customers/projections"
)

// Store is what customerd needs from an event store backend.
type Store interface {
	eventstore.Store
	eventstore.Checkpoints
}

// Runner is a background component (relay, projector, user directory) that
// works until its context ends. Run returns nil on a clean stop.
type Runner interface {
	Run(ctx context.Context) error
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context) error

func (f RunnerFunc) Run(ctx context.Context) error { return f(ctx) }

// App is the wired process: the store, NATS, the relay, the projectors, the
// HTTP API. NewApp builds and connects everything; Run serves until ctx
// ends and then shuts down in order; Close releases what NewApp opened.
type App struct {
	cfg Config
	log *slog.Logger

	Store    Store
	NATS     *nats.Conn
	embedded *natsembed.Server // nil when CUSTOMERD_NATS_URL is set
	Relay    *relay.Relay
	Commands *commands.Commands
	Waiter   *projections.Waiter
	// Metrics is served at GET /metrics.
	Metrics *prometheus.Registry

	// API serves everything but the health endpoints; nil answers 404.
	API     http.Handler
	runners []*namedRunner

	listener net.Listener
	closers  []func() error // in opening order; Close runs them backwards
}

type namedRunner struct {
	name    string
	r       Runner
	running atomic.Bool // between the start of Run and its return
}

// Projector settings: batches big enough for a rebuild-like catch-up. A
// batch never waits to fill: it is what has arrived (see projections.Run),
// so its size does not delay a client's minPosition read.
const (
	projectorBatch   = 500
	idempotencyPurge = 10 * time.Minute
)

// NewApp opens the databases, starts or connects to NATS, builds the relay,
// the projectors, the command handlers and the HTTP API, bootstraps an
// empty store and binds the HTTP listener. On error everything opened so
// far is closed.
func NewApp(ctx context.Context, cfg Config, log *slog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, log: log, Metrics: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}

	reg := domain.NewRegistry()
	// The read models report their commits to the waiter, made just below
	// once the projectors exist; nothing commits before the runners start.
	var waiter *projections.Waiter
	db, err := a.openBackends(ctx, reg, func(name string, pos int64) { waiter.Committed(name, pos) })
	if err != nil {
		return nil, err
	}
	a.Store = db.store
	waiter = projections.NewWaiter(250*time.Millisecond, db.list, db.log)
	a.Waiter = waiter

	if err := a.connectNATS(); err != nil {
		return nil, err
	}
	a.Relay, err = relay.New(a.Store, a.Store, a.NATS, relay.Options{
		Stream: cfg.NATSStream, SubjectRoot: cfg.NATSSubjectRoot, PublicData: domain.PublicData,
		Logger: log.With("component", "relay")})
	if err != nil {
		return nil, err
	}
	// The projectors' consumers need the stream before the relay's first
	// publish creates it.
	if _, err := a.Relay.EnsureStream(ctx); err != nil {
		return nil, fmt.Errorf("creating JetStream stream %s: %w", cfg.NATSStream, err)
	}

	commandsTotal := newCommandCounter()
	a.Commands = commands.New(a.Store, reg, commands.WithOutcomes(func(command, outcome string) {
		commandsTotal.WithLabelValues(command, outcome).Inc()
	}))
	if err := bootstrap(ctx, a.Store, a.Commands, cfg.BootstrapToken, log); err != nil {
		return nil, err
	}

	// Stop order is the reverse of this: API helpers, index upkeep,
	// projectors, relay.
	a.AddRunner("relay", a.Relay)
	for _, p := range []projections.Projector{db.list, db.log} {
		pcfg := projections.Config{
			Stream: cfg.NATSStream, Durable: "customerd-" + p.Name(), FilterSubject: cfg.NATSSubjectRoot + ".>",
			BatchSize: projectorBatch,
			// Outside the stream's subjects, so a poison batch is not
			// captured by the stream it came from.
			PoisonSubject: cfg.NATSSubjectRoot + "_poison." + p.Name(),
			Logger:        log.With("component", "projector", "projector", p.Name()),
		}
		a.AddRunner("projector "+p.Name(), RunnerFunc(func(ctx context.Context) error {
			if err := catchUp(ctx, a.Store, p, reg, pcfg.Logger); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			return projections.Run(ctx, a.NATS, pcfg, p, reg)
		}))
	}

	if db.upkeep != nil {
		a.AddRunner("index upkeep", db.upkeep)
	}

	users := httpapi.NewDirectory(a.Store)
	users.OnError = func(err error) { log.Warn("user directory: catching up", "err", err) }
	write := httpapi.WriteSide{C: a.Commands}
	read := httpapi.ReadSide{List: db.list, Log: db.log}
	srv, err := httpapi.New(httpapi.Config{
		Commands: write, Customers: write, CustomerList: read, Activity: read,
		Events: httpapi.StoreFeed{Store: a.Store, PublicData: domain.PublicData}, Users: users, Idempotency: db.idempotency,
		ListWaiter:     httpapi.ProjectionWaiter{W: waiter, Name: projections.CustomerListName},
		ActivityWaiter: httpapi.ProjectionWaiter{W: waiter, Name: projections.ActivityLogName},
		Ready:          a.ready,
		Registry:       a.Metrics,
		Logger:         log.With("component", "http"),
	})
	if err != nil {
		return nil, err
	}
	a.API = srv.Handler()
	a.AddRunner("user directory", users)
	a.AddRunner("idempotency purge", RunnerFunc(func(ctx context.Context) error { return srv.Run(ctx, idempotencyPurge) }))

	for _, c := range []prometheus.Collector{
		commandsTotal,
		newPositionCollector(a.Store, a.Relay, log.With("component", "metrics"), db.list, db.log),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := a.Metrics.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}

	a.listener, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	a.closers = append(a.closers, func() error { _ = a.listener.Close(); return nil })
	return a, nil
}

// connectNATS starts the embedded server unless CUSTOMERD_NATS_URL is set,
// and connects.
func (a *App) connectNATS() (err error) {
	natsURL := a.cfg.NATSURL
	if natsURL == "" {
		a.embedded, err = natsembed.Start(natsembed.Options{
			Listen:   a.cfg.NATSListen,
			StoreDir: filepath.Join(a.cfg.DataDir, "nats"),
			Logger:   a.log.With("component", "nats"),
		})
		if err != nil {
			return fmt.Errorf("starting embedded NATS: %w", err)
		}
		a.closers = append(a.closers, func() error { a.embedded.Shutdown(); return nil })
		natsURL = a.embedded.ClientURL()
		a.log.Info("embedded NATS listening", "url", natsURL)
	}
	log := a.log
	a.NATS, err = nats.Connect(natsURL,
		nats.Name("customerd"),
		nats.MaxReconnects(-1), // the relay waits out a NATS restart
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close at shutdown
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }))
	if err != nil {
		return fmt.Errorf("connecting to NATS: %w", err)
	}
	a.closers = append(a.closers, func() error { a.NATS.Close(); return nil })
	return nil
}

// AddRunner registers a background component to run alongside the server.
// Runners stop in the reverse order of registration.
func (a *App) AddRunner(name string, r Runner) {
	a.runners = append(a.runners, &namedRunner{name: name, r: r})
}

// Addr is the HTTP listener's address (useful with port 0).
func (a *App) Addr() string { return a.listener.Addr().String() }

// Handler is the whole HTTP surface.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	if a.API != nil {
		mux.Handle("/", a.API)
	}
	return mux
}

// checks reports each readiness condition: the store answers, NATS is
// connected, and every registered background component is running.
func (a *App) checks(ctx context.Context) (map[string]string, bool) {
	checks := map[string]string{"store": "ok", "nats": "ok"}
	ready := true
	if _, err := a.Store.Head(ctx); err != nil {
		checks["store"], ready = err.Error(), false
	}
	if st := a.NATS.Status(); st != nats.CONNECTED {
		checks["nats"], ready = st.String(), false
	}
	for _, nr := range a.runners {
		checks[nr.name] = "ok"
		if !nr.running.Load() {
			checks[nr.name], ready = "not running", false
		}
	}
	return checks, ready
}

// ready is checks as an error, for httpapi.Config.Ready.
func (a *App) ready(ctx context.Context) error {
	checks, ok := a.checks(ctx)
	if ok {
		return nil
	}
	var bad []string
	for name, v := range checks {
		if v != "ok" {
			bad = append(bad, name+": "+v)
		}
	}
	slices.Sort(bad)
	return errors.New(strings.Join(bad, "; "))
}

// readyz answers 200 when every check passes, else 503, with the checks.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks, ready := a.checks(ctx)
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "unavailable", http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks, "relayPosition": a.Relay.Position()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Run serves HTTP and runs the background components until ctx ends. Then
// it stops taking connections, lets requests in flight finish (up to 20 s),
// and stops the components one by one in the reverse order of AddRunner:
// the API's helpers, the index upkeep, the projectors, the relay. Close
// then closes NATS and the databases. A component failing, or stopping on
// its own, stops the whole process.
func (a *App) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		// Long enough for a streamed Customers.csv of a large partner.
		WriteTimeout: 10 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	failed := make(chan error, len(a.runners)+1)
	type started struct {
		stop context.CancelFunc
		done chan struct{}
	}
	runs := make([]started, len(a.runners))
	for i, nr := range a.runners {
		rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		runs[i] = started{stop, make(chan struct{})}
		nr.running.Store(true)
		go func() {
			defer close(runs[i].done)
			err := nr.r.Run(rctx)
			nr.running.Store(false)
			if rctx.Err() == nil {
				if err == nil {
					err = errors.New("returned without being stopped")
				}
				failed <- fmt.Errorf("%s stopped: %w", nr.name, err)
			}
		}()
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(a.listener); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("serving HTTP: %w", err)
		}
	}()
	a.log.Info("customerd started", "addr", a.Addr(), "nats_embedded", a.embedded != nil)

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case runErr = <-failed:
		a.log.Error("component failed, shutting down", "err", runErr)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("shutting down HTTP: %w", err))
	}
	<-served
	a.log.Info("component stopped", "component", "http")
	for i := len(runs) - 1; i >= 0; i-- {
		runs[i].stop()
		select {
		case <-runs[i].done:
			a.log.Info("component stopped", "component", a.runners[i].name)
		case <-time.After(15 * time.Second):
			runErr = errors.Join(runErr, fmt.Errorf("%s did not stop within 15 s", a.runners[i].name))
		}
	}
	return runErr
}

// Close releases everything NewApp opened, newest first.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}
