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

	"github.com/partnerhub/customers/internal/sqlitefile"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	idemIndex = `CREATE INDEX IF NOT EXISTS api_idempotency_expires ON api_idempotency (expires_at)`
	idemClaim = `INSERT INTO api_idempotency
	(partner_id, key, fingerprint, completed, status, header, body, locked_until, expires_at)
	VALUES ($1, $2, $3, false, 0, '', $4, $5, $6)
	ON CONFLICT (partner_id, key) DO UPDATE SET
		fingerprint = excluded.fingerprint, completed = false, status = 0, header = '',
		body = excluded.body, locked_until = excluded.locked_until, expires_at = excluded.expires_at
	WHERE api_idempotency.expires_at <= $7
	   OR (NOT api_idempotency.completed AND api_idempotency.locked_until <= $7
	       AND api_idempotency.fingerprint = excluded.fingerprint)
	RETURNING partner_id`
	idemSelect = `SELECT fingerprint, completed, status, header, body FROM api_idempotency
	WHERE partner_id = $1 AND key = $2`
	idemComplete = `UPDATE api_idempotency SET completed = true, status = $4, header = $5, body = $6
	WHERE partner_id = $1 AND key = $2 AND fingerprint = $3 AND NOT completed`
	idemRelease = `DELETE FROM api_idempotency
	WHERE partner_id = $1 AND key = $2 AND fingerprint = $3 AND NOT completed`
	idemPurge = `DELETE FROM api_idempotency WHERE expires_at <= $1`
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

// PostgresIdempotency is the IdempotencyStore on PostgreSQL.
type PostgresIdempotency struct{ pool *pgxpool.Pool }

// NewPostgresIdempotency creates its table if needed and returns the store.
func NewPostgresIdempotency(ctx context.Context, pool *pgxpool.Pool) (*PostgresIdempotency, error) {
	for _, q := range []string{idemSchemaPG, idemIndex} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("creating idempotency table: %w", err)
		}
	}
	return &PostgresIdempotency{pool: pool}, nil
}

func (s *PostgresIdempotency) Claim(ctx context.Context, partnerID, key string, fp []byte, now, lockUntil, expiresAt time.Time) (*IdempotencyRecord, error) {
	for range claimAttempts {
		var got string
		err := s.pool.QueryRow(ctx, idemClaim, partnerID, key, fp, []byte{}, lockUntil.UnixNano(), expiresAt.UnixNano(), now.UnixNano()).Scan(&got)
		if err == nil {
			return nil, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("claiming idempotency key: %w", err)
		}
		var (
			rfp       []byte
			completed bool
			status    int
			header    string
			body      []byte
		)
		err = s.pool.QueryRow(ctx, idemSelect, partnerID, key).Scan(&rfp, &completed, &status, &header, &body)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading idempotency record: %w", err)
		}
		return decodeRecord(rfp, completed, status, header, body)
	}
	return nil, errors.New("claiming idempotency key: record keeps vanishing")
}

func (s *PostgresIdempotency) Complete(ctx context.Context, partnerID, key string, fp []byte, rec IdempotencyRecord) error {
	h, err := encodeHeader(rec.Header)
	if err != nil {
		return fmt.Errorf("encoding headers: %w", err)
	}
	if rec.Body == nil {
		rec.Body = []byte{}
	}
	if _, err := s.pool.Exec(ctx, idemComplete, partnerID, key, fp, rec.Status, h, rec.Body); err != nil {
		return fmt.Errorf("storing idempotent answer: %w", err)
	}
	return nil
}

func (s *PostgresIdempotency) Release(ctx context.Context, partnerID, key string, fp []byte) error {
	if _, err := s.pool.Exec(ctx, idemRelease, partnerID, key, fp); err != nil {
		return fmt.Errorf("releasing idempotency key: %w", err)
	}
	return nil
}

func (s *PostgresIdempotency) Purge(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, idemPurge, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("purging idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// SQLiteIdempotency is the IdempotencyStore in an SQLite file of its own
// (for example <datadir>/api.db), for the embedded setup.
type SQLiteIdempotency struct{ db *sql.DB }

// OpenSQLiteIdempotency opens (creating if needed) the SQLite file at path.
func OpenSQLiteIdempotency(ctx context.Context, path string) (*SQLiteIdempotency, error) {
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
	return &SQLiteIdempotency{db: write}, nil
}

// Close closes the database.
func (s *SQLiteIdempotency) Close() error { return s.db.Close() }

func (s *SQLiteIdempotency) Claim(ctx context.Context, partnerID, key string, fp []byte, now, lockUntil, expiresAt time.Time) (*IdempotencyRecord, error) {
	for range claimAttempts {
		var got string
		err := s.db.QueryRowContext(ctx, sqliteSQL(idemClaim), partnerID, key, fp, []byte{}, lockUntil.UnixNano(), expiresAt.UnixNano(), now.UnixNano()).Scan(&got)
		if err == nil {
			return nil, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("claiming idempotency key: %w", err)
		}
		var (
			rfp       []byte
			completed bool
			status    int
			header    string
			body      []byte
		)
		err = s.db.QueryRowContext(ctx, sqliteSQL(idemSelect), partnerID, key).Scan(&rfp, &completed, &status, &header, &body)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading idempotency record: %w", err)
		}
		return decodeRecord(rfp, completed, status, header, body)
	}
	return nil, errors.New("claiming idempotency key: record keeps vanishing")
}

func (s *SQLiteIdempotency) Complete(ctx context.Context, partnerID, key string, fp []byte, rec IdempotencyRecord) error {
	h, err := encodeHeader(rec.Header)
	if err != nil {
		return fmt.Errorf("encoding headers: %w", err)
	}
	if rec.Body == nil {
		rec.Body = []byte{}
	}
	if _, err := s.db.ExecContext(ctx, sqliteSQL(idemComplete), partnerID, key, fp, rec.Status, h, rec.Body); err != nil {
		return fmt.Errorf("storing idempotent answer: %w", err)
	}
	return nil
}

func (s *SQLiteIdempotency) Release(ctx context.Context, partnerID, key string, fp []byte) error {
	if _, err := s.db.ExecContext(ctx, sqliteSQL(idemRelease), partnerID, key, fp); err != nil {
		return fmt.Errorf("releasing idempotency key: %w", err)
	}
	return nil
}

func (s *SQLiteIdempotency) Purge(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, sqliteSQL(idemPurge), now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("purging idempotency keys: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
