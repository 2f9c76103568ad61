package sqliteread

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/partnerhub/customers/projections"
)

// migrations are the schema versions, compiled into the binary: the file's
// PRAGMA user_version is how many have been applied (the file is ours
// alone, so the header field is free). Append only; never edit a shipped
// one. A later migration that changes a table must change its *Tables DDL
// too, which rebuilds use to create the _new twins.
var migrations = []func() []string{
	func() []string { // 1: both read models and their checkpoints
		stmts := []string{`CREATE TABLE rm_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID`}
		stmts = append(stmts, customerTables("")...)
		stmts = append(stmts, activityTables("")...)
		for _, name := range []string{projections.CustomerListName, projections.ActivityLogName} {
			stmts = append(stmts, `INSERT INTO rm_checkpoints (name, position) VALUES ('`+name+`', 0)`)
		}
		return stmts
	},
}

// migrate applies the missing migrations in one BEGIN IMMEDIATE transaction
// (db is the write pool, opened with _txlock=immediate): a second process
// opening the file at the same time waits for the write lock, then reads the
// new user_version and finds nothing left to do.
// sqlitefile.Open retries it while another handle switches a new file to
// WAL (SQLite answers busy then, without waiting).
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting migrations: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("read-model schema is at version %d, this binary knows %d: refusing to use a newer file", version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	for v := version; v < len(migrations); v++ {
		if err := execAll(ctx, tx, migrations[v]()); err != nil {
			return fmt.Errorf("applying migration %d: %w", v+1, err)
		}
	}
	// PRAGMA takes no parameters; len(migrations) is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing migrations: %w", err)
	}
	return nil
}
