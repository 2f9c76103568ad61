// Package sqliteread keeps the read models in an embedded SQLite file of
// their own (modernc.org/sqlite, no cgo), for runs without PostgreSQL.
//
// All writes go through one connection in BEGIN IMMEDIATE transactions, so
// there is one writer at a time in this process and across processes
// (busy_timeout makes another process wait for the lock); queries use a pool
// of read-only connections that WAL lets run beside the writer. Substring
// search uses an FTS5 table with the trigram tokenizer. Rebuilds fill fresh
// _new tables in short transactions and swap them in with renames in one
// transaction, so queries keep answering from the old tables meanwhile.
package sqliteread

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/internal/sqlitefile"
	"github.com/partnerhub/customers/projections"
)

const (
	// logPage is how many events a rebuild reads per call, and so the size
	// of its write transactions.
	logPage = 5000
)

// DB holds both read models' tables in one SQLite file. Open it once and
// take the projectors from it.
type DB struct {
	write  *sql.DB // exactly one connection: the single write path
	read   *sql.DB // query_only connections
	reg    *domain.Registry
	notify func(name string, position int64)
	store  eventstore.Store // for events a batch lacks; nil: none
}

// Options configure Open.
type Options struct {
	// Registry decodes event data; nil means domain.NewRegistry().
	Registry *domain.Registry
	// OnCommit is called after each committed batch with the projector's
	// new checkpoint (wire it to a projections.Waiter). May be nil.
	OnCommit func(name string, position int64)
	// Store, if set, completes a batch that leaves a position out (a
	// message JetStream sent late, behind later ones) before it is applied.
	Store eventstore.Store
}

// Open opens or creates the read-model file at path (for example
// <datadir>/readmodels.db), creating its directory, and applies pending
// migrations.
// DefaultFile is the read models' file name inside a data directory, shared
// by customerd and customerctl.
const DefaultFile = "readmodels.db"

func Open(ctx context.Context, path string, opt Options) (*DB, error) {
	// synchronous=NORMAL: a read model that loses its last commits on power
	// loss loses its checkpoint with them and replays those events.
	write, read, err := sqlitefile.Open(ctx, path, sqlitefile.Options{Synchronous: "NORMAL", CacheKiB: 64 << 10}, migrate)
	if err != nil {
		return nil, fmt.Errorf("opening read models: %w", err)
	}
	db := &DB{write: write, read: read, reg: opt.Registry, notify: opt.OnCommit, store: opt.Store}
	if db.reg == nil {
		db.reg = domain.NewRegistry()
	}
	if db.notify == nil {
		db.notify = func(string, int64) {}
	}
	return db, nil
}

// Close closes both connection pools. Like pgread's, it reports nothing: a
// read model is rebuilt from the log, so there is nothing to rescue.
func (db *DB) Close() {
	_ = errors.Join(db.read.Close(), db.write.Close())
}

// CustomerList returns the customer-list read model.
func (db *DB) CustomerList() *CustomerList { return &CustomerList{db: db} }

// ActivityLog returns the activity-log read model.
func (db *DB) ActivityLog() *ActivityLog { return &ActivityLog{db: db} }

func (db *DB) checkpoint(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := db.read.QueryRowContext(ctx, `SELECT position FROM rm_checkpoints WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading checkpoint %s: %w", name, err)
	}
	return pos, nil
}

// txCheckpoint reads the checkpoint inside a write transaction; BEGIN
// IMMEDIATE already holds the database's write lock, so no other applier
// can move it until commit.
func txCheckpoint(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	var pos int64
	if err := tx.QueryRowContext(ctx, `SELECT position FROM rm_checkpoints WHERE name = ?`, name).Scan(&pos); err != nil {
		return 0, fmt.Errorf("reading checkpoint %s: %w", name, err)
	}
	return pos, nil
}

func setCheckpoint(ctx context.Context, tx *sql.Tx, name string, pos int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE rm_checkpoints SET position = ? WHERE name = ?`, pos, name); err != nil {
		return fmt.Errorf("saving checkpoint %s: %w", name, err)
	}
	return nil
}

// inTx runs fn in one write transaction and commits it.
func (db *DB) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting %s: %w", what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing %s: %w", what, err)
	}
	return nil
}

// applyBatch applies the events above the checkpoint and moves the
// checkpoint, in one transaction.
func (db *DB) applyBatch(ctx context.Context, name string, events []eventstore.Event, apply func(*sql.Tx, []eventstore.Event) error) error {
	var last int64
	err := db.inTx(ctx, name+" batch", func(tx *sql.Tx) error {
		cp, err := txCheckpoint(ctx, tx, name)
		if err != nil {
			return err
		}
		// A read of the store here holds no transaction on its database
		// (another file).
		if through := projections.MissingThrough(cp, events, 0); through > 0 && db.store != nil {
			if events, err = projections.CompleteBatch(ctx, db.store, db.reg, cp, through, events); err != nil {
				return fmt.Errorf("%s batch: %w", name, err)
			}
		}
		fresh := projections.After(events, cp)
		if len(fresh) == 0 {
			return nil
		}
		if err := apply(tx, fresh); err != nil {
			return err
		}
		last = fresh[len(fresh)-1].Position
		return setCheckpoint(ctx, tx, name, last)
	})
	if err == nil && last > 0 {
		db.notify(name, last)
	}
	return err
}

// rebuildRun is one rebuild's pass over the log up to the head seen at its
// start: it reports progress and remembers the last position replayed.
type rebuildRun struct {
	head, done, last int64
	progress         func(done, total int64)
}

func startRebuild(ctx context.Context, store eventstore.Store, progress func(done, total int64)) (*rebuildRun, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the log's head: %w", err)
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	return &rebuildRun{head: head, progress: progress}, nil
}

func (r *rebuildRun) replay(ctx context.Context, store eventstore.Store, page func([]eventstore.Event) error) error {
	return projections.ReadLog(ctx, store, 0, r.head, logPage, func(evs []eventstore.Event) error {
		if err := page(evs); err != nil {
			return err
		}
		r.done += int64(len(evs))
		r.last = evs[len(evs)-1].Position
		r.progress(r.done, r.head)
		return nil
	})
}

// swap makes the _new tables live: in one transaction it catches them up
// to the live checkpoint (the live projector may have moved past the
// rebuild's end), drops the old tables, renames the new ones and saves the
// checkpoint. Readers see the old tables until the commit, the new after.
func (db *DB) swap(ctx context.Context, name string, rebuilt int64, tables []string, store eventstore.Store, catchUp func(*sql.Tx, []eventstore.Event) error) error {
	var last int64
	err := db.inTx(ctx, name+" swap", func(tx *sql.Tx) error {
		cp, err := txCheckpoint(ctx, tx, name)
		if err != nil {
			return err
		}
		if err := projections.ReadLog(ctx, store, rebuilt, cp, logPage, func(evs []eventstore.Event) error { return catchUp(tx, evs) }); err != nil {
			return fmt.Errorf("catching %s up: %w", name, err)
		}
		for _, t := range tables {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
				return fmt.Errorf("dropping old %s: %w", t, err)
			}
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+t+`_new RENAME TO `+t); err != nil {
				return fmt.Errorf("renaming %s_new: %w", t, err)
			}
		}
		last = max(cp, rebuilt)
		return setCheckpoint(ctx, tx, name, last)
	})
	if err == nil {
		db.notify(name, last)
	}
	return err
}

// createNew drops leftovers of an interrupted rebuild and creates the _new
// tables.
func (db *DB) createNew(ctx context.Context, tables []string, ddl []string) error {
	return db.inTx(ctx, "creating rebuild tables", func(tx *sql.Tx) error {
		for _, t := range tables {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t+`_new`); err != nil {
				return fmt.Errorf("dropping leftover %s_new: %w", t, err)
			}
		}
		return execAll(ctx, tx, ddl)
	})
}

func execAll(ctx context.Context, tx *sql.Tx, stmts []string) error {
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("executing %q: %w", s, err)
		}
	}
	return nil
}

// inChunks calls fn for [lo, hi) slices of n items, logPage at a time, each
// in its own write transaction, so that live batches get the write lock in
// between.
func (db *DB) inChunks(ctx context.Context, what string, n int, fn func(tx *sql.Tx, lo, hi int) error) error {
	for lo := 0; lo < n; lo += logPage {
		if err := db.inTx(ctx, what, func(tx *sql.Tx) error { return fn(tx, lo, min(lo+logPage, n)) }); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}
