// Package postgres is the PostgreSQL event store. Appends to different
// streams never wait on each other (each stream's row lock serializes only
// that stream); the global order is a single sequence, and readers stay
// gap-safe without a global lock by comparing transaction snapshots (see
// read.go). The schema is applied at Open from embedded migrations.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/partnerhub/customers/eventstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tunes a Store. The zero value is usable.
type Options struct {
	// MaxConns sizes the connection pool; default 24 (16 concurrent writers
	// plus readers, and an export holds one for as long as its client
	// reads). A pool_max_conns in the connection string wins over it.
	MaxConns int32
	// PollInterval is how often subscribers re-read when no notification
	// arrives; default 500ms.
	PollInterval time.Duration
	// BulkThreshold: appends of at least this many events take the COPY
	// path; default 100.
	BulkThreshold int
	// BeforeCommit, a test hook, runs inside every append transaction after
	// its events are written and before it commits; an error rolls the
	// append back.
	BeforeCommit func(ctx context.Context) error
	// OnError, if set, sees errors of background work (notification
	// listener, subscription reads) for logging.
	OnError func(error)
}

// Store is the PostgreSQL event store. It implements eventstore.Store and
// eventstore.Checkpoints.
type Store struct {
	pool    *pgxpool.Pool
	opts    Options
	channel string // LISTEN/NOTIFY channel, one per schema
	closed  atomic.Bool
	ctx     context.Context // ends at Close; background goroutines use it
	cancel  context.CancelFunc
	bg      sync.WaitGroup

	notifySig chan struct{} // coalesces pg_notify calls after commits

	subMu sync.Mutex
	subs  map[chan struct{}]struct{}

	h horizon
}

var (
	_ eventstore.Store       = (*Store)(nil)
	_ eventstore.Checkpoints = (*Store)(nil)
)

// Open connects, applies migrations and starts the notification listener.
func Open(ctx context.Context, connString string, opts Options) (*Store, error) {
	if opts.MaxConns <= 0 {
		opts.MaxConns = 24
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.BulkThreshold <= 0 {
		opts.BulkThreshold = 100
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: parsing connection string: %w", err)
	}
	if !strings.Contains(connString, "pool_max_conns") {
		// pgx's own default is the client's core count, which says
		// nothing about the database's.
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("eventstore/postgres: creating pool: %w", err)
	}
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("eventstore/postgres: connecting: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{
		pool:      pool,
		opts:      opts,
		channel:   "eventstore_" + schema,
		notifySig: make(chan struct{}, 1),
		subs:      map[chan struct{}]struct{}{},
	}
	if err := s.h.init(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.bg.Go(s.notifier)
	s.bg.Go(func() { s.listen(cfg.ConnConfig.Copy()) })
	return s, nil
}

// Pool is the store's connection pool; read models share the database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close stops background work and closes the pool. Later calls fail with
// eventstore.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.wakeSubscribers()
	s.bg.Wait()
	s.pool.Close()
	return nil
}

func (s *Store) check() error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return nil
}

// fail maps an error of a closed store to ErrClosed.
func (s *Store) fail(what string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("eventstore/postgres: %s: %w", what, eventstore.ErrClosed)
	}
	return fmt.Errorf("eventstore/postgres: %s: %w", what, err)
}

func (s *Store) reportError(err error) {
	if s.opts.OnError != nil && !s.closed.Load() {
		s.opts.OnError(err)
	}
}

// migrate applies the embedded migrations in order, each once. The
// advisory lock (per schema) makes concurrent Opens take turns.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("eventstore/postgres: reading migrations: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("eventstore/postgres: migrating: %w", err)
	}
	defer conn.Release()
	const lockKey = "hashtext('eventstore.migrations.' || current_schema())"
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock("+lockKey+")"); err != nil {
		return fmt.Errorf("eventstore/postgres: taking the migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be released even if ctx ended.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock("+lockKey+")"); err != nil {
			conn.Conn().Close(uctx) // closing the session releases the lock
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS eventstore_schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("eventstore/postgres: creating the migrations table: %w", err)
	}
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("eventstore/postgres: migration %s has no version prefix", name)
		}
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM eventstore_schema_migrations WHERE version = $1)", version).Scan(&done); err != nil {
			return fmt.Errorf("eventstore/postgres: checking migration %s: %w", name, err)
		}
		if done {
			continue
		}
		sql, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			return fmt.Errorf("eventstore/postgres: reading migration %s: %w", name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO eventstore_schema_migrations (version, name) VALUES ($1, $2)", version, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("eventstore/postgres: applying migration %s: %w", name, err)
		}
	}
	return nil
}

// LoadCheckpoint returns the saved position, or 0.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var p int64
	err := s.pool.QueryRow(ctx, "SELECT position FROM checkpoints WHERE name = $1", name).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail("loading checkpoint "+name, err)
	}
	return p, nil
}

// SaveCheckpoint stores position under name, replacing what was there.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position int64) error {
	if err := s.check(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO checkpoints (name, position) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position`, name, position)
	if err != nil {
		return s.fail("saving checkpoint "+name, err)
	}
	return nil
}
