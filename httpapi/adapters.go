package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/relay"
	"github.com/partnerhub/customers/projections"
)

// WriteSide adapts the command handlers to Commands and CustomerReader.
type WriteSide struct{ C *commands.Commands }

var (
	_ Commands        = WriteSide{}
	_ CustomerReader  = WriteSide{}
	_ CustomerQueries = ReadSide{}
	_ ActivityQueries = ReadSide{}
	_ EventFeed       = StoreFeed{}
	_ PositionWaiter  = ProjectionWaiter{}
)

func meta(a Actor) commands.Meta {
	return commands.Meta{PartnerID: a.PartnerID, ActorID: a.UserID, ActorEmail: a.Email,
		CorrelationID: a.CorrelationID, CausationID: a.CausationID}
}

func customerResult(r commands.CustomerResult, err error) (Result, error) {
	return Result{ID: r.Customer.ID, Version: r.Version, Position: r.Position,
		Customer: customerOf(r.Customer, r.Version)}, err
}

func orderResult(r commands.OrderResult, err error) (Result, error) {
	return Result{ID: r.Order.ID, Version: r.Version, Position: r.Position, Order: r.Order}, err
}

func customerOf(v domain.CustomerView, version int64) Customer {
	return Customer{ID: v.ID, CompanyName: v.CompanyName, PrimaryDomain: v.PrimaryDomain,
		Relationships: v.Relationships, BillingProfile: v.BillingProfile, Tags: v.Tags,
		Orders: v.Orders, Version: version}
}

func tagResult(r commands.TagResult, err error) (Result, error) {
	return Result{ID: r.Tag.ID, Name: r.Tag.Name, Position: r.Position}, err
}

func (w WriteSide) CreateCustomer(ctx context.Context, a Actor, in CreateCustomerInput) (Result, error) {
	return customerResult(w.C.CreateCustomer.Handle(ctx, meta(a), commands.CreateCustomer{ID: in.ID,
		CompanyName: in.CompanyName, PrimaryDomain: in.PrimaryDomain, Relationship: in.Relationship,
		BillingProfile: in.BillingProfile, Tags: in.Tags}))
}

func (w WriteSide) AddRelationship(ctx context.Context, a Actor, id, rel string) (Result, error) {
	return customerResult(w.C.AddRelationship.Handle(ctx, meta(a), commands.AddRelationship{CustomerID: id, Relationship: rel}))
}

func (w WriteSide) UpdateBillingProfile(ctx context.Context, a Actor, id string, expected int64, p domain.BillingProfile) (Result, error) {
	if expected == eventstore.AnyVersion {
		expected = 0 // commands: zero means no version check (If-Match: *)
	}
	return customerResult(w.C.UpdateBillingProfile.Handle(ctx, meta(a), commands.UpdateBillingProfile{
		CustomerID: id, ExpectedVersion: expected, BillingProfile: p}))
}

func (w WriteSide) CreateOrder(ctx context.Context, a Actor, id string, in CreateOrderInput) (Result, error) {
	return orderResult(w.C.CreateOrder.Handle(ctx, meta(a), commands.CreateOrder{CustomerID: id,
		Catalog: in.Catalog, BillingCycle: in.BillingCycle, LineItems: in.LineItems}))
}

func (w WriteSide) CompleteOrder(ctx context.Context, a Actor, id, orderID string) (Result, error) {
	return orderResult(w.C.CompleteOrder.Handle(ctx, meta(a), commands.CompleteOrder{CustomerID: id, OrderID: orderID}))
}

func (w WriteSide) CancelOrder(ctx context.Context, a Actor, id, orderID string) (Result, error) {
	return orderResult(w.C.CancelOrder.Handle(ctx, meta(a), commands.CancelOrder{CustomerID: id, OrderID: orderID}))
}

func (w WriteSide) ChangeCustomerTags(ctx context.Context, a Actor, id string, add, remove []string) (Result, error) {
	return customerResult(w.C.ChangeCustomerTags.Handle(ctx, meta(a), commands.ChangeCustomerTags{CustomerID: id, Add: add, Remove: remove}))
}

func (w WriteSide) AssignTags(ctx context.Context, a Actor, ids, add, remove []string) (Result, error) {
	r, err := w.C.BulkTagAssignment.Handle(ctx, meta(a), commands.BulkTagAssignment{CustomerIDs: ids, Add: add, Remove: remove})
	return Result{Position: r.Position}, err
}

func (w WriteSide) CreateTag(ctx context.Context, a Actor, name string) (Result, error) {
	return tagResult(w.C.CreateTag.Handle(ctx, meta(a), commands.CreateTag{Name: name}))
}

func (w WriteSide) RenameTag(ctx context.Context, a Actor, name, newName string) (Result, error) {
	return tagResult(w.C.RenameTag.Handle(ctx, meta(a), commands.RenameTag{Name: name, NewName: newName}))
}

func (w WriteSide) DeleteTag(ctx context.Context, a Actor, name string) (Result, error) {
	return tagResult(w.C.DeleteTag.Handle(ctx, meta(a), commands.DeleteTag{Name: name}))
}

func (w WriteSide) CreateUser(ctx context.Context, a Actor, email, role string) (Result, error) {
	r, err := w.C.CreateUser.Handle(ctx, meta(a), commands.CreateUser{Email: email, Role: role})
	return Result{ID: r.ID, Token: r.Token, Position: r.Position}, err
}

// Customer reads one customer from its stream.
func (w WriteSide) Customer(ctx context.Context, partnerID, id string) (Customer, error) {
	s, err := w.C.GetCustomer(ctx, partnerID, id)
	if err != nil {
		return Customer{}, err
	}
	return customerOf(s.Customer, s.Version), nil
}

// ReadSide adapts the read models to CustomerQueries and ActivityQueries.
type ReadSide struct {
	List projections.CustomerList
	Log  projections.ActivityLog
}

func (r ReadSide) SearchCustomers(ctx context.Context, partnerID string, q SearchQuery) (SearchPage, error) {
	page, err := r.List.SearchCustomers(ctx, partnerID, projections.SearchParams{Q: q.Q, SearchBy: q.SearchBy,
		Relationship: q.Relationship, Tags: q.Tags, Sort: q.Sort, Limit: q.Limit, Cursor: q.Cursor})
	if err != nil {
		return SearchPage{}, err
	}
	out := SearchPage{NextCursor: page.NextCursor, Items: make([]ListItem, len(page.Items))}
	for i, it := range page.Items {
		out.Items[i] = ListItem(it)
	}
	return out, nil
}

func (r ReadSide) ExportCustomers(ctx context.Context, partnerID string, row func(ListItem) error) error {
	return r.List.ExportCustomers(ctx, partnerID, 500, func(items []projections.CustomerItem) error {
		for _, it := range items {
			if err := row(ListItem(it)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (r ReadSide) Tags(ctx context.Context, partnerID string) ([]Tag, error) {
	tags, err := r.List.ListTags(ctx, partnerID)
	if err != nil {
		return nil, err
	}
	out := make([]Tag, len(tags))
	for i, t := range tags {
		out[i] = Tag{Name: t.Name, CustomerCount: int(t.CustomerCount)}
	}
	return out, nil
}

func activityParams(q ActivityQuery) projections.ActivityParams {
	return projections.ActivityParams{From: q.From, To: q.To, CustomerID: q.CustomerID,
		ResourceType: q.ResourceType, Operation: q.Operation, User: q.User, Limit: q.Limit, Cursor: q.Cursor}
}

func activityEntry(e projections.ActivityEntry) ActivityEntry {
	return ActivityEntry{At: e.At, PartnerUser: e.PartnerUser, CustomerID: e.CustomerID, CustomerName: e.CustomerName,
		Operation: e.Operation, ResourceType: e.ResourceType, OldValue: e.OldValue, NewValue: e.NewValue, Position: e.Position}
}

func (r ReadSide) Activity(ctx context.Context, partnerID string, q ActivityQuery) (ActivityPage, error) {
	page, err := r.Log.QueryActivity(ctx, partnerID, activityParams(q))
	if err != nil {
		return ActivityPage{}, err
	}
	out := ActivityPage{NextCursor: page.NextCursor, Items: make([]ActivityEntry, len(page.Items))}
	for i, e := range page.Items {
		out.Items[i] = activityEntry(e)
	}
	return out, nil
}

// ExportActivity pages through the activity log, so memory stays one page.
func (r ReadSide) ExportActivity(ctx context.Context, partnerID string, q ActivityQuery, row func(ActivityEntry) error) error {
	p := activityParams(q)
	p.Limit, p.Cursor = projections.MaxLimit, ""
	for {
		page, err := r.Log.QueryActivity(ctx, partnerID, p)
		if err != nil {
			return err
		}
		for _, e := range page.Items {
			if err := row(activityEntry(e)); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		p.Cursor = page.NextCursor
	}
}

// StoreFeed serves GET /v1/events from the event store, as the envelopes the
// relay publishes. PublicData, if set, is the same filter the relay applies.
type StoreFeed struct {
	Store      eventstore.Store
	PublicData func(eventType string, data []byte) []byte
}

func (f StoreFeed) Events(ctx context.Context, partnerID string, after int64, limit int) ([]json.RawMessage, int64, error) {
	evs, err := f.Store.ReadAll(ctx, eventstore.ReadRequest{After: after, Limit: limit, PartnerID: partnerID})
	if err != nil {
		return nil, 0, fmt.Errorf("reading the event feed after %d: %w", after, err)
	}
	items := make([]json.RawMessage, 0, len(evs))
	next := after
	for _, e := range evs {
		if f.PublicData != nil {
			e.Data = f.PublicData(e.Type, e.Data)
		}
		b, err := json.Marshal(relay.NewEnvelope(e))
		if err != nil {
			return nil, 0, fmt.Errorf("encoding event at position %d: %w", e.Position, err)
		}
		items = append(items, b)
		next = e.Position
	}
	return items, next, nil
}

// ProjectionWaiter waits for one projector of a projections.Waiter.
type ProjectionWaiter struct {
	W       *projections.Waiter
	Name    string        // projections.CustomerListName or ActivityLogName
	Timeout time.Duration // default 5 s
}

func (p ProjectionWaiter) WaitFor(ctx context.Context, position int64) error {
	t := p.Timeout
	if t <= 0 {
		t = 5 * time.Second
	}
	return p.W.Wait(ctx, p.Name, position, t)
}
