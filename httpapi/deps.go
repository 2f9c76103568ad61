package httpapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/partnerhub/customers/domain"
)

// Actor is who runs a command, with the request's tracing ids, for the
// events' metadata.
type Actor struct {
	Principal
	CorrelationID string
	// CausationID is the request's Idempotency-Key when it has one, so the
	// events of a retried request name the same cause.
	CausationID string
}

// Result is what a command answers.
type Result struct {
	ID       string // the created resource's id (customer, order, tag, user), if any
	Version  int64  // the customer stream's version after the command, if customer-scoped
	Position int64  // the event-log position of the last event appended
	Token    string // CreateUser only: the new user's bearer token, shown once
	Name     string // tag commands: the tag's name as the catalog spells it
	// Customer is the customer as the command left it (customer commands);
	// Order likewise (order commands). The answer is built from them.
	Customer Customer
	Order    Order
}

// CreateCustomerInput is the body of POST /v1/customers.
type CreateCustomerInput struct {
	ID             string                 `json:"id,omitempty"`
	CompanyName    string                 `json:"companyName"`
	PrimaryDomain  string                 `json:"primaryDomain"`
	Relationship   string                 `json:"relationship"`
	BillingProfile *domain.BillingProfile `json:"billingProfile,omitempty"`
	Tags           []string               `json:"tags,omitempty"`
}

// CreateOrderInput is the body of POST /v1/customers/{id}/orders.
type CreateOrderInput struct {
	Catalog      string            `json:"catalog"`
	BillingCycle string            `json:"billingCycle"`
	LineItems    []domain.LineItem `json:"lineItems"`
}

// Commands runs the write side. Validation failures are domain.CodeInvalid
// with field errors; another partner's customer is CodeNotFound; a stale
// expected version is CodePrecondition.
type Commands interface {
	CreateCustomer(ctx context.Context, a Actor, in CreateCustomerInput) (Result, error)
	AddRelationship(ctx context.Context, a Actor, customerID, relationship string) (Result, error)
	// UpdateBillingProfile replaces the profile if the customer stream is at
	// expectedVersion (eventstore.AnyVersion for If-Match: *).
	UpdateBillingProfile(ctx context.Context, a Actor, customerID string, expectedVersion int64, p domain.BillingProfile) (Result, error)
	CreateOrder(ctx context.Context, a Actor, customerID string, in CreateOrderInput) (Result, error)
	CompleteOrder(ctx context.Context, a Actor, customerID, orderID string) (Result, error)
	CancelOrder(ctx context.Context, a Actor, customerID, orderID string) (Result, error)
	ChangeCustomerTags(ctx context.Context, a Actor, customerID string, add, remove []string) (Result, error)
	AssignTags(ctx context.Context, a Actor, customerIDs, add, remove []string) (Result, error)
	CreateTag(ctx context.Context, a Actor, name string) (Result, error)
	RenameTag(ctx context.Context, a Actor, name, newName string) (Result, error)
	DeleteTag(ctx context.Context, a Actor, name string) (Result, error)
	CreateUser(ctx context.Context, a Actor, email, role string) (Result, error)
}

// Order is one order of a customer as the API shows it.
type Order = domain.Order

// Customer is one customer as GET /v1/customers/{id} shows it.
type Customer struct {
	ID             string                 `json:"id"`
	CompanyName    string                 `json:"companyName"`
	PrimaryDomain  string                 `json:"primaryDomain"`
	Relationships  []string               `json:"relationships"`
	BillingProfile *domain.BillingProfile `json:"billingProfile"`
	Tags           []string               `json:"tags"`
	Orders         []Order                `json:"orders"`
	Version        int64                  `json:"version"` // the customer stream's version, the ETag
}

// CustomerReader reads one customer from its own stream, so it is always
// current: the answer to a command can show the state it produced.
type CustomerReader interface {
	// Customer returns the partner's customer, or a CodeNotFound error.
	Customer(ctx context.Context, partnerID, customerID string) (Customer, error)
}

// SearchQuery is GET /v1/customers' parameters, validated.
type SearchQuery struct {
	Q            string
	SearchBy     string // all, companyName, domain, id, tag
	Relationship string // "" or a relationship
	Tags         []string
	Sort         string // companyName, -companyName, domain, -domain
	Limit        int    // 1..500
	Cursor       string // opaque; an invalid one is CodeInvalid
}

// ListItem is one row of the customer list (one per relationship).
type ListItem struct {
	ID            string   `json:"id"`
	Relationship  string   `json:"relationship"`
	CompanyName   string   `json:"companyName"`
	PrimaryDomain string   `json:"primaryDomain"`
	Tags          []string `json:"tags"`
}

// SearchPage is one page of the customer list.
type SearchPage struct {
	Items      []ListItem `json:"items"`
	NextCursor string     `json:"nextCursor"`
}

// Tag is a catalog tag with the number of customers carrying it.
type Tag struct {
	Name          string `json:"name"`
	CustomerCount int    `json:"customerCount"`
}

// CustomerQueries reads the customer-list read model.
type CustomerQueries interface {
	SearchCustomers(ctx context.Context, partnerID string, q SearchQuery) (SearchPage, error)
	// ExportCustomers calls row for every row of the partner's list, ordered
	// by company name, id, relationship, without holding the list in memory.
	ExportCustomers(ctx context.Context, partnerID string, row func(ListItem) error) error
	Tags(ctx context.Context, partnerID string) ([]Tag, error)
}

// ActivityQuery is GET /v1/activity's parameters, validated.
type ActivityQuery struct {
	From, To     time.Time
	CustomerID   string
	ResourceType string
	Operation    string
	User         string
	Limit        int
	Cursor       string
}

// ActivityEntry is one entry of the activity log.
type ActivityEntry struct {
	At           time.Time `json:"at"`
	PartnerUser  string    `json:"partnerUser"`
	CustomerID   string    `json:"customerId"`
	CustomerName string    `json:"customerName"`
	Operation    string    `json:"operation"`
	ResourceType string    `json:"resourceType"`
	OldValue     string    `json:"oldValue"`
	NewValue     string    `json:"newValue"`
	Position     int64     `json:"position"`
}

// ActivityPage is one page of the activity log, newest first.
type ActivityPage struct {
	Items      []ActivityEntry `json:"items"`
	NextCursor string          `json:"nextCursor"`
}

// ActivityQueries reads the activity-log read model.
type ActivityQueries interface {
	Activity(ctx context.Context, partnerID string, q ActivityQuery) (ActivityPage, error)
	// ExportActivity calls row for every entry matching q (Limit and Cursor
	// ignored), newest first.
	ExportActivity(ctx context.Context, partnerID string, q ActivityQuery, row func(ActivityEntry) error) error
}

// EventFeed reads the partner's events in log order as the CloudEvents
// envelopes published on NATS.
type EventFeed interface {
	// Events returns up to limit envelopes after position after, and the
	// position to continue from.
	Events(ctx context.Context, partnerID string, after int64, limit int) (items []json.RawMessage, nextAfter int64, err error)
}

// PositionWaiter waits until a read model has applied a log position.
type PositionWaiter interface {
	// WaitFor returns nil once position is applied, or ctx's error.
	WaitFor(ctx context.Context, position int64) error
}
