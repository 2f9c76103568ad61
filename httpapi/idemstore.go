package httpapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/partnerhub/customers/internal/pgpipe"
	"github.com/partnerhub/customers/internal/sqlitefile"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the embedded store's SQL driver
)

// The SQL is written once with $N placeholders; SQLite gets ?N instead.
// Times are Unix nanoseconds so both databases compare plain integers.
const (
	idemSchemaPG = `CREATE TABLE IF NOT EXISTS api_idempotency (
	partner_id   TEXT    NOT NULL,
	key          TEXT    NOT NULL,
	fingerprint  BYTEA   NOT NULL,
	completed    BOOLEAN NOT NULL,
	status       INTEGER NOT NULL,
	header       TEXT    NOT NULL,
	body         BYTEA   NOT NULL,
	locked_until BIGINT  NOT NULL,
	expires_at   BIGINT  NOT NULL,
	PRIMARY KEY (partner_id, key))`
	idemIndex    = `CREATE INDEX IF NOT EXISTS api_idempotency_expires ON api_idempotency (expires_at)`
	idemInsert   = "INSERT INTO api_idempotency\n\t(partner_id, key, fingerprint, completed, status, header, body, locked_until, expires_at)\n\t"
	idemConflict = `
	ON CONFLICT (partner_id, key) DO UPDATE SET
		fingerprint = excluded.fingerprint, completed = false, status = 0, header = '',
		body = excluded.body, locked_until = excluded.locked_until, expires_at = excluded.expires_at
	WHERE api_idempotency.expires_at <= $7
	   OR (NOT api_idempotency.completed AND api_idempotency.locked_until <= $7
	       AND api_idempotency.fingerprint = excluded.fingerprint)
	RETURNING partner_id`
	idemClaim  = idemInsert + `VALUES ($1, $2, $3, false, 0, '', $4, $5, $6)` + idemConflict
	idemSelect = `SELECT fingerprint, completed, status, header, body FROM api_idempotency
	WHERE partner_id = $1 AND key = $2`
	idemSet      = `UPDATE api_idempotency SET completed = true, status = $4, header = $5, body = $6`
	idemSetWhere = ` WHERE partner_id = $1 AND key = $2 AND fingerprint = $3 AND NOT completed`
	idemComplete = idemSet + idemSetWhere
	idemRelease  = `DELETE FROM api_idempotency
	WHERE partner_id = $1 AND key = $2 AND fingerprint = $3 AND NOT completed`
	idemPurge = `DELETE FROM api_idempotency WHERE expires_at <= $1`

	// On PostgreSQL the claim and the stored answer commit without waiting
	// for the WAL flush: a flush cost about 60 µs of CPU per commit on the
	// development machine, and a POST made three (claim, append, answer).
	// The claim needs no flush of its own: it matters only once the
	// command's events are stored, and the append's flush, later in the
	// WAL, makes it durable too. The answer, if PostgreSQL crashes before
	// the WAL writer flushes it (within a fraction of a second), is lost as
	// it is when the database is cut between append and answer (README,
	// Known limits): a client that did not get it is answered "in
	// progress" for a minute, then its retry runs the command again.
	// set_config(..., true) lasts until the transaction's commit: the
	// statement's own, or its pipeline's (see NewPostgresIdempotency),
	// whose statements all commit this way.
	idemAsync         = ` FROM set_config('synchronous_commit', 'off', true) AS async`
	idemClaimAsync    = idemInsert + `SELECT $1::text, $2::text, $3::bytea, false, 0, '', $4::bytea, $5::bigint, $6::bigint` + idemAsync + idemConflict
	idemCompleteAsync = idemSet + idemAsync + idemSetWhere
)

func sqliteSQL(q string) string {
	q = strings.ReplaceAll(q, "BYTEA", "BLOB")
	return strings.ReplaceAll(q, "$", "?")
}

func decodeRecord(fp []byte, completed bool, status int, header string, body []byte) (*IdempotencyRecord, error) {
	rec := &IdempotencyRecord{Fingerprint: fp, Completed: completed, Status: status, Header: http.Header{}, Body: body}
	if header != "" {
		if err := json.Unmarshal([]byte(header), &rec.Header); err != nil {
			return nil, fmt.Errorf("decoding stored headers: %w", err)
		}
	}
	return rec, nil
}

func encodeHeader(h http.Header) (string, error) {
	if len(h) == 0 {
		return "", nil
	}
	b, err := json.Marshal(h)
	return string(b), err
}

// claimAttempts bounds the retry when a record vanishes between the failed
// insert and the read (a concurrent release or purge).
const claimAttempts = 3

// SQLIdempotency is the IdempotencyStore on either database, through
// database/sql, with the dialect's statements (idemStatements).
type SQLIdempotency struct {
	db   *sql.DB
	sql  idemStatements
	pipe *pgpipe.Pipe // PostgreSQL: claims and answers go through it
	stop func() error // what Close releases
}

// idemStatements are the store's statements in one dialect, made once
// when it opens: the SQL above is the same for both databases but for
// placeholders, and for the claim and the answer, which commit
// asynchronously on PostgreSQL (idemClaimAsync, idemCompleteAsync).
type idemStatements struct {
	claim, get, complete, release, purge string
}

// idemSQL is the statements as written, with $N placeholders.
func idemSQL() idemStatements {
	return idemStatements{claim: idemClaim, get: idemSelect, complete: idemComplete, release: idemRelease, purge: idemPurge}
}

// in returns the statements rewritten for a dialect.
func (q idemStatements) in(dialect func(string) string) idemStatements {
	return idemStatements{claim: dialect(q.claim), get: dialect(q.get), complete: dialect(q.complete),
		release: dialect(q.release), purge: dialect(q.purge)}
}

// NewPostgresIdempotency creates its table if needed and returns the store,
// over the given pool (pgx's database/sql adapter shares it).
func NewPostgresIdempotency(ctx context.Context, pool *pgxpool.Pool) (*SQLIdempotency, error) {
	for _, q := range []string{idemSchemaPG, idemIndex} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("creating idempotency table: %w", err)
		}
	}
	db := stdlib.OpenDBFromPool(pool)
	q := idemSQL()
	q.claim, q.complete = idemClaimAsync, idemCompleteAsync
	// A POST with an Idempotency-Key made three round trips (claim,
	// append, answer): at 1,000 creates/s the claims and answers were two
	// of every five round trips customerd made. Through a pipe, those that
	// queue together go in one.
	pipe := pgpipe.New(pool)
	stop := func() error {
		pipe.Close()
		return db.Close()
	}
	return &SQLIdempotency{db: db, pipe: pipe, stop: stop, sql: q}, nil
}

// OpenSQLiteIdempotency opens (creating if needed) the SQLite file at path
// (for example <datadir>/api.db), for the embedded setup.
func OpenSQLiteIdempotency(ctx context.Context, path string) (*SQLIdempotency, error) {
	write, read, err := sqlitefile.Open(ctx, path, sqlitefile.Options{Synchronous: "FULL"}, func(ctx context.Context, db *sql.DB) error {
		for _, q := range []string{idemSchemaPG, idemIndex} {
			if _, err := db.ExecContext(ctx, sqliteSQL(q)); err != nil {
				return fmt.Errorf("creating the idempotency table: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("opening the idempotency store: %w", err)
	}
	// Every statement here writes, or reads what a claim just wrote: all
	// of them go through the one write connection.
	read.Close()
	return &SQLIdempotency{db: write, stop: write.Close, sql: idemSQL().in(sqliteSQL)}, nil
}

// Close releases the store's connections (not a pool it was given).
func (s *SQLIdempotency) Close() error { return s.stop() }

func (s *SQLIdempotency) Claim(ctx context.Context, partnerID, key string, fp []byte, now, lockUntil, expiresAt time.Time) (*IdempotencyRecord, error) {
	for range claimAttempts {
		claimed, err := s.claim(ctx, partnerID, key, fp, now, lockUntil, expiresAt)
		if err != nil {
			return nil, fmt.Errorf("inserting the idempotency record: %w", err)
		}
		if claimed {
			return nil, nil
		}
		var (
			rfp       []byte
			completed bool
			status    int
			header    string
			body      []byte
		)
		err = s.db.QueryRowContext(ctx, s.sql.get, partnerID, key).Scan(&rfp, &completed, &status, &header, &body)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading idempotency record: %w", err)
		}
		return decodeRecord(rfp, completed, status, header, body)
	}
	return nil, errors.New("the idempotency record keeps vanishing")
}

// claim inserts the record, or takes over a lapsed one, and reports
// whether the key is now the caller's.
func (s *SQLIdempotency) claim(ctx context.Context, partnerID, key string, fp []byte, now, lockUntil, expiresAt time.Time) (bool, error) {
	args := []any{partnerID, key, fp, []byte{}, lockUntil.UnixNano(), expiresAt.UnixNano(), now.UnixNano()}
	if s.pipe != nil {
		claimed := false
		if err := s.pipe.Do(ctx, func(rows pgx.Rows) error {
			claimed = rows.Next()
			return nil
		}, s.sql.claim, args...); err != nil {
			return false, err
		}
		return claimed, nil
	}
	var got string
	err := s.db.QueryRowContext(ctx, s.sql.claim, args...).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (s *SQLIdempotency) Complete(ctx context.Context, partnerID, key string, fp []byte, rec IdempotencyRecord) error {
	h, err := encodeHeader(rec.Header)
	if err != nil {
		return fmt.Errorf("encoding headers: %w", err)
	}
	if rec.Body == nil {
		rec.Body = []byte{}
	}
	if s.pipe != nil {
		err = s.pipe.Do(ctx, nil, s.sql.complete, partnerID, key, fp, rec.Status, h, rec.Body)
	} else {
		_, err = s.db.ExecContext(ctx, s.sql.complete, partnerID, key, fp, rec.Status, h, rec.Body)
	}
	if err != nil {
		return fmt.Errorf("storing idempotent answer: %w", err)
	}
	return nil
}

func (s *SQLIdempotency) Release(ctx context.Context, partnerID, key string, fp []byte) error {
	if _, err := s.db.ExecContext(ctx, s.sql.release, partnerID, key, fp); err != nil {
		return fmt.Errorf("releasing idempotency key: %w", err)
	}
	return nil
}

func (s *SQLIdempotency) Purge(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.sql.purge, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("purging idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("counting purged idempotency keys: %w", err)
	}
	return n, nil
}
