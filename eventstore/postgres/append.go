package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/partnerhub/customers/eventstore"
)

// Append appends atomically to one or more streams. Small appends are one
// call of the es_append SQL function (one round trip); large ones use COPY.
func (s *Store) Append(ctx context.Context, reqs ...eventstore.AppendRequest) ([]eventstore.AppendResult, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, nil
	}
	total := 0
	for i, r := range reqs {
		if r.StreamID == "" {
			return nil, fmt.Errorf("eventstore/postgres: append request %d has no stream id", i)
		}
		if r.ExpectedVersion < eventstore.AnyVersion {
			return nil, fmt.Errorf("eventstore/postgres: append to %q: invalid expected version %d", r.StreamID, r.ExpectedVersion)
		}
		for _, e := range r.Events {
			if e.ID == uuid.Nil {
				return nil, fmt.Errorf("eventstore/postgres: append to %q: event without id", r.StreamID)
			}
		}
		total += len(r.Events)
	}
	// One timestamp per append, in the precision PostgreSQL stores, so the
	// hash computed now matches the event read back later.
	now := time.Now().UTC().Truncate(time.Microsecond)
	var (
		res []eventstore.AppendResult
		err error
	)
	if total >= s.opts.BulkThreshold {
		res, err = s.appendBulk(ctx, reqs, total, now)
	} else {
		res, err = s.appendFunc(ctx, reqs, total, now)
	}
	if err != nil {
		return nil, err
	}
	s.committed()
	return res, nil
}

func (s *Store) appendFunc(ctx context.Context, reqs []eventstore.AppendRequest, total int, now time.Time) ([]eventstore.AppendResult, error) {
	var (
		streams  = make([]string, len(reqs))
		expected = make([]int64, len(reqs))
		reqOf    = make([]int32, 0, total)
		ids      = make([]pgtype.UUID, 0, total)
		types    = make([]string, 0, total)
		subjects = make([]string, 0, total)
		partners = make([]string, 0, total)
		actors   = make([]string, 0, total)
		emails   = make([]string, 0, total)
		corrs    = make([]string, 0, total)
		causes   = make([]string, 0, total)
		recorded = make([]time.Time, 0, total)
		micros   = make([]int64, 0, total)
		data     = make([][]byte, 0, total)
		claimReq []int32
		claims   []string
	)
	for i, r := range reqs {
		streams[i] = r.StreamID
		expected[i] = r.ExpectedVersion
		for _, e := range r.Events {
			reqOf = append(reqOf, int32(i+1))
			ids = append(ids, pgtype.UUID{Bytes: e.ID, Valid: true})
			types = append(types, e.Type)
			subjects = append(subjects, e.Subject)
			partners = append(partners, e.PartnerID)
			actors = append(actors, e.ActorID)
			emails = append(emails, e.ActorEmail)
			corrs = append(corrs, e.CorrelationID)
			causes = append(causes, e.CausationID)
			recorded = append(recorded, now)
			micros = append(micros, now.UnixMicro())
			d := e.Data
			if d == nil {
				d = []byte{}
			}
			data = append(data, d)
		}
		for _, c := range r.Claims {
			claimReq = append(claimReq, int32(i+1))
			claims = append(claims, c)
		}
	}
	sql := `SELECT r_stream, r_version, r_first, r_last FROM es_append(
		$1::text[], $2::bigint[], $3::int[], $4::uuid[], $5::text[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::bigint[], $14::bytea[],
		$15::int[], $16::text[])`
	args := []any{streams, expected, reqOf, ids, types, subjects, partners, actors, emails, corrs, causes,
		recorded, micros, data, nonNil(claimReq), nonNil(claims)}
	if len(reqs) == 1 {
		sql = `SELECT $1::text, r_version, r_first, r_last FROM es_append_one(
		$1::text, $2::bigint, $3::uuid[], $4::text[], $5::text[], $6::text[],
		$7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::bigint[], $13::bytea[],
		$14::text[])`
		args = []any{streams[0], expected[0], ids, types, subjects, partners, actors, emails, corrs, causes,
			recorded, micros, data, nonNil(claims)}
	}
	run := func(ctx context.Context, q pgxQuerier) ([]eventstore.AppendResult, error) {
		rows, _ := q.Query(ctx, sql, args...)
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (eventstore.AppendResult, error) {
			var r eventstore.AppendResult
			err := row.Scan(&r.StreamID, &r.Version, &r.FirstPosition, &r.LastPosition)
			return r, err
		})
	}
	return withRetry(reqs, func() ([]eventstore.AppendResult, error) {
		if s.opts.BeforeCommit == nil {
			// An implicit transaction: the whole append is one round trip.
			return run(ctx, s.pool)
		}
		var out []eventstore.AppendResult
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			if out, err = run(ctx, tx); err != nil {
				return err
			}
			return s.opts.BeforeCommit(ctx)
		})
		return out, err
	}, s.appendError)
}

// withRetry retries appends that lost a race which a second attempt
// resolves: two appends creating one stream (or retrying one event) at
// once collide on a unique index, and rarely deadlock. The next attempt
// sees the winner and answers with a conflict, the stored results, or
// success.
func withRetry(reqs []eventstore.AppendRequest, attempt func() ([]eventstore.AppendResult, error), mapErr func([]eventstore.AppendRequest, error) error) ([]eventstore.AppendResult, error) {
	for i := 0; ; i++ {
		out, err := attempt()
		if err == nil {
			return out, nil
		}
		var pe *pgconn.PgError
		retry := errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "23505" && (pe.ConstraintName == "events_stream_id_stream_version_key" ||
			pe.ConstraintName == "streams_pkey" || pe.ConstraintName == "events_event_id_key"))
		if !retry || i == 3 {
			return nil, mapErr(reqs, err)
		}
	}
}

type pgxQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// appendError turns the SQL errors of an append into the eventstore's.
func (s *Store) appendError(reqs []eventstore.AppendRequest, err error) error {
	var ce *eventstore.ConflictError
	var cle *eventstore.ClaimError
	if errors.As(err, &ce) || errors.As(err, &cle) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "ES409":
			actual, _ := strconv.ParseInt(pe.Detail, 10, 64)
			i, _ := strconv.Atoi(pe.Hint)
			if i >= 1 && i <= len(reqs) {
				return &eventstore.ConflictError{StreamID: reqs[i-1].StreamID, Expected: reqs[i-1].ExpectedVersion, Actual: actual}
			}
		case "ES423":
			return &eventstore.ClaimError{Claim: pe.Detail}
		case "23505":
			return s.fail("appending (some event ids are stored already, others are not)", err)
		}
	}
	return s.fail("appending", err)
}

// appendBulk is the import path: stream rows are locked in the same order
// as es_append locks them, hashes are computed here, and the events go in
// with COPY, all in one transaction.
func (s *Store) appendBulk(ctx context.Context, reqs []eventstore.AppendRequest, total int, now time.Time) ([]eventstore.AppendResult, error) {
	return withRetry(reqs, func() ([]eventstore.AppendResult, error) {
		var out []eventstore.AppendResult
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			out, err = s.bulkTx(ctx, tx, reqs, total, now)
			if err != nil || s.opts.BeforeCommit == nil {
				return err
			}
			return s.opts.BeforeCommit(ctx)
		})
		return out, err
	}, s.appendError)
}

type streamState struct {
	version int64
	hash    []byte
}

func (s *Store) bulkTx(ctx context.Context, tx pgx.Tx, reqs []eventstore.AppendRequest, total int, now time.Time) ([]eventstore.AppendResult, error) {
	// The xid before any position: see es_append.
	if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(reqs))
	for _, r := range reqs {
		names = append(names, r.StreamID)
	}
	slices.Sort(names) // bytewise, as COLLATE "C" in es_append
	names = slices.Compact(names)
	// Inserting in order with DO UPDATE locks existing rows and creates
	// missing ones one by one in that order, as es_append does.
	rows, _ := tx.Query(ctx, `INSERT INTO streams (stream_id)
		SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n
		ON CONFLICT (stream_id) DO UPDATE SET version = streams.version
		RETURNING stream_id, version, last_hash`, names)
	state := make(map[string]*streamState, len(names))
	var (
		id string
		st streamState
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &st.version, &st.hash}, func() error {
		state[id] = &streamState{version: st.version, hash: st.hash}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("locking streams: %w", err)
	}

	// A retry of a fully stored append returns the stored results.
	if first := firstEvent(reqs); first != uuid.Nil {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1)", first).Scan(&exists); err != nil {
			return nil, err
		}
		if exists {
			if res, ok, err := storedResults(ctx, tx, reqs, total); err != nil || ok {
				return res, err
			}
		}
	}

	// Versions and claims before any position is taken.
	starts := make([]int64, len(reqs))
	for i, r := range reqs {
		st := state[r.StreamID]
		if r.ExpectedVersion != eventstore.AnyVersion && r.ExpectedVersion != st.version {
			return nil, &eventstore.ConflictError{StreamID: r.StreamID, Expected: r.ExpectedVersion, Actual: st.version}
		}
		starts[i] = st.version
		st.version += int64(len(r.Events))
	}
	if err := takeClaims(ctx, tx, reqs); err != nil {
		return nil, err
	}

	// Hash chains and COPY, in request order so positions follow it.
	firstIDs := make([]pgtype.UUID, 0, 2*len(reqs))
	for i := range state {
		state[i].version = 0
	}
	rowsIn := make([][]any, 0, total)
	for i, r := range reqs {
		st := state[r.StreamID]
		v := starts[i]
		for _, e := range r.Events {
			v++
			data := e.Data
			if data == nil {
				data = []byte{}
			}
			ev := eventstore.Event{
				ID: e.ID, StreamID: r.StreamID, StreamVersion: v, Type: e.Type, Subject: e.Subject,
				Data: data, Metadata: e.Metadata, RecordedAt: now,
			}
			prev := st.hash
			if prev == nil {
				prev = []byte{}
			}
			h := eventstore.ChainHash(prev, ev)
			rowsIn = append(rowsIn, []any{
				pgtype.UUID{Bytes: e.ID, Valid: true}, r.StreamID, v, e.Type, e.Subject, e.PartnerID,
				e.ActorID, e.ActorEmail, e.CorrelationID, e.CausationID, now, data, prev, h,
			})
			st.hash = h
		}
		st.version = v
		if len(r.Events) > 0 {
			firstIDs = append(firstIDs,
				pgtype.UUID{Bytes: r.Events[0].ID, Valid: true},
				pgtype.UUID{Bytes: r.Events[len(r.Events)-1].ID, Valid: true})
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{
		"event_id", "stream_id", "stream_version", "type", "subject", "partner_id",
		"actor_id", "actor_email", "correlation_id", "causation_id", "recorded_at", "data", "prev_hash", "hash",
	}, pgx.CopyFromRows(rowsIn)); err != nil {
		return nil, fmt.Errorf("copying events: %w", err)
	}

	positions := make(map[uuid.UUID]int64, len(firstIDs))
	rows, _ = tx.Query(ctx, "SELECT event_id, position FROM events WHERE event_id = ANY($1)", firstIDs)
	var (
		eid pgtype.UUID
		pos int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&eid, &pos}, func() error {
		positions[eid.Bytes] = pos
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading positions: %w", err)
	}

	upNames := make([]string, 0, len(state))
	upVersions := make([]int64, 0, len(state))
	upHashes := make([][]byte, 0, len(state))
	for name, st := range state {
		if st.version == 0 {
			continue // only claims or empty requests touched it
		}
		upNames = append(upNames, name)
		upVersions = append(upVersions, st.version)
		upHashes = append(upHashes, st.hash)
	}
	if _, err := tx.Exec(ctx, `UPDATE streams SET version = u.v, last_hash = u.h
		FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS u(s, v, h) WHERE stream_id = u.s`,
		upNames, upVersions, upHashes); err != nil {
		return nil, fmt.Errorf("updating streams: %w", err)
	}

	out := make([]eventstore.AppendResult, len(reqs))
	for i, r := range reqs {
		out[i] = eventstore.AppendResult{StreamID: r.StreamID, Version: starts[i] + int64(len(r.Events))}
		if len(r.Events) > 0 {
			out[i].FirstPosition = positions[r.Events[0].ID]
			out[i].LastPosition = positions[r.Events[len(r.Events)-1].ID]
		}
	}
	return out, nil
}

func firstEvent(reqs []eventstore.AppendRequest) uuid.UUID {
	for _, r := range reqs {
		if len(r.Events) > 0 {
			return r.Events[0].ID
		}
	}
	return uuid.Nil
}

// storedResults answers a retry; ok is false unless every event is stored.
func storedResults(ctx context.Context, tx pgx.Tx, reqs []eventstore.AppendRequest, total int) ([]eventstore.AppendResult, bool, error) {
	streams := make([]string, len(reqs))
	reqOf := make([]int32, 0, total)
	ids := make([]pgtype.UUID, 0, total)
	for i, r := range reqs {
		streams[i] = r.StreamID
		for _, e := range r.Events {
			reqOf = append(reqOf, int32(i+1))
			ids = append(ids, pgtype.UUID{Bytes: e.ID, Valid: true})
		}
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM events WHERE event_id = ANY($1)", ids).Scan(&n); err != nil {
		return nil, false, err
	}
	if n != total {
		return nil, false, nil
	}
	rows, _ := tx.Query(ctx, "SELECT r_stream, r_version, r_first, r_last FROM es_stored_results($1, $2, $3)", streams, reqOf, ids)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (eventstore.AppendResult, error) {
		var r eventstore.AppendResult
		err := row.Scan(&r.StreamID, &r.Version, &r.FirstPosition, &r.LastPosition)
		return r, err
	})
	return out, err == nil, err
}

// takeClaims inserts every claim; a claim held by another stream fails the
// append with the first such claim in request order.
func takeClaims(ctx context.Context, tx pgx.Tx, reqs []eventstore.AppendRequest) error {
	var claims, owners []string
	for _, r := range reqs {
		for _, c := range r.Claims {
			claims = append(claims, c)
			owners = append(owners, r.StreamID)
		}
	}
	if len(claims) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO claims (claim, stream_id)
		SELECT c, s FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(c, s, n) ORDER BY n
		ON CONFLICT DO NOTHING`, claims, owners); err != nil {
		return fmt.Errorf("taking claims: %w", err)
	}
	rows, _ := tx.Query(ctx, "SELECT claim, stream_id FROM claims WHERE claim = ANY($1)", claims)
	holder := make(map[string]string, len(claims))
	var c, o string
	if _, err := pgx.ForEachRow(rows, []any{&c, &o}, func() error { holder[c] = o; return nil }); err != nil {
		return fmt.Errorf("checking claims: %w", err)
	}
	for i, c := range claims {
		if holder[c] != owners[i] {
			return &eventstore.ClaimError{Claim: c}
		}
	}
	return nil
}
