package pgread_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/partnerhub/customers/projections"
)

// TestSearchPastTheWalk: a broad term whose matches each lie past the
// walk's stretch of the list from the one before pages through every match
// once and in order, both ways, every page through the indexes, however
// the rows are stored. In name order the search is narrowed by a sample of
// the first matches stored (nameBound): stored mostly in name order, the
// smallest last (as rows the projector adds after a rebuild may be), the
// sample holds none of the first page's rows; stored in reverse, it is
// not in name order and the search is not narrowed.
func TestSearchPastTheWalk(t *testing.T) {
	t.Run("mostly in order", func(t *testing.T) { testSearchPastTheWalk(t, "ORDER BY i, rel", [2]int{10, 29}, [2]int{0, 9}) })
	t.Run("in reverse", func(t *testing.T) { testSearchPastTheWalk(t, "ORDER BY i DESC, rel", [2]int{0, 29}) })
}

func testSearchPastTheWalk(t *testing.T, order string, stretches ...[2]int) {
	const matches, filler = 30, 1001 // filler before each match: more than the walk reads
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
	var want []string
	for i := range matches {
		want = append(want, fmt.Sprintf("m%03d/direct-bill", i))
		if i%7 == 0 {
			want = append(want, fmt.Sprintf("m%03d/indirect-reseller", i))
		}
	}
	list := db.CustomerList()
	for _, sort := range []string{"", "-companyName"} {
		var got []string
		params := projections.SearchParams{Q: "muller", Sort: sort, Limit: 4}
		for pages := 0; ; pages++ {
			if pages > len(want) {
				t.Fatalf("sort %q: paging does not end", sort)
			}
			page, err := list.SearchCustomers(context.Background(), "p1", params)
			if err != nil {
				t.Fatalf("sort %q: %v", sort, err)
			}
			for _, it := range page.Items {
				got = append(got, it.ID+"/"+it.Relationship)
			}
			if params.Cursor = page.NextCursor; params.Cursor == "" {
				break
			}
		}
		w := slices.Clone(want)
		if sort != "" {
			slices.Reverse(w)
		}
		if !slices.Equal(got, w) {
			t.Errorf("sort %q: paged through\n%q\nwant\n%q", sort, got, w)
		}
	}
}
