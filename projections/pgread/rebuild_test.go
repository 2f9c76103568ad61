package pgread_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
	"github.com/partnerhub/customers/projections/readtest"
)

// TestRebuildStoresListOrder: a rebuild leaves the customer rows in the
// list's default order on disk (searches rely on it for speed), with every
// index and primary key in place: the projector's upserts work after it.
func TestRebuildStoresListOrder(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresSchema(t)
	db, err := pgread.Open(ctx, url, pgread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	store := readtest.Store(t)
	// Created in an order unrelated to the names, one dual partner.
	names := []string{"Zeta AG", "alpha GmbH", "Müller KG", "Beta Ltd.", "Ärzte eG", "Contoso", "mu Labs"}
	for i, name := range names {
		id := uuid.NewString()
		readtest.Append(t, store, "p1", domain.CustomerStream("p1", id), "ann@p1.example",
			domain.CustomerCreated{CustomerID: id, CompanyName: name, PrimaryDomain: strings.ToLower(strings.Fields(name)[0]) + ".example", Relationship: domain.RelationshipDirectBill})
		if i == 2 {
			readtest.Append(t, store, "p1", domain.CustomerStream("p1", id), "ann@p1.example",
				domain.CustomerRelationshipAdded{CustomerID: id, Relationship: domain.RelationshipIndirectReseller})
		}
	}
	list := db.CustomerList()
	if err := list.Rebuild(ctx, store, nil); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	checkListOnDisk(t, conn, len(names)+1, "after rebuild")
	// The live projector continues on the swapped tables: a new customer
	// and a tag assignment (ON CONFLICT needs the primary keys).
	id := uuid.NewString()
	readtest.Append(t, store, "p1", domain.CustomerStream("p1", id), "ann@p1.example",
		domain.CustomerCreated{CustomerID: id, CompanyName: "Omega", PrimaryDomain: "omega.example", Relationship: domain.RelationshipDirectBill})
	evs := readtest.All(t, store)
	if err := list.ApplyBatch(ctx, evs); err != nil {
		t.Fatal(err)
	}
	page, err := list.SearchCustomers(ctx, "p1", projections.SearchParams{Q: "omega"})
	if err != nil || len(page.Items) != 1 {
		t.Errorf("search after rebuild and apply: %+v, %v", page, err)
	}
}

// checkListOnDisk checks that the customer list's rows are stored in list
// order, n of them, and that its three tables have their primary keys.
func checkListOnDisk(t *testing.T, conn *pgx.Conn, n int, when string) {
	t.Helper()
	ctx := context.Background()
	rows, _ := conn.Query(ctx, `SELECT company_key, customer_id, relationship FROM rm_customers ORDER BY ctid`)
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var k, id, rel string
		err := r.Scan(&k, &id, &rel)
		return k + "\x00" + id + "\x00" + rel, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != n || !slices.IsSorted(stored) {
		t.Errorf("rows on disk %s, in ctid order:\n%q\nwant %d rows sorted by name, id, relationship", when, stored, n)
	}
	var pkeys int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid::regclass::text IN ('rm_customers', 'rm_customer_tags', 'rm_tags')`).Scan(&pkeys); err != nil || pkeys != 3 {
		t.Errorf("primary keys %s: %d, %v; want 3", when, pkeys, err)
	}
}

// earlierVersion makes a fresh schema of this version's read models, turns
// it into an earlier version's with stmts, and opens it again (migrating
// it). The connection is to the same schema.
func earlierVersion(t *testing.T, stmts ...string) (*pgx.Conn, *pgread.DB) {
	t.Helper()
	ctx := context.Background()
	url := testenv.PostgresSchema(t)
	db, err := pgread.Open(ctx, url, pgread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if db, err = pgread.Open(ctx, url, pgread.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return conn, db
}

// TestMigrationReplacesOldIndexes: a database of the previous version, with
// its trigram and tag indexes, opens with this version's indexes instead.
func TestMigrationReplacesOldIndexes(t *testing.T) {
	ctx := context.Background()
	conn, _ := earlierVersion(t,
		`DROP INDEX rm_customers_trgm_text`, `DROP INDEX rm_customers_trgm_id`, `DROP INDEX rm_customer_tags_holders`,
		`CREATE INDEX rm_customers_trgm_all ON rm_customers USING gin (search_text public.gin_trgm_ops)`,
		`CREATE INDEX rm_customers_trgm_name ON rm_customers USING gin (company_key public.gin_trgm_ops)`,
		`CREATE INDEX rm_customers_trgm_domain ON rm_customers USING gin (primary_domain public.gin_trgm_ops)`,
		`CREATE INDEX rm_customer_tags_by_tag ON rm_customer_tags (partner_id, tag_id)`,
	)
	rows, _ := conn.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename IN ('rm_customers', 'rm_customer_tags') ORDER BY 1`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"rm_customer_tags_holders", "rm_customer_tags_pkey", "rm_customers_by_domain", "rm_customers_by_name", "rm_customers_name_ranges", "rm_customers_pkey", "rm_customers_tags", "rm_customers_trgm_id", "rm_customers_trgm_text"}
	if !slices.Equal(got, want) {
		t.Errorf("indexes after migrating = %q, want %q", got, want)
	}
}

// TestMigrationFillsTagIDs: a customer list of the version before tag_ids
// (tags only in rm_customer_tags) gets the column filled from there, so
// that tag filters, tag searches and the rows' tags still answer.
func TestMigrationFillsTagIDs(t *testing.T) {
	ctx := context.Background()
	conn, db := earlierVersion(t,
		`DROP INDEX rm_customers_tags`, `ALTER TABLE rm_customers DROP COLUMN tag_ids`,
		`INSERT INTO rm_customers (partner_id, customer_id, relationship, company_name, company_key, primary_domain, search_text) VALUES
			('p1', 'c1', 'direct-bill', 'Müller AG', 'muller ag', 'mueller.example', E'muller ag\nmueller.example\nc1'),
			('p1', 'c1', 'indirect-reseller', 'Müller AG', 'muller ag', 'mueller.example', E'muller ag\nmueller.example\nc1'),
			('p1', 'c2', 'direct-bill', 'Contoso', 'contoso', 'contoso.example', E'contoso\ncontoso.example\nc2')`,
		`INSERT INTO rm_tags (partner_id, tag_id, name, name_folded, customer_count) VALUES
			('p1', 't1', 'Gold', 'gold', 1), ('p1', 't2', 'VIP', 'vip', 2)`,
		`INSERT INTO rm_customer_tags (partner_id, customer_id, tag_id) VALUES ('p1', 'c1', 't1'), ('p1', 'c1', 't2'), ('p1', 'c2', 't2')`,
	)
	list := db.CustomerList()
	for _, tc := range []struct {
		params projections.SearchParams
		want   []string // id/relationship tags...
	}{
		{projections.SearchParams{Tags: []string{"gold"}}, []string{"c1/direct-bill Gold,VIP", "c1/indirect-reseller Gold,VIP"}},
		{projections.SearchParams{Q: "vip", SearchBy: projections.SearchTag}, []string{"c2/direct-bill VIP", "c1/direct-bill Gold,VIP", "c1/indirect-reseller Gold,VIP"}},
		{projections.SearchParams{Q: "contoso", Tags: []string{"VIP"}}, []string{"c2/direct-bill VIP"}},
		{projections.SearchParams{Q: "gold"}, []string{"c1/direct-bill Gold,VIP", "c1/indirect-reseller Gold,VIP"}},
	} {
		page, err := list.SearchCustomers(ctx, "p1", tc.params)
		if err != nil {
			t.Fatalf("%+v: %v", tc.params, err)
		}
		var got []string
		for _, it := range page.Items {
			got = append(got, it.ID+"/"+it.Relationship+" "+strings.Join(it.Tags, ","))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v after migrating = %q, want %q", tc.params, got, tc.want)
		}
	}
	var idx int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'rm_customers'`).Scan(&idx); err != nil || idx != 7 {
		t.Errorf("rm_customers has %d indexes after migrating (%v), want 7", idx, err)
	}
	checkListOnDisk(t, conn, 3, "after migrating") // inserted out of order above
}

// storeBacked opens fresh read models with an event store at hand, as
// customerd does, and returns the connection string, the store and them.
func storeBacked(t *testing.T) (string, eventstore.Store, *pgread.DB) {
	t.Helper()
	url := testenv.PostgresSchema(t)
	store := readtest.Store(t)
	db, err := pgread.Open(context.Background(), url, pgread.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return url, store, db
}

// createCustomer appends a new customer of partner p1 and returns its id.
func createCustomer(t *testing.T, store eventstore.Store) string {
	t.Helper()
	id := uuid.NewString()
	readtest.Append(t, store, "p1", domain.CustomerStream("p1", id), "ann@p1.example",
		domain.CustomerCreated{CustomerID: id, CompanyName: "Customer " + id[:8], PrimaryDomain: id[:8] + ".example", Relationship: domain.RelationshipDirectBill})
	return id
}

// TestLostCommitsRefilled: projector batches commit without waiting for
// the WAL flush, so a PostgreSQL crash can take back batches whose messages
// JetStream has already acknowledged. Simulated here by setting the
// checkpoint back and deleting the rows: the next batch must first apply
// the lost events from the store.
func TestLostCommitsRefilled(t *testing.T) {
	ctx := context.Background()
	url, store, db := storeBacked(t)
	var ids []string
	create := func() { ids = append(ids, createCustomer(t, store)) }
	for range 5 {
		create()
	}
	list := db.CustomerList()
	evs := readtest.All(t, store)
	if err := list.ApplyBatch(ctx, evs); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE rm_checkpoints SET position = $1 WHERE name = $2`, evs[1].Position, projections.CustomerListName); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM rm_customers WHERE customer_id = ANY($1)`, ids[2:]); err != nil {
		t.Fatal(err)
	}
	// The next batch holds only a message JetStream sent again (its ack
	// was lost), below the checkpoint and without a gap: what PostgreSQL
	// lost is refilled because this process remembers committing it.
	if err := list.ApplyBatch(ctx, evs[:1]); err != nil {
		t.Fatal(err)
	}
	if cp, err := list.Checkpoint(ctx); err != nil || cp != evs[len(evs)-1].Position {
		t.Errorf("checkpoint after a batch of one resent message = %d, %v; want %d (refilled)", cp, err, evs[len(evs)-1].Position)
	}
	create()
	create()
	all := readtest.All(t, store)
	if err := list.ApplyBatch(ctx, all[len(evs):]); err != nil {
		t.Fatal(err)
	}
	page, err := list.SearchCustomers(ctx, "p1", projections.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range page.Items {
		got = append(got, it.ID)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		t.Errorf("list after lost commits = %d customers %q, want all %d", len(got), got, len(want))
	}
	if cp, err := list.Checkpoint(ctx); err != nil || cp != all[len(all)-1].Position {
		t.Errorf("checkpoint = %d, %v; want %d", cp, err, all[len(all)-1].Position)
	}
}
