package pgread

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/projections"
)

// Rebuild folds the whole log in memory (reading, decoding and folding
// overlap), COPYs the result into fresh tables, indexes them, and swaps
// them in (see DB.swap).
func (c *CustomerList) Rebuild(ctx context.Context, store eventstore.Store, progress func(done, total int64)) error {
	state, rebuilt, err := projections.FoldCustomerList(ctx, store, c.db.reg, progress)
	if err != nil {
		return fmt.Errorf("rebuilding customer list: %w", err)
	}
	if err := c.load(ctx, state); err != nil {
		return fmt.Errorf("rebuilding customer list: %w", err)
	}
	return c.db.swap(ctx, c.Name(), rebuilt, customerTables, customerIndexes, store, func(tx pgx.Tx, evs []eventstore.Event) error {
		return applyCustomerList(ctx, tx, "_new", c.db.reg, evs)
	})
}

// RebuildGCPercent is the GOGC a process running a rebuild should use
// (customerctl does, unless GOGC is set): the rebuild folds the whole log
// into memory, and collecting less often is worth the memory. Measured on
// 1M events: 11.7 s and a 1.0 GB peak with 400, 16.8 s and 0.48 GB with
// the default 100. A library call does not change the process's GC itself.
const RebuildGCPercent = 400

// rebuildIndexMem is maintenance_work_mem for the rebuild's index builds,
// set whatever the server's: measured on 1M customers, the trigram index
// built in 27 s with 64MB, 29 s with 256MB and 37 s with 1GB (a larger
// in-memory accumulator costs more in cache misses than it saves).
const rebuildIndexMem = "64MB"

// load writes state into the _new tables with COPY (the three tables at
// once, each on its own connection), then indexes them, again in parallel
// (indexing after loading is several times faster than during).
func (c *CustomerList) load(ctx context.Context, state *projections.CustomerListState) error {
	var drop []string
	for _, t := range customerTables {
		drop = append(drop, `DROP TABLE IF EXISTS `+t+`_new`)
	}
	if err := execAll(ctx, c.db.pool, append(drop, customerTableDDL("_new")...)); err != nil {
		return err
	}
	var rows []projections.CustomerRow // sorted in the COPY's goroutine, beside the small tables' loads
	assigned := state.TagAssignments()
	catalog := state.Tags()
	buf := make([][]any, 3) // one reused row per COPY: pgx encodes each row before asking for the next
	copies := []struct {
		table string
		cols  []string
		n     int
		row   func(i int, dst []any) []any
	}{
		{"rm_customers_new", []string{"partner_id", "customer_id", "relationship", "company_name", "company_key", "primary_domain", "search_text", "tag_ids"},
			0, func(i int, dst []any) []any {
				r := &rows[i]
				return append(dst[:0], r.PartnerID, r.ID, r.Relationship, r.CompanyName, r.CompanyKey, r.PrimaryDomain, r.SearchText, r.TagIDs)
			}},
		{"rm_customer_tags_new", []string{"partner_id", "customer_id", "tag_id"}, len(assigned), func(i int, dst []any) []any {
			return append(dst[:0], assigned[i].PartnerID, assigned[i].CustomerID, assigned[i].TagID)
		}},
		{"rm_tags_new", []string{"partner_id", "tag_id", "name", "name_folded", "customer_count"}, len(catalog), func(i int, dst []any) []any {
			t := catalog[i]
			return append(dst[:0], t.PartnerID, t.ID, t.Name, projections.Fold(t.Name), t.CustomerCount)
		}},
	}
	// The small tables are indexed as soon as they are loaded, while the
	// customers are still sorted and copied.
	stmts := customerIndexDDL("_new", c.db.trgm)
	onTable := func(table string) []string {
		return slices.DeleteFunc(slices.Clone(stmts), func(s string) bool { return !strings.Contains(s, " ON "+table+" ") })
	}
	errs := make([]error, len(copies))
	var wg sync.WaitGroup
	for k, cp := range copies {
		wg.Go(func() {
			if k == 0 {
				// Rows go in in the list's default order, so that a walk of
				// the sort index reads neighbouring rows from the same
				// pages, and so do a broad search's matches, which cluster
				// by name (measured at 1M customers: 2-3x faster searches).
				// Rows the projector adds later go wherever there is room;
				// the next rebuild orders them again.
				rows = state.Rows()
				cp.n = len(rows)
			}
			src := pgx.CopyFromSlice(cp.n, func(i int) ([]any, error) {
				buf[k] = cp.row(i, buf[k])
				return buf[k], nil
			})
			if _, err := c.db.pool.CopyFrom(ctx, pgx.Identifier{cp.table}, cp.cols, src); err != nil {
				errs[k] = fmt.Errorf("copying into %s: %w", cp.table, err)
				return
			}
			if k > 0 {
				errs[k] = c.indexParallel(ctx, onTable(cp.table), 1)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	// GIN builds take longest: start them first so that the short ones
	// fill in beside them.
	stmts = onTable("rm_customers_new")
	slices.SortStableFunc(stmts, func(a, b string) int {
		return cmp.Compare(b2i(strings.Contains(b, "USING gin")), b2i(strings.Contains(a, "USING gin")))
	})
	if err := c.indexParallel(ctx, stmts, 2); err != nil {
		return err
	}
	return execAll(ctx, c.db.pool, customerPrimaryKeys("_new"))
}

// indexParallel runs the index statements on n connections at once, each
// in a transaction with a larger maintenance_work_mem. Statements on one
// table may wait for each other's locks; none waits on two tables, so they
// cannot deadlock.
func (c *CustomerList) indexParallel(ctx context.Context, stmts []string, n int) error {
	next := make(chan string, len(stmts))
	for _, s := range stmts {
		next <- s
	}
	close(next)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() {
			for s := range next {
				err := pgx.BeginFunc(ctx, c.db.pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `SET LOCAL maintenance_work_mem = '`+rebuildIndexMem+`'`); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, s)
					return err
				})
				if err != nil {
					errs[k] = fmt.Errorf("executing %q: %w", s, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
