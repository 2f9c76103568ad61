package pgread_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/httpapi"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
)

var explain = flag.Bool("explain", false, "log the export query's plan in BenchmarkScale")

var (
	scaleCustomers = flag.Int("customers", 20_000, "customers of the large partner in BenchmarkScale (1000000 for the issue's target)")
	scaleRandom    = flag.Bool("random-order", false, "BenchmarkScale: store rows in generated order, as a list grown by the projector has them, instead of in list order, as a rebuild leaves them")
	scaleSchema    = flag.String("scale-schema", "", "BenchmarkScale: keep the loaded list in this schema and reuse it on later runs with the same -customers (saves the load; drop it by hand)")
)

const benchPartner = "p-large"

// Word lists for generated company names: accents, umlauts, special
// letters, so that folding is exercised the way real names do.
var (
	nameFirst = []string{"Müller", "Schröder", "Contoso", "Fabrikam", "Northwind", "Adventure", "Tailspin", "Wingtip", "Litware",
		"Proseware", "Lucerne", "Margie", "Coho", "Alpine", "Blue Yonder", "Café", "Søren", "Łukasz", "Ørsted", "Zoë", "Björk",
		"Crème", "Nordic", "Global", "Fourth Coffee", "Wide World", "Graphic", "Humongous", "Datum", "Relecloud", "Trey",
		"Woodgrove", "Consolidated", "Lamna", "Bellows", "Münchner", "Gößweinstein", "Åkesson", "Núñez", "François"}
	nameSecond = []string{"Consulting", "Systems", "Logistics", "Bäckerei", "Solutions", "Partners", "Holdings", "Trading",
		"Software", "Médical", "Versicherung", "Énergie", "Brauerei", "Studios", "Engineering", "Immobilien", "Design", "Foods"}
	nameSuffix = []string{"GmbH", "AG", "Ltd.", "Inc.", "S.A.", "B.V.", "SARL", "LLC", "Oy", "AB", "KG", "S.p.A."}
	tagNames   = []string{"Gold", "Silver", "Bronze", "VIP", "Beta", "EDU", "Gov", "Nonprofit", "CSP", "Azure", "M365", "Dynamics",
		"Security", "Renewal Q1", "Renewal Q2", "Renewal Q3", "Renewal Q4", "Churn risk", "Upsell", "Partner-led", "Direct",
		"DACH", "Nordics", "Benelux", "UK", "France", "Iberia", "Italy", "Enterprise", "SMB", "Startup", "Healthcare",
		"Finance", "Retail", "Manufacturing", "Public sector", "Legal", "Media", "Telco", "Education"}
)

func slug(s string) string {
	s = projections.Fold(s)
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s)
}

// genCustomer returns customer i of the generated large partner.
type genCustomer struct {
	id, name, domain string
	dual             bool
	tags             []int
}

func generate(n int, each func(genCustomer) error) error {
	rng := rand.New(rand.NewPCG(7, 42))
	for i := range n {
		var id uuid.UUID
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
		a, b := nameFirst[rng.IntN(len(nameFirst))], nameSecond[rng.IntN(len(nameSecond))]
		c := genCustomer{
			id:     id.String(),
			name:   fmt.Sprintf("%s %s %d %s", a, b, rng.IntN(100000), nameSuffix[rng.IntN(len(nameSuffix))]),
			domain: fmt.Sprintf("%s-%s-%d.example", slug(a), slug(b), i),
			dual:   rng.IntN(20) == 0,
		}
		for range rng.IntN(3) {
			c.tags = append(c.tags, rng.IntN(len(tagNames)))
		}
		slices.Sort(c.tags)
		c.tags = slices.Compact(c.tags)
		if err := each(c); err != nil {
			return err
		}
	}
	return nil
}

// loadCustomers COPYs n generated customers straight into the live tables of
// the customer list, with the secondary indexes dropped during the load and
// rebuilt after (as Rebuild does).
func loadCustomers(ctx context.Context, b *testing.B, pool *pgxpool.Pool, n int) {
	b.Helper()
	start := time.Now()
	rows, err := pool.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename IN ('rm_customers', 'rm_customer_tags') AND indexname NOT LIKE '%pkey'`)
	if err != nil {
		b.Fatal(err)
	}
	type index struct{ name, def string }
	indexes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var ix index
		return ix, r.Scan(&ix.name, &ix.def)
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, ix := range indexes {
		if _, err := pool.Exec(ctx, `DROP INDEX `+ix.name); err != nil {
			b.Fatal(err)
		}
	}
	var tagRows [][]any
	for i, name := range tagNames {
		tagRows = append(tagRows, []any{benchPartner, fmt.Sprint("t", i), name, projections.Fold(name), int64(0)})
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"rm_tags"}, []string{"partner_id", "tag_id", "name", "name_folded", "customer_count"}, pgx.CopyFromRows(tagRows)); err != nil {
		b.Fatal(err)
	}
	// Customers and their tags are generated twice (same seed) rather than
	// held in memory: two COPY streams.
	gen := func(each func(genCustomer) error) error { return generate(n, each) }
	copyGen := func(table string, cols []string, rowsOf func(genCustomer) [][]any) {
		ch := make(chan []any, 1024)
		errc := make(chan error, 1)
		go func() {
			defer close(ch)
			errc <- gen(func(c genCustomer) error {
				for _, r := range rowsOf(c) {
					select {
					case ch <- r:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			})
		}()
		var row []any
		src := pgx.CopyFromFunc(func() ([]any, error) {
			var ok bool
			if row, ok = <-ch; !ok {
				return nil, nil
			}
			return row, nil
		})
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{table}, cols, src); err != nil {
			b.Fatalf("copying %s: %v", table, err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	if !*scaleRandom {
		// As a rebuild stores them: in the list's order (pgread's load).
		var all []genCustomer
		_ = generate(n, func(c genCustomer) error { all = append(all, c); return nil })
		for i := range all {
			all[i].name = projections.Fold(all[i].name) + "\x00" + all[i].name // sort key first; cut below
		}
		slices.SortFunc(all, func(a, b genCustomer) int {
			return cmp.Or(strings.Compare(a.name, b.name), strings.Compare(a.id, b.id))
		})
		for i := range all {
			all[i].name = all[i].name[strings.IndexByte(all[i].name, 0)+1:]
		}
		gen = func(each func(genCustomer) error) error {
			for _, c := range all {
				if err := each(c); err != nil {
					return err
				}
			}
			return nil
		}
	}
	copyGen("rm_customers", []string{"partner_id", "customer_id", "relationship", "company_name", "company_key", "primary_domain", "search_text", "tag_ids"},
		func(c genCustomer) [][]any {
			tagIDs := []string{}
			for _, t := range c.tags {
				tagIDs = append(tagIDs, fmt.Sprint("t", t))
			}
			row := func(rel string) []any {
				return []any{benchPartner, c.id, rel, c.name, projections.Fold(c.name), c.domain, projections.SearchText(c.name, c.domain, c.id), tagIDs}
			}
			out := [][]any{row(domain.RelationshipDirectBill)}
			if c.dual {
				out = append(out, row(domain.RelationshipIndirectReseller))
			}
			return out
		})
	copyGen("rm_customer_tags", []string{"partner_id", "customer_id", "tag_id"}, func(c genCustomer) [][]any {
		var out [][]any
		for _, t := range c.tags {
			out = append(out, []any{benchPartner, c.id, fmt.Sprint("t", t)})
		}
		return out
	})
	for _, s := range []string{`UPDATE rm_tags t SET customer_count = (SELECT count(*) FROM rm_customer_tags ct WHERE ct.partner_id = t.partner_id AND ct.tag_id = t.tag_id)`} {
		if _, err := pool.Exec(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	for _, ix := range indexes {
		if _, err := pool.Exec(ctx, ix.def); err != nil {
			b.Fatalf("recreating %s: %v", ix.name, err)
		}
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE rm_customers`); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE rm_customer_tags`); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d customers in %s", n, time.Since(start).Round(time.Millisecond))
}

// userOf is the one bearer token of the benchmark.
type userOf struct{ p httpapi.Principal }

func (u userOf) UserByToken(_ context.Context, token string) (httpapi.Principal, bool, error) {
	return u.p, token == "bench-token-0123456789", nil
}

// discardResponse is an http.ResponseWriter that throws the body away, so
// the export's own memory is what is measured.
type discardResponse struct {
	h      http.Header
	status int
	n      int64
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) WriteHeader(code int)        { d.status = code }
func (d *discardResponse) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

// heapPeak samples the live heap while a run goes on.
type heapPeak struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Uint64
	base uint64
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapPeak{stop: make(chan struct{}), done: make(chan struct{}), base: ms.HeapAlloc}
	go func() {
		defer close(h.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > h.peak.Load() {
				h.peak.Store(ms.HeapAlloc)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// growthMB is the highest heap seen above the starting heap, in MB.
func (h *heapPeak) growthMB() float64 {
	close(h.stop)
	<-h.done
	if p := h.peak.Load(); p > h.base {
		return float64(p-h.base) / (1 << 20)
	}
	return 0
}

// BenchmarkScale loads one large partner (-customers, default 20000) into
// the PostgreSQL customer list and measures substring search latency and
// the full Customers.csv export through the HTTP handler against
// PostgreSQL's own COPY of the same rows.
//
//	go test ./projections/pgread -run '^$' -bench Scale -customers=1000000 -benchtime=1x -timeout 60m
func BenchmarkScale(b *testing.B) {
	ctx := context.Background()
	url, reuse, loaded := scaleURL(ctx, b)
	db, err := pgread.Open(ctx, url, pgread.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	n := *scaleCustomers
	if !reuse(pool) {
		loadCustomers(ctx, b, pool, n)
		loaded(pool)
	}
	list := db.CustomerList()

	// Queries a user types: fragments of names (common and rare, with and
	// without accents), a domain fragment, a Microsoft ID prefix, a tag.
	var sample genCustomer
	_ = generate(min(n, 1000), func(c genCustomer) error { sample = c; return nil })
	queries := []projections.SearchParams{
		{Q: "muller"},
		{Q: "bäckerei"},
		{Q: "northwind brau"},
		{Q: sample.name},
		{Q: sample.domain[:12], SearchBy: projections.SearchDomain},
		{Q: sample.domain[:12]},
		{Q: sample.id[:8], SearchBy: projections.SearchID},
		{Q: sample.id[:8]},
		{Q: "renewal q3", SearchBy: projections.SearchTag},
		{Q: "zzz-no-such-customer"},
		{Q: "gößwein", Sort: projections.SortDomainDesc},
		{Q: "crème", Tags: []string{"gold"}, Relationship: domain.RelationshipDirectBill},
	}
	for _, q := range queries {
		b.Run("search/"+q.Q, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				page, err := list.SearchCustomers(ctx, benchPartner, q)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				if q.Q != "zzz-no-such-customer" && len(page.Items) == 0 {
					b.Fatalf("%+v found nothing", q)
				}
			}
			reportPercentiles(b, lat)
		})
	}

	srv, err := newExportServer(ctx, pool, db)
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	b.Run("export/csv-http", func(b *testing.B) {
		b.ReportAllocs()
		var growth float64
		for b.Loop() {
			peak := startHeapPeak()
			req := httptest.NewRequest("GET", "/v1/customers/export?q=ignored&tag=Gold", nil)
			req.Header.Set("Authorization", "Bearer bench-token-0123456789")
			w := &discardResponse{h: http.Header{}}
			h.ServeHTTP(w, req)
			growth = max(growth, peak.growthMB())
			if w.status != 0 && w.status != 200 || w.n == 0 {
				b.Fatalf("export answered %d with %d bytes", w.status, w.n)
			}
			b.SetBytes(w.n)
		}
		b.ReportMetric(growth, "peak-heap-MB")
	})
	// The same query as the export's, tags joined as the CSV has them.
	copySQL := "COPY (SELECT customer_id, company_name, primary_domain, relationship, array_to_string(tags, '; ') FROM (" +
		strings.ReplaceAll(pgread.ExportSQL, "$1", "'"+benchPartner+"'") + ") x(customer_id, relationship, company_name, primary_domain, tags)) TO STDOUT (FORMAT csv, HEADER)"
	if *explain {
		logPlan(ctx, b, pool, strings.ReplaceAll(pgread.ExportSQL, "$1", "'"+benchPartner+"'"))
	}
	b.Run("export/pg-copy", func(b *testing.B) {
		b.ReportAllocs()
		var growth float64
		for b.Loop() {
			peak := startHeapPeak()
			conn, err := pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			w := &discardResponse{}
			_, err = conn.Conn().PgConn().CopyTo(ctx, w, copySQL)
			conn.Release()
			growth = max(growth, peak.growthMB())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(w.n)
		}
		b.ReportMetric(growth, "peak-heap-MB")
	})
}

// scaleURL is a fresh schema, or the kept one of -scale-schema; reuse
// tells whether that one holds the list already, and marks it as loaded.
// The mark (the schema's comment, set after a complete load) names
// -customers and -random-order, so a kept list is never measured as
// another.
func scaleURL(ctx context.Context, b *testing.B) (url string, reuse func(*pgxpool.Pool) bool, loaded func(*pgxpool.Pool)) {
	if *scaleSchema == "" {
		return testenv.PostgresSchema(b), func(*pgxpool.Pool) bool { return false }, func(*pgxpool.Pool) {}
	}
	url = keptSchema(ctx, b, *scaleSchema)
	mark := fmt.Sprintf("BenchmarkScale customers=%d random-order=%t", *scaleCustomers, *scaleRandom)
	reuse = func(pool *pgxpool.Pool) bool {
		var got string
		var rows int
		if err := pool.QueryRow(ctx, `SELECT coalesce(obj_description(to_regnamespace($1), 'pg_namespace'), ''), (SELECT count(*) FROM rm_customers)`,
			*scaleSchema).Scan(&got, &rows); err != nil {
			b.Fatal(err)
		}
		switch {
		case got == mark:
			return true
		case got == "" && rows == 0:
			return false
		}
		b.Fatalf("schema %s holds another list (%q, %d rows), not %q: drop it or name another", *scaleSchema, got, rows, mark)
		return false
	}
	loaded = func(pool *pgxpool.Pool) {
		if _, err := pool.Exec(ctx, `COMMENT ON SCHEMA `+*scaleSchema+` IS '`+mark+`'`); err != nil {
			b.Fatal(err)
		}
	}
	return url, reuse, loaded
}

func logPlan(ctx context.Context, b *testing.B, pool *pgxpool.Pool, sql string) {
	rows, err := pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql)
	if err != nil {
		b.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	b.Log("\n" + strings.Join(lines, "\n"))
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// newExportServer is the real HTTP API over the read models; only the user
// directory is a stand-in (one fixed token). Commands are never called.
func newExportServer(ctx context.Context, pool *pgxpool.Pool, db *pgread.DB) (*httpapi.Server, error) {
	idem, err := httpapi.NewPostgresIdempotency(ctx, pool)
	if err != nil {
		return nil, err
	}
	waiter := projections.NewWaiter(time.Second, db.CustomerList(), db.ActivityLog())
	read := httpapi.ReadSide{List: db.CustomerList(), Log: db.ActivityLog()}
	return httpapi.New(httpapi.Config{
		Commands: httpapi.WriteSide{}, Customers: httpapi.WriteSide{}, CustomerList: read, Activity: read,
		Events: httpapi.StoreFeed{}, Idempotency: idem,
		Users:          userOf{p: httpapi.Principal{UserID: "u", Email: "admin@large.example", PartnerID: benchPartner, Role: domain.RoleAdminAgent}},
		ListWaiter:     httpapi.ProjectionWaiter{W: waiter, Name: projections.CustomerListName},
		ActivityWaiter: httpapi.ProjectionWaiter{W: waiter, Name: projections.ActivityLogName},
		Ready:          func(context.Context) error { return nil },
		Registry:       prometheus.NewRegistry(),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}
