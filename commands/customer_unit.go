package commands

import (
	"context"
	"fmt"

	"github.com/partnerhub/customers/domain"
)

// customerDecision is what a command on one customer decided.
type customerDecision struct {
	customer []domain.Event
	catalog  []domain.Event
	claims   []claim
}

type claim struct{ key, field, message string }

// customerOutcome is the customer after a command, for the answer.
type customerOutcome struct {
	customer domain.Customer
	catalog  domain.TagCatalog
	version  int64
	position int64
}

func (o customerOutcome) result() CustomerResult {
	return CustomerResult{Customer: o.customer.View(o.catalog), Version: o.version, Position: o.position}
}

// onCustomer is the plumbing of every command on one customer: load the
// customer and the tag catalog (new tags and the answer's tag names need
// it), decide, append both streams atomically, retry on conflict.
// expectedVersion > 0 demands exactly that customer version (If-Match).
//
// assumeNew is for a create that names no tags: its first attempt reads
// nothing and decides on a customer that does not exist and an empty
// catalog. The append expects no stream, so a customer that exists after
// all is a conflict, and the next attempt reads both as usual. Two reads
// fewer per create (each a round trip to the store). The domain checks a
// body before whether the customer exists, so the answer to a bad body is
// the same either way. With a single attempt allowed nothing is assumed:
// the conflict would be the answer, where an existing customer is.
// Assuming also relies on an append checking the expected version before
// its claims (both stores do): an existing id that names another
// customer's domain must conflict, not answer "domain in use".
func (c *core) onCustomer(ctx context.Context, meta Meta, customerID string, expectedVersion int64, assumeNew bool,
	decide func(domain.Customer, domain.TagCatalog) (customerDecision, error)) (customerOutcome, error) {
	if err := requirePartner(meta); err != nil {
		return customerOutcome{}, err
	}
	var out customerOutcome
	var cs *stream
	u, err := c.run(ctx, meta, func(ctx context.Context, u *unit) error {
		var (
			cust domain.Customer
			cat  domain.TagCatalog
			s    *stream
			ts   *stream // nil when the catalog was not read
		)
		var err error
		if assumeNew && u.attempt == 1 && c.maxAttempts > 1 {
			cust = domain.Customer{ID: customerID}
			if s, err = u.add(domain.CustomerStream(meta.PartnerID, customerID), customerID); err != nil {
				return err
			}
		} else {
			if cust, s, err = u.customer(ctx, meta.PartnerID, customerID); err != nil {
				return err
			}
			if cat, ts, err = u.catalog(ctx, meta.PartnerID); err != nil {
				return err
			}
		}
		if expectedVersion > 0 {
			u.exact = true
			if cust.Exists && s.version != expectedVersion {
				return domain.Errorf(domain.CodePrecondition, "the customer is at version %d, not %d", s.version, expectedVersion)
			}
		}
		d, err := decide(cust, cat)
		if err != nil {
			return err
		}
		s.emit(d.customer...)
		if len(d.catalog) > 0 {
			if ts == nil {
				return fmt.Errorf("deciding on customer %s: catalog events from a command that did not read the catalog", customerID)
			}
			ts.emit(d.catalog...)
		}
		for _, cl := range d.claims {
			s.claim(cl.key, cl.field, cl.message)
		}
		for _, e := range d.customer {
			cust = domain.EvolveCustomer(cust, e)
		}
		for _, e := range d.catalog {
			cat = domain.EvolveTagCatalog(cat, e)
		}
		out.customer, out.catalog, cs = cust, cat, s
		return nil
	})
	if err != nil {
		return customerOutcome{}, err
	}
	out.version, out.position = cs.Version(), u.position()
	return out, nil
}
