// Package sqlite is the embedded event store: pure-Go SQLite (no cgo) in a
// single file, used when no PostgreSQL URL is configured.
//
// Every write goes through one connection in BEGIN IMMEDIATE transactions, so
// SQLite has at most one writer at a time, in this process and across
// processes (the operator CLI opens the same file while the server runs;
// busy_timeout makes it wait for the lock instead of failing). Reads use a
// separate pool of read-only connections; WAL lets them run alongside the
// writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/internal/sqlitefile"
)

const (
	// defaultReadLimit applies when ReadRequest.Limit <= 0.
	defaultReadLimit = 1000
)

// Store is the SQLite event store. It implements eventstore.Store and
// eventstore.Checkpoints.
type Store struct {
	write *sql.DB // exactly one connection: the single write path
	read  *sql.DB // read-only connections

	// writeSem (capacity 1) serializes Append and SaveCheckpoint in this
	// process. The one-connection pool would serialize them too; the
	// semaphore makes the critical section explicit, covers the wake-up
	// after commit, and, unlike a mutex, lets a waiter give up when its
	// context ends.
	writeSem chan struct{}
	stmts    writeStmts

	// beforeCommit, if set (tests only, see export_test.go), runs inside
	// every append transaction just before it commits.
	beforeCommit func(ctx context.Context) error

	closed atomic.Bool
	subsMu sync.Mutex
	subs   map[chan struct{}]struct{} // one wake channel per Subscribe
}

type writeStmts struct {
	eventByID, stream, claim, upsertStream, insertClaim, insertEvent *sql.Stmt
}

var (
	_ eventstore.Store       = (*Store)(nil)
	_ eventstore.Checkpoints = (*Store)(nil)
)

// Open opens or creates the store at path (for example "./data/events.db"),
// creating the directory if missing, and applies pending schema migrations.
// DefaultFile is the store's file name inside a data directory, shared by
// customerd and customerctl so both open the same file.
const DefaultFile = "events.db"

func Open(ctx context.Context, path string) (*Store, error) {
	// synchronous=FULL: in WAL mode NORMAL may lose the last commits on power
	// loss. The relay publishes committed events to NATS, so an event that
	// vanished after publication (and whose position is then reused) would
	// leave consumers with history the log no longer has. FULL costs one
	// fsync per commit; a batch import is one commit, so it barely matters
	// there.
	write, read, err := sqlitefile.Open(ctx, path, sqlitefile.Options{Synchronous: "FULL", CacheKiB: 64 << 10}, migrate)
	if err != nil {
		return nil, fmt.Errorf("opening event store: %w", err)
	}
	s := &Store{write: write, read: read, writeSem: make(chan struct{}, 1), subs: make(map[chan struct{}]struct{})}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// prepare readies the statements of the write path once; transactions reuse
// them through tx.StmtContext on the same single connection.
func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.stmts.eventByID, `SELECT stream_id, stream_version, position FROM events WHERE event_id = ?`},
		{&s.stmts.stream, `SELECT version, last_hash FROM streams WHERE stream_id = ?`},
		{&s.stmts.claim, `SELECT stream_id FROM claims WHERE claim = ?`},
		{&s.stmts.upsertStream, `INSERT INTO streams (stream_id, version, last_hash) VALUES (?, ?, ?)
			ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_hash = excluded.last_hash`},
		{&s.stmts.insertClaim, `INSERT INTO claims (claim, stream_id) VALUES (?, ?)`},
		{&s.stmts.insertEvent, `INSERT INTO events (event_id, stream_id, stream_version, type, subject,
			partner_id, actor_id, actor_email, correlation_id, causation_id, recorded_at, data, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
	} {
		st, err := s.write.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("preparing %q: %w", p.sql, err)
		}
		*p.dst = st
	}
	return nil
}

// DB returns the write handle (one connection). Writes through it bypass the
// in-process write mutex but still serialize on SQLite's write lock.
func (s *Store) DB() *sql.DB { return s.write }

// Close closes both pools; later calls return eventstore.ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.wakeAll() // subscribers read again, get ErrClosed and return
	var errs []error
	for _, st := range []*sql.Stmt{s.stmts.eventByID, s.stmts.stream, s.stmts.claim, s.stmts.upsertStream, s.stmts.insertClaim, s.stmts.insertEvent} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, s.read.Close(), s.write.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing event store: %w", err)
	}
	return nil
}

// fail turns an error seen after Close into ErrClosed, so callers racing
// with Close get the documented error rather than database/sql's.
func (s *Store) fail(err error) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return err
}

func (s *Store) lockWrite(ctx context.Context) error {
	select {
	case s.writeSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the event store's write path: %w", ctx.Err())
	}
}

func (s *Store) unlockWrite() { <-s.writeSem }

// wakeAll tells every subscriber in this process that something was
// committed. Sends never block: a full buffer already holds a pending wake.
func (s *Store) wakeAll() {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Subscribe implements eventstore.Store with the shared eventstore.Follow
// loop. Commits in this process wake it at once; appends from another
// process (the CLI) are found by Follow's periodic poll.
func (s *Store) Subscribe(ctx context.Context, after int64, handle func(ctx context.Context, batch []eventstore.Event) error) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	wake := make(chan struct{}, 1)
	s.subsMu.Lock()
	s.subs[wake] = struct{}{}
	s.subsMu.Unlock()
	defer func() {
		s.subsMu.Lock()
		delete(s.subs, wake)
		s.subsMu.Unlock()
	}()
	read := func(ctx context.Context, after int64, limit int) ([]eventstore.Event, error) {
		return s.ReadAll(ctx, eventstore.ReadRequest{After: after, Limit: limit})
	}
	return eventstore.Follow(ctx, read, wake, after, eventstore.FollowOptions{}, handle)
}

type streamState struct {
	version  int64
	lastHash []byte
	exists   bool
}

// Append implements eventstore.Store. All requests share one transaction.
func (s *Store) Append(ctx context.Context, reqs ...eventstore.AppendRequest) ([]eventstore.AppendResult, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if err := validate(reqs); err != nil {
		return nil, err
	}
	if err := s.lockWrite(ctx); err != nil {
		return nil, err
	}
	defer s.unlockWrite()
	res, wrote, err := s.appendTx(ctx, reqs)
	if err != nil {
		return nil, s.fail(err)
	}
	if wrote {
		s.wakeAll()
	}
	return res, nil
}

func validate(reqs []eventstore.AppendRequest) error {
	seen := make(map[uuid.UUID]struct{})
	for _, r := range reqs {
		if r.StreamID == "" {
			return errors.New("eventstore/sqlite: append: empty stream id")
		}
		if r.ExpectedVersion < eventstore.AnyVersion {
			return fmt.Errorf("eventstore/sqlite: append to %q: invalid expected version %d", r.StreamID, r.ExpectedVersion)
		}
		for _, e := range r.Events {
			if e.ID == uuid.Nil {
				return fmt.Errorf("eventstore/sqlite: append to %q: event without id", r.StreamID)
			}
			if e.Type == "" {
				return fmt.Errorf("eventstore/sqlite: append to %q: event %s without type", r.StreamID, e.ID)
			}
			if _, dup := seen[e.ID]; dup {
				return fmt.Errorf("eventstore/sqlite: append: event id %s appears twice", e.ID)
			}
			seen[e.ID] = struct{}{}
		}
	}
	return nil
}

func (s *Store) appendTx(ctx context.Context, reqs []eventstore.AppendRequest) (_ []eventstore.AppendResult, wrote bool, _ error) {
	tx, err := s.write.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock now
	if err != nil {
		return nil, false, fmt.Errorf("starting append transaction: %w", err)
	}
	defer tx.Rollback()
	eventByID := tx.StmtContext(ctx, s.stmts.eventByID)

	if res, ok, err := storedResults(ctx, eventByID, reqs); err != nil || ok {
		return res, false, err
	}

	getStream := tx.StmtContext(ctx, s.stmts.stream)
	getClaim := tx.StmtContext(ctx, s.stmts.claim)
	upsertStream := tx.StmtContext(ctx, s.stmts.upsertStream)
	insertClaim := tx.StmtContext(ctx, s.stmts.insertClaim)
	insertEvent := tx.StmtContext(ctx, s.stmts.insertEvent)

	// One timestamp per append: the events were written together.
	now := time.Now().UTC().Truncate(time.Microsecond)
	streams := make(map[string]*streamState) // several requests may name one stream
	results := make([]eventstore.AppendResult, 0, len(reqs))
	for _, r := range reqs {
		st, ok := streams[r.StreamID]
		if !ok {
			st = &streamState{}
			err := getStream.QueryRowContext(ctx, r.StreamID).Scan(&st.version, &st.lastHash)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return nil, false, fmt.Errorf("reading stream %q: %w", r.StreamID, err)
			default:
				st.exists = true
			}
			streams[r.StreamID] = st
		}
		if r.ExpectedVersion != eventstore.AnyVersion && r.ExpectedVersion != st.version {
			return nil, false, &eventstore.ConflictError{StreamID: r.StreamID, Expected: r.ExpectedVersion, Actual: st.version}
		}

		// Hash the new events in Go first, so the stream row (which events
		// and claims reference) can be written before them.
		evs := make([]eventstore.Event, len(r.Events))
		for i, ne := range r.Events {
			e := eventstore.Event{
				ID: ne.ID, StreamID: r.StreamID, StreamVersion: st.version + int64(i) + 1,
				Type: ne.Type, Subject: ne.Subject, Data: ne.Data, Metadata: ne.Metadata,
				RecordedAt: now, PrevHash: st.lastHash,
			}
			e.Hash = eventstore.ChainHash(e.PrevHash, e)
			st.lastHash = e.Hash
			evs[i] = e
		}
		st.version += int64(len(evs))
		if st.version > 0 && (len(evs) > 0 || !st.exists) {
			if _, err := upsertStream.ExecContext(ctx, r.StreamID, st.version, nonNil(st.lastHash)); err != nil {
				return nil, false, fmt.Errorf("updating stream %q: %w", r.StreamID, err)
			}
			st.exists = true
		}

		for _, c := range r.Claims {
			var holder string
			err := getClaim.QueryRowContext(ctx, c).Scan(&holder)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if !st.exists {
					return nil, false, fmt.Errorf("eventstore/sqlite: claim %q for stream %q, which has no events", c, r.StreamID)
				}
				if _, err := insertClaim.ExecContext(ctx, c, r.StreamID); err != nil {
					return nil, false, fmt.Errorf("taking claim %q: %w", c, err)
				}
			case err != nil:
				return nil, false, fmt.Errorf("reading claim %q: %w", c, err)
			case holder != r.StreamID:
				return nil, false, &eventstore.ClaimError{Claim: c}
			}
		}

		res := eventstore.AppendResult{StreamID: r.StreamID, Version: st.version}
		for i := range evs {
			e := &evs[i]
			out, err := insertEvent.ExecContext(ctx, e.ID.String(), e.StreamID, e.StreamVersion, e.Type, e.Subject,
				e.PartnerID, e.ActorID, e.ActorEmail, e.CorrelationID, e.CausationID, e.RecordedAt.UnixMicro(),
				nonNil(e.Data), nonNil(e.PrevHash), e.Hash)
			if err != nil {
				if isUniqueViolation(err) {
					return nil, false, fmt.Errorf("eventstore/sqlite: appending event %s to %q: id already stored in another append: %w", e.ID, r.StreamID, err)
				}
				return nil, false, fmt.Errorf("appending event %s to %q: %w", e.ID, r.StreamID, err)
			}
			pos, err := out.LastInsertId()
			if err != nil {
				return nil, false, fmt.Errorf("reading position of event %s: %w", e.ID, err)
			}
			if i == 0 {
				res.FirstPosition = pos
			}
			res.LastPosition = pos
		}
		results = append(results, res)
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(ctx); err != nil {
			return nil, false, fmt.Errorf("before committing append: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("committing append: %w", err)
	}
	return results, true, nil
}

// storedResults reports whether every event of reqs is stored already (a
// retried append) and, if so, rebuilds the original results. It stops at the
// first unknown id, so a fresh batch costs one lookup.
func storedResults(ctx context.Context, eventByID *sql.Stmt, reqs []eventstore.AppendRequest) ([]eventstore.AppendResult, bool, error) {
	n := 0
	for _, r := range reqs {
		n += len(r.Events)
	}
	if n == 0 {
		return nil, false, nil
	}
	results := make([]eventstore.AppendResult, 0, len(reqs))
	for _, r := range reqs {
		res := eventstore.AppendResult{StreamID: r.StreamID}
		for i, e := range r.Events {
			var stream string
			var version, pos int64
			err := eventByID.QueryRowContext(ctx, e.ID.String()).Scan(&stream, &version, &pos)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, fmt.Errorf("looking up event %s: %w", e.ID, err)
			}
			if stream != r.StreamID {
				return nil, false, fmt.Errorf("eventstore/sqlite: event %s is already stored in stream %q, not %q", e.ID, stream, r.StreamID)
			}
			if i == 0 {
				res.FirstPosition = pos
			}
			res.LastPosition = pos
			res.Version = version
		}
		results = append(results, res)
	}
	return results, true, nil
}

func isUniqueViolation(err error) bool {
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// nonNil keeps NOT NULL blob columns satisfied: database/sql binds a nil
// []byte as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

const eventColumns = `position, event_id, stream_id, stream_version, type, subject, partner_id, actor_id,
	actor_email, correlation_id, causation_id, recorded_at, data, prev_hash, hash`

func scanEvents(rows *sql.Rows) ([]eventstore.Event, error) {
	defer rows.Close()
	var evs []eventstore.Event
	for rows.Next() {
		var e eventstore.Event
		var id string
		var recorded int64
		if err := rows.Scan(&e.Position, &id, &e.StreamID, &e.StreamVersion, &e.Type, &e.Subject, &e.PartnerID,
			&e.ActorID, &e.ActorEmail, &e.CorrelationID, &e.CausationID, &recorded, &e.Data, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("reading event row: %w", err)
		}
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("event at position %d has a malformed id %q: %w", e.Position, id, err)
		}
		e.ID = u
		e.RecordedAt = time.UnixMicro(recorded).UTC()
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	return evs, nil
}

// Load implements eventstore.Store.
func (s *Store) Load(ctx context.Context, streamID string, fromVersion int64) ([]eventstore.Event, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version`, streamID, fromVersion)
	if err != nil {
		return nil, s.fail(fmt.Errorf("loading stream %q: %w", streamID, err))
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return nil, s.fail(fmt.Errorf("loading stream %q: %w", streamID, err))
	}
	return evs, nil
}

// ReadAll implements eventstore.Store.
//
// Gap safety is free here: SQLite admits one write transaction at a time
// (across processes too), and positions are assigned inside it, so commits
// happen in position order and every read snapshot holds a gap-free prefix of
// the log. A reader that has seen P can never later find a new event below P.
func (s *Store) ReadAll(ctx context.Context, req eventstore.ReadRequest) ([]eventstore.Event, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	limit := req.Limit
	if limit <= 0 {
		limit = defaultReadLimit
	}
	q := `SELECT ` + eventColumns + ` FROM events WHERE position > ?`
	args := []any{req.After}
	if req.PartnerID != "" {
		q += ` AND partner_id = ?`
		args = append(args, req.PartnerID)
	}
	if len(req.Types) > 0 {
		q += ` AND type IN (?` + strings.Repeat(`, ?`, len(req.Types)-1) + `)`
		for _, t := range req.Types {
			args = append(args, t)
		}
	}
	q += ` ORDER BY position LIMIT ?`
	args = append(args, limit)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.fail(fmt.Errorf("reading events after %d: %w", req.After, err))
	}
	evs, err := scanEvents(rows)
	if err != nil {
		return nil, s.fail(fmt.Errorf("reading events after %d: %w", req.After, err))
	}
	return evs, nil
}

// Head implements eventstore.Store. Every committed position is safe to have
// seen (see ReadAll), so the head is simply the highest one.
func (s *Store) Head(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	var head int64
	if err := s.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) FROM events`).Scan(&head); err != nil {
		return 0, s.fail(fmt.Errorf("reading head position: %w", err))
	}
	return head, nil
}

// LoadCheckpoint implements eventstore.Checkpoints.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	if s.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	var pos int64
	err := s.read.QueryRowContext(ctx, `SELECT position FROM checkpoints WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail(fmt.Errorf("loading checkpoint %q: %w", name, err))
	}
	return pos, nil
}

// SaveCheckpoint implements eventstore.Checkpoints.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position int64) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	if err := s.lockWrite(ctx); err != nil {
		return err
	}
	defer s.unlockWrite()
	if _, err := s.write.ExecContext(ctx, `INSERT INTO checkpoints (name, position) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position`, name, position); err != nil {
		return s.fail(fmt.Errorf("saving checkpoint %q: %w", name, err))
	}
	return nil
}
