package projections

import (
	"context"
	"fmt"
	"strconv"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// DecodeError marks an event whose data cannot be decoded: retrying will not
// help, so the runtime sends it to the poison queue.
type DecodeError struct {
	Position int64
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding event at position %d: %v", e.Position, e.Err)
}
func (e *DecodeError) Unwrap() error { return e.Err }

// Decode returns the event's payload, or nil for a type the registry does
// not know (a newer writer): projections skip those.
func Decode(reg *domain.Registry, ev eventstore.Event) (domain.Event, error) {
	if !reg.Known(ev.Type) {
		return nil, nil
	}
	e, err := reg.Unmarshal(ev.Type, ev.Data)
	if err != nil {
		return nil, &DecodeError{Position: ev.Position, Err: err}
	}
	return e, nil
}

// Decodable returns the events Decode accepts, in order, calling skip (if
// not nil) for each one it does not: the live path sends those to the
// poison queue, so a replay from the store leaves them out as well.
func Decodable(reg *domain.Registry, evs []eventstore.Event, skip func(eventstore.Event, error)) []eventstore.Event {
	ok := make([]eventstore.Event, 0, len(evs))
	for _, ev := range evs {
		if _, err := Decode(reg, ev); err != nil {
			if skip != nil {
				skip(ev, err)
			}
			continue
		}
		ok = append(ok, ev)
	}
	return ok
}

// CustomerListWriter is what the customer-list logic needs from a backend
// transaction. Each method is idempotent in effect for one event (the
// checkpoint makes sure it runs once anyway).
type CustomerListWriter interface {
	CreateCustomer(ctx context.Context, partnerID, customerID, relationship, companyName, primaryDomain string) error
	// AddRelationship adds a row for relationship, copying the customer's
	// other row (name, domain; tags are per customer).
	AddRelationship(ctx context.Context, partnerID, customerID, relationship string) error
	SetCompanyName(ctx context.Context, partnerID, customerID, companyName string) error
	CreateTag(ctx context.Context, partnerID, tagID, name string) error
	// AssignTag adds the tag to the customer (a no-op if it has it) and to
	// the catalog if missing, keeping customerCount right.
	AssignTag(ctx context.Context, partnerID, customerID, tagID, name string) error
	UnassignTag(ctx context.Context, partnerID, customerID, tagID string) error
	RenameTag(ctx context.Context, partnerID, tagID, name string) error
	DeleteTag(ctx context.Context, partnerID, tagID string) error
}

// ApplyCustomerList is the customer-list projection: what each event does,
// backend-independent. Callers have already skipped events at or below the
// checkpoint.
func ApplyCustomerList(ctx context.Context, w CustomerListWriter, reg *domain.Registry, events []eventstore.Event) error {
	for _, ev := range events {
		if !customerListReads(ev.Type) {
			continue
		}
		e, err := Decode(reg, ev)
		if err != nil {
			return err
		}
		if err := applyCustomerEvent(ctx, w, ev, e); err != nil {
			return err
		}
	}
	return nil
}

// customerListReads reports whether the customer list uses events of a
// type; the others (orders, users) are not even decoded.
func customerListReads(eventType string) bool {
	switch eventType {
	case domain.TypeCustomerCreated, domain.TypeCustomerRelationshipAdded, domain.TypeCustomerBillingProfileUpdated,
		domain.TypeCustomerTagAssigned, domain.TypeCustomerTagUnassigned, domain.TypeTagCreated, domain.TypeTagRenamed, domain.TypeTagDeleted:
		return true
	}
	return false
}

// applyCustomerEvent applies one decoded event (e nil: a type to skip).
func applyCustomerEvent(ctx context.Context, w CustomerListWriter, ev eventstore.Event, e domain.Event) error {
	var err error
	p := ev.PartnerID
	switch e := e.(type) {
	case domain.CustomerCreated:
		err = w.CreateCustomer(ctx, p, e.CustomerID, e.Relationship, e.CompanyName, e.PrimaryDomain)
	case domain.CustomerRelationshipAdded:
		err = w.AddRelationship(ctx, p, e.CustomerID, e.Relationship)
	case domain.CustomerBillingProfileUpdated:
		if e.BillingProfile.CompanyName != "" {
			err = w.SetCompanyName(ctx, p, e.CustomerID, e.BillingProfile.CompanyName)
		}
	case domain.CustomerTagAssigned:
		err = w.AssignTag(ctx, p, e.CustomerID, e.TagID, e.Name)
	case domain.CustomerTagUnassigned:
		err = w.UnassignTag(ctx, p, e.CustomerID, e.TagID)
	case domain.TagCreated:
		err = w.CreateTag(ctx, p, e.TagID, e.Name)
	case domain.TagRenamed:
		err = w.RenameTag(ctx, p, e.TagID, e.NewName)
	case domain.TagDeleted:
		err = w.DeleteTag(ctx, p, e.TagID)
	}
	if err != nil {
		return fmt.Errorf("applying %s at position %d to the customer list: %w", ev.Type, ev.Position, err)
	}
	return nil
}

// CustomerNames is the activity log's small per-customer name table: the
// name a customer had when each entry was written.
type CustomerNames interface {
	CustomerName(ctx context.Context, partnerID, customerID string) (string, error) // "" if unknown
	SetCustomerName(ctx context.Context, partnerID, customerID, name string) error
}

// ActivityFor returns the activity entry of one event, or ok=false for an
// event that is not an activity (partner.created, unknown types). It keeps
// names up to date first, so an entry shows the name after its own event.
//
// oldValue/newValue are short human strings, never JSON: a name, a
// relationship, a status, a tag name, "email (role)", or for a billing
// profile "Company Name <email>"; "" where there is nothing.
func ActivityFor(ctx context.Context, names CustomerNames, ev eventstore.Event, e domain.Event) (ActivityEntry, bool, error) {
	a := ActivityEntry{At: ev.RecordedAt, PartnerUser: ev.ActorEmail, Position: ev.Position, PartnerID: ev.PartnerID}
	customer := func(id string) error {
		a.CustomerID = id
		n, err := names.CustomerName(ctx, ev.PartnerID, id)
		a.CustomerName = n
		return err
	}
	var err error
	switch e := e.(type) {
	case domain.CustomerCreated:
		a.Operation, a.ResourceType, a.NewValue = OpCreateCustomer, ResourceCustomer, e.CompanyName
		if err = names.SetCustomerName(ctx, ev.PartnerID, e.CustomerID, e.CompanyName); err == nil {
			err = customer(e.CustomerID)
		}
	case domain.CustomerRelationshipAdded:
		a.Operation, a.ResourceType, a.NewValue = OpAddCustomerRelationship, ResourceCustomer, e.Relationship
		err = customer(e.CustomerID)
	case domain.CustomerBillingProfileUpdated:
		a.Operation, a.ResourceType = OpUpdateCustomerBillingProfile, ResourceCustomer
		a.NewValue = profileString(&e.BillingProfile)
		a.OldValue = profileString(e.PreviousProfile)
		if e.BillingProfile.CompanyName != "" {
			err = names.SetCustomerName(ctx, ev.PartnerID, e.CustomerID, e.BillingProfile.CompanyName)
		}
		if err == nil {
			err = customer(e.CustomerID)
		}
	case domain.OrderCreated:
		a.Operation, a.ResourceType = OpCreateOrder, ResourceOrder
		a.NewValue = e.OrderID + " (" + e.Catalog + ", " + e.BillingCycle + ", " + strconv.Itoa(len(e.LineItems)) + " line items)"
		err = customer(e.CustomerID)
	case domain.OrderCompleted:
		a.Operation, a.ResourceType, a.OldValue, a.NewValue = OpCompleteOrder, ResourceOrder, "pending", "completed"
		err = customer(e.CustomerID)
	case domain.OrderCancelled:
		a.Operation, a.ResourceType, a.OldValue, a.NewValue = OpCancelOrder, ResourceOrder, "pending", "cancelled"
		err = customer(e.CustomerID)
	case domain.CustomerTagAssigned:
		a.Operation, a.ResourceType, a.NewValue = OpAssignCustomerTag, ResourceCustomer, e.Name
		err = customer(e.CustomerID)
	case domain.CustomerTagUnassigned:
		a.Operation, a.ResourceType, a.OldValue = OpUnassignCustomerTag, ResourceCustomer, e.Name
		err = customer(e.CustomerID)
	case domain.TagCreated:
		a.Operation, a.ResourceType, a.NewValue = OpCreateTag, ResourceTag, e.Name
	case domain.TagRenamed:
		a.Operation, a.ResourceType, a.OldValue, a.NewValue = OpRenameTag, ResourceTag, e.OldName, e.NewName
	case domain.TagDeleted:
		a.Operation, a.ResourceType, a.OldValue = OpDeleteTag, ResourceTag, e.Name
	case domain.UserCreated:
		a.Operation, a.ResourceType, a.NewValue = OpCreateUser, ResourceUser, e.Email+" ("+e.Role+")"
	default:
		return ActivityEntry{}, false, nil
	}
	if err != nil {
		return ActivityEntry{}, false, fmt.Errorf("looking up customer name for position %d: %w", ev.Position, err)
	}
	return a, true, nil
}

func profileString(p *domain.BillingProfile) string {
	if p == nil {
		return ""
	}
	if p.Email == "" {
		return p.CompanyName
	}
	return p.CompanyName + " <" + p.Email + ">"
}

// CustomerRow is one stored row of the list, with what the backends index.
type CustomerRow struct {
	PartnerID string
	CustomerItem
	TagIDs     []string // parallel to Tags
	CompanyKey string   // Fold(CompanyName), the sort key
	SearchText string   // SearchText(CompanyName, PrimaryDomain, ID)
}

// SearchText is the folded text that `searchBy=all` matches against (tags are
// matched through their own table, so a rename touches no customer row).
func SearchText(companyName, primaryDomain, customerID string) string {
	return Fold(companyName) + "\n" + primaryDomain + "\n" + Fold(customerID)
}

// StoredTag is one catalog row.
type StoredTag struct {
	PartnerID string
	TagCount
}

// MemNames is an in-memory CustomerNames, for rebuilds and replays.
type MemNames map[[2]string]string

func (m MemNames) CustomerName(_ context.Context, p, id string) (string, error) {
	return m[[2]string{p, id}], nil
}
func (m MemNames) SetCustomerName(_ context.Context, p, id, name string) error {
	m[[2]string{p, id}] = name
	return nil
}

// After returns the events above checkpoint (the log is in position order,
// so this is a suffix unless a batch was built out of order).
func After(events []eventstore.Event, checkpoint int64) []eventstore.Event {
	out := events[:0:0]
	for _, ev := range events {
		if ev.Position > checkpoint {
			out = append(out, ev)
			checkpoint = ev.Position
		}
	}
	return out
}
