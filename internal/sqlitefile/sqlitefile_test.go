package sqlitefile_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/partnerhub/customers/internal/sqlitefile"
)

func migrateCounting(n *atomic.Int32) func(context.Context, *sql.DB) error {
	return func(ctx context.Context, db *sql.DB) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var v int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			return err
		}
		if v == 0 {
			n.Add(1)
			if _, err := tx.ExecContext(ctx, `CREATE TABLE t (x INTEGER); PRAGMA user_version = 1`); err != nil {
				return err
			}
		}
		return tx.Commit()
	}
}

// A directory name with URI syntax in it ('?', '#', '%', a space) opens the
// file it names, not a truncated one.
func TestOpenUsesThePathAsGiven(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a ?b#c%41")
	path := filepath.Join(dir, "x.db")
	var n atomic.Int32
	write, read, err := sqlitefile.Open(ctx, path, sqlitefile.Options{Synchronous: "NORMAL"}, migrateCounting(&n))
	if err != nil {
		t.Fatal(err)
	}
	defer write.Close()
	defer read.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the file at the given path: %v", err)
	}
	var mode string
	var sync, queryOnly int
	if err := write.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v; want wal", mode, err)
	}
	if err := write.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 1 {
		t.Errorf("synchronous %d, %v; want 1 (NORMAL)", sync, err)
	}
	if err := read.QueryRowContext(ctx, `PRAGMA query_only`).Scan(&queryOnly); err != nil || queryOnly != 1 {
		t.Errorf("read pool query_only %d, %v; want 1", queryOnly, err)
	}
	if _, err := read.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// Handles opening one new file at once migrate it once, and all work.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	var n atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			write, read, err := sqlitefile.Open(ctx, path, sqlitefile.Options{}, migrateCounting(&n))
			if err != nil {
				errs[i] = err
				return
			}
			defer write.Close()
			defer read.Close()
			_, errs[i] = write.ExecContext(ctx, `INSERT INTO t VALUES (1)`)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	if n.Load() != 1 {
		t.Errorf("migrated %d times, want once", n.Load())
	}
}
