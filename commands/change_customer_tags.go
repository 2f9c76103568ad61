package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// ChangeCustomerTags adds and removes tags by name on one customer. New
// names join the catalog in the same atomic append. Removing a tag the
// customer does not have changes nothing (see domain.ChangeTags).
type ChangeCustomerTags struct {
	CustomerID string
	Add        []string
	Remove     []string
}

func (c *core) changeCustomerTags(ctx context.Context, meta Meta, cmd ChangeCustomerTags) (CustomerResult, error) {
	id, err := customerKey(cmd.CustomerID)
	if err != nil {
		return CustomerResult{}, err
	}
	newTagIDs := c.newTagIDs(cmd.Add)
	out, err := c.onCustomer(ctx, meta, id, 0, false, func(cust domain.Customer, cat domain.TagCatalog) (customerDecision, error) {
		catEvents, custEvents, err := domain.DecideTagAssignment(cat, []domain.Customer{cust},
			domain.ChangeTags{Add: cmd.Add, Remove: cmd.Remove, NewTagIDs: newTagIDs})
		if err != nil {
			return customerDecision{}, err
		}
		return customerDecision{customer: custEvents[0], catalog: catEvents}, nil
	})
	if err != nil {
		return CustomerResult{}, err
	}
	return out.result(), nil
}
