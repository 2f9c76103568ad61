package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
	"github.com/partnerhub/customers/projections/sqliteread"
)

func projectionsRebuild(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("projections rebuild [" + projections.CustomerListName + "|" + projections.ActivityLogName + "]")
	so := c.storeFlags(fs)
	pos, err := c.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	store, err := c.openStore(ctx, so, false)
	if err != nil {
		return err
	}
	defer store.Close()
	all, closeRM, err := c.openReadModels(ctx, so)
	if err != nil {
		return err
	}
	defer closeRM()

	todo := all
	if len(pos) == 1 {
		todo = nil
		for _, p := range all {
			if p.Name() == pos[0] {
				todo = append(todo, p)
			}
		}
		if len(todo) == 0 {
			var names []string
			for _, p := range all {
				names = append(names, p.Name())
			}
			sort.Strings(names)
			return usagef("unknown projection %q (one of %s)", pos[0], strings.Join(names, ", "))
		}
	}
	if c.env("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(pgread.RebuildGCPercent))
	}
	tty := isTerminal(c.stdout)
	for _, p := range todo {
		bar := newEventProgress(c.stdout, tty, p.Name())
		var last int64
		if err := p.Rebuild(ctx, store, func(done, total int64) {
			last = done
			bar.update(done, total)
		}); err != nil {
			return fmt.Errorf("rebuilding %s: %w", p.Name(), err)
		}
		bar.finish(last)
	}
	return nil
}

// openReadModels opens the read models next to the store customerd uses:
// in the store's PostgreSQL database (pgread), or the embedded file in the
// data directory (sqliteread). A rebuild swaps fresh tables in at the end,
// so a running customerd keeps answering meanwhile.
func (c *cli) openReadModels(ctx context.Context, o *storeOptions) ([]projections.Projector, func(), error) {
	u := firstNonEmpty(o.databaseURL, c.env("CUSTOMERD_DATABASE_URL"))
	if u == "" {
		path := filepath.Join(c.dataDir(o), sqliteread.DefaultFile)
		db, err := sqliteread.Open(ctx, path, sqliteread.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("opening the read models %s: %w", path, err)
		}
		return []projections.Projector{db.CustomerList(), db.ActivityLog()}, db.Close, nil
	}
	db, err := pgread.Open(ctx, u, pgread.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("opening the read models: %w", err)
	}
	return []projections.Projector{db.CustomerList(), db.ActivityLog()}, db.Close, nil
}
