package sqliteread

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/projections"
)

var customerTableNames = []string{"rm_customers", "rm_customers_fts", "rm_customer_tags", "rm_tags"}

// customerTables is the customer list's DDL, for the live tables (sfx "")
// and a rebuild's twins ("_new"). Every index is a PRIMARY KEY or UNIQUE
// constraint: SQLite has no ALTER INDEX ... RENAME, but renames a table's
// automatic indexes with it, so a swapped-in table never keeps index names
// that the next rebuild would clash with. (Each secondary index ends in the
// key columns, so UNIQUE costs nothing.) Text compares in BINARY order, the
// byte order pgread gets from COLLATE "C", which keyset cursors rely on.
//
// rm_customers_fts holds, per row (rowid = rm_customers.id), the folded
// company name, the domain and the lower-case id under the trigram
// tokenizer: substring search of 3 or more characters without a scan.
func customerTables(sfx string) []string {
	return []string{
		`CREATE TABLE rm_customers` + sfx + ` (id INTEGER PRIMARY KEY,
			partner_id TEXT NOT NULL, customer_id TEXT NOT NULL, relationship TEXT NOT NULL,
			company_name TEXT NOT NULL, company_key TEXT NOT NULL, primary_domain TEXT NOT NULL, search_text TEXT NOT NULL,
			UNIQUE (partner_id, customer_id, relationship),
			UNIQUE (partner_id, company_key, customer_id, relationship),
			UNIQUE (partner_id, primary_domain, customer_id, relationship))`,
		`CREATE VIRTUAL TABLE rm_customers_fts` + sfx + ` USING fts5(company_key, primary_domain, id_key, tokenize='trigram')`,
		`CREATE TABLE rm_customer_tags` + sfx + ` (partner_id TEXT NOT NULL, customer_id TEXT NOT NULL, tag_id TEXT NOT NULL,
			PRIMARY KEY (partner_id, customer_id, tag_id), UNIQUE (partner_id, tag_id, customer_id)) WITHOUT ROWID`,
		`CREATE TABLE rm_tags` + sfx + ` (partner_id TEXT NOT NULL, tag_id TEXT NOT NULL, name TEXT NOT NULL,
			name_folded TEXT NOT NULL, customer_count INTEGER NOT NULL,
			PRIMARY KEY (partner_id, tag_id), UNIQUE (partner_id, name, tag_id)) WITHOUT ROWID`,
	}
}

// ftsFill indexes the rm_customers rows matching a condition on id.
const ftsFill = `INSERT INTO rm_customers_fts$T (rowid, company_key, primary_domain, id_key)
	SELECT id, company_key, primary_domain, lower(customer_id) FROM rm_customers$T WHERE `

// CustomerList is the customer-list read model in SQLite.
type CustomerList struct{ db *DB }

var _ projections.CustomerList = (*CustomerList)(nil)

func (c *CustomerList) Name() string { return projections.CustomerListName }

func (c *CustomerList) Checkpoint(ctx context.Context) (int64, error) {
	return c.db.checkpoint(ctx, projections.CustomerListName)
}

// ApplyBatch applies events in one transaction with the checkpoint.
func (c *CustomerList) ApplyBatch(ctx context.Context, events []eventstore.Event) error {
	return c.db.applyBatch(ctx, c.Name(), events, func(tx *sql.Tx, evs []eventstore.Event) error {
		return projections.ApplyCustomerList(ctx, &customerWriter{tx: tx}, c.db.reg, evs)
	})
}

// customerWriter is projections.CustomerListWriter as SQL against the tables
// with suffix sfx ("" live, "_new" during a rebuild's catch-up).
type customerWriter struct {
	tx  *sql.Tx
	sfx string
}

func (w *customerWriter) exec(ctx context.Context, query string, args ...any) (sql.Result, int64, error) {
	res, err := w.tx.ExecContext(ctx, strings.ReplaceAll(query, "$T", w.sfx), args...)
	if err != nil {
		return nil, 0, err
	}
	n, err := res.RowsAffected()
	return res, n, err
}

// insertRow indexes the row just inserted, if one was.
func (w *customerWriter) insertRow(ctx context.Context, query string, args ...any) error {
	res, n, err := w.exec(ctx, query, args...)
	if err != nil || n == 0 {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	_, _, err = w.exec(ctx, ftsFill+`id = ?`, id)
	return err
}

func (w *customerWriter) CreateCustomer(ctx context.Context, p, id, rel, company, dom string) error {
	return w.insertRow(ctx, `INSERT INTO rm_customers$T (partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		p, id, rel, company, projections.Fold(company), dom, projections.SearchText(company, dom, id))
}

func (w *customerWriter) AddRelationship(ctx context.Context, p, id, rel string) error {
	return w.insertRow(ctx, `INSERT OR IGNORE INTO rm_customers$T (partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text)
		SELECT partner_id, customer_id, ?, company_name, company_key, primary_domain, search_text
		FROM rm_customers$T WHERE partner_id = ? AND customer_id = ? LIMIT 1`, rel, p, id)
}

func (w *customerWriter) SetCompanyName(ctx context.Context, p, id, company string) error {
	var dom string
	err := w.tx.QueryRowContext(ctx, `SELECT primary_domain FROM rm_customers`+w.sfx+` WHERE partner_id = ? AND customer_id = ? LIMIT 1`, p, id).Scan(&dom)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	key := projections.Fold(company)
	if _, _, err := w.exec(ctx, `UPDATE rm_customers$T SET company_name = ?, company_key = ?, search_text = ? WHERE partner_id = ? AND customer_id = ?`,
		company, key, projections.SearchText(company, dom, id), p, id); err != nil {
		return err
	}
	_, _, err = w.exec(ctx, `UPDATE rm_customers_fts$T SET company_key = ?
		WHERE rowid IN (SELECT id FROM rm_customers$T WHERE partner_id = ? AND customer_id = ?)`, key, p, id)
	return err
}

func (w *customerWriter) CreateTag(ctx context.Context, p, tagID, name string) error {
	_, _, err := w.exec(ctx, `INSERT INTO rm_tags$T (partner_id, tag_id, name, name_folded, customer_count)
		VALUES (?, ?, ?, ?, 0) ON CONFLICT DO NOTHING`, p, tagID, name, projections.Fold(name))
	return err
}

// countTag moves the catalog's customerCount when a row was added (+1) or
// removed (-1).
func (w *customerWriter) countTag(ctx context.Context, changed int64, delta int, p, tagID string) error {
	if changed == 0 {
		return nil
	}
	_, _, err := w.exec(ctx, `UPDATE rm_tags$T SET customer_count = customer_count + ? WHERE partner_id = ? AND tag_id = ?`, delta, p, tagID)
	return err
}

func (w *customerWriter) AssignTag(ctx context.Context, p, id, tagID, name string) error {
	if err := w.CreateTag(ctx, p, tagID, name); err != nil {
		return err
	}
	_, n, err := w.exec(ctx, `INSERT OR IGNORE INTO rm_customer_tags$T (partner_id, customer_id, tag_id)
		SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM rm_customers$T WHERE partner_id = ? AND customer_id = ?)`, p, id, tagID, p, id)
	if err != nil {
		return err
	}
	return w.countTag(ctx, n, 1, p, tagID)
}

func (w *customerWriter) UnassignTag(ctx context.Context, p, id, tagID string) error {
	_, n, err := w.exec(ctx, `DELETE FROM rm_customer_tags$T WHERE partner_id = ? AND customer_id = ? AND tag_id = ?`, p, id, tagID)
	if err != nil {
		return err
	}
	return w.countTag(ctx, n, -1, p, tagID)
}

func (w *customerWriter) RenameTag(ctx context.Context, p, tagID, name string) error {
	_, _, err := w.exec(ctx, `UPDATE rm_tags$T SET name = ?, name_folded = ? WHERE partner_id = ? AND tag_id = ?`, name, projections.Fold(name), p, tagID)
	return err
}

func (w *customerWriter) DeleteTag(ctx context.Context, p, tagID string) error {
	if _, _, err := w.exec(ctx, `DELETE FROM rm_customer_tags$T WHERE partner_id = ? AND tag_id = ?`, p, tagID); err != nil {
		return err
	}
	_, _, err := w.exec(ctx, `DELETE FROM rm_tags$T WHERE partner_id = ? AND tag_id = ?`, p, tagID)
	return err
}

// selectItems selects CustomerItem columns; the tags come as a JSON array
// sorted by name ('[]' when none).
const selectItems = `SELECT c.customer_id, c.relationship, c.company_name, c.primary_domain,
	(SELECT json_group_array(t.name ORDER BY t.name) FROM rm_customer_tags ct
		JOIN rm_tags t ON t.partner_id = ct.partner_id AND t.tag_id = ct.tag_id
		WHERE ct.partner_id = c.partner_id AND ct.customer_id = c.customer_id)
	FROM rm_customers c WHERE c.partner_id = ?`

const tagMatch = `EXISTS (SELECT 1 FROM rm_customer_tags ct JOIN rm_tags t ON t.partner_id = ct.partner_id AND t.tag_id = ct.tag_id
	WHERE ct.partner_id = c.partner_id AND ct.customer_id = c.customer_id AND `

// textMatch returns the condition (and its arguments) for a folded,
// non-empty query on one search field. Three characters or more go through
// the trigram index; shorter queries have no trigram to look up, so they
// scan the partner's rows with instr (literal: no wildcards to escape).
func textMatch(searchBy, folded string) (string, []any) {
	if searchBy == projections.SearchTag {
		return tagMatch + `instr(t.name_folded, ?) > 0)`, []any{folded}
	}
	if utf8.RuneCountInString(folded) < 3 {
		col := map[string]string{projections.SearchAll: "c.search_text", projections.SearchCompanyName: "c.company_key",
			projections.SearchDomain: "c.primary_domain", projections.SearchID: "lower(c.customer_id)"}[searchBy]
		cond, args := `instr(`+col+`, ?) > 0`, []any{folded}
		if searchBy == projections.SearchAll {
			return `(` + cond + ` OR ` + tagMatch + `instr(t.name_folded, ?) > 0))`, append(args, folded)
		}
		return cond, args
	}
	// An FTS5 string: double quotes doubled, the rest is literal text.
	phrase := `"` + strings.ReplaceAll(folded, `"`, `""`) + `"`
	col := map[string]string{projections.SearchAll: "", projections.SearchCompanyName: "{company_key} : ",
		projections.SearchDomain: "{primary_domain} : ", projections.SearchID: "{id_key} : "}[searchBy]
	cond := `c.id IN (SELECT rowid FROM rm_customers_fts WHERE rm_customers_fts MATCH ?)`
	if searchBy == projections.SearchAll {
		return `(` + cond + ` OR ` + tagMatch + `instr(t.name_folded, ?) > 0))`, []any{phrase, folded}
	}
	return cond, []any{col + phrase}
}

// SearchCustomers answers GET /v1/customers: substring search, filters,
// sort and keyset pagination (see projections.SearchParams).
func (c *CustomerList) SearchCustomers(ctx context.Context, partnerID string, p projections.SearchParams) (projections.CustomerPage, error) {
	q, err := p.Prepare()
	if err != nil {
		return projections.CustomerPage{}, err
	}
	query, args := selectItems, []any{partnerID}
	and := func(cond string, a ...any) { query += " AND " + cond; args = append(args, a...) }
	if q.Pattern != "" {
		cond, a := textMatch(q.SearchBy, q.Text)
		and(cond, a...)
	}
	if q.Relationship != "" {
		and(`c.relationship = ?`, q.Relationship)
	}
	for _, t := range q.TagsFolded {
		and(tagMatch+`t.name_folded = ?)`, t)
	}
	key, cmp, dir := "c.company_key", ">", "ASC"
	if strings.TrimPrefix(q.Sort, "-") == projections.SortDomain {
		key = "c.primary_domain"
	}
	if q.Desc {
		cmp, dir = "<", "DESC"
	}
	if q.After != nil {
		// The cursor's own row is excluded by identity too: renamed since,
		// it would sort after its old key and come back.
		and(fmt.Sprintf(`(%s, c.customer_id, c.relationship) %s (?, ?, ?) AND NOT (c.customer_id = ? AND c.relationship = ?)`, key, cmp),
			q.After.Key, q.After.ID, q.After.Relationship, q.After.ID, q.After.Relationship)
	}
	query += fmt.Sprintf(` ORDER BY %s %s, c.customer_id %s, c.relationship %s LIMIT %d`, key, dir, dir, dir, q.Limit)
	items := make([]projections.CustomerItem, 0, q.Limit)
	err = eachItem(ctx, c.db.read, query, args, func(it projections.CustomerItem) error {
		items = append(items, it)
		return nil
	})
	if err != nil {
		return projections.CustomerPage{}, fmt.Errorf("searching customers: %w", err)
	}
	return projections.CustomerPage{Items: items, NextCursor: q.NextCursor(items)}, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// eachItem runs a selectItems query and calls fn per row.
func eachItem(ctx context.Context, db querier, query string, args []any, fn func(projections.CustomerItem) error) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var it projections.CustomerItem
		var tags string
		if err := rows.Scan(&it.ID, &it.Relationship, &it.CompanyName, &it.PrimaryDomain, &tags); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(tags), &it.Tags); err != nil {
			return fmt.Errorf("decoding tags of %s: %w", it.ID, err)
		}
		if it.Tags == nil {
			it.Tags = []string{}
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ListTags answers GET /v1/tags: the catalog by name, with customerCount.
func (c *CustomerList) ListTags(ctx context.Context, partnerID string) ([]projections.TagCount, error) {
	rows, err := c.db.read.QueryContext(ctx, `SELECT tag_id, name, customer_count FROM rm_tags WHERE partner_id = ? ORDER BY name, tag_id`, partnerID)
	if err != nil {
		return nil, fmt.Errorf("listing tags: %w", err)
	}
	defer rows.Close()
	tags := []projections.TagCount{}
	for rows.Next() {
		var t projections.TagCount
		if err := rows.Scan(&t.ID, &t.Name, &t.CustomerCount); err != nil {
			return nil, fmt.Errorf("listing tags: %w", err)
		}
		tags = append(tags, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing tags: %w", err)
	}
	return tags, nil
}

// yieldError marks an error returned by the caller's yield, which
// ExportCustomers returns unwrapped.
type yieldError struct{ err error }

func (e yieldError) Error() string { return e.err.Error() }

// ExportCustomers streams the partner's list from one read transaction:
// under WAL it reads one snapshot from its first row to its last, whatever
// commits meanwhile. Memory is bounded by batchSize.
func (c *CustomerList) ExportCustomers(ctx context.Context, partnerID string, batchSize int, yield func([]projections.CustomerItem) error) error {
	if batchSize < 1 {
		batchSize = 500
	}
	tx, err := c.db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("starting export: %w", err)
	}
	defer tx.Rollback()
	batch := make([]projections.CustomerItem, 0, batchSize)
	err = eachItem(ctx, tx, selectItems+` ORDER BY c.company_key, c.customer_id, c.relationship`, []any{partnerID}, func(it projections.CustomerItem) error {
		if batch = append(batch, it); len(batch) < batchSize {
			return nil
		}
		err := yield(batch)
		batch = batch[:0]
		if err != nil {
			return yieldError{err}
		}
		return nil
	})
	if ye, ok := err.(yieldError); ok {
		return ye.err
	}
	if err != nil {
		return fmt.Errorf("exporting customers: %w", err)
	}
	if len(batch) > 0 {
		return yield(batch)
	}
	return nil
}
