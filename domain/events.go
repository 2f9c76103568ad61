package domain

// Event type names are part of the public contract (SPEC "Events"): they are
// written here as literals, never derived from Go type names, and never change
// once released. A new shape of an existing event gets an upcaster in the
// Registry, not a new name.
const (
	TypeCustomerCreated               = "customer.created"
	TypeCustomerRelationshipAdded     = "customer.relationship_added"
	TypeCustomerBillingProfileUpdated = "customer.billing_profile_updated"
	TypeCustomerTagAssigned           = "customer.tag_assigned"
	TypeCustomerTagUnassigned         = "customer.tag_unassigned"
	TypeOrderCreated                  = "order.created"
	TypeOrderCompleted                = "order.completed"
	TypeOrderCancelled                = "order.cancelled"
	TypeTagCreated                    = "tag.created"
	TypeTagRenamed                    = "tag.renamed"
	TypeTagDeleted                    = "tag.deleted"
	TypeUserCreated                   = "user.created"
	// TypePartnerCreated is not in SPEC's list of customer events: it is the
	// tenant's own birth record, written by `customerctl partner create`.
	TypePartnerCreated = "partner.created"
)

// Event is a domain event. EventType returns its stable name.
type Event interface {
	EventType() string
}

// Relationship values as they appear in the API and in events.
const (
	RelationshipDirectBill       = "direct-bill"
	RelationshipIndirectReseller = "indirect-reseller"
)

// Roles.
const (
	RoleAdminAgent = "admin-agent"
	RoleSalesAgent = "sales-agent"
)

// Address is a billing profile's default address.
type Address struct {
	AddressLine1 string `json:"addressLine1"`
	AddressLine2 string `json:"addressLine2,omitempty"`
	City         string `json:"city"`
	State        string `json:"state,omitempty"`
	PostalCode   string `json:"postalCode"`
	Country      string `json:"country"` // ISO 3166-1 alpha-2, upper case
	Region       string `json:"region,omitempty"`
}

// BillingProfile is a customer's billing profile (SPEC "Domain rules").
type BillingProfile struct {
	CompanyName    string  `json:"companyName"`
	Email          string  `json:"email"`
	FirstName      string  `json:"firstName"`
	LastName       string  `json:"lastName"`
	PhoneNumber    string  `json:"phoneNumber,omitempty"`
	Culture        string  `json:"culture,omitempty"`
	Language       string  `json:"language,omitempty"`
	DefaultAddress Address `json:"defaultAddress"`
}

// LineItem is one line of an order.
type LineItem struct {
	OfferID      string `json:"offerId"`
	Quantity     int    `json:"quantity"`
	TermDuration string `json:"termDuration,omitempty"` // "", P1M, P1Y, P3Y
}

// Every customer-scoped event carries CustomerID so that a consumer needs no
// other state to know which customer it concerns.

type CustomerCreated struct {
	CustomerID     string          `json:"customerId"`
	CompanyName    string          `json:"companyName"`
	PrimaryDomain  string          `json:"primaryDomain"`
	Relationship   string          `json:"relationship"`
	BillingProfile *BillingProfile `json:"billingProfile,omitempty"`
}

type CustomerRelationshipAdded struct {
	CustomerID   string `json:"customerId"`
	Relationship string `json:"relationship"`
}

// CustomerBillingProfileUpdated carries the previous profile too, so that an
// auditor sees old and new values from the event alone.
type CustomerBillingProfileUpdated struct {
	CustomerID      string          `json:"customerId"`
	BillingProfile  BillingProfile  `json:"billingProfile"`
	PreviousProfile *BillingProfile `json:"previousBillingProfile,omitempty"`
}

type CustomerTagAssigned struct {
	CustomerID string `json:"customerId"`
	TagID      string `json:"tagId"`
	Name       string `json:"name"` // as spelled in the catalog at the time
}

type CustomerTagUnassigned struct {
	CustomerID string `json:"customerId"`
	TagID      string `json:"tagId"`
	Name       string `json:"name"`
}

type OrderCreated struct {
	CustomerID   string     `json:"customerId"`
	OrderID      string     `json:"orderId"`
	Catalog      string     `json:"catalog"`
	BillingCycle string     `json:"billingCycle"`
	LineItems    []LineItem `json:"lineItems"`
}

type OrderCompleted struct {
	CustomerID string `json:"customerId"`
	OrderID    string `json:"orderId"`
}

type OrderCancelled struct {
	CustomerID string `json:"customerId"`
	OrderID    string `json:"orderId"`
}

type TagCreated struct {
	TagID string `json:"tagId"`
	Name  string `json:"name"`
}

type TagRenamed struct {
	TagID   string `json:"tagId"`
	OldName string `json:"oldName"`
	NewName string `json:"newName"`
}

type TagDeleted struct {
	TagID string `json:"tagId"`
	Name  string `json:"name"`
}

// UserCreated carries only the SHA-256 of the user's bearer token; the token
// itself is shown once and never stored.
type UserCreated struct {
	UserID    string `json:"userId"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	TokenHash string `json:"tokenHash"` // hex SHA-256
}

type PartnerCreated struct {
	PartnerID string `json:"partnerId"`
	Name      string `json:"name"`
}

func (CustomerCreated) EventType() string               { return TypeCustomerCreated }
func (CustomerRelationshipAdded) EventType() string     { return TypeCustomerRelationshipAdded }
func (CustomerBillingProfileUpdated) EventType() string { return TypeCustomerBillingProfileUpdated }
func (CustomerTagAssigned) EventType() string           { return TypeCustomerTagAssigned }
func (CustomerTagUnassigned) EventType() string         { return TypeCustomerTagUnassigned }
func (OrderCreated) EventType() string                  { return TypeOrderCreated }
func (OrderCompleted) EventType() string                { return TypeOrderCompleted }
func (OrderCancelled) EventType() string                { return TypeOrderCancelled }
func (TagCreated) EventType() string                    { return TypeTagCreated }
func (TagRenamed) EventType() string                    { return TypeTagRenamed }
func (TagDeleted) EventType() string                    { return TypeTagDeleted }
func (UserCreated) EventType() string                   { return TypeUserCreated }
func (PartnerCreated) EventType() string                { return TypePartnerCreated }

// Stream ids. The partner id is part of every stream id, so two partners can
// hold the same Microsoft customer id without sharing a stream.
func CustomerStream(partnerID, customerID string) string {
	return "customer-" + partnerID + "-" + customerID
}
func TagCatalogStream(partnerID string) string { return "tags-" + partnerID }
func UserStream(partnerID, userID string) string {
	return "user-" + partnerID + "-" + userID
}
func PartnerStream(partnerID string) string { return "partner-" + partnerID }
