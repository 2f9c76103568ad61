// Package sqlitefile opens an SQLite file the way every embedded database of
// this service needs it: one write connection (the single write path,
// BEGIN IMMEDIATE) and a pool of query-only read connections, WAL, a busy
// timeout so a second process (customerctl beside customerd) waits instead
// of failing, and the caller's migrations run once on the write connection.
package sqlitefile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// BusyTimeout is how long a statement waits for another connection or
// process holding the write lock (a large import or a rebuild may hold it
// for seconds).
const BusyTimeout = 30 * time.Second

// Options tune Open.
type Options struct {
	// Synchronous is the synchronous pragma: "FULL" where a lost commit
	// would be a lost fact, "NORMAL" where it is replayed anyway.
	Synchronous string
	ReadConns   int // read pool size; 0 means 4
	CacheKiB    int // page cache of the write connection; 0 means SQLite's default
}

// Open opens (creating if needed) the file at path. migrate runs on the
// write connection before the read pool exists; it is retried while another
// process is switching a new file to WAL, which SQLite reports as busy
// without waiting.
func Open(ctx context.Context, path string, opt Options, migrate func(ctx context.Context, write *sql.DB) error) (write, read *sql.DB, err error) {
	// Absolute, so the file: URI has an empty authority whatever path is.
	if path, err = filepath.Abs(path); err != nil {
		return nil, nil, fmt.Errorf("resolving %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	if opt.Synchronous == "" {
		opt.Synchronous = "FULL"
	}
	if opt.ReadConns <= 0 {
		opt.ReadConns = 4
	}
	common := []string{fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()), "foreign_keys(1)", "synchronous(" + opt.Synchronous + ")"}
	writePragmas := append(common[:len(common):len(common)], "journal_mode(WAL)")
	if opt.CacheKiB > 0 {
		writePragmas = append(writePragmas, fmt.Sprintf("cache_size(-%d)", opt.CacheKiB))
	}
	write, err = sql.Open("sqlite", uri(path, "immediate", writePragmas))
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := retryBusy(ctx, func() error { return migrate(ctx, write) }); err != nil {
		write.Close()
		return nil, nil, fmt.Errorf("migrating %s: %w", path, err)
	}
	// The file is in WAL mode now, so read connections need not (and, being
	// query_only, could not) change the journal mode.
	read, err = sql.Open("sqlite", uri(path, "deferred", append(common, "query_only(1)")))
	if err != nil {
		write.Close()
		return nil, nil, fmt.Errorf("opening %s for reading: %w", path, err)
	}
	read.SetMaxOpenConns(opt.ReadConns)
	read.SetMaxIdleConns(opt.ReadConns)
	return write, read, nil
}

// uri is a file: URI with the driver's per-connection pragmas and
// transaction lock mode; the path is escaped, so '?', '#' and '%' in a
// directory name open the file they name.
func uri(path, txlock string, pragmas []string) string {
	q := url.Values{"_pragma": pragmas, "_txlock": {txlock}}
	return (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
}

func retryBusy(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(BusyTimeout)
	for {
		err := f()
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for the database: %w)", err, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
