package pgread_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
)

// TestSearchPastTheWalk pages through every match of a broad term, each
// match past the walk's stretch of the list from the one before, so that
// every page comes from the indexes. It searches by all fields, by company
// name and with a relationship filter, both ways, with pages that end
// inside a dual customer's pair, and expects each match once, in order,
// and none of partner p2's.
//
// In name order such a search is narrowed by a sample of the first matches
// stored (nameBound). Stored mostly in name order, the smallest last (as
// rows the projector adds after a rebuild may be), the sample holds none
// of the first page's rows, and bounded pages answer. Stored in reverse,
// the sample shows the list out of order, the partner is marked, and no
// page is bounded.
func TestSearchPastTheWalk(t *testing.T) {
	t.Run("mostly in order", func(t *testing.T) {
		testSearchPastTheWalk(t, "ORDER BY i, rel", false, [2]int{10, 29}, [2]int{0, 9})
	})
	t.Run("in reverse", func(t *testing.T) { testSearchPastTheWalk(t, "ORDER BY i DESC, rel", true, [2]int{0, 29}) })
}

func testSearchPastTheWalk(t *testing.T, order string, unordered bool, stretches ...[2]int) {
	const matches, filler = 30, pgread.SearchWalk + 1 // filler before each match: more than the walk reads
	row := `INSERT INTO rm_customers (partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text)
		SELECT p, id, rel, name, lower(name), dom, lower(name) || E'\n' || dom || E'\n' || id FROM (SELECT %s) r(p, id, rel, name, dom)`
	match := func(from, to int) string {
		return fmt.Sprintf(row, fmt.Sprintf(`'p1', 'm' || lpad(i::text, 3, '0'), rel, 'Nord ' || lpad(i::text, 3, '0') || ' Muller', 'm' || i || '.example'
			FROM generate_series(%d, %d) i, unnest(ARRAY['direct-bill', 'indirect-reseller']) rel
			WHERE rel = 'direct-bill' OR i %% 7 = 0 %s`, from, to, order))
	}
	stmts := []string{fmt.Sprintf(row, fmt.Sprintf(`'p1', 'f' || i || '-' || j, 'direct-bill', 'Nord ' || lpad(i::text, 3, '0') || ' Filler ' || lpad(j::text, 4, '0'), 'f' || i || '-' || j || '.example'
			FROM generate_series(0, %d) i, generate_series(1, %d) j`, matches-1, filler))}
	for _, s := range stretches {
		stmts = append(stmts, match(s[0], s[1]))
	}
	stmts = append(stmts,
		fmt.Sprintf(row, `'p2', 'o' || i, 'direct-bill', 'Muller ' || i, 'o' || i || '.example' FROM generate_series(1, 50) i`),
		`VACUUM ANALYZE rm_customers`)
	_, db := earlierVersion(t, stmts...)
	var all, direct []string
	for i := range matches {
		all = append(all, fmt.Sprintf("m%03d/direct-bill", i))
		direct = append(direct, fmt.Sprintf("m%03d/direct-bill", i))
		if i%7 == 0 {
			all = append(all, fmt.Sprintf("m%03d/indirect-reseller", i))
		}
	}
	list := db.CustomerList()
	for _, tc := range []struct {
		params projections.SearchParams
		want   []string
	}{
		{projections.SearchParams{Q: "muller"}, all},
		{projections.SearchParams{Q: "muller", SearchBy: projections.SearchCompanyName}, all},
		{projections.SearchParams{Q: "muller", Relationship: "direct-bill"}, direct},
	} {
		for _, sort := range []string{"", "-companyName"} {
			params := tc.params
			params.Sort, params.Limit = sort, 3 // a page ends inside each pair of a dual customer
			got := pageThrough(t, list, params, len(tc.want))
			want := slices.Clone(tc.want)
			if sort != "" {
				slices.Reverse(want)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v: paged through\n%q\nwant\n%q", params, got, want)
			}
		}
	}
	if got := pgread.Unordered(db, "p1"); got != unordered {
		t.Errorf("list held as out of name order: %v, want %v", got, unordered)
	}
	if n := pgread.Narrowed(db); (n > 0) == unordered {
		t.Errorf("%d pages answered by a name bound, want %s", n, map[bool]string{false: "some", true: "none"}[unordered])
	}
}

// TestSearchWithPrefixRows pages through every match of a term, with the
// list built so that each page comes from the indexes: a thousand and more
// rows that do not match between any two matches, but inside a block of
// rows whose names and domains start with the term. Matches that do not
// start with it come before the block and after it in both orders, so
// pages are bounded by the block's rows from before it, at its start (a
// page of the block's rows alone, whose bound is its last key), and not at
// all after it. It sorts by name and by domain, both ways, searching by all
// fields, by company name and by domain, and with a relationship filter
// (the block's middle customers are dual, and so is every filler), and
// expects each match once, in order. Partner p2's rows start with the
// word too, with keys among the first and after the last of p1's block's:
// a bound that took them would cut p1's pages.
func TestSearchWithPrefixRows(t *testing.T) {
	const filler = pgread.SearchWalk + 1
	row := `INSERT INTO rm_customers (partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text)
		SELECT 'p1', id, rel, name, lower(name), dom, lower(name) || E'\n' || dom || E'\n' || id FROM (SELECT %s) r(id, rel, name, dom)`
	// Matches "<side> NNN muller" before (a) and after (z) the block, and
	// a stretch of fillers before each and before the block's ends.
	stmts := []string{
		fmt.Sprintf(row, `side || i, 'direct-bill', side || ' ' || lpad(i::text, 3, '0') || ' Muller', side || '-' || lpad(i::text, 3, '0') || '-muller.example'
			FROM unnest(ARRAY['a', 'z']) side, generate_series(0, 2) i`),
		fmt.Sprintf(row, fmt.Sprintf(`'f' || side || i || '-' || j, rel, side || ' ' || lpad(i::text, 3, '0') || ' Filler ' || lpad(j::text, 4, '0'),
			side || '-' || lpad(i::text, 3, '0') || '-filler-' || lpad(j::text, 4, '0') || '.example'
			FROM unnest(ARRAY['a', 'z']) side, generate_series(0, 3) i, generate_series(1, %d) j,
			unnest(ARRAY['direct-bill', 'indirect-reseller']) rel`, filler)),
		fmt.Sprintf(row, `'m' || lpad(i::text, 3, '0'), rel, 'Muller ' || lpad(i::text, 3, '0'), 'muller-' || lpad(i::text, 3, '0') || '.example'
			FROM generate_series(0, 9) i, unnest(ARRAY['direct-bill', 'indirect-reseller']) rel
			WHERE rel = 'direct-bill' OR i BETWEEN 3 AND 6`),
		`INSERT INTO rm_customers (partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text)
			SELECT 'p2', n || s, 'direct-bill', 'Muller ' || n || ' ' || s, 'muller ' || n || ' ' || s, 'muller-' || n || '-' || s || '.example', ''
			FROM unnest(ARRAY['000', '999']) n, unnest(ARRAY['a', 'b', 'c']) s`,
		`VACUUM ANALYZE rm_customers`,
	}
	_, db := earlierVersion(t, stmts...)
	var all, indirect []string
	for i := range 3 {
		all = append(all, fmt.Sprintf("a%d/direct-bill", i))
	}
	for i := range 10 {
		all = append(all, fmt.Sprintf("m%03d/direct-bill", i))
		if i >= 3 && i <= 6 {
			all = append(all, fmt.Sprintf("m%03d/indirect-reseller", i))
			indirect = append(indirect, fmt.Sprintf("m%03d/indirect-reseller", i))
		}
	}
	for i := range 3 {
		all = append(all, fmt.Sprintf("z%d/direct-bill", i))
	}
	list := db.CustomerList()
	for _, tc := range []struct {
		params projections.SearchParams
		sorts  []string
		want   []string
	}{
		{projections.SearchParams{Q: "muller"}, []string{"", "-companyName", "domain", "-domain"}, all},
		{projections.SearchParams{Q: "muller", SearchBy: projections.SearchCompanyName}, []string{"", "-companyName"}, all},
		{projections.SearchParams{Q: "muller", SearchBy: projections.SearchDomain}, []string{"domain", "-domain"}, all},
		{projections.SearchParams{Q: "muller", Relationship: "indirect-reseller"}, []string{"", "-companyName", "domain", "-domain"}, indirect},
	} {
		for _, sort := range tc.sorts {
			params := tc.params
			params.Sort, params.Limit = sort, 3 // pages end inside pairs, and the first three matches end before the block
			got := pageThrough(t, list, params, len(tc.want))
			want := slices.Clone(tc.want)
			if strings.HasPrefix(sort, "-") {
				slices.Reverse(want)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v: paged through\n%q\nwant\n%q", params, got, want)
			}
		}
	}
	if pgread.PrefixBounded(db) == 0 {
		t.Error("no page was ranked within a bound of the rows that start with the word")
	}
}

// pageThrough pages through a search of partner p1 from its first page
// and returns id/relationship of every item, failing the test after more
// pages than there are matches to want.
func pageThrough(t *testing.T, list projections.CustomerList, params projections.SearchParams, want int) []string {
	t.Helper()
	var got []string
	for pages := 0; ; pages++ {
		if pages > want {
			t.Fatalf("%+v: paging does not end", params)
		}
		page, err := list.SearchCustomers(context.Background(), "p1", params)
		if err != nil {
			t.Fatalf("%+v: %v", params, err)
		}
		for _, it := range page.Items {
			got = append(got, it.ID+"/"+it.Relationship)
		}
		if params.Cursor = page.NextCursor; params.Cursor == "" {
			return got
		}
	}
}
