// Package pgread keeps the read models in PostgreSQL, in the same database
// as the event store. Substring search uses pg_trgm GIN indexes; rebuilds
// load fresh tables with COPY and swap them in with renames in one
// transaction.
package pgread

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/projections"
)

// DB holds both read models' tables. Open it once and take the projectors
// from it.
type DB struct {
	pool   *pgxpool.Pool
	owned  bool
	reg    *domain.Registry
	trgm   string // schema holding pg_trgm's operator classes
	notify func(name string, position int64)
	store  eventstore.Store // completes batches (Options.Store); nil: none, and commits wait for the flush

	mu        sync.Mutex
	committed map[string]int64 // each projector's last committed checkpoint, as this process saw it

	order         orderHints   // partners whose list is not stored in name order (see nameBound)
	narrowed      atomic.Int64 // searches whose page a name bound answered (see nameBound), for tests
	prefixBounded atomic.Int64 // searches ranked with the bound of the rows that start with the word (there may be none), for tests
}

// Options configure Open.
type Options struct {
	// Registry decodes event data; nil means domain.NewRegistry().
	Registry *domain.Registry
	// OnCommit is called after each committed batch with the projector's
	// new checkpoint (wire it to a projections.Waiter). May be nil.
	OnCommit func(name string, position int64)
	// Store is the event store the read models follow. With it, a batch
	// that leaves positions out (a message JetStream sent late, behind
	// later ones) is completed from the store before it is applied; and a
	// projector's batch commits without waiting for the WAL flush, because
	// a batch that a PostgreSQL crash took back (its messages acknowledged
	// to JetStream already) is read again from the store with the next
	// one. Without it, every commit waits for the flush.
	Store eventstore.Store
}

// Open connects with connString and creates the tables if missing.
func Open(ctx context.Context, connString string, opt Options) (*DB, error) {
	pool, err := pgxpool.New(ctx, connString)
	if err != nil {
		return nil, fmt.Errorf("connecting read models to PostgreSQL: %w", err)
	}
	db, err := New(ctx, pool, opt)
	if err != nil {
		pool.Close()
		return nil, err
	}
	db.owned = true
	return db, nil
}

// New uses an existing pool (the event store's, typically) and creates the
// tables if missing. Close does not close a pool passed here.
func New(ctx context.Context, pool *pgxpool.Pool, opt Options) (*DB, error) {
	db := &DB{pool: pool, reg: opt.Registry, notify: opt.OnCommit, store: opt.Store, committed: map[string]int64{}}
	if db.reg == nil {
		db.reg = domain.NewRegistry()
	}
	if db.notify == nil {
		db.notify = func(string, int64) {}
	}
	if err := db.migrate(ctx); err != nil {
		return nil, err
	}
	return db, nil
}

// Close closes the pool if Open made it.
func (db *DB) Close() {
	if db.owned {
		db.pool.Close()
	}
}

// CustomerList returns the customer-list read model.
func (db *DB) CustomerList() *CustomerList { return &CustomerList{db: db} }

// ActivityLog returns the activity-log read model.
func (db *DB) ActivityLog() *ActivityLog { return &ActivityLog{db: db} }

func (db *DB) migrate(ctx context.Context) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrating read models: %w", err)
	}
	defer tx.Rollback(ctx)
	// Extensions are database-wide: put pg_trgm in public (not in whatever
	// schema search_path names first) and serialise concurrent creators.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7234001)`); err != nil {
		return fmt.Errorf("locking for pg_trgm: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public`); err != nil {
		return fmt.Errorf("creating extension pg_trgm: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'`).Scan(&db.trgm); err != nil {
		return fmt.Errorf("finding pg_trgm's schema: %w", err)
	}
	// Old indexes go first, so that filling tag_ids does not update them.
	var drops []string
	for _, ix := range droppedCustomerIndexes {
		drops = append(drops, `DROP INDEX IF EXISTS `+ix)
	}
	if err := execAll(ctx, tx, drops); err != nil {
		return fmt.Errorf("migrating read models: %w", err)
	}
	if err := addTagIDs(ctx, tx); err != nil {
		return err
	}
	stmts := []string{`CREATE TABLE IF NOT EXISTS rm_checkpoints (name text PRIMARY KEY, position bigint NOT NULL)`, checkpointAtDDL}
	stmts = append(stmts, customerDDL("", db.trgm)...)
	stmts = append(stmts, activityDDL("")...)
	for _, name := range []string{projections.CustomerListName, projections.ActivityLogName} {
		stmts = append(stmts, `INSERT INTO rm_checkpoints (name, position) VALUES ('`+name+`', 0) ON CONFLICT DO NOTHING`)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, ifNotExists(s)); err != nil {
			return fmt.Errorf("migrating read models (%s): %w", s, err)
		}
	}
	return tx.Commit(ctx)
}

// addTagIDs gives a customer list of an earlier version its tag_ids
// column, filled from rm_customer_tags, once. The table is written again
// in list order rather than updated in place: an UPDATE moved every tagged
// row out of the order a rebuild leaves (which searches rely on), and
// maintained five indexes row by row (measured at 1M customers: 54 s,
// against 24 s for this with the indexes built again). The indexes other
// than the primary key are built by the rest of the migration.
func addTagIDs(ctx context.Context, tx pgx.Tx) error {
	var missing bool
	err := tx.QueryRow(ctx, `SELECT to_regclass('rm_customers') IS NOT NULL AND NOT EXISTS (
		SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('rm_customers') AND attname = 'tag_ids' AND NOT attisdropped)`).Scan(&missing)
	if err != nil {
		return fmt.Errorf("migrating read models: looking for tag_ids: %w", err)
	}
	if !missing {
		return nil
	}
	const cols = `partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text`
	const fromC = `c.partner_id, c.customer_id, c.relationship, c.company_name, c.company_key, c.primary_domain, c.search_text`
	stmts := []string{`DROP TABLE IF EXISTS rm_customers_new`}
	stmts = append(stmts, slices.DeleteFunc(customerTableDDL("_new"), func(s string) bool {
		return !strings.HasPrefix(s, "CREATE TABLE rm_customers_new ")
	})...)
	stmts = append(stmts,
		`INSERT INTO rm_customers_new (`+cols+`, tag_ids) SELECT `+fromC+`, COALESCE(g.ids, '{}')
		FROM rm_customers c LEFT JOIN (
			SELECT partner_id, customer_id COLLATE "C" AS customer_id, array_agg(tag_id) AS ids FROM rm_customer_tags GROUP BY 1, 2) g
		ON g.partner_id = c.partner_id AND g.customer_id = c.customer_id
		ORDER BY c.partner_id, c.company_key, c.customer_id, c.relationship`,
		`DROP TABLE rm_customers`,
		`ALTER TABLE rm_customers_new RENAME TO rm_customers`,
		pkeyIndex("rm_customers", "rm_customers_pkey", "partner_id, customer_id, relationship"),
		pkeyAttach("rm_customers", "rm_customers_pkey"))
	if err := execAll(ctx, tx, stmts); err != nil {
		return fmt.Errorf("migrating read models: %w", err)
	}
	return nil
}

func ifNotExists(s string) string {
	s = strings.Replace(s, "CREATE TABLE rm_", "CREATE TABLE IF NOT EXISTS rm_", 1)
	return strings.Replace(s, "CREATE INDEX rm_", "CREATE INDEX IF NOT EXISTS rm_", 1)
}

// lockCheckpoint reads a projector's checkpoint and holds its row until the
// transaction ends, so two appliers (a second instance, a rebuild's swap)
// never interleave. With async, the transaction's commit will not wait for
// the WAL flush (set in the same query: one round trip, not two).
func lockCheckpoint(ctx context.Context, tx pgx.Tx, name string, async bool) (int64, error) {
	sql := `SELECT position FROM rm_checkpoints WHERE name = $1 FOR UPDATE`
	if async {
		sql = `SELECT position FROM rm_checkpoints, set_config('synchronous_commit', 'off', true)
			WHERE name = $1 FOR UPDATE OF rm_checkpoints`
	}
	var pos int64
	if err := tx.QueryRow(ctx, sql, name).Scan(&pos); err != nil {
		return 0, fmt.Errorf("locking checkpoint %s: %w", name, err)
	}
	return pos, nil
}

const saveCheckpointSQL = `UPDATE rm_checkpoints SET position = $2 WHERE name = $1`

// checkpointAtDDL is the guard of a batch sent in one round trip: it locks
// a projector's checkpoint, fails (code checkpointMoved) when the
// checkpoint is not where the batch expects it, which rolls back the whole
// pipeline, and makes the commit asynchronous (as lockCheckpoint does).
const checkpointAtDDL = `CREATE OR REPLACE FUNCTION rm_checkpoint_at(p_name text, p_position bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM rm_checkpoints WHERE name = p_name AND position = p_position FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'RM409', MESSAGE = format('checkpoint %s is not at %s', p_name, p_position);
	END IF;
	PERFORM set_config('synchronous_commit', 'off', true);
END $$`

// checkpointMoved is rm_checkpoint_at's error code.
const checkpointMoved = "RM409"

// reader is what an apply function reads with while it queues its writes:
// the batch's transaction, or the pool in applyFollowing, where the
// checkpoint's guard stands for the transaction.
type reader interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// applyFunc queues the writes of events in q, reading through r.
type applyFunc func(r reader, q *pgx.Batch, events []eventstore.Event) error

func saveCheckpoint(ctx context.Context, tx pgx.Tx, name string, pos int64) error {
	if _, err := tx.Exec(ctx, saveCheckpointSQL, name, pos); err != nil {
		return fmt.Errorf("saving checkpoint %s: %w", name, err)
	}
	return nil
}

// lastCommitted is the checkpoint this process last committed for
// projector name (0: none yet).
func (db *DB) lastCommitted(name string) int64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.committed[name]
}

// committedThrough records a commit of projector name through last and
// tells OnCommit.
func (db *DB) committedThrough(name string, last int64) {
	db.mu.Lock()
	db.committed[name] = max(db.committed[name], last)
	db.mu.Unlock()
	db.notify(name, last)
}

func (db *DB) checkpoint(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := db.pool.QueryRow(ctx, `SELECT position FROM rm_checkpoints WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading checkpoint %s: %w", name, err)
	}
	return pos, nil
}

// applyBatch runs apply on the events above the checkpoint in one
// transaction with the checkpoint update. apply queues its writes in q;
// they go with the checkpoint's update in one round trip. A batch that
// follows on from this process's last commit is one round trip, and one
// more for each activity name it has to read (applyFollowing); otherwise
// four: begin, lock, writes, commit (five when a failed guard came first).
//
// With the store at hand, a batch that lacks events is completed from it
// first: positions the batch leaves out, and batches PostgreSQL lost after
// a crash (through the last this process committed), which JetStream will
// not deliver again. That read happens with no transaction open (the
// lock's transaction id would hold back a log reader waiting out a gap),
// and the batch starts over.
func (db *DB) applyBatch(ctx context.Context, name string, events []eventstore.Event, apply applyFunc) error {
	if done, err := db.applyFollowing(ctx, name, events, apply); done || err != nil {
		return err
	}
	var read projections.Completed
	for range 5 {
		cp, through, err := db.applyOnce(ctx, name, events, read, apply)
		if err != nil || through == 0 {
			return err
		}
		if events, err = projections.CompleteBatch(ctx, db.store, db.reg, cp, through, events); err != nil {
			return fmt.Errorf("%s batch: %w", name, err)
		}
		read = projections.Completed{After: cp, Through: through}
	}
	return fmt.Errorf("%s batch: still incomplete after reading the store five times (is another process applying it?)", name)
}

// applyFollowing applies a batch that follows on from this process's last
// commit in one round trip instead of four, plus one for each name an
// activity row needs that no earlier batch stored (once the connection has its
// statements prepared: pgx prepares new ones, and again after a failed
// batch, in an exchange of their own): the checkpoint's guard
// (rm_checkpoint_at), the writes and the checkpoint's update go in one
// pipeline, which PostgreSQL runs as one transaction. When the checkpoint
// is not where this process left it (moved by a rebuild's swap, taken back
// by a crash, written by another process), the guard rolls it all back and
// it reports false, as it does for a batch that needs completing from the
// store: applyBatch then takes the general way. apply reads through the
// pool, before the pipeline: what it reads (the activity log's names) is
// written only under the same checkpoint, so the guard's success shows
// that nothing read has changed since.
func (db *DB) applyFollowing(ctx context.Context, name string, events []eventstore.Event, apply applyFunc) (bool, error) {
	if db.store == nil { // no completion from the store: commits wait for the flush
		return false, nil
	}
	cp := db.lastCommitted(name)
	if cp == 0 || projections.MissingThrough(cp, events, 0) > 0 {
		return false, nil
	}
	fresh := projections.After(events, cp)
	if len(fresh) == 0 {
		return false, nil
	}
	var q pgx.Batch
	q.Queue(`SELECT rm_checkpoint_at($1, $2)`, name, cp)
	if err := queueWrites(name, db.pool, &q, fresh, apply); err != nil {
		return false, err
	}
	if err := db.pool.SendBatch(ctx, &q).Close(); err != nil {
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == checkpointMoved {
			return false, nil
		}
		return false, applyError(name, fresh, err)
	}
	db.committedThrough(name, fresh[len(fresh)-1].Position)
	return true, nil
}

// queueWrites queues fresh's writes and, after them, the checkpoint's
// update to its last position.
func queueWrites(name string, r reader, q *pgx.Batch, fresh []eventstore.Event, apply applyFunc) error {
	if err := apply(r, q, fresh); err != nil {
		return fmt.Errorf("%s batch: %w", name, err)
	}
	q.Queue(saveCheckpointSQL, name, fresh[len(fresh)-1].Position)
	return nil
}

func applyError(name string, fresh []eventstore.Event, err error) error {
	return fmt.Errorf("applying positions %d to %d to %s: %w", fresh[0].Position, fresh[len(fresh)-1].Position, name, err)
}

// applyOnce applies events, or, when they lack some the store has, applies
// nothing and returns the checkpoint and the position through which they
// must be completed.
func (db *DB) applyOnce(ctx context.Context, name string, events []eventstore.Event, read projections.Completed, apply applyFunc) (cp, through int64, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("starting %s batch: %w", name, err)
	}
	defer tx.Rollback(ctx)
	// Rows and checkpoint commit together, so a commit lost in a crash
	// loses both; with the store at hand, applyBatch's completion replaces
	// it, and the commit need not wait for the flush: at 500 creates/s,
	// the list's lag p50 went from 56 ms to 12-17 ms.
	if cp, err = lockCheckpoint(ctx, tx, name, db.store != nil); err != nil {
		return 0, 0, err
	}
	if db.store != nil {
		if through = projections.MissingThrough(read.From(cp), events, db.lastCommitted(name)); through > 0 {
			return cp, through, nil
		}
	}
	fresh := projections.After(events, cp)
	if len(fresh) == 0 {
		return cp, 0, nil
	}
	var q pgx.Batch
	if err := queueWrites(name, tx, &q, fresh, apply); err != nil {
		return 0, 0, err
	}
	if err := sendQueued(ctx, tx, &q); err != nil {
		return 0, 0, applyError(name, fresh, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("committing %s batch: %w", name, err)
	}
	db.committedThrough(name, fresh[len(fresh)-1].Position)
	return cp, 0, nil
}

// logPage is how many events the activity log's rebuild reads per call.
const logPage = 5000

// swap replaces each live table with its _new twin (and the indexes), after
// catching the new tables up to the live checkpoint, all in one transaction.
func (db *DB) swap(ctx context.Context, name string, rebuilt int64, tables, indexes []string, store eventstore.Store, catchUp func(pgx.Tx, []eventstore.Event) error) error {
	// The live projector may have gone past the rebuild's end meanwhile:
	// the new tables are brought to the same point before they go live.
	// Most of the way is read before the transaction, whose own id would
	// hold back a log reader waiting out a gap.
	cp0, err := db.checkpoint(ctx, name)
	if err != nil {
		return err
	}
	behind, err := projections.ReadThrough(ctx, store, rebuilt, cp0)
	if err != nil {
		return fmt.Errorf("catching %s up: %w", name, err)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("starting %s swap: %w", name, err)
	}
	defer tx.Rollback(ctx)
	cp, err := lockCheckpoint(ctx, tx, name, false)
	if err != nil {
		return err
	}
	if cp > cp0 {
		more, err := projections.ReadThrough(ctx, store, max(cp0, rebuilt), cp)
		if err != nil {
			return fmt.Errorf("catching %s up: %w", name, err)
		}
		behind = append(behind, more...)
	}
	if len(behind) > 0 {
		if err := catchUp(tx, behind); err != nil {
			return fmt.Errorf("catching %s up: %w", name, err)
		}
	}
	for _, t := range tables {
		if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+t+` CASCADE`); err != nil {
			return fmt.Errorf("dropping old %s: %w", t, err)
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE `+t+`_new RENAME TO `+t); err != nil {
			return fmt.Errorf("renaming %s_new: %w", t, err)
		}
	}
	for _, ix := range indexes {
		if _, err := tx.Exec(ctx, `ALTER INDEX `+ix+`_new RENAME TO `+ix); err != nil {
			return fmt.Errorf("renaming index %s_new: %w", ix, err)
		}
	}
	last := max(cp, rebuilt)
	if err := saveCheckpoint(ctx, tx, name, last); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing %s swap: %w", name, err)
	}
	db.notify(name, last)
	return nil
}

// sendQueued sends q's statements in one round trip; the first error
// fails them all (they run in the caller's transaction).
func sendQueued(ctx context.Context, tx pgx.Tx, q *pgx.Batch) error {
	if q.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, q).Close()
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func execAll(ctx context.Context, db execer, stmts []string) error {
	for _, s := range stmts {
		if _, err := db.Exec(ctx, s); err != nil {
			return fmt.Errorf("executing %q: %w", s, err)
		}
	}
	return nil
}
