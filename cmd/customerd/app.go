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
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/relay"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/partnerhub/customers/internal/natsembed"
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

// App is the wired process: the store, NATS, the relay, the HTTP server.
// NewApp builds and connects everything; Run serves until ctx ends and then
// shuts down in order; Close releases what NewApp opened.
type App struct {
	cfg Config
	log *slog.Logger

	Store    Store
	NATS     *nats.Conn
	embedded *natsembed.Server // nil when CUSTOMERD_NATS_URL is set
	Relay    *relay.Relay

	// API serves everything but the health endpoints; nil answers 404.
	// The HTTP API and /metrics are plugged in here.
	API     http.Handler
	runners []namedRunner

	listener net.Listener
	closers  []func() error // in opening order; Close runs them backwards
}

type namedRunner struct {
	name string
	r    Runner
}

// NewApp opens the store, starts or connects to NATS, builds the relay and
// binds the HTTP listener. On error everything opened so far is closed.
func NewApp(ctx context.Context, cfg Config, log *slog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}

	if cfg.DatabaseURL != "" {
		a.Store, err = openPostgres(ctx, cfg.DatabaseURL)
	} else {
		a.Store, err = sqlite.Open(ctx, filepath.Join(cfg.DataDir, "events.db"))
	}
	if err != nil {
		return nil, fmt.Errorf("opening event store: %w", err)
	}
	a.closers = append(a.closers, a.Store.Close)

	natsURL := cfg.NATSURL
	if natsURL == "" {
		a.embedded, err = natsembed.Start(natsembed.Options{
			Listen:   cfg.NATSListen,
			StoreDir: filepath.Join(cfg.DataDir, "nats"),
			Logger:   log.With("component", "nats"),
		})
		if err != nil {
			return nil, fmt.Errorf("starting embedded NATS: %w", err)
		}
		a.closers = append(a.closers, func() error { a.embedded.Shutdown(); return nil })
		natsURL = a.embedded.ClientURL()
		log.Info("embedded NATS listening", "url", natsURL)
	}
	a.NATS, err = nats.Connect(natsURL,
		nats.Name("customerd"),
		nats.MaxReconnects(-1), // the relay waits out a NATS restart
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }))
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS: %w", err)
	}
	a.closers = append(a.closers, func() error { a.NATS.Close(); return nil })

	a.Relay, err = relay.New(a.Store, a.Store, a.NATS, relay.Options{Logger: log.With("component", "relay")})
	if err != nil {
		return nil, err
	}
	a.AddRunner("relay", a.Relay)

	a.listener, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	a.closers = append(a.closers, func() error { _ = a.listener.Close(); return nil })
	return a, nil
}

// AddRunner registers a background component to run alongside the server.
func (a *App) AddRunner(name string, r Runner) { a.runners = append(a.runners, namedRunner{name, r}) }

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

// readyz answers 200 when the store answers and NATS is connected.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "nats": "ok"}
	ready := true
	if _, err := a.Store.Head(ctx); err != nil {
		checks["store"], ready = err.Error(), false
	}
	if st := a.NATS.Status(); st != nats.CONNECTED {
		checks["nats"], ready = st.String(), false
	}
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

// Run serves HTTP and runs the background components until ctx ends, then
// stops taking connections, lets requests in flight finish (up to 20 s) and
// stops the components. A component failing stops the whole process.
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
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	failed := make(chan error, len(a.runners)+1)
	var wg sync.WaitGroup
	for _, nr := range a.runners {
		wg.Go(func() {
			if err := nr.r.Run(bg); err != nil && bg.Err() == nil {
				failed <- fmt.Errorf("%s stopped: %w", nr.name, err)
			}
		})
	}
	wg.Go(func() {
		if err := srv.Serve(a.listener); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("serving HTTP: %w", err)
		}
	})
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
	stopBG()
	wg.Wait()
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
