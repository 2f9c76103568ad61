package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore/postgres"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/partnerhub/customers/httpapi"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
	"github.com/partnerhub/customers/projections/sqliteread"
)

// backends are the databases: the event store, the read models and the
// idempotency keys, all in PostgreSQL (one pool) or all in SQLite files in
// the data directory.
type backends struct {
	store       Store
	list        projections.CustomerList
	log         projections.ActivityLog
	idempotency httpapi.IdempotencyStore
	upkeep      Runner // the read models' background upkeep; nil for none
}

// openBackends opens the databases and registers their closers on a, so a
// failure half-way closes what was opened. onCommit receives every read
// model commit (the minPosition waiter).
func (a *App) openBackends(ctx context.Context, reg *domain.Registry, onCommit func(string, int64)) (backends, error) {
	var b backends
	if a.cfg.DatabaseURL != "" {
		store, err := postgres.Open(ctx, a.cfg.DatabaseURL, postgres.Options{
			OnError: func(err error) { a.log.Warn("event store background work", "err", err) },
		})
		if err != nil {
			return b, fmt.Errorf("opening the PostgreSQL event store: %w", err)
		}
		b.store = store
		a.closers = append(a.closers, store.Close)
		// The read models and idempotency keys share the store's pool: one
		// database, one set of connections.
		rm, err := pgread.New(ctx, store.Pool(), pgread.Options{Registry: reg, OnCommit: onCommit, Store: store})
		if err != nil {
			return b, fmt.Errorf("opening the PostgreSQL read models: %w", err)
		}
		a.closers = append(a.closers, closeFunc(rm.Close))
		b.list, b.log = rm.CustomerList(), rm.ActivityLog()
		b.upkeep = RunnerFunc(func(ctx context.Context) error {
			return rm.RunIndexUpkeep(ctx, pgread.DefaultUpkeepEvery, func(err error) {
				a.log.Warn("index upkeep failed; trying again", "component", "index upkeep", "err", err, "every", pgread.DefaultUpkeepEvery)
			})
		})
		idem, err := httpapi.NewPostgresIdempotency(ctx, store.Pool())
		if err != nil {
			return b, fmt.Errorf("opening the PostgreSQL idempotency store: %w", err)
		}
		// Closed before the store's pool (closers run backwards): its
		// pipeline's last statements need it.
		a.closers = append(a.closers, idem.Close)
		b.idempotency = idem
		return b, nil
	}

	dir, err := filepath.Abs(a.cfg.DataDir)
	if err != nil {
		return b, fmt.Errorf("resolving data directory: %w", err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.DefaultFile))
	if err != nil {
		return b, fmt.Errorf("opening the SQLite event store: %w", err)
	}
	b.store = store
	a.closers = append(a.closers, store.Close)
	rm, err := sqliteread.Open(ctx, filepath.Join(dir, sqliteread.DefaultFile), sqliteread.Options{Registry: reg, OnCommit: onCommit, Store: store})
	if err != nil {
		return b, fmt.Errorf("opening the SQLite read models: %w", err)
	}
	a.closers = append(a.closers, closeFunc(rm.Close))
	b.list, b.log = rm.CustomerList(), rm.ActivityLog()
	idem, err := httpapi.OpenSQLiteIdempotency(ctx, filepath.Join(dir, "api.db"))
	if err != nil {
		return b, fmt.Errorf("opening the SQLite idempotency store: %w", err)
	}
	a.closers = append(a.closers, idem.Close)
	b.idempotency = idem
	return b, nil
}

func closeFunc(f func()) func() error { return func() error { f(); return nil } }
