package pgread

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/projections"
)

var customerTables = []string{"rm_customers", "rm_customer_tags", "rm_tags"}

var customerIndexes = []string{"rm_customers_pkey", "rm_customers_by_name", "rm_customers_by_domain", "rm_customers_name_ranges",
	"rm_customers_trgm_text", "rm_customers_trgm_id", "rm_customers_tags", "rm_customer_tags_pkey", "rm_customer_tags_holders", "rm_tags_pkey"}

// droppedCustomerIndexes are indexes of earlier versions, dropped by the
// migration: one trigram index over search_text with the id in it took
// longer to build than the two that replace it together, one per field
// added build time for what a recheck does, and a tag's holders are read
// from rm_customer_tags_holders alone (by_tag sent each to the table).
var droppedCustomerIndexes = []string{"rm_customers_trgm_all", "rm_customers_trgm_name", "rm_customers_trgm_domain", "rm_customer_tags_by_tag"}

// tagIDsColumn holds a row's tag ids beside rm_customer_tags, so that a
// tag condition is a look at the row in a walk and a GIN index's bitmap in
// a search, to AND with the trigram index's (measured at 1M customers, p50:
// "crème" with tag Gold 16 ms to 6 ms, a tag search 6.5 ms to 1 ms: the
// holders' subquery hashed 25k ids each time).
const tagIDsColumn = `tag_ids text[] NOT NULL DEFAULT '{}'`

// nameDomain is the expression the trigram index over company name and
// domain covers; queries must spell it the same way to use the index.
func nameDomain(alias string) string {
	return `(` + alias + `company_key || E'\n' || ` + alias + `primary_domain)`
}

// customerTableDDL and customerIndexDDL are split so a rebuild can load
// before indexing. Text that is sorted or compared uses COLLATE "C": byte
// order, the same as SQLite's, and what keyset cursors rely on.
func customerTableDDL(sfx string) []string {
	return []string{
		`CREATE TABLE rm_customers` + sfx + ` (
			partner_id text NOT NULL, customer_id text COLLATE "C" NOT NULL, relationship text COLLATE "C" NOT NULL,
			company_name text NOT NULL, company_key text COLLATE "C" NOT NULL,
			primary_domain text COLLATE "C" NOT NULL, search_text text NOT NULL, ` + tagIDsColumn + `)`,
		`CREATE TABLE rm_customer_tags` + sfx + ` (partner_id text NOT NULL, customer_id text NOT NULL, tag_id text NOT NULL)`,
		`CREATE TABLE rm_tags` + sfx + ` (partner_id text NOT NULL, tag_id text NOT NULL, name text COLLATE "C" NOT NULL,
			name_folded text NOT NULL, customer_count bigint NOT NULL)`,
	}
}

func customerIndexDDL(sfx, trgm string) []string {
	return []string{
		pkeyIndex("rm_customers"+sfx, "rm_customers_pkey"+sfx, "partner_id, customer_id, relationship"),
		`CREATE INDEX rm_customers_by_name` + sfx + ` ON rm_customers` + sfx + ` (partner_id, company_key, customer_id, relationship)`,
		`CREATE INDEX rm_customers_by_domain` + sfx + ` ON rm_customers` + sfx + ` (partner_id, primary_domain, customer_id, relationship)`,
		// The least and greatest name in each run of 4 heap pages (see
		// nameBound): a rebuild stores the list in name order, so each
		// spans a short stretch of it. 4 rather than 16 so that PostgreSQL
		// costs it above the trigram index for a broad term and ANDs the
		// bitmaps in that order, which keeps the result exact (a summary's
		// bitmap first makes each shared page lossy: all its rows are
		// rechecked). 900 kB at 1M customers.
		`CREATE INDEX rm_customers_name_ranges` + sfx + ` ON rm_customers` + sfx + ` USING brin (partner_id, company_key) WITH (pages_per_range = 4)`,
		`CREATE INDEX rm_customers_trgm_text` + sfx + ` ON rm_customers` + sfx + ` USING gin (` + nameDomain("") + ` ` + trgm + `.gin_trgm_ops)`,
		`CREATE INDEX rm_customers_trgm_id` + sfx + ` ON rm_customers` + sfx + ` USING gin (customer_id ` + trgm + `.gin_trgm_ops)`,
		`CREATE INDEX rm_customers_tags` + sfx + ` ON rm_customers` + sfx + ` USING gin (tag_ids)`,
		pkeyIndex("rm_customer_tags"+sfx, "rm_customer_tags_pkey"+sfx, "partner_id, customer_id, tag_id"),
		`CREATE INDEX rm_customer_tags_holders` + sfx + ` ON rm_customer_tags` + sfx + ` (partner_id, tag_id, customer_id)`,
		pkeyIndex("rm_tags"+sfx, "rm_tags_pkey"+sfx, "partner_id, tag_id"),
	}
}

// customerPrimaryKeys turns the rebuild's unique indexes into the tables'
// primary keys, once every index is built.
func customerPrimaryKeys(sfx string) []string {
	return []string{
		pkeyAttach("rm_customers"+sfx, "rm_customers_pkey"+sfx),
		pkeyAttach("rm_customer_tags"+sfx, "rm_customer_tags_pkey"+sfx),
		pkeyAttach("rm_tags"+sfx, "rm_tags_pkey"+sfx),
	}
}

// pkeyIndex and pkeyAttach build a primary key in two steps: the unique
// index under a SHARE lock, so that it builds beside the table's other
// indexes, then the constraint on that index, a catalog change. ADD
// PRIMARY KEY in one step takes an exclusive lock and waits for every
// other build on the table (measured: 8 s of a 20 s rebuild).
func pkeyIndex(table, name, cols string) string {
	return `CREATE UNIQUE INDEX ` + name + ` ON ` + table + ` (` + cols + `)`
}

func pkeyAttach(table, name string) string {
	return `ALTER TABLE ` + table + ` ADD CONSTRAINT ` + name + ` PRIMARY KEY USING INDEX ` + name
}

// customerDDL is the migration form: constraints inline so that IF NOT
// EXISTS makes it re-runnable.
func customerDDL(sfx, trgm string) []string {
	out := []string{
		`CREATE TABLE rm_customers (
			partner_id text NOT NULL, customer_id text COLLATE "C" NOT NULL, relationship text COLLATE "C" NOT NULL,
			company_name text NOT NULL, company_key text COLLATE "C" NOT NULL,
			primary_domain text COLLATE "C" NOT NULL, search_text text NOT NULL, ` + tagIDsColumn + `,
			CONSTRAINT rm_customers_pkey PRIMARY KEY (partner_id, customer_id, relationship))`,
		`CREATE TABLE rm_customer_tags (partner_id text NOT NULL, customer_id text NOT NULL, tag_id text NOT NULL,
			CONSTRAINT rm_customer_tags_pkey PRIMARY KEY (partner_id, customer_id, tag_id))`,
		`CREATE TABLE rm_tags (partner_id text NOT NULL, tag_id text NOT NULL, name text COLLATE "C" NOT NULL,
			name_folded text NOT NULL, customer_count bigint NOT NULL, CONSTRAINT rm_tags_pkey PRIMARY KEY (partner_id, tag_id))`,
	}
	for _, s := range customerIndexDDL(sfx, trgm) {
		if strings.HasPrefix(s, "CREATE INDEX") {
			out = append(out, s)
		}
	}
	return out
}

// CustomerList is the customer-list read model in PostgreSQL.
type CustomerList struct{ db *DB }

var _ projections.CustomerList = (*CustomerList)(nil)

func (c *CustomerList) Name() string { return projections.CustomerListName }

func (c *CustomerList) Checkpoint(ctx context.Context) (int64, error) {
	return c.db.checkpoint(ctx, projections.CustomerListName)
}

// ApplyBatch applies events in one transaction with the checkpoint.
func (c *CustomerList) ApplyBatch(ctx context.Context, events []eventstore.Event) error {
	return c.db.applyBatch(ctx, c.Name(), events, func(_ reader, q *pgx.Batch, evs []eventstore.Event) error {
		return queueCustomerList(ctx, q, "", c.db.reg, evs)
	})
}

// Apply applies events inside tx; the caller owns the transaction and the
// checkpoint.
func (c *CustomerList) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Event) error {
	return applyCustomerList(ctx, tx, "", c.db.reg, events)
}

// customerWriter runs the projection's changes as SQL against the tables
// with suffix sfx ("" live, "_new" during a rebuild's catch-up). Nothing
// reads a statement's result, so they are queued and sent together: a
// batch of events costs one round trip, not one per event (measured: at
// 500 creates/s, the list's lag p50 went from 57 ms to 12 ms).
type customerWriter struct {
	sfx   string
	queue *pgx.Batch
}

// applyCustomerList applies events to the tables with suffix sfx.
func applyCustomerList(ctx context.Context, tx pgx.Tx, sfx string, reg *domain.Registry, events []eventstore.Event) error {
	var q pgx.Batch
	if err := queueCustomerList(ctx, &q, sfx, reg, events); err != nil {
		return err
	}
	if err := sendQueued(ctx, tx, &q); err != nil {
		return fmt.Errorf("applying positions %d to %d to the customer list: %w", events[0].Position, events[len(events)-1].Position, err)
	}
	return nil
}

// queueCustomerList queues the statements that apply events to the tables
// with suffix sfx.
func queueCustomerList(ctx context.Context, q *pgx.Batch, sfx string, reg *domain.Registry, events []eventstore.Event) error {
	return projections.ApplyCustomerList(ctx, &customerWriter{sfx: sfx, queue: q}, reg, events)
}

func (w *customerWriter) send(sql string, args ...any) {
	w.queue.Queue(strings.ReplaceAll(sql, "$T", w.sfx), args...)
}

func (w *customerWriter) CreateCustomer(_ context.Context, p, id, rel, company, dom string) error {
	w.send(`INSERT INTO rm_customers$T (partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text)
		VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING`,
		p, id, rel, company, projections.Fold(company), dom, projections.SearchText(company, dom, id))
	return nil
}

func (w *customerWriter) AddRelationship(_ context.Context, p, id, rel string) error {
	w.send(`INSERT INTO rm_customers$T (partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text, tag_ids)
		SELECT partner_id, customer_id, $3, company_name, company_key, primary_domain, search_text, tag_ids
		FROM rm_customers$T WHERE partner_id = $1 AND customer_id = $2 LIMIT 1 ON CONFLICT DO NOTHING`, p, id, rel)
	return nil
}

func (w *customerWriter) SetCompanyName(_ context.Context, p, id, company string) error {
	w.send(`UPDATE rm_customers$T SET company_name = $3, company_key = $4,
		search_text = $4 || substr(search_text, strpos(search_text, E'\n'))
		WHERE partner_id = $1 AND customer_id = $2`, p, id, company, projections.Fold(company))
	return nil
}

func (w *customerWriter) CreateTag(_ context.Context, p, tagID, name string) error {
	w.send(`INSERT INTO rm_tags$T (partner_id, tag_id, name, name_folded, customer_count)
		VALUES ($1,$2,$3,$4,0) ON CONFLICT DO NOTHING`, p, tagID, name, projections.Fold(name))
	return nil
}

// AssignTag and UnassignTag count a holder only when the row changed (an
// assignment seen twice counts once), in the statement itself.
func (w *customerWriter) AssignTag(ctx context.Context, p, id, tagID, name string) error {
	_ = w.CreateTag(ctx, p, tagID, name)
	w.send(`WITH added AS (INSERT INTO rm_customer_tags$T (partner_id, customer_id, tag_id)
			SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM rm_customers$T WHERE partner_id = $1 AND customer_id = $2)
			ON CONFLICT DO NOTHING RETURNING 1)
		UPDATE rm_tags$T SET customer_count = customer_count + 1 WHERE partner_id = $1 AND tag_id = $3 AND EXISTS (SELECT 1 FROM added)`, p, id, tagID)
	w.send(`UPDATE rm_customers$T SET tag_ids = tag_ids || $3::text WHERE partner_id = $1 AND customer_id = $2 AND NOT $3 = ANY(tag_ids)`, p, id, tagID)
	return nil
}

func (w *customerWriter) UnassignTag(_ context.Context, p, id, tagID string) error {
	w.send(`WITH removed AS (DELETE FROM rm_customer_tags$T WHERE partner_id = $1 AND customer_id = $2 AND tag_id = $3 RETURNING 1)
		UPDATE rm_tags$T SET customer_count = customer_count - 1 WHERE partner_id = $1 AND tag_id = $3 AND EXISTS (SELECT 1 FROM removed)`, p, id, tagID)
	w.send(`UPDATE rm_customers$T SET tag_ids = array_remove(tag_ids, $3) WHERE partner_id = $1 AND customer_id = $2 AND $3 = ANY(tag_ids)`, p, id, tagID)
	return nil
}

func (w *customerWriter) RenameTag(_ context.Context, p, tagID, name string) error {
	w.send(`UPDATE rm_tags$T SET name = $3, name_folded = $4 WHERE partner_id = $1 AND tag_id = $2`, p, tagID, name, projections.Fold(name))
	return nil
}

func (w *customerWriter) DeleteTag(_ context.Context, p, tagID string) error {
	w.send(`UPDATE rm_customers$T SET tag_ids = array_remove(tag_ids, $2) WHERE partner_id = $1 AND tag_ids @> ARRAY[$2::text]`, p, tagID)
	w.send(`DELETE FROM rm_customer_tags$T WHERE partner_id = $1 AND tag_id = $2`, p, tagID)
	w.send(`DELETE FROM rm_tags$T WHERE partner_id = $1 AND tag_id = $2`, p, tagID)
	return nil
}

// tagsOfRow is a row's tag names, sorted: its tag ids looked up in the
// catalog.
const tagsOfRow = `COALESCE((SELECT array_agg(t.name ORDER BY t.name) FROM rm_tags t
	WHERE t.partner_id = c.partner_id AND t.tag_id = ANY(c.tag_ids)), '{}')`

// SearchCustomers answers GET /v1/customers: substring search, filters,
// sort and keyset pagination (see projections.SearchParams).
func (c *CustomerList) SearchCustomers(ctx context.Context, partnerID string, p projections.SearchParams) (projections.CustomerPage, error) {
	q, err := p.Prepare()
	if err != nil {
		return projections.CustomerPage{}, err
	}
	// Tags are resolved to ids first (the catalog is small): tag
	// conditions are then on the rows' tag_ids, and a search that matches
	// no tag name skips the tag tables altogether.
	matched, filters, err := c.resolveTags(ctx, partnerID, q)
	if err != nil {
		return projections.CustomerPage{}, fmt.Errorf("searching customers: %w", err)
	}
	args := []any{partnerID}
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	// Tag conditions take the ids as a parameter ($n) made once; a search
	// of all fields uses it twice: on the row in the walk, and with the
	// holders index in the index search.
	holders := func(ids string) string {
		return `SELECT ct.customer_id COLLATE "C" FROM rm_customer_tags ct WHERE ct.partner_id = $1 AND ct.tag_id = ANY(` + ids + `::text[])`
	}
	hasTag := func(ids string) string { return "c.tag_ids && " + ids + "::text[]" }
	// Each condition comes twice: as a plain filter for rows the walk has
	// read already, and in the form the indexes serve (trigram, tag ids). The latter
	// are built last, so that their parameters come after every one the
	// walk uses (PostgreSQL refuses unused parameters).
	var (
		walkMatch  []string
		indexMatch []func() string
	)
	same := func(cond string) {
		walkMatch, indexMatch = append(walkMatch, cond), append(indexMatch, func() string { return cond })
	}
	single := oneWord(q.Pattern) // the pattern is one word and nothing else
	if q.Pattern != "" {
		var pat string // a parameter only where used: PostgreSQL must infer its type
		if q.SearchBy != projections.SearchTag {
			pat = arg(q.Pattern)
		}
		switch q.SearchBy {
		case projections.SearchAll:
			text := func() string {
				if single {
					// One word and nothing else: the trigram conditions are
					// the pattern, and search_text, whose fields they cover,
					// need not be checked as well (a tenth of a broad
					// search's time).
					t := nameDomain("c.") + " LIKE " + pat
					if couldBeID(q.Pattern) {
						t += " OR c.customer_id LIKE " + pat
					}
					return "(" + t + ")"
				}
				t := "c.search_text LIKE " + pat + " AND (" + trigramConds(nameDomain("c."), q.Pattern, arg)
				if couldBeID(q.Pattern) {
					t += " OR " + trigramConds("c.customer_id", q.Pattern, arg)
				}
				return t + ")"
			}
			if len(matched) == 0 {
				walkMatch = append(walkMatch, "c.search_text LIKE "+pat)
				indexMatch = append(indexMatch, text)
			} else {
				ids := arg(matched)
				walkMatch = append(walkMatch, "(c.search_text LIKE "+pat+" OR "+hasTag(ids)+")")
				// A UNION, not an OR: each side keeps its own index.
				indexMatch = append(indexMatch, func() string {
					return "c.customer_id IN (SELECT c.customer_id FROM rm_customers c WHERE c.partner_id = $1 AND " + text() + " UNION " + holders(ids) + ")"
				})
			}
		case projections.SearchCompanyName:
			walkMatch = append(walkMatch, "c.company_key LIKE "+pat)
			indexMatch = append(indexMatch, func() string {
				return "c.company_key LIKE " + pat + " AND " + trigramConds(nameDomain("c."), q.Pattern, arg)
			})
		case projections.SearchDomain:
			walkMatch = append(walkMatch, "c.primary_domain LIKE "+pat)
			indexMatch = append(indexMatch, func() string {
				return "c.primary_domain LIKE " + pat + " AND " + trigramConds(nameDomain("c."), q.Pattern, arg)
			})
		case projections.SearchID:
			walkMatch = append(walkMatch, "c.customer_id LIKE "+pat)
			indexMatch = append(indexMatch, func() string {
				return "lower(c.customer_id) LIKE " + pat + " AND " + trigramConds("c.customer_id", q.Pattern, arg)
			})
		case projections.SearchTag:
			if len(matched) == 0 {
				return projections.CustomerPage{Items: []projections.CustomerItem{}}, nil
			}
			same(hasTag(arg(matched)))
		}
	}
	for _, ids := range filters {
		if len(ids) == 0 {
			return projections.CustomerPage{Items: []projections.CustomerItem{}}, nil
		}
		same(hasTag(arg(ids)))
	}
	where := []string{"c.partner_id = $1"}
	if q.Relationship != "" {
		where = append(where, "c.relationship = "+arg(q.Relationship))
	}
	key, op, dir := "c.company_key", ">", "ASC"
	if strings.TrimPrefix(q.Sort, "-") == projections.SortDomain {
		key = "c.primary_domain"
	}
	if q.Desc {
		op, dir = "<", "DESC"
	}
	if q.After != nil {
		// The cursor's own row is excluded by identity too: renamed since,
		// it would sort after its old key and come back.
		id, rel := arg(q.After.ID), arg(q.After.Relationship)
		where = append(where, fmt.Sprintf("(%s, c.customer_id, c.relationship) %s (%s, %s, %s) AND NOT (c.customer_id = %s AND c.relationship = %s)",
			key, op, arg(q.After.Key), id, rel, id, rel))
	}
	// orderBy is the list order on alias's rows (key is the sort column
	// there), with a LIMIT when limit > 0.
	orderBy := func(alias, key string, limit int) string {
		o := fmt.Sprintf(" ORDER BY %s %s, %s.customer_id %s, %s.relationship %s", key, dir, alias, dir, alias, dir)
		if limit > 0 {
			o += " LIMIT " + strconv.Itoa(limit)
		}
		return o
	}
	// joinRows joins alias's keys back to whole rows, as c. The keys
	// leave the partner out: it is $1 (measured at 1M customers, a broad
	// term ranked by domain, the ranking statement alone under pgbench:
	// 11.4 ms with it, 10.7 ms without, as the sort carries one column
	// less for each of 26,000 matches).
	joinRows := func(alias string) string {
		return ` JOIN rm_customers c ON c.partner_id = $1 AND c.customer_id = ` + alias + `.customer_id AND c.relationship = ` + alias + `.relationship`
	}
	order := orderBy("c", key, q.Limit)
	cols := `SELECT c.customer_id, c.relationship, c.company_name, c.primary_domain, ` + tagsOfRow
	if len(walkMatch) == 0 {
		items, err := c.query(ctx, cols+` FROM rm_customers c WHERE `+strings.Join(where, " AND ")+order, args)
		return projections.CustomerPage{Items: items, NextCursor: q.NextCursor(items)}, err
	}
	// Where matches are dense, walking the sort index finds a page within
	// a few hundred rows; where they are rare or clustered far down the
	// order (every "Müller ..." sits under M), the walk reads most of the
	// list, and the indexes (trigram, tag ids) are the way. The planner
	// cannot tell the two apart (nor, for tags, see holders clustered in
	// the order), so: walk a bounded prefix first, and if it does not fill
	// the page, search through the indexes with the order by an expression
	// (which keeps the sort index out).
	// Conditions on the id alone need no row; text and tags read it. Tags
	// alone are a cheap check of the row, so their walk goes further
	// (a tag of 2.5% of the list fills a page in about 2,000 rows).
	idOnly := len(filters) == 0 && q.SearchBy == projections.SearchID
	walkRows := searchWalk
	if q.Pattern == "" || q.SearchBy == projections.SearchTag {
		walkRows = searchWalkTags
	}
	var walk string
	if !idOnly {
		walk = `SELECT * FROM (SELECT * FROM rm_customers c WHERE ` + strings.Join(where, " AND ") +
			orderBy("c", key, walkRows) +
			`) c WHERE ` + strings.Join(walkMatch, " AND ")
	} else {
		// An id search needs no row: the walk reads the sort index only,
		// ten times as far for the time, and the page's rows are fetched
		// at the end.
		walk = `SELECT c.customer_id, c.relationship, ` + key + ` FROM rm_customers c WHERE ` + strings.Join(where, " AND ") +
			orderBy("c", key, searchWalkIndexOnly)
		walk = `SELECT c.* FROM (SELECT * FROM (` + walk + `) c WHERE ` + strings.Join(walkMatch, " AND ") + order + `) w` + joinRows("w")
	}
	items, err := c.query(ctx, cols+` FROM (`+walk+`) c`+order, args)
	if err != nil || len(items) == q.Limit {
		return projections.CustomerPage{Items: items, NextCursor: q.NextCursor(items)}, err
	}
	scope := slices.Clone(where) // partner, relationship, cursor: the rows a page may hold
	for _, m := range indexMatch {
		where = append(where, m())
	}
	matches := strings.Join(where, " AND ")
	// withArgs is args and more parameters, for one statement: PostgreSQL
	// refuses a parameter that a statement does not use. It returns their
	// placeholders.
	withArgs := func(vs ...any) ([]any, []string) {
		more, refs := slices.Clone(args), make([]string, len(vs))
		for i, v := range vs {
			more = append(more, v)
			refs[i] = "$" + strconv.Itoa(len(more))
		}
		return more, refs
	}
	// rank finds and ranks the matches (those of cond) by their keys alone,
	// and reads only the page's rows whole: a broad term ranks tens of
	// thousands of matches, and the sort's cost grows with the width of
	// what it carries (measured at 1M customers, 26,000 matches: 13.8 ms
	// with whole rows, 11.7 ms this way). OFFSET 0 keeps the subquery
	// apart, so its sort cannot be served by the sort index (which would
	// walk the list).
	rank := func(cond string) string {
		ranked := `SELECT * FROM (SELECT c.customer_id, c.relationship, ` + key + ` AS sort_key FROM rm_customers c WHERE ` +
			cond + ` OFFSET 0) m` + orderBy("m", "m.sort_key", q.Limit)
		return cols + ` FROM (` + ranked + `) m` + joinRows("m") + orderBy("m", "m.sort_key", 0)
	}
	// A broad search in name order may be narrowed first (see nameBound):
	// one word in names and domains, no tag in play, a page of the usual
	// size (measured at 50).
	narrowable := key == "c.company_key" && !q.Desc && single && len(matched) == 0 && len(filters) == 0 &&
		(q.SearchBy == projections.SearchAll && !couldBeID(q.Pattern) || q.SearchBy == projections.SearchCompanyName) &&
		q.Limit <= nameBoundMaxLimit && !c.db.order.unordered(partnerID)
	if narrowable {
		bound, ok, err := c.nameBound(ctx, partnerID, matches, args, q.Limit)
		if err != nil {
			return projections.CustomerPage{}, fmt.Errorf("searching customers: %w", err)
		}
		if ok {
			bargs, ref := withArgs(bound)
			page, berr := queryBitmaps(ctx, c.db.pool, rank(matches+" AND c.company_key <= "+ref[0]), bargs, scanItem)
			if berr != nil {
				return projections.CustomerPage{}, fmt.Errorf("searching customers: %w", berr)
			}
			// Rows at or below any name are a prefix of the order, so a full
			// page is the page. A short one means rows the sample counted
			// were renamed or removed before the second statement's
			// snapshot; the plain search answers exactly.
			if len(page) == q.Limit {
				c.db.narrowed.Add(1)
				return projections.CustomerPage{Items: page, NextCursor: q.NextCursor(page)}, nil
			}
		}
	}
	if single && len(filters) == 0 && prefixes(q.SearchBy, key) {
		// Rows whose sort key starts with the word match it, and sit
		// together in the sort index: limit of them bound the page's keys
		// (at least that many matches are on the page's side of the
		// limit-th), in the same statement, so in the same snapshot. The
		// ranking then still reads every match, but sorts only those
		// within the bound (measured at 1M customers, a broad term sorted
		// by descending domain, the ranking statement alone under pgbench:
		// 10.6 to 7.1 ms). The bound must not be served by the sort index
		// (a stretch of the list as long as the way to the word): the
		// comparison has the row's own key on both sides, which PostgreSQL
		// cannot make an index condition of. (A first version kept the
		// index out with `key || ''`, an allocation for each match: 7.9
		// ms.)
		//
		// The word is q.Text (one word of letters and digits, so no LIKE
		// escapes); only keys that start with it are at or above it and
		// below it + U+10FFFF (bytewise, COLLATE "C").
		pargs, ref := withArgs(q.Text, q.Text+"\U0010FFFF")
		bound := `(SELECT ` + key + ` FROM rm_customers c WHERE ` + strings.Join(scope, " AND ") +
			` AND ` + key + ` >= ` + ref[0] + ` AND ` + key + ` < ` + ref[1] +
			orderBy("c", key, 0) + ` OFFSET ` + strconv.Itoa(q.Limit-1) + ` LIMIT 1)`
		cmp := "<="
		if q.Desc {
			cmp = ">="
		}
		// No bound (fewer such rows): the row's own key, which passes.
		items, err = c.query(ctx, rank(matches+` AND `+key+` `+cmp+` COALESCE(`+bound+`, `+key+`)`), pargs)
		c.db.prefixBounded.Add(1)
		return projections.CustomerPage{Items: items, NextCursor: q.NextCursor(items)}, err
	}
	items, err = c.query(ctx, rank(matches), args)
	return projections.CustomerPage{Items: items, NextCursor: q.NextCursor(items)}, err
}

// prefixes reports whether a match of searchBy holds every row whose sort
// key starts with the searched word.
func prefixes(searchBy, key string) bool {
	switch searchBy {
	case projections.SearchAll:
		return true
	case projections.SearchCompanyName:
		return key == "c.company_key"
	case projections.SearchDomain:
		return key == "c.primary_domain"
	}
	return false
}

// nameBound returns a bound on the names of a search's page in name order:
// the limit-th smallest name of a sample of its matches, the first ones
// stored. Any limit matches bound the page (at least that many are at or
// below it), and where the rows are stored in name order, as a rebuild
// leaves them, the first ones stored bound it tightly: the ranking then
// reads and sorts the page's matches and a few more rather than all of a
// broad term's tens of thousands. The sample is several pages' worth
// because rows added or renamed since the rebuild sit wherever there was
// room. A short sample holds every match, few enough to rank without a
// bound: ok is false.
//
// The bound is served by rm_customers_name_ranges, which is only as good
// as the order: on a list not stored in name order (grown by the projector
// and never rebuilt) every summary spans most names, and PostgreSQL
// rechecks whole pages, up to 3.4 times as long as the plain search. So
// the sample must itself come mostly in name order; if it does not, ok is
// false and the partner is marked (orderHints).
//
// The sample is a second pass over the trigram index, which a narrower
// search (more words, a tag condition, part of an id) would not earn back.
func (c *CustomerList) nameBound(ctx context.Context, partnerID, matches string, args []any, limit int) (bound string, ok bool, err error) {
	size := max(nameBoundSample*limit, nameBoundMinSample)
	sample, err := queryBitmaps(ctx, c.db.pool, `SELECT k FROM (SELECT c.ctid AS t, c.company_key AS k FROM rm_customers c WHERE `+matches+
		` LIMIT `+strconv.Itoa(size)+`) s ORDER BY t`, args, pgx.RowTo[string])
	if err != nil {
		return "", false, fmt.Errorf("sampling names: %w", err)
	}
	if len(sample) < size {
		return "", false, nil
	}
	inOrder := 0
	for i := 1; i < len(sample); i++ {
		if sample[i] >= sample[i-1] {
			inOrder++
		}
	}
	if float64(inOrder) < nameBoundInOrder*float64(len(sample)-1) {
		c.db.order.mark(partnerID)
		return "", false, nil
	}
	slices.Sort(sample)
	return sample[limit-1], true, nil
}

const (
	nameBoundSample    = 4   // nameBound's sample, in multiples of the limit
	nameBoundMinSample = 20  // and at least this many, to judge the order by
	nameBoundInOrder   = 0.8 // the share of the sample's neighbours in name order that shows the rows stored in it
	nameBoundMaxLimit  = 100 // larger pages are ranked as before (a sample of 400 at most)
)

// orderHints remembers the partners whose rows a search found not stored in
// name order (nameBound), so that their broad searches skip the sample for
// a while instead of paying for it each time (a pass over the trigram
// index: 3 ms of a 35 ms search in random order at 1M customers). The
// order changes only when a rebuild (customerctl, another process) writes
// the list again, which the hints see when they lapse.
type orderHints struct {
	mu    sync.Mutex
	until map[string]time.Time
	now   func() time.Time // nil: time.Now
}

// orderHintFor is how long a hint holds.
const orderHintFor = time.Minute

func (h *orderHints) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

func (h *orderHints) unordered(partnerID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	until, ok := h.until[partnerID]
	if ok && !h.clock().Before(until) {
		delete(h.until, partnerID)
		return false
	}
	return ok
}

func (h *orderHints) mark(partnerID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.until == nil {
		h.until = map[string]time.Time{}
	}
	h.until[partnerID] = h.clock().Add(orderHintFor)
}

// queryBitmaps runs a query with the planner held to bitmap scans, which
// is what makes nameBound pay: the sample must come through the trigram
// index (the planner expects matches spread evenly and would read the
// table from its start until it had enough), and the bound through the
// page summary. The settings hold for the whole statement (the join back
// to the rows and their tags too) and end with the batch's implicit
// transaction. PostgreSQL's plan cache does not key on them: a statement
// text run here must not also run without them (none does).
func queryBitmaps[T any](ctx context.Context, pool *pgxpool.Pool, sql string, args []any, scan pgx.RowToFunc[T]) ([]T, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)`)
	var out []T
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectRows(rows, scan)
		return err
	})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// searchWalk, searchWalkTags and searchWalkIndexOnly are how many rows of
// the sort order a search reads before it turns to the indexes: rows
// checked for text, rows checked for tags alone, or entries of the sort
// index alone.
const (
	searchWalk          = 1000
	searchWalkTags      = 10000
	searchWalkIndexOnly = 10000
)

// trigramConds returns the conditions on expr that the trigram index over
// it serves for a substring search with the LIKE pattern: one per word of
// three or more letters or digits (the four longest), each a necessary
// condition of the whole pattern, which the caller checks. Words rather
// than the pattern: pg_trgm adds padded trigrams at word boundaries ("  b",
// " br" for "northwind brau"), each with a posting list of a good part of
// the table, and reading those was most of a search's time (measured 1.5-3x
// at 1M customers). With no such word, the pattern itself.
func trigramConds(expr, pattern string, arg func(any) string) string {
	words := trigramWords(pattern)
	if len(words) == 0 {
		return expr + " LIKE " + arg(pattern)
	}
	var conds []string
	for _, w := range words[:min(len(words), 4)] {
		conds = append(conds, expr+" LIKE "+arg("%"+w+"%"))
	}
	return strings.Join(conds, " AND ")
}

// trigramWords returns the words of three or more letters or digits of a
// pattern, longest first, each once.
func trigramWords(pattern string) []string {
	words := strings.FieldsFunc(pattern, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	words = slices.DeleteFunc(words, func(w string) bool { return utf8.RuneCountInString(w) < 3 })
	slices.SortFunc(words, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	return slices.Compact(words)
}

// oneWord reports whether a folded search pattern is one word of three or
// more letters or digits and nothing else.
func oneWord(pattern string) bool {
	w := trigramWords(pattern)
	return len(w) == 1 && "%"+w[0]+"%" == pattern
}

// couldBeID reports whether a folded search pattern could match part of a
// customer id (a lower-case UUID): hex digits and dashes only.
func couldBeID(pattern string) bool {
	return strings.Trim(strings.Trim(pattern, "%"), "0123456789abcdef-") == ""
}

func (c *CustomerList) query(ctx context.Context, sql string, args []any) ([]projections.CustomerItem, error) {
	rows, err := c.db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("searching customers: %w", err)
	}
	items, err := pgx.CollectRows(rows, scanItem)
	if err != nil {
		return nil, fmt.Errorf("searching customers: %w", err)
	}
	return items, nil
}

// resolveTags returns the ids of the tags whose folded name contains the
// search text (for searchBy all and tag), and for each tag filter the ids
// of the tags of that folded name (none: nothing can match).
func (c *CustomerList) resolveTags(ctx context.Context, partnerID string, q projections.SearchQuery) (matched []string, filters [][]string, err error) {
	pattern := ""
	if q.SearchBy == projections.SearchAll || q.SearchBy == projections.SearchTag {
		pattern = q.Pattern
	}
	if pattern == "" && len(q.TagsFolded) == 0 {
		return nil, nil, nil
	}
	rows, err := c.db.pool.Query(ctx, `SELECT tag_id, name_folded, $2::text <> '' AND name_folded LIKE $2 FROM rm_tags
		WHERE partner_id = $1 AND (($2::text <> '' AND name_folded LIKE $2) OR name_folded = ANY($3::text[]))`, partnerID, pattern, q.TagsFolded)
	if err != nil {
		return nil, nil, fmt.Errorf("resolving tags: %w", err)
	}
	var (
		id, name string
		hit      bool
	)
	byName := map[string][]string{}
	if _, err := pgx.ForEachRow(rows, []any{&id, &name, &hit}, func() error {
		if hit {
			matched = append(matched, id)
		}
		byName[name] = append(byName[name], id)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("resolving tags: %w", err)
	}
	filters = make([][]string, len(q.TagsFolded))
	for i, t := range q.TagsFolded {
		filters[i] = byName[t]
	}
	return matched, filters, nil
}

func scanItem(row pgx.CollectableRow) (projections.CustomerItem, error) {
	var it projections.CustomerItem
	err := row.Scan(&it.ID, &it.Relationship, &it.CompanyName, &it.PrimaryDomain, &it.Tags)
	if it.Tags == nil {
		it.Tags = []string{}
	}
	return it, err
}

// ListTags answers GET /v1/tags: the catalog by name, with customerCount.
func (c *CustomerList) ListTags(ctx context.Context, partnerID string) ([]projections.TagCount, error) {
	rows, err := c.db.pool.Query(ctx, `SELECT tag_id, name, customer_count FROM rm_tags WHERE partner_id = $1 ORDER BY name`, partnerID)
	if err != nil {
		return nil, fmt.Errorf("listing tags: %w", err)
	}
	tags, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (projections.TagCount, error) {
		var t projections.TagCount
		return t, r.Scan(&t.ID, &t.Name, &t.CustomerCount)
	})
	if err != nil {
		return nil, fmt.Errorf("listing tags: %w", err)
	}
	return tags, nil
}

// exportSQL is the partner's ($1) whole list in export order. The tags are
// aggregated once per partner and merged in, rather than looked up per row.
const exportSQL = `SELECT c.customer_id, c.relationship, c.company_name, c.primary_domain, COALESCE(g.tags, '{}')
	FROM rm_customers c LEFT JOIN (
		SELECT ct.customer_id COLLATE "C" AS customer_id, array_agg(t.name ORDER BY t.name) AS tags
		FROM rm_customer_tags ct JOIN rm_tags t ON t.partner_id = ct.partner_id AND t.tag_id = ct.tag_id
		WHERE ct.partner_id = $1 GROUP BY ct.customer_id) g ON g.customer_id = c.customer_id
	WHERE c.partner_id = $1 ORDER BY c.company_key, c.customer_id, c.relationship`

// ExportCustomers streams the partner's list from one REPEATABLE READ
// snapshot; memory is bounded by batchSize.
func (c *CustomerList) ExportCustomers(ctx context.Context, partnerID string, batchSize int, yield func([]projections.CustomerItem) error) error {
	if batchSize < 1 {
		batchSize = 500
	}
	tx, err := c.db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("starting export: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, exportSQL, partnerID)
	if err != nil {
		return fmt.Errorf("exporting customers: %w", err)
	}
	defer rows.Close()
	batch := make([]projections.CustomerItem, 0, batchSize)
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return fmt.Errorf("exporting customers: %w", err)
		}
		if batch = append(batch, it); len(batch) == batchSize {
			if err := yield(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("exporting customers: %w", err)
	}
	if len(batch) > 0 {
		return yield(batch)
	}
	return nil
}
