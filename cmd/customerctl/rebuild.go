package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
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

// openReadModels opens the read models next to the store customerd uses.
// PostgreSQL read models live in the store's database (pgread); the embedded
// ones are not wired yet.
func (c *cli) openReadModels(ctx context.Context, o *storeOptions) ([]projections.Projector, func(), error) {
	u := firstNonEmpty(o.databaseURL, c.env("CUSTOMERD_DATABASE_URL"))
	if u == "" {
		return nil, nil, errors.New("rebuilding the embedded (SQLite) read models is not supported yet: set CUSTOMERD_DATABASE_URL")
	}
	db, err := pgread.Open(ctx, u, pgread.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("opening the read models: %w", err)
	}
	return []projections.Projector{db.CustomerList(), db.ActivityLog()}, db.Close, nil
}
