package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/postgres"
	"github.com/partnerhub/customers/eventstore/sqlite"
)

// storeOptions are the flags of the commands that open the store directly;
// they default to the same environment variables customerd reads.
type storeOptions struct {
	databaseURL, dataDir string
}

func (c *cli) storeFlags(fs *flag.FlagSet) *storeOptions {
	o := &storeOptions{}
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL connection string (env CUSTOMERD_DATABASE_URL); embedded store when unset")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory of the embedded store (env CUSTOMERD_DATA_DIR, default ./data)")
	return o
}

// openedStore is a store together with what it can do beyond the interface.
type openedStore interface {
	eventstore.Store
}

// openStore opens the event store customerd uses: PostgreSQL when a database
// URL is set, else the SQLite file <data dir>/events.db. create says whether
// a missing SQLite file may be created (partner create on a fresh machine) or
// is an error (audit on a wrong directory must not report an empty, "intact"
// log).
func (c *cli) openStore(ctx context.Context, o *storeOptions, create bool) (openedStore, error) {
	if u := firstNonEmpty(o.databaseURL, c.env("CUSTOMERD_DATABASE_URL")); u != "" {
		return openPostgres(ctx, u)
	}
	dir := c.dataDir(o)
	path := filepath.Join(dir, sqlite.DefaultFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, fmt.Errorf("no event store at %s (set CUSTOMERD_DATA_DIR or CUSTOMERD_DATABASE_URL)", path)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("creating data directory %s: %w", dir, err)
		}
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("opening event store %s: %w", path, err)
	}
	return s, nil
}

// dataDir is the embedded default's directory, as customerd resolves it.
func (c *cli) dataDir(o *storeOptions) string {
	return firstNonEmpty(o.dataDir, c.env("CUSTOMERD_DATA_DIR"), "./data")
}

func openPostgres(ctx context.Context, url string) (openedStore, error) {
	s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 4})
	if err != nil {
		return nil, fmt.Errorf("opening the PostgreSQL event store: %w", err)
	}
	return pgStore{s}, nil
}

// pgStore adds MaxPosition (see readLog) to the PostgreSQL store.
type pgStore struct{ *postgres.Store }

func (s pgStore) MaxPosition(ctx context.Context) (int64, error) {
	var m int64
	if err := s.Pool().QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM events`).Scan(&m); err != nil {
		return 0, fmt.Errorf("reading the highest position: %w", err)
	}
	return m, nil
}
