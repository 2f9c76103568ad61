package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// CustomerSnapshot is a customer read from its stream.
type CustomerSnapshot struct {
	Customer domain.CustomerView
	Version  int64 // the ETag
	Position int64 // of the last event read (customer or catalog)
}

// GetCustomer folds one customer of partnerID; another partner's customer
// and an unknown id are both 404.
func (cs *Commands) GetCustomer(ctx context.Context, partnerID, customerID string) (CustomerSnapshot, error) {
	u, cust, cat, s, err := cs.core.readCustomer(ctx, partnerID, customerID)
	if err != nil {
		return CustomerSnapshot{}, err
	}
	return CustomerSnapshot{Customer: cust.View(cat), Version: s.version, Position: u.position()}, nil
}

// ListOrders returns a customer's orders in creation order, and the
// customer's version.
func (cs *Commands) ListOrders(ctx context.Context, partnerID, customerID string) ([]domain.Order, int64, error) {
	_, cust, _, s, err := cs.core.readCustomer(ctx, partnerID, customerID)
	if err != nil {
		return nil, 0, err
	}
	return cust.View(domain.TagCatalog{}).Orders, s.version, nil
}

// Tags lists the partner's catalog, sorted by name.
func (cs *Commands) Tags(ctx context.Context, partnerID string) ([]domain.Tag, error) {
	u := &unit{c: cs.core}
	cat, _, err := u.catalog(ctx, partnerID)
	if err != nil {
		return nil, err
	}
	return cat.Tags(), nil
}

func (c *core) readCustomer(ctx context.Context, partnerID, customerID string) (*unit, domain.Customer, domain.TagCatalog, *stream, error) {
	id, err := customerKey(customerID)
	if err != nil {
		return nil, domain.Customer{}, domain.TagCatalog{}, nil, err
	}
	u := &unit{c: c}
	cust, s, err := u.customer(ctx, partnerID, id)
	if err != nil {
		return nil, domain.Customer{}, domain.TagCatalog{}, nil, err
	}
	if !cust.Exists {
		return nil, domain.Customer{}, domain.TagCatalog{}, nil, domain.Errorf(domain.CodeNotFound, "customer not found")
	}
	cat, _, err := u.catalog(ctx, partnerID)
	if err != nil {
		return nil, domain.Customer{}, domain.TagCatalog{}, nil, err
	}
	return u, cust, cat, s, nil
}
