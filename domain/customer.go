package domain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Order statuses.
const (
	OrderStatusPending   = "pending"
	OrderStatusCompleted = "completed"
	OrderStatusCancelled = "cancelled"
)

// Order is an order as the customer aggregate knows it.
type Order struct {
	ID           string     `json:"id"`
	CustomerID   string     `json:"customerId"`
	Catalog      string     `json:"catalog"`
	BillingCycle string     `json:"billingCycle"`
	LineItems    []LineItem `json:"lineItems"`
	Status       string     `json:"status"`
}

// Customer is the state of a customer stream, folded by EvolveCustomer.
//
// Evolve reuses the maps and slices of the state it is given: fold into one
// value and do not keep using earlier copies (this keeps a fold linear).
type Customer struct {
	ID             string
	Exists         bool
	CompanyName    string
	PrimaryDomain  string
	Relationships  []string // in the order they were added
	BillingProfile *BillingProfile
	// TagIDs maps the ids of assigned tags to their names as last seen. The
	// catalog decides which of them still exist and what they are called.
	TagIDs map[string]string
	Orders []Order // in creation order
}

// Commands on a customer. Ids are chosen by the caller: the domain never
// generates them.

type CreateCustomer struct {
	ID             string
	CompanyName    string
	PrimaryDomain  string
	Relationship   string
	BillingProfile *BillingProfile
	Tags           []string // names; see ChangeTags for how they resolve
	NewTagIDs      []string // NewTagIDs[i] becomes the id of Tags[i] if it is new
}

// CustomerCommand is any command DecideCustomer accepts.
type CustomerCommand interface{ customerCommand() }

func (CreateCustomer) customerCommand()       {}
func (AddRelationship) customerCommand()      {}
func (UpdateBillingProfile) customerCommand() {}
func (CreateOrder) customerCommand()          {}
func (CompleteOrder) customerCommand()        {}
func (CancelOrder) customerCommand()          {}

type AddRelationship struct{ Relationship string }

type UpdateBillingProfile struct{ BillingProfile BillingProfile }

type CreateOrder struct {
	OrderID      string
	Catalog      string
	BillingCycle string
	LineItems    []LineItem
}

type CompleteOrder struct{ OrderID string }

type CancelOrder struct{ OrderID string }

// HasRelationship reports whether the customer has relationship r.
func (c Customer) HasRelationship(r string) bool { return slices.Contains(c.Relationships, r) }

// Order returns the order with the given id.
func (c Customer) Order(id string) (Order, bool) {
	for _, o := range c.Orders {
		if o.ID == id {
			return o, true
		}
	}
	return Order{}, false
}

// EffectiveTags are the customer's assigned tags that still exist in the
// catalog, with the catalog's names, sorted by name.
func (c Customer) EffectiveTags(cat TagCatalog) []Tag {
	tags := make([]Tag, 0, len(c.TagIDs))
	for id := range c.TagIDs {
		if name, ok := cat.Names[id]; ok {
			tags = append(tags, Tag{ID: id, Name: name})
		}
	}
	SortTags(tags)
	return tags
}

// CustomerView is what a reader of one customer sees.
type CustomerView struct {
	ID             string          `json:"id"`
	CompanyName    string          `json:"companyName"`
	PrimaryDomain  string          `json:"primaryDomain"`
	Relationships  []string        `json:"relationships"`
	BillingProfile *BillingProfile `json:"billingProfile"`
	Tags           []string        `json:"tags"`
	Orders         []Order         `json:"orders"`
}

// View is the customer as a reader sees it, tags resolved through cat. It
// copies what it returns, so the view stays valid while the state evolves.
func (c Customer) View(cat TagCatalog) CustomerView {
	v := CustomerView{
		ID:            c.ID,
		CompanyName:   c.CompanyName,
		PrimaryDomain: c.PrimaryDomain,
		Relationships: slices.Clone(c.Relationships),
		Tags:          []string{},
		Orders:        slices.Clone(c.Orders),
	}
	if v.Relationships == nil {
		v.Relationships = []string{}
	}
	if v.Orders == nil {
		v.Orders = []Order{}
	}
	if c.BillingProfile != nil {
		bp := *c.BillingProfile
		v.BillingProfile = &bp
	}
	for _, t := range c.EffectiveTags(cat) {
		v.Tags = append(v.Tags, t.Name)
	}
	return v
}

func notFoundCustomer() error { return Errorf(CodeNotFound, "customer not found") }

// DecideCustomer decides the events of a command on one customer. A
// CreateCustomer with tags needs the catalog: use DecideCreateCustomer.
func DecideCustomer(c Customer, cmd CustomerCommand) ([]Event, error) {
	switch cmd := cmd.(type) {
	case CreateCustomer:
		if len(cmd.Tags) > 0 {
			return nil, fmt.Errorf("creating a customer with tags: use DecideCreateCustomer, which sees the tag catalog")
		}
		ev, _, err := DecideCreateCustomer(c, TagCatalog{}, cmd)
		return ev, err
	case AddRelationship:
		if !c.Exists {
			return nil, notFoundCustomer()
		}
		if !ValidRelationship(cmd.Relationship) {
			return nil, Invalid(fieldErr("relationship", "must be %q or %q", RelationshipDirectBill, RelationshipIndirectReseller))
		}
		if c.HasRelationship(cmd.Relationship) {
			return nil, Errorf(CodeConflict, "customer already has relationship %s", cmd.Relationship)
		}
		return []Event{CustomerRelationshipAdded{CustomerID: c.ID, Relationship: cmd.Relationship}}, nil
	case UpdateBillingProfile:
		if !c.Exists {
			return nil, notFoundCustomer()
		}
		p, errs := NormalizeBillingProfile("", cmd.BillingProfile)
		if len(errs) > 0 {
			return nil, Invalid(errs...)
		}
		return []Event{CustomerBillingProfileUpdated{CustomerID: c.ID, BillingProfile: p, PreviousProfile: c.BillingProfile}}, nil
	case CreateOrder:
		if !c.Exists {
			return nil, notFoundCustomer()
		}
		return decideCreateOrder(c, cmd)
	case CompleteOrder:
		return decideMoveOrder(c, cmd.OrderID, OrderStatusCompleted)
	case CancelOrder:
		return decideMoveOrder(c, cmd.OrderID, OrderStatusCancelled)
	}
	return nil, Errorf(CodeInvalid, "unknown customer command %T", cmd)
}

// DecideCreateCustomer decides a new customer and the assignment of its
// initial tags: events for the customer stream and for the tag catalog
// stream (the tags the assignment adds to the catalog).
func DecideCreateCustomer(c Customer, cat TagCatalog, cmd CreateCustomer) (customerEvents, catalogEvents []Event, err error) {
	var errs []FieldError
	id, uerr := uuid.Parse(strings.TrimSpace(cmd.ID))
	if uerr != nil {
		errs = append(errs, fieldErr("id", "must be a UUID"))
	}
	name := normalizeCompanyName(&errs, "companyName", cmd.CompanyName)
	domain, derr := NormalizeDomain(cmd.PrimaryDomain)
	if derr != nil {
		errs = append(errs, fieldErr("primaryDomain", "%v", derr))
	}
	if !ValidRelationship(cmd.Relationship) {
		errs = append(errs, fieldErr("relationship", "must be %q or %q", RelationshipDirectBill, RelationshipIndirectReseller))
	}
	var profile *BillingProfile
	if cmd.BillingProfile != nil {
		p, perrs := NormalizeBillingProfile("billingProfile", *cmd.BillingProfile)
		errs = append(errs, perrs...)
		profile = &p
	}
	if len(errs) > 0 {
		// Tag names are checked too, so one answer lists every problem.
		if _, terrs := normalizeTagNames("tags", cmd.Tags); len(terrs) > 0 {
			errs = append(errs, terrs...)
		}
		return nil, nil, Invalid(errs...)
	}
	// After the fields: a command handler may decide before it has read
	// the customer (commands' assumeNew), and the answer to a bad body must
	// not depend on that.
	if c.Exists {
		return nil, nil, Errorf(CodeConflict, "customer %s already exists", c.ID)
	}
	created := CustomerCreated{CustomerID: id.String(), CompanyName: name, PrimaryDomain: domain, Relationship: cmd.Relationship, BillingProfile: profile}
	customerEvents = []Event{created}
	if len(cmd.Tags) == 0 {
		return customerEvents, nil, nil
	}
	c = EvolveCustomer(Customer{}, created)
	catEvents, custEvents, err := DecideTagAssignment(cat, []Customer{c}, ChangeTags{Add: cmd.Tags, NewTagIDs: cmd.NewTagIDs, Field: "tags"})
	if err != nil {
		return nil, nil, err
	}
	return append(customerEvents, custEvents[0]...), catEvents, nil
}

// The order vocabularies (SPEC "Domain rules"); functions rather than
// package variables so nothing can change them.
func orderCatalogs() []string { return []string{"azure", "marketplace", "software", "online-services"} }
func billingCycles() []string { return []string{"monthly", "annual", "one-time", "none"} }
func termDurations() []string { return []string{"", "P1M", "P1Y", "P3Y"} }

func decideCreateOrder(c Customer, cmd CreateOrder) ([]Event, error) {
	var errs []FieldError
	if _, err := uuid.Parse(cmd.OrderID); err != nil {
		errs = append(errs, fieldErr("id", "must be a UUID"))
	}
	if !slices.Contains(orderCatalogs(), cmd.Catalog) {
		errs = append(errs, fieldErr("catalog", "must be one of %s", strings.Join(orderCatalogs(), ", ")))
	}
	if !slices.Contains(billingCycles(), cmd.BillingCycle) {
		errs = append(errs, fieldErr("billingCycle", "must be one of %s", strings.Join(billingCycles(), ", ")))
	}
	switch {
	case len(cmd.LineItems) == 0:
		errs = append(errs, fieldErr("lineItems", "must have at least one line item"))
	case len(cmd.LineItems) > MaxLineItems:
		errs = append(errs, fieldErr("lineItems", "must have at most %d line items", MaxLineItems))
	}
	items := make([]LineItem, len(cmd.LineItems))
	for i, li := range cmd.LineItems {
		p := "lineItems[" + strconv.Itoa(i) + "]"
		li.OfferID = strings.TrimSpace(li.OfferID)
		checkText(&errs, p+".offerId", li.OfferID, true, maxFieldLen)
		if li.Quantity < 1 || li.Quantity > MaxQuantity {
			errs = append(errs, fieldErr(p+".quantity", "must be between 1 and %d", MaxQuantity))
		}
		if !slices.Contains(termDurations(), li.TermDuration) {
			errs = append(errs, fieldErr(p+".termDuration", "must be P1M, P1Y or P3Y when present"))
		}
		items[i] = li
	}
	if len(errs) > 0 {
		return nil, Invalid(errs...)
	}
	if _, dup := c.Order(cmd.OrderID); dup {
		return nil, Errorf(CodeConflict, "order %s already exists", cmd.OrderID)
	}
	return []Event{OrderCreated{CustomerID: c.ID, OrderID: cmd.OrderID, Catalog: cmd.Catalog, BillingCycle: cmd.BillingCycle, LineItems: items}}, nil
}

func decideMoveOrder(c Customer, orderID, to string) ([]Event, error) {
	if !c.Exists {
		return nil, notFoundCustomer()
	}
	o, ok := c.Order(orderID)
	if !ok {
		return nil, Errorf(CodeNotFound, "order not found")
	}
	if o.Status != OrderStatusPending {
		return nil, Errorf(CodeConflict, "order %s is already %s", orderID, o.Status)
	}
	if to == OrderStatusCompleted {
		return []Event{OrderCompleted{CustomerID: c.ID, OrderID: orderID}}, nil
	}
	return []Event{OrderCancelled{CustomerID: c.ID, OrderID: orderID}}, nil
}

// EvolveCustomer applies one event to the state. Events of other aggregates
// leave it unchanged.
func EvolveCustomer(c Customer, e Event) Customer {
	switch e := e.(type) {
	case CustomerCreated:
		c = Customer{ID: e.CustomerID, Exists: true, CompanyName: e.CompanyName, PrimaryDomain: e.PrimaryDomain,
			Relationships: []string{e.Relationship}, BillingProfile: e.BillingProfile, TagIDs: map[string]string{}}
	case CustomerRelationshipAdded:
		if !c.HasRelationship(e.Relationship) {
			c.Relationships = append(c.Relationships, e.Relationship)
		}
	case CustomerBillingProfileUpdated:
		p := e.BillingProfile
		c.BillingProfile = &p
		// SPEC: the billing company name is the name shown in the list.
		c.CompanyName = p.CompanyName
	case CustomerTagAssigned:
		if c.TagIDs == nil {
			c.TagIDs = map[string]string{}
		}
		c.TagIDs[e.TagID] = e.Name
	case CustomerTagUnassigned:
		delete(c.TagIDs, e.TagID)
	case OrderCreated:
		c.Orders = append(c.Orders, Order{ID: e.OrderID, CustomerID: e.CustomerID, Catalog: e.Catalog,
			BillingCycle: e.BillingCycle, LineItems: e.LineItems, Status: OrderStatusPending})
	case OrderCompleted:
		c.setOrderStatus(e.OrderID, OrderStatusCompleted)
	case OrderCancelled:
		c.setOrderStatus(e.OrderID, OrderStatusCancelled)
	}
	return c
}

func (c *Customer) setOrderStatus(id, status string) {
	for i := range c.Orders {
		if c.Orders[i].ID == id {
			c.Orders[i].Status = status
		}
	}
}
