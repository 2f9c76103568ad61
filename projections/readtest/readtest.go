// Package readtest is the conformance suite every read-model backend runs:
// the same events, the same queries, the same answers.
package readtest

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/partnerhub/customers/projections"
)

// Models is one fresh, empty pair of read models of a backend.
type Models struct {
	Customers projections.CustomerList
	Activity  projections.ActivityLog
}

// Run runs the suite; open must return empty read models each call.
func Run(t *testing.T, open func(t *testing.T) Models) {
	t.Run("CustomerListAndActivity", func(t *testing.T) { testScenario(t, open) })
	t.Run("CursorRowRenamedBetweenPages", func(t *testing.T) { testRenamedCursorRow(t, open) })
	t.Run("TagChanges", func(t *testing.T) { testTagChanges(t, open) })
}

// RunWithStore runs the tests that need an event store beside the read
// models (as customerd gives them one); open must return empty read models
// reading that store.
func RunWithStore(t *testing.T, open func(t *testing.T, store eventstore.Store) Models) {
	t.Run("LateMessagesFilled", func(t *testing.T) { testLateMessages(t, open) })
	t.Run("HoleInTheLog", func(t *testing.T) { testHoleInTheLog(t, open) })
}

// holeStore is a log with a position that never became an event (an append
// that took it and rolled back): the relay publishes around it.
type holeStore struct {
	eventstore.Store
	holes []int64
}

func (h holeStore) ReadAll(ctx context.Context, req eventstore.ReadRequest) ([]eventstore.Event, error) {
	evs, err := h.Store.ReadAll(ctx, req)
	return slices.DeleteFunc(evs, func(e eventstore.Event) bool { return slices.Contains(h.holes, e.Position) }), err
}

// applyBatches gives both projectors the same batches and checks that
// each ends at checkpoint want.
func applyBatches(t *testing.T, m Models, batches [][]eventstore.Event, want int64) {
	t.Helper()
	ctx := context.Background()
	for _, p := range []projections.Projector{m.Customers, m.Activity} {
		for _, batch := range batches {
			if err := p.ApplyBatch(ctx, batch); err != nil {
				t.Fatalf("%s: %v", p.Name(), err)
			}
		}
		if cp, err := p.Checkpoint(ctx); err != nil || cp != want {
			t.Errorf("%s checkpoint = %d, %v; want %d", p.Name(), cp, err, want)
		}
	}
}

// testHoleInTheLog: a batch around a position the log does not hold is
// applied once the store confirms the hole, at the batch's start or
// inside it; the projector must not wait for an event that never comes.
func testHoleInTheLog(t *testing.T, open func(t *testing.T, store eventstore.Store) Models) {
	ctx := context.Background()
	inner := Store(t)
	for i := range 7 {
		id := uuid.NewString()
		Append(t, inner, "p9", domain.CustomerStream("p9", id), "ann@p9.example",
			domain.CustomerCreated{CustomerID: id, CompanyName: fmt.Sprint("Customer ", i), PrimaryDomain: id[:8] + ".example", Relationship: domain.RelationshipDirectBill})
	}
	all := All(t, inner)
	store := holeStore{Store: inner, holes: []int64{all[2].Position, all[5].Position}}
	m := open(t, store)
	evs := All(t, store) // five events: the third and sixth positions are holes
	// The second batch starts after one hole and holds the other.
	applyBatches(t, m, [][]eventstore.Event{evs[:2], evs[2:]}, all[6].Position)
	list, err := m.Customers.SearchCustomers(ctx, "p9", projections.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 5 {
		t.Errorf("after holes in the log: %d customers, want 5", len(list.Items))
	}
}

// testLateMessages: a message JetStream delivers late (after its ack wait,
// behind later ones, as after a NATS restart) must not fall behind the
// checkpoint unapplied: a batch that leaves a position out, at its start
// or inside, is completed from the store first, in both read models, and
// the late message itself then changes nothing.
func testLateMessages(t *testing.T, open func(t *testing.T, store eventstore.Store) Models) {
	ctx := context.Background()
	store := Store(t)
	m := open(t, store)
	for i := range 7 {
		id := uuid.NewString()
		Append(t, store, "p7", domain.CustomerStream("p7", id), "ann@p7.example",
			domain.CustomerCreated{CustomerID: id, CompanyName: fmt.Sprint("Customer ", i), PrimaryDomain: id[:8] + ".example", Relationship: domain.RelationshipDirectBill})
	}
	evs := All(t, store)
	// 2 is missing at the start of a batch, 5 inside one; both come late.
	applyBatches(t, m, [][]eventstore.Event{evs[:2], evs[3:4], {evs[4], evs[6]}, evs[2:3], evs[5:6]}, evs[6].Position)
	list, err := m.Customers.SearchCustomers(ctx, "p7", projections.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	act, err := m.Activity.QueryActivity(ctx, "p7", projections.ActivityParams{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 7 || len(act.Items) != 7 {
		t.Errorf("after late messages: %d customers and %d activity entries, want 7 and 7", len(list.Items), len(act.Items))
	}
}

// testTagChanges: tag filters, tag searches and each row's tags follow
// assignments, a relationship added after them, removals and a deleted tag
// whose name comes back as a new tag.
func testTagChanges(t *testing.T, open func(t *testing.T) Models) {
	ctx := context.Background()
	store := Store(t)
	m := open(t)
	const p = "p8"
	cat := domain.TagCatalogStream(p)
	cs := func(id string) string { return domain.CustomerStream(p, id) }
	applied := 0
	apply := func(evs ...domain.Event) {
		t.Helper()
		for _, e := range evs {
			stream := cat
			switch e := e.(type) {
			case domain.CustomerCreated:
				stream = cs(e.CustomerID)
			case domain.CustomerTagAssigned:
				stream = cs(e.CustomerID)
			case domain.CustomerTagUnassigned:
				stream = cs(e.CustomerID)
			case domain.CustomerRelationshipAdded:
				stream = cs(e.CustomerID)
			}
			Append(t, store, p, stream, "ann@p8.example", e)
		}
		all := All(t, store)
		if err := m.Customers.ApplyBatch(ctx, all[applied:]); err != nil {
			t.Fatal(err)
		}
		applied = len(all)
	}
	check := func(name string, params projections.SearchParams, want ...string) {
		t.Helper()
		page, err := m.Customers.SearchCustomers(ctx, p, params)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := []string{}
		for _, it := range page.Items {
			got = append(got, it.CompanyName+"/"+it.Relationship+" "+strings.Join(it.Tags, ","))
		}
		if want == nil {
			want = []string{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	gold, silver := projections.SearchParams{Tags: []string{"gold"}}, projections.SearchParams{Tags: []string{"SILVER"}}
	apply(domain.TagCreated{TagID: "t1", Name: "Gold"}, domain.TagCreated{TagID: "t2", Name: "Silver"},
		domain.CustomerCreated{CustomerID: idA, CompanyName: "Alpha", PrimaryDomain: "alpha.example", Relationship: domain.RelationshipDirectBill},
		domain.CustomerTagAssigned{CustomerID: idA, TagID: "t1", Name: "Gold"}, domain.CustomerTagAssigned{CustomerID: idA, TagID: "t2", Name: "Silver"},
		domain.CustomerRelationshipAdded{CustomerID: idA, Relationship: domain.RelationshipIndirectReseller},
		domain.CustomerCreated{CustomerID: idB, CompanyName: "Bravo", PrimaryDomain: "bravo.example", Relationship: domain.RelationshipDirectBill},
		domain.CustomerTagAssigned{CustomerID: idB, TagID: "t1", Name: "Gold"})
	check("a relationship added after the tags has them", silver, "Alpha/direct-bill Gold,Silver", "Alpha/indirect-reseller Gold,Silver")
	check("tag search", projections.SearchParams{Q: "old", SearchBy: projections.SearchTag},
		"Alpha/direct-bill Gold,Silver", "Alpha/indirect-reseller Gold,Silver", "Bravo/direct-bill Gold")
	apply(domain.CustomerTagUnassigned{CustomerID: idA, TagID: "t2", Name: "Silver"})
	check("unassigned", silver)
	check("the other tag stays", gold, "Alpha/direct-bill Gold", "Alpha/indirect-reseller Gold", "Bravo/direct-bill Gold")
	apply(domain.TagDeleted{TagID: "t1", Name: "Gold"})
	check("deleted tag", gold)
	check("deleted tag's rows", projections.SearchParams{}, "Alpha/direct-bill ", "Alpha/indirect-reseller ", "Bravo/direct-bill ")
	// An assignment that raced the delete (another stream, so no conflict)
	// brings the tag back to that customer alone, not to its old holders.
	apply(domain.CustomerTagAssigned{CustomerID: idB, TagID: "t1", Name: "Gold"})
	check("an assignment after the delete", gold, "Bravo/direct-bill Gold")
	apply(domain.TagDeleted{TagID: "t1", Name: "Gold"})
	apply(domain.TagCreated{TagID: "t3", Name: "Gold"}, domain.CustomerTagAssigned{CustomerID: idB, TagID: "t3", Name: "Gold"})
	check("a new tag of a deleted one's name", gold, "Bravo/direct-bill Gold")
	check("a new tag, searched with text", projections.SearchParams{Q: "brav", Tags: []string{"Gold"}}, "Bravo/direct-bill Gold")
}

// testRenamedCursorRow: the last row of a page is renamed so that it sorts
// after the cursor; the next page must not show it again.
func testRenamedCursorRow(t *testing.T, open func(t *testing.T) Models) {
	ctx := context.Background()
	store := Store(t)
	m := open(t)
	ids := []string{idA, idB, idC}
	for i, name := range []string{"Alpha", "Bravo", "Charlie"} {
		Append(t, store, "p9", domain.CustomerStream("p9", ids[i]), "ann@p9.example",
			domain.CustomerCreated{CustomerID: ids[i], CompanyName: name, PrimaryDomain: "c" + name + ".example", Relationship: domain.RelationshipDirectBill})
	}
	applied := 0
	apply := func() {
		t.Helper()
		evs := All(t, store)
		if err := m.Customers.ApplyBatch(ctx, evs[applied:]); err != nil {
			t.Fatal(err)
		}
		applied = len(evs)
	}
	apply()
	first, err := m.Customers.SearchCustomers(ctx, "p9", projections.SearchParams{Limit: 1})
	if err != nil || len(first.Items) != 1 || first.Items[0].CompanyName != "Alpha" || first.NextCursor == "" {
		t.Fatalf("first page %+v, %v", first, err)
	}
	Append(t, store, "p9", domain.CustomerStream("p9", idA), "ann@p9.example", domain.CustomerBillingProfileUpdated{CustomerID: idA,
		BillingProfile: domain.BillingProfile{CompanyName: "Zulu", Email: "a@zulu.example"}})
	apply()
	next, err := m.Customers.SearchCustomers(ctx, "p9", projections.SearchParams{Limit: 10, Cursor: first.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range next.Items {
		names = append(names, it.CompanyName)
	}
	if !reflect.DeepEqual(names, []string{"Bravo", "Charlie"}) {
		t.Errorf("next page after renaming the cursor row: %q, want [Bravo Charlie]", names)
	}
}

// Store returns a real (embedded) event store holding the scenario's events.
func Store(t testing.TB) eventstore.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatalf("opening event store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Append appends one event to its stream, failing the test on error.
func Append(t testing.TB, s eventstore.Store, partner, stream, actor string, e domain.Event) {
	t.Helper()
	typ, data, err := domain.NewRegistry().Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Append(context.Background(), eventstore.AppendRequest{StreamID: stream, ExpectedVersion: eventstore.AnyVersion,
		Events: []eventstore.NewEvent{{ID: uuid.New(), Type: typ, Data: data, Metadata: eventstore.Metadata{PartnerID: partner, ActorEmail: actor}}}})
	if err != nil {
		t.Fatalf("appending %s: %v", typ, err)
	}
}

// All reads the whole log.
func All(t testing.TB, s eventstore.Store) []eventstore.Event {
	t.Helper()
	evs, err := s.ReadAll(context.Background(), eventstore.ReadRequest{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

const (
	idA = "0a000000-0000-0000-0000-00000000000a"
	idB = "0b000000-0000-0000-0000-00000000000b"
	idC = "0c000000-0000-0000-0000-00000000000c"
)

// Scenario appends a small history touching every projected event type.
func Scenario(t testing.TB, s eventstore.Store) {
	cs := func(p, id string) string { return domain.CustomerStream(p, id) }
	Append(t, s, "p1", domain.PartnerStream("p1"), "", domain.PartnerCreated{PartnerID: "p1", Name: "P1"})
	Append(t, s, "p1", domain.UserStream("p1", "u1"), "ops@x", domain.UserCreated{UserID: "u1", Email: "ann@p1.example", Role: domain.RoleAdminAgent})
	Append(t, s, "p1", cs("p1", idA), "ann@p1.example", domain.CustomerCreated{CustomerID: idA, CompanyName: "Müller GmbH", PrimaryDomain: "mueller.de", Relationship: domain.RelationshipDirectBill})
	Append(t, s, "p1", cs("p1", idB), "ann@p1.example", domain.CustomerCreated{CustomerID: idB, CompanyName: "Contoso Ltd.", PrimaryDomain: "contoso.com", Relationship: domain.RelationshipIndirectReseller})
	Append(t, s, "p1", cs("p1", idB), "ann@p1.example", domain.CustomerRelationshipAdded{CustomerID: idB, Relationship: domain.RelationshipDirectBill})
	Append(t, s, "p1", domain.TagCatalogStream("p1"), "ann@p1.example", domain.TagCreated{TagID: "t1", Name: "VIP"})
	Append(t, s, "p1", cs("p1", idA), "ann@p1.example", domain.CustomerTagAssigned{CustomerID: idA, TagID: "t1", Name: "VIP"})
	Append(t, s, "p1", cs("p1", idB), "ann@p1.example", domain.CustomerTagAssigned{CustomerID: idB, TagID: "t1", Name: "VIP"})
	Append(t, s, "p1", domain.TagCatalogStream("p1"), "ann@p1.example", domain.TagCreated{TagID: "t2", Name: "Beta"})
	Append(t, s, "p1", cs("p1", idB), "ann@p1.example", domain.CustomerTagAssigned{CustomerID: idB, TagID: "t2", Name: "Beta"})
	Append(t, s, "p1", domain.TagCatalogStream("p1"), "ann@p1.example", domain.TagCreated{TagID: "t3", Name: "Old"})
	Append(t, s, "p1", cs("p1", idA), "ann@p1.example", domain.CustomerTagAssigned{CustomerID: idA, TagID: "t3", Name: "Old"})
	Append(t, s, "p1", cs("p1", idA), "bob@p1.example", domain.CustomerBillingProfileUpdated{CustomerID: idA,
		BillingProfile: domain.BillingProfile{CompanyName: "Müller & Söhne GmbH", Email: "a@mueller.de"}})
	Append(t, s, "p1", domain.TagCatalogStream("p1"), "ann@p1.example", domain.TagRenamed{TagID: "t1", OldName: "VIP", NewName: "Gold"})
	Append(t, s, "p1", domain.TagCatalogStream("p1"), "ann@p1.example", domain.TagDeleted{TagID: "t3", Name: "Old"})
	Append(t, s, "p1", cs("p1", idB), "bob@p1.example", domain.OrderCreated{CustomerID: idB, OrderID: "o1", Catalog: "azure", BillingCycle: "monthly", LineItems: []domain.LineItem{{OfferID: "x", Quantity: 1}}})
	Append(t, s, "p1", cs("p1", idB), "bob@p1.example", domain.OrderCompleted{CustomerID: idB, OrderID: "o1"})
	Append(t, s, "p2", cs("p2", idC), "eve@p2.example", domain.CustomerCreated{CustomerID: idC, CompanyName: "Contoso Ltd.", PrimaryDomain: "contoso.net", Relationship: domain.RelationshipDirectBill})
}

func testScenario(t *testing.T, open func(t *testing.T) Models) {
	ctx := context.Background()
	store := Store(t)
	Scenario(t, store)
	events := All(t, store)
	m := open(t)
	// Two batches, then every event again: redeliveries change nothing.
	for _, p := range []projections.Projector{m.Customers, m.Activity} {
		for _, b := range [][]eventstore.Event{events[:7], events[5:], events} {
			if err := p.ApplyBatch(ctx, b); err != nil {
				t.Fatalf("%s: applying batch: %v", p.Name(), err)
			}
		}
		if cp, err := p.Checkpoint(ctx); err != nil || cp != events[len(events)-1].Position {
			t.Fatalf("%s checkpoint = %d, %v; want %d", p.Name(), cp, err, events[len(events)-1].Position)
		}
	}

	search := func(p projections.SearchParams) []projections.CustomerItem {
		t.Helper()
		page, err := m.Customers.SearchCustomers(ctx, "p1", p)
		if err != nil {
			t.Fatalf("SearchCustomers(%+v): %v", p, err)
		}
		return page.Items
	}
	gold := []string{"Gold"}
	a := projections.CustomerItem{ID: idA, Relationship: "direct-bill", CompanyName: "Müller & Söhne GmbH", PrimaryDomain: "mueller.de", Tags: gold}
	bDirect := projections.CustomerItem{ID: idB, Relationship: "direct-bill", CompanyName: "Contoso Ltd.", PrimaryDomain: "contoso.com", Tags: []string{"Beta", "Gold"}}
	bIndirect := bDirect
	bIndirect.Relationship = "indirect-reseller"
	want := func(name string, got []projections.CustomerItem, want ...projections.CustomerItem) {
		t.Helper()
		if want == nil {
			want = []projections.CustomerItem{}
		}
		if got == nil {
			got = []projections.CustomerItem{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	want("whole list", search(projections.SearchParams{}), bDirect, bIndirect, a)
	want("muller", search(projections.SearchParams{Q: "muller"}), a)
	want("SÖHNE by company name", search(projections.SearchParams{Q: "SÖHNE", SearchBy: "companyName"}), a)
	want("domain", search(projections.SearchParams{Q: "contoso.c", SearchBy: "domain"}), bDirect, bIndirect)
	want("domain does not match names", search(projections.SearchParams{Q: "müller", SearchBy: "domain"}))
	want("id", search(projections.SearchParams{Q: "0B000000", SearchBy: "id"}), bDirect, bIndirect)
	want("tag search", search(projections.SearchParams{Q: "bet", SearchBy: "tag"}), bDirect, bIndirect)
	want("all finds tags", search(projections.SearchParams{Q: "gold"}), bDirect, bIndirect, a)
	want("deleted tag", search(projections.SearchParams{Q: "old", SearchBy: "tag"}), bDirect, bIndirect, a) // "Gold" contains "old"
	want("tag filters all match", search(projections.SearchParams{Tags: []string{"gold", "BETA"}}), bDirect, bIndirect)
	want("relationship", search(projections.SearchParams{Relationship: "indirect-reseller"}), bIndirect)
	want("-companyName", search(projections.SearchParams{Sort: "-companyName"}), a, bIndirect, bDirect)
	want("domain sort", search(projections.SearchParams{Sort: "domain"}), bDirect, bIndirect, a)
	want("wildcards are literal", search(projections.SearchParams{Q: "%"}))
	// The trigram path's forms: words of a query, a query without a word of
	// three letters, the inside of an id (all and by id).
	want("words", search(projections.SearchParams{Q: "söhne gmbh"}), a)
	want("no long word", search(projections.SearchParams{Q: "r & s"}), a)
	want("inside of an id", search(projections.SearchParams{Q: "000000b"}), bDirect, bIndirect)
	want("inside of an id, by id", search(projections.SearchParams{Q: "0000-00000000000A", SearchBy: "id"}), a)
	want("words by company name", search(projections.SearchParams{Q: "ller & s", SearchBy: "companyName"}), a)
	want("nothing across two fields", search(projections.SearchParams{Q: "mueller.de\n0a000000"}))
	want("a tab is a space", search(projections.SearchParams{Q: "söhne\tgmbh"}), a)

	// Keyset pages of one add up to the whole list, in order.
	var paged []projections.CustomerItem
	cursor := ""
	for i := 0; i < 10; i++ {
		page, err := m.Customers.SearchCustomers(ctx, "p1", projections.SearchParams{Sort: "-domain", Limit: 1, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	want("pages of one, -domain", paged, a, bIndirect, bDirect)
	for _, bad := range []projections.SearchParams{{Cursor: "!!"}, {Limit: 501}, {SearchBy: "x"}, {Sort: "name"}} {
		if _, err := m.Customers.SearchCustomers(ctx, "p1", bad); domain.ErrorCode(err) != domain.CodeInvalid {
			t.Errorf("SearchCustomers(%+v) error = %v, want invalid", bad, err)
		}
	}

	tags, err := m.Customers.ListTags(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	wantTags := []projections.TagCount{{ID: "t2", Name: "Beta", CustomerCount: 1}, {ID: "t1", Name: "Gold", CustomerCount: 2}}
	if !reflect.DeepEqual(tags, wantTags) {
		t.Errorf("ListTags = %+v, want %+v", tags, wantTags)
	}
	var exported []projections.CustomerItem
	if err := m.Customers.ExportCustomers(ctx, "p1", 2, func(b []projections.CustomerItem) error {
		exported = append(exported, b...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want("export", exported, bDirect, bIndirect, a)
	other, _ := m.Customers.SearchCustomers(ctx, "p2", projections.SearchParams{Q: "contoso"})
	if len(other.Items) != 1 || other.Items[0].ID != idC {
		t.Errorf("partner p2 sees %+v, want only its own customer", other.Items)
	}

	// Activity.
	act := func(p projections.ActivityParams) []projections.ActivityEntry {
		t.Helper()
		page, err := m.Activity.QueryActivity(ctx, "p1", p)
		if err != nil {
			t.Fatalf("QueryActivity(%+v): %v", p, err)
		}
		return page.Items
	}
	all := act(projections.ActivityParams{Limit: 500})
	if len(all) != 16 { // every p1 event except partner.created
		t.Fatalf("activity has %d entries, want 16", len(all))
	}
	if all[0].Operation != projections.OpCompleteOrder || all[0].CustomerName != "Contoso Ltd." || all[0].PartnerUser != "bob@p1.example" {
		t.Errorf("newest entry = %+v", all[0])
	}
	assigns := act(projections.ActivityParams{Operation: projections.OpAssignCustomerTag, CustomerID: idA})
	if len(assigns) != 2 || assigns[1].CustomerName != "Müller GmbH" || assigns[1].NewValue != "VIP" {
		t.Errorf("tag assignments of A = %+v, want 2 under the name of the time", assigns)
	}
	if got := act(projections.ActivityParams{ResourceType: projections.ResourceTag}); len(got) != 5 {
		t.Errorf("tag activity = %d entries, want 5", len(got))
	}
	if got := act(projections.ActivityParams{User: "bob@p1.example"}); len(got) != 3 {
		t.Errorf("bob's activity = %d entries, want 3", len(got))
	}
	if got := act(projections.ActivityParams{From: time.Now().Add(time.Hour)}); len(got) != 0 {
		t.Errorf("future activity = %d entries, want 0", len(got))
	}
	var pagedAct []projections.ActivityEntry
	cursor = ""
	for {
		page, err := m.Activity.QueryActivity(ctx, "p1", projections.ActivityParams{Limit: 5, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pagedAct = append(pagedAct, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if !reflect.DeepEqual(pagedAct, all) {
		t.Errorf("activity pages differ from one big page")
	}

	// A rebuild from the store ends where the live projection is.
	for _, p := range []projections.Projector{m.Customers, m.Activity} {
		var last int64
		if err := p.Rebuild(ctx, store, func(done, total int64) { last = done }); err != nil {
			t.Fatalf("rebuilding %s: %v", p.Name(), err)
		}
		if last != int64(len(events)) {
			t.Errorf("%s rebuild progress ended at %d, want %d", p.Name(), last, len(events))
		}
	}
	want("whole list after rebuild", search(projections.SearchParams{}), bDirect, bIndirect, a)
	want("muller after rebuild", search(projections.SearchParams{Q: "muller"}), a)
	if tags2, _ := m.Customers.ListTags(ctx, "p1"); !reflect.DeepEqual(tags2, wantTags) {
		t.Errorf("tags after rebuild = %+v", tags2)
	}
	if all2 := act(projections.ActivityParams{Limit: 500}); !reflect.DeepEqual(all2, all) {
		t.Errorf("activity after rebuild differs:\n%+v\n%+v", all2, all)
	}
}
