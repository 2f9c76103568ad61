package commands_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/postgres"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/partnerhub/customers/internal/testenv"
)

// adapters are the real stores the suite runs against. Every test runs on
// each of them.
func adapters() map[string]func(t testing.TB) eventstore.Store {
	return map[string]func(t testing.TB) eventstore.Store{
		"postgres": func(t testing.TB) eventstore.Store {
			s, err := postgres.Open(context.Background(), testenv.PostgresSchema(t), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"sqlite": func(t testing.TB) eventstore.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

func forEachStore(t *testing.T, test func(t *testing.T, store eventstore.Store)) {
	for name, open := range adapters() {
		t.Run(name, func(t *testing.T) { test(t, open(t)) })
	}
}

var meta = commands.Meta{
	PartnerID: "11111111-1111-4111-8111-111111111111", ActorID: "actor-1", ActorEmail: "ada@partner.com",
	CorrelationID: "corr-1", CausationID: "cause-1",
}

func newCustomer(domainName string) commands.CreateCustomer {
	return commands.CreateCustomer{CompanyName: "Contoso", PrimaryDomain: domainName, Relationship: domain.RelationshipDirectBill}
}

func wantCode(t *testing.T, err error, code domain.Code) *domain.Error {
	t.Helper()
	if domain.ErrorCode(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	var de *domain.Error
	errors.As(err, &de)
	return de
}

func allEvents(t *testing.T, store eventstore.Store) []eventstore.Event {
	t.Helper()
	evs, err := store.ReadAll(context.Background(), eventstore.ReadRequest{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestMetadataTravelsIntoEveryEvent(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		cmds := commands.New(store, domain.NewRegistry())
		res, err := cmds.CreateCustomer.Handle(ctx, meta, commands.CreateCustomer{
			CompanyName: "Contoso", PrimaryDomain: "contoso.com", Relationship: domain.RelationshipDirectBill, Tags: []string{"Gold", "Silver"},
		})
		if err != nil {
			t.Fatal(err)
		}
		evs := allEvents(t, store)
		if len(evs) != 5 { // created, 2 tags created, 2 assigned
			t.Fatalf("%d events, want 5", len(evs))
		}
		if res.Position != evs[len(evs)-1].Position || res.Version != 3 {
			t.Fatalf("result position %d version %d; last event at %d", res.Position, res.Version, evs[len(evs)-1].Position)
		}
		ids := map[uuid.UUID]bool{}
		for _, e := range evs {
			if e.Metadata != (eventstore.Metadata{PartnerID: meta.PartnerID, ActorID: meta.ActorID, ActorEmail: meta.ActorEmail, CorrelationID: meta.CorrelationID, CausationID: meta.CausationID}) {
				t.Errorf("%s: metadata %+v", e.Type, e.Metadata)
			}
			if ids[e.ID] || e.ID == uuid.Nil {
				t.Errorf("%s: event id %s not fresh", e.Type, e.ID)
			}
			ids[e.ID] = true
			wantSubject := res.Customer.ID
			if strings.HasPrefix(e.Type, "tag.") {
				wantSubject = ""
			}
			if e.Subject != wantSubject {
				t.Errorf("%s: subject %q, want %q", e.Type, e.Subject, wantSubject)
			}
		}
		if got := res.Customer.Tags; !slices.Equal(got, []string{"Gold", "Silver"}) {
			t.Fatalf("tags %q", got)
		}
	})
}

// conflictingStore makes the first appends conflict, as a concurrent writer
// would: before delegating, it runs interfere (a real concurrent write), or
// without interfere it answers a conflict itself.
type conflictingStore struct {
	eventstore.Store
	conflicts int // how many appends to spoil; -1: all
	interfere func(ctx context.Context) error
	appends   atomic.Int32
}

func (s *conflictingStore) Append(ctx context.Context, reqs ...eventstore.AppendRequest) ([]eventstore.AppendResult, error) {
	n := int(s.appends.Add(1))
	if s.conflicts < 0 || n <= s.conflicts {
		if s.interfere == nil {
			return nil, &eventstore.ConflictError{StreamID: reqs[0].StreamID, Expected: reqs[0].ExpectedVersion, Actual: reqs[0].ExpectedVersion + 1}
		}
		if err := s.interfere(ctx); err != nil {
			return nil, err
		}
	}
	return s.Store.Append(ctx, reqs...)
}

func TestConflictIsRetriedOnFreshState(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		reg := domain.NewRegistry()
		plain := commands.New(store, reg)
		created, err := plain.CreateCustomer.Handle(ctx, meta, newCustomer("contoso.com"))
		if err != nil {
			t.Fatal(err)
		}
		id := created.Customer.ID
		// Another writer completes its change between our load and append.
		spoiled := &conflictingStore{Store: store, conflicts: 1, interfere: func(ctx context.Context) error {
			_, err := plain.ChangeCustomerTags.Handle(ctx, meta, commands.ChangeCustomerTags{CustomerID: id, Add: []string{"Concurrent"}})
			return err
		}}
		res, err := commands.New(spoiled, reg).ChangeCustomerTags.Handle(ctx, meta, commands.ChangeCustomerTags{CustomerID: id, Add: []string{"Mine", "concurrent"}})
		if err != nil {
			t.Fatal(err)
		}
		if spoiled.appends.Load() != 2 {
			t.Fatalf("%d appends, want 2 (one conflict, one retry)", spoiled.appends.Load())
		}
		// The retry saw the concurrent tag: one "Concurrent" tag, not two.
		if !slices.Equal(res.Customer.Tags, []string{"Concurrent", "Mine"}) {
			t.Fatalf("tags %q", res.Customer.Tags)
		}
		tags, err := plain.Tags(ctx, meta.PartnerID)
		if err != nil || len(tags) != 2 {
			t.Fatalf("catalog %+v, %v", tags, err)
		}
	})
}

func TestConflictIsReportedAfterBoundedAttempts(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		reg := domain.NewRegistry()
		created, err := commands.New(store, reg).CreateCustomer.Handle(ctx, meta, newCustomer("contoso.com"))
		if err != nil {
			t.Fatal(err)
		}
		spoiled := &conflictingStore{Store: store, conflicts: -1}
		_, err = commands.New(spoiled, reg).AddRelationship.Handle(ctx, meta, commands.AddRelationship{CustomerID: created.Customer.ID, Relationship: domain.RelationshipIndirectReseller})
		wantCode(t, err, domain.CodeConflict)
		if n := spoiled.appends.Load(); n != 5 {
			t.Fatalf("%d attempts, want 5", n)
		}
	})
}

func TestMultiStreamAtomicity(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		cmds := commands.New(store, domain.NewRegistry())
		a, err := cmds.CreateCustomer.Handle(ctx, meta, newCustomer("a.com"))
		if err != nil {
			t.Fatal(err)
		}
		before := len(allEvents(t, store))
		// A bulk change naming an unknown customer changes nothing at all:
		// not even the new tag reaches the catalog.
		unknown := uuid.NewString()
		_, err = cmds.BulkTagAssignment.Handle(ctx, meta, commands.BulkTagAssignment{CustomerIDs: []string{a.Customer.ID, unknown}, Add: []string{"Fresh"}})
		if de := wantCode(t, err, domain.CodeNotFound); !strings.Contains(de.Message, unknown) {
			t.Fatalf("404 %q does not name %s", de.Message, unknown)
		}
		// A claim clash fails the customer and its new tags together.
		_, err = cmds.CreateCustomer.Handle(ctx, meta, commands.CreateCustomer{CompanyName: "B", PrimaryDomain: "A.com", Relationship: domain.RelationshipDirectBill, Tags: []string{"Fresh"}})
		wantCode(t, err, domain.CodeConflict)
		if after := len(allEvents(t, store)); after != before {
			t.Fatalf("failed commands stored %d events", after-before)
		}
		// The successful bulk lands everything in one append.
		b, err := cmds.CreateCustomer.Handle(ctx, meta, newCustomer("b.com"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := cmds.BulkTagAssignment.Handle(ctx, meta, commands.BulkTagAssignment{CustomerIDs: []string{a.Customer.ID, b.Customer.ID, a.Customer.ID}, Add: []string{"Fresh"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Versions[a.Customer.ID] != 2 || res.Versions[b.Customer.ID] != 2 {
			t.Fatalf("versions %v", res.Versions)
		}
		for _, id := range []string{a.Customer.ID, b.Customer.ID} {
			got, err := cmds.GetCustomer(ctx, meta.PartnerID, id)
			if err != nil || !slices.Equal(got.Customer.Tags, []string{"Fresh"}) {
				t.Fatalf("customer %s: %+v, %v", id, got, err)
			}
		}
	})
}

func TestIfMatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		reg := domain.NewRegistry()
		cmds := commands.New(store, reg)
		c, err := cmds.CreateCustomer.Handle(ctx, meta, newCustomer("contoso.com"))
		if err != nil {
			t.Fatal(err)
		}
		profile := domain.BillingProfile{CompanyName: "Contoso Billing", Email: "b@contoso.com", FirstName: "A", LastName: "B",
			DefaultAddress: domain.Address{AddressLine1: "Main St 1", City: "Berlin", PostalCode: "10115", Country: "DE"}}
		_, err = cmds.UpdateBillingProfile.Handle(ctx, meta, commands.UpdateBillingProfile{CustomerID: c.Customer.ID, ExpectedVersion: c.Version + 1, BillingProfile: profile})
		wantCode(t, err, domain.CodePrecondition)

		res, err := cmds.UpdateBillingProfile.Handle(ctx, meta, commands.UpdateBillingProfile{CustomerID: c.Customer.ID, ExpectedVersion: c.Version, BillingProfile: profile})
		if err != nil {
			t.Fatal(err)
		}
		if res.Version != c.Version+1 || res.Customer.CompanyName != "Contoso Billing" {
			t.Fatalf("after update: version %d, name %q", res.Version, res.Customer.CompanyName)
		}
		// A write between our read and our append is a stale If-Match too,
		// reported at once without retrying.
		spoiled := &conflictingStore{Store: store, conflicts: 1, interfere: func(ctx context.Context) error {
			_, err := cmds.AddRelationship.Handle(ctx, meta, commands.AddRelationship{CustomerID: c.Customer.ID, Relationship: domain.RelationshipIndirectReseller})
			return err
		}}
		_, err = commands.New(spoiled, reg).UpdateBillingProfile.Handle(ctx, meta, commands.UpdateBillingProfile{CustomerID: c.Customer.ID, ExpectedVersion: res.Version, BillingProfile: profile})
		wantCode(t, err, domain.CodePrecondition)
		if spoiled.appends.Load() != 1 {
			t.Fatalf("%d appends, want 1: no retry", spoiled.appends.Load())
		}
	})
}

func TestClaimsAndDuplicates(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		cmds := commands.New(store, domain.NewRegistry())
		c, err := cmds.CreateCustomer.Handle(ctx, meta, newCustomer("contoso.com"))
		if err != nil {
			t.Fatal(err)
		}
		de := wantCode(t, func() error { _, err := cmds.CreateCustomer.Handle(ctx, meta, newCustomer("CONTOSO.com")); return err }(), domain.CodeConflict)
		if len(de.Fields) != 1 || de.Fields[0].Field != "primaryDomain" {
			t.Fatalf("domain clash fields %+v", de.Fields)
		}
		// Another partner may use the same domain and the same customer id.
		other := meta
		other.PartnerID = "22222222-2222-4222-8222-222222222222"
		dup := newCustomer("contoso.com")
		dup.ID = strings.ToUpper(c.Customer.ID)
		if _, err := cmds.CreateCustomer.Handle(ctx, other, dup); err != nil {
			t.Fatalf("other partner: %v", err)
		}
		dup.PrimaryDomain = "fabrikam.com"
		_, err = cmds.CreateCustomer.Handle(ctx, meta, dup)
		wantCode(t, err, domain.CodeConflict)

		p, err := cmds.CreatePartner.Handle(ctx, commands.Meta{}, commands.CreatePartner{Name: "Fabrikam"})
		if err != nil {
			t.Fatal(err)
		}
		pm := commands.Meta{PartnerID: p.ID}
		u, err := cmds.CreateUser.Handle(ctx, pm, commands.CreateUser{Email: "Ada@Fabrikam.com", Role: domain.RoleAdminAgent})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cmds.CreateUser.Handle(ctx, pm, commands.CreateUser{Email: "ada@fabrikam.COM", Role: domain.RoleSalesAgent})
		if de := wantCode(t, err, domain.CodeConflict); de.Fields[0].Field != "email" {
			t.Fatalf("email clash fields %+v", de.Fields)
		}
		_, err = cmds.CreateUser.Handle(ctx, commands.Meta{PartnerID: uuid.NewString()}, commands.CreateUser{Email: "x@y.com", Role: domain.RoleAdminAgent})
		wantCode(t, err, domain.CodeNotFound)

		// Only the token's hash is stored.
		if len(u.Token) < 40 || u.Email != "ada@fabrikam.com" {
			t.Fatalf("user %+v", u)
		}
		evs, _ := store.ReadAll(ctx, eventstore.ReadRequest{PartnerID: p.ID, Types: []string{domain.TypeUserCreated}})
		if len(evs) != 1 || strings.Contains(string(evs[0].Data), u.Token) || !strings.Contains(string(evs[0].Data), commands.HashToken(u.Token)) {
			t.Fatalf("stored user events %+v", evs)
		}
	})
}

func TestCustomerLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		cmds := commands.New(store, domain.NewRegistry())
		c, err := cmds.CreateCustomer.Handle(ctx, meta, commands.CreateCustomer{ID: uuid.NewString(), CompanyName: " Müller GmbH ", PrimaryDomain: "Mueller.DE",
			Relationship: domain.RelationshipIndirectReseller, Tags: []string{"gold"}})
		if err != nil {
			t.Fatal(err)
		}
		id := c.Customer.ID
		if c.Customer.CompanyName != "Müller GmbH" || c.Customer.PrimaryDomain != "mueller.de" {
			t.Fatalf("created %+v", c.Customer)
		}
		_, err = cmds.AddRelationship.Handle(ctx, meta, commands.AddRelationship{CustomerID: id, Relationship: domain.RelationshipIndirectReseller})
		wantCode(t, err, domain.CodeConflict)

		o, err := cmds.CreateOrder.Handle(ctx, meta, commands.CreateOrder{CustomerID: id, Catalog: "azure", BillingCycle: "monthly", LineItems: []domain.LineItem{{OfferID: "o1", Quantity: 3, TermDuration: "P1Y"}}})
		if err != nil || o.Order.Status != domain.OrderStatusPending {
			t.Fatalf("order %+v, %v", o, err)
		}
		if done, err := cmds.CompleteOrder.Handle(ctx, meta, commands.CompleteOrder{CustomerID: id, OrderID: o.Order.ID}); err != nil || done.Order.Status != domain.OrderStatusCompleted {
			t.Fatalf("complete %+v, %v", done, err)
		}
		_, err = cmds.CancelOrder.Handle(ctx, meta, commands.CancelOrder{CustomerID: id, OrderID: o.Order.ID})
		wantCode(t, err, domain.CodeConflict)
		_, err = cmds.CancelOrder.Handle(ctx, meta, commands.CancelOrder{CustomerID: id, OrderID: uuid.NewString()})
		wantCode(t, err, domain.CodeNotFound)
		_, err = cmds.CreateOrder.Handle(ctx, meta, commands.CreateOrder{CustomerID: uuid.NewString(), Catalog: "azure", BillingCycle: "monthly", LineItems: []domain.LineItem{{OfferID: "o1", Quantity: 1}}})
		wantCode(t, err, domain.CodeNotFound)

		// Catalog changes show on the customer without touching its stream.
		if _, err := cmds.RenameTag.Handle(ctx, meta, commands.RenameTag{Name: "GOLD", NewName: "Platinum"}); err != nil {
			t.Fatal(err)
		}
		got, err := cmds.GetCustomer(ctx, meta.PartnerID, id)
		if err != nil || !slices.Equal(got.Customer.Tags, []string{"Platinum"}) || got.Version != 4 {
			t.Fatalf("after rename: %+v, %v", got, err)
		}
		if _, err := cmds.DeleteTag.Handle(ctx, meta, commands.DeleteTag{Name: "platinum"}); err != nil {
			t.Fatal(err)
		}
		if got, _ := cmds.GetCustomer(ctx, meta.PartnerID, id); len(got.Customer.Tags) != 0 || len(got.Customer.Orders) != 1 {
			t.Fatalf("after delete: %+v", got.Customer)
		}
		_, err = cmds.DeleteTag.Handle(ctx, meta, commands.DeleteTag{Name: "platinum"})
		wantCode(t, err, domain.CodeNotFound)
		_, err = cmds.CreateTag.Handle(ctx, meta, commands.CreateTag{Name: "a;b"})
		if de := wantCode(t, err, domain.CodeInvalid); de.Fields[0].Field != "name" {
			t.Fatalf("fields %+v", de.Fields)
		}
		// Unassigning what the customer lacks is a no-op answering the
		// current version and a position a reader can wait for.
		res, err := cmds.ChangeCustomerTags.Handle(ctx, meta, commands.ChangeCustomerTags{CustomerID: id, Remove: []string{"nothing"}})
		if err != nil || res.Version != 4 || res.Position == 0 {
			t.Fatalf("no-op %+v, %v", res, err)
		}
		// Tenancy: another partner does not see the customer.
		_, err = cmds.GetCustomer(ctx, "22222222-2222-4222-8222-222222222222", id)
		wantCode(t, err, domain.CodeNotFound)
		orders, v, err := cmds.ListOrders(ctx, meta.PartnerID, id)
		if err != nil || len(orders) != 1 || v != 4 {
			t.Fatalf("orders %+v v%d %v", orders, v, err)
		}
	})
}
