package sqliteread

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/projections"
)

// Rebuild folds the whole log in memory (projections.FoldCustomerList),
// writes the result into fresh tables in short transactions, and swaps them
// in (see DB.swap).
func (c *CustomerList) Rebuild(ctx context.Context, store eventstore.Store, progress func(done, total int64)) error {
	state, rebuilt, err := projections.FoldCustomerList(ctx, store, c.db.reg, progress)
	if err != nil {
		return fmt.Errorf("rebuilding customer list: %w", err)
	}
	if err := c.load(ctx, state); err != nil {
		return fmt.Errorf("rebuilding customer list: %w", err)
	}
	return c.db.swap(ctx, c.Name(), rebuilt, customerTableNames, store, func(tx *sql.Tx, evs []eventstore.Event) error {
		return projections.ApplyCustomerList(ctx, &customerWriter{tx: tx, sfx: "_new"}, c.db.reg, evs)
	})
}

// load writes state into the _new tables, logPage rows per transaction so
// that live batches get the write lock in between.
func (c *CustomerList) load(ctx context.Context, state *projections.CustomerListState) error {
	if err := c.db.createNew(ctx, customerTableNames, customerTables("_new")); err != nil {
		return err
	}
	rows := state.Rows()
	err := c.db.inChunks(ctx, "loading customers", len(rows), func(tx *sql.Tx, lo, hi int) error {
		err := insertEach(ctx, tx, `INSERT INTO rm_customers_new (id, partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, lo, hi, func(i int) []any {
			r := rows[i]
			return []any{i + 1, r.PartnerID, r.ID, r.Relationship, r.CompanyName, r.CompanyKey, r.PrimaryDomain, r.SearchText}
		})
		if err == nil {
			_, err = tx.ExecContext(ctx, strings.ReplaceAll(ftsFill, "$T", "_new")+`id > ?`, lo)
		}
		return err
	})
	if err != nil {
		return err
	}
	assigned := state.TagAssignments()
	err = c.db.inChunks(ctx, "loading tag assignments", len(assigned), func(tx *sql.Tx, lo, hi int) error {
		return insertEach(ctx, tx, `INSERT INTO rm_customer_tags_new (partner_id, customer_id, tag_id) VALUES (?, ?, ?)`, lo, hi, func(i int) []any {
			return []any{assigned[i].PartnerID, assigned[i].CustomerID, assigned[i].TagID}
		})
	})
	if err != nil {
		return err
	}
	catalog := state.Tags()
	return c.db.inChunks(ctx, "loading the tag catalog", len(catalog), func(tx *sql.Tx, lo, hi int) error {
		return insertEach(ctx, tx, `INSERT INTO rm_tags_new (partner_id, tag_id, name, name_folded, customer_count) VALUES (?, ?, ?, ?, ?)`, lo, hi, func(i int) []any {
			t := catalog[i]
			return []any{t.PartnerID, t.ID, t.Name, projections.Fold(t.Name), t.CustomerCount}
		})
	})
}

// insertEach executes one prepared statement with row(i)'s arguments for
// each i in [lo, hi).
func insertEach(ctx context.Context, tx *sql.Tx, query string, lo, hi int, row func(i int) []any) error {
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("preparing %q: %w", query, err)
	}
	defer st.Close()
	for i := lo; i < hi; i++ {
		if _, err := st.ExecContext(ctx, row(i)...); err != nil {
			return fmt.Errorf("executing %q: %w", query, err)
		}
	}
	return nil
}
