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
	"io"

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
	c := &core{store: store, reg: reg, newID: uuid.New, random: rand.Reader, maxAttempts: 5}
	for _, o := range opts {
		o(c)
	}
	return &Commands{
		CreateCustomer:       handlerFunc[CreateCustomer, CustomerResult](c.createCustomer),
		AddRelationship:      handlerFunc[AddRelationship, CustomerResult](c.addRelationship),
		UpdateBillingProfile: handlerFunc[UpdateBillingProfile, CustomerResult](c.updateBillingProfile),
		CreateOrder:          handlerFunc[CreateOrder, OrderResult](c.createOrder),
		CompleteOrder:        handlerFunc[CompleteOrder, OrderResult](c.completeOrder),
		CancelOrder:          handlerFunc[CancelOrder, OrderResult](c.cancelOrder),
		ChangeCustomerTags:   handlerFunc[ChangeCustomerTags, CustomerResult](c.changeCustomerTags),
		BulkTagAssignment:    handlerFunc[BulkTagAssignment, BulkTagResult](c.bulkTagAssignment),
		CreateTag:            handlerFunc[CreateTag, TagResult](c.createTag),
		RenameTag:            handlerFunc[RenameTag, TagResult](c.renameTag),
		DeleteTag:            handlerFunc[DeleteTag, TagResult](c.deleteTag),
		CreateUser:           handlerFunc[CreateUser, UserResult](c.createUser),
		CreatePartner:        handlerFunc[CreatePartner, PartnerResult](c.createPartner),
		core:                 c,
	}
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
