// Package commands is the write side: each command loads the streams it
// needs, folds them, lets the domain decide, and appends the decided events
// with the loaded versions as expected versions (several streams in one
// atomic append where a command touches several). A conflicting concurrent
// write makes the whole attempt start over, a bounded number of times.
//
// Each command is its own type with its own handler (one file each); the
// handlers share the generic plumbing in unit.go and are collected in
// Commands, which the HTTP API and the CLI use.
package commands

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// Meta says who acts, for which partner, and why. It is copied into the
// metadata of every event the command appends.
type Meta struct {
	PartnerID     string
	ActorID       string
	ActorEmail    string
	CorrelationID string
	CausationID   string
}

// Handler handles one command type C and answers R.
type Handler[C, R any] interface {
	Handle(ctx context.Context, meta Meta, cmd C) (R, error)
}

// handlerFunc adapts a function to Handler.
type handlerFunc[C, R any] func(ctx context.Context, meta Meta, cmd C) (R, error)

func (f handlerFunc[C, R]) Handle(ctx context.Context, meta Meta, cmd C) (R, error) {
	return f(ctx, meta, cmd)
}

// Commands holds a handler per command and the write-side queries.
type Commands struct {
	CreateCustomer       Handler[CreateCustomer, CustomerResult]
	AddRelationship      Handler[AddRelationship, CustomerResult]
	UpdateBillingProfile Handler[UpdateBillingProfile, CustomerResult]
	CreateOrder          Handler[CreateOrder, OrderResult]
	CompleteOrder        Handler[CompleteOrder, OrderResult]
	CancelOrder          Handler[CancelOrder, OrderResult]
	ChangeCustomerTags   Handler[ChangeCustomerTags, CustomerResult]
	BulkTagAssignment    Handler[BulkTagAssignment, BulkTagResult]
	CreateTag            Handler[CreateTag, TagResult]
	RenameTag            Handler[RenameTag, TagResult]
	DeleteTag            Handler[DeleteTag, TagResult]
	CreateUser           Handler[CreateUser, UserResult]
	CreatePartner        Handler[CreatePartner, PartnerResult]

	core *core
}

// Option configures New.
type Option func(*core)

// WithIDs replaces the UUID generator (event ids and generated entity ids).
func WithIDs(newID func() uuid.UUID) Option { return func(c *core) { c.newID = newID } }

// WithRandom replaces crypto/rand as the source of user tokens.
func WithRandom(r io.Reader) Option { return func(c *core) { c.random = r } }

// WithMaxAttempts sets how often a command is tried when concurrent writes
// conflict with it (default 5).
func WithMaxAttempts(n int) Option {
	return func(c *core) {
		if n >= 1 {
			c.maxAttempts = n
		}
	}
}

// New builds the handlers over a store and the event registry.
func New(store eventstore.Store, reg *domain.Registry, opts ...Option) *Commands {
	c := &core{store: store, reg: reg, newID: uuid.New, random: rand.Reader, maxAttempts: 5, retryPause: 50 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	return &Commands{
		CreateCustomer:       observed(c, "create_customer", c.createCustomer),
		AddRelationship:      observed(c, "add_relationship", c.addRelationship),
		UpdateBillingProfile: observed(c, "update_billing_profile", c.updateBillingProfile),
		CreateOrder:          observed(c, "create_order", c.createOrder),
		CompleteOrder:        observed(c, "complete_order", c.completeOrder),
		CancelOrder:          observed(c, "cancel_order", c.cancelOrder),
		ChangeCustomerTags:   observed(c, "change_customer_tags", c.changeCustomerTags),
		BulkTagAssignment:    observed(c, "bulk_tag_assignment", c.bulkTagAssignment),
		CreateTag:            observed(c, "create_tag", c.createTag),
		RenameTag:            observed(c, "rename_tag", c.renameTag),
		DeleteTag:            observed(c, "delete_tag", c.deleteTag),
		CreateUser:           observed(c, "create_user", c.createUser),
		CreatePartner:        observed(c, "create_partner", c.createPartner),
		core:                 c,
	}
}

// WithOutcomes calls observe after every command with the command's name
// (snake case, for example "create_customer") and Outcome of its error, so
// the process can count outcomes (customerd's metrics).
func WithOutcomes(observe func(command, outcome string)) Option {
	return func(c *core) { c.observe = observe }
}

// Outcome classifies a command's error: "ok" for nil, the domain code
// ("invalid", "not_found", "conflict", "precondition", ...) for an
// application error, "canceled" when the caller went away, and "error" for
// anything else (store or network failures).
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case domain.ErrorCode(err) != "":
		return string(domain.ErrorCode(err))
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

// observed wraps a handler so every call is reported to c.observe, if set.
func observed[C, R any](c *core, name string, f func(context.Context, Meta, C) (R, error)) Handler[C, R] {
	return handlerFunc[C, R](func(ctx context.Context, meta Meta, cmd C) (R, error) {
		r, err := f(ctx, meta, cmd)
		if c.observe != nil {
			c.observe(name, Outcome(err))
		}
		return r, err
	})
}

// CustomerResult answers a command on one customer.
type CustomerResult struct {
	Customer domain.CustomerView
	Version  int64 // the customer stream's version: the ETag
	Position int64 // global position of the last appended event
}

// OrderResult answers an order command.
type OrderResult struct {
	Order    domain.Order
	Version  int64
	Position int64
}
