package sqliteread_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// memLog is an in-memory log that serves Head and ReadAll (all a rebuild
// uses), so tests and benchmarks control what the log holds and when.
type memLog struct {
	eventstore.Store
	events []eventstore.Event
	// onRead, if set, runs before each ReadAll (tests inject live traffic).
	onRead func(after int64)
}

func (m *memLog) Head(context.Context) (int64, error) {
	if len(m.events) == 0 {
		return 0, nil
	}
	return m.events[len(m.events)-1].Position, nil
}

func (m *memLog) ReadAll(_ context.Context, req eventstore.ReadRequest) ([]eventstore.Event, error) {
	if m.onRead != nil {
		m.onRead(req.After)
	}
	i := int(req.After) // positions are 1..n
	if i >= len(m.events) {
		return nil, nil
	}
	return m.events[i:min(i+req.Limit, len(m.events))], nil
}

var companyWords = []string{"Müller", "Straße", "Ærø", "Contoso", "Fabrikam", "Søhne", "Łódź", "Café", "100%_Real", `Quote"d`}

// genLog returns a reproducible history of about n events over a few
// partners: customers (some with a second relationship), a tag catalog
// with assignments, renames and deletes, billing-profile renames and
// orders, in the proportions of a busy tenant.
func genLog(n int, seed uint64) []eventstore.Event {
	r := rand.New(rand.NewPCG(seed, 1))
	reg := domain.NewRegistry()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []eventstore.Event
	add := func(partner string, e domain.Event) {
		typ, data, err := reg.Marshal(e)
		if err != nil {
			panic(err)
		}
		pos := int64(len(out) + 1)
		out = append(out, eventstore.Event{ID: uuid.New(), Position: pos, Type: typ, Data: data,
			RecordedAt: base.Add(time.Duration(pos) * time.Minute), Metadata: eventstore.Metadata{PartnerID: partner, ActorEmail: "u" + partner + "@x.example"}})
	}
	type cust struct{ partner, id string }
	var custs []cust
	tags := map[string][]string{}
	for len(out) < n {
		partner := fmt.Sprintf("p%d", r.IntN(3))
		switch k := r.IntN(20); {
		case k < 8 || len(custs) == 0:
			id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%d-%d", seed, len(out))).String()
			name := companyWords[r.IntN(len(companyWords))] + " " + companyWords[r.IntN(len(companyWords))] + fmt.Sprintf(" %d", r.IntN(50))
			rel := domain.RelationshipDirectBill
			if r.IntN(2) == 0 {
				rel = domain.RelationshipIndirectReseller
			}
			add(partner, domain.CustomerCreated{CustomerID: id, CompanyName: name, PrimaryDomain: fmt.Sprintf("c%d.example", len(custs)), Relationship: rel})
			custs = append(custs, cust{partner, id})
		case k < 10:
			tid := fmt.Sprintf("t%d", len(out))
			add(partner, domain.TagCreated{TagID: tid, Name: companyWords[r.IntN(len(companyWords))] + fmt.Sprint(len(out)%7)})
			tags[partner] = append(tags[partner], tid)
		case k < 14:
			c := custs[r.IntN(len(custs))]
			if ts := tags[c.partner]; len(ts) > 0 {
				add(c.partner, domain.CustomerTagAssigned{CustomerID: c.id, TagID: ts[r.IntN(len(ts))], Name: "assigned"})
			}
		case k < 15:
			c := custs[r.IntN(len(custs))]
			if ts := tags[c.partner]; len(ts) > 0 {
				add(c.partner, domain.CustomerTagUnassigned{CustomerID: c.id, TagID: ts[r.IntN(len(ts))], Name: "unassigned"})
			}
		case k < 16:
			if ts := tags[partner]; len(ts) > 0 {
				if r.IntN(3) == 0 {
					add(partner, domain.TagDeleted{TagID: ts[r.IntN(len(ts))], Name: "deleted"})
				} else {
					add(partner, domain.TagRenamed{TagID: ts[r.IntN(len(ts))], OldName: "old", NewName: fmt.Sprintf("Renamed %d", len(out))})
				}
			}
		case k < 17:
			c := custs[r.IntN(len(custs))]
			add(c.partner, domain.CustomerRelationshipAdded{CustomerID: c.id, Relationship: domain.RelationshipDirectBill})
		case k < 18:
			c := custs[r.IntN(len(custs))]
			add(c.partner, domain.CustomerBillingProfileUpdated{CustomerID: c.id,
				BillingProfile: domain.BillingProfile{CompanyName: companyWords[r.IntN(len(companyWords))] + " Neu", Email: "b@x.example"}})
		default:
			c := custs[r.IntN(len(custs))]
			add(c.partner, domain.OrderCreated{CustomerID: c.id, OrderID: fmt.Sprintf("o%d", len(out)), Catalog: "azure", BillingCycle: "monthly",
				LineItems: []domain.LineItem{{OfferID: "x", Quantity: 1}}})
		}
	}
	return out
}
