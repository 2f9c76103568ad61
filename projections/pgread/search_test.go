package pgread_test

import (
	"context"
	"fmt"
	"slices"
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
			var got []string
			params := tc.params
			params.Sort, params.Limit = sort, 3 // a page ends inside each pair of a dual customer
			for pages := 0; ; pages++ {
				if pages > len(tc.want) {
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
					break
				}
			}
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
