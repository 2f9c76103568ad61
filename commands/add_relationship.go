package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// AddRelationship makes a customer a dual partner.
type AddRelationship struct {
	CustomerID   string
	Relationship string
}

func (c *core) addRelationship(ctx context.Context, meta Meta, cmd AddRelationship) (CustomerResult, error) {
	return c.simpleCustomerCommand(ctx, meta, cmd.CustomerID, 0, domain.AddRelationship{Relationship: cmd.Relationship})
}

// simpleCustomerCommand runs a command that touches only the customer.
func (c *core) simpleCustomerCommand(ctx context.Context, meta Meta, customerID string, expectedVersion int64, cmd domain.CustomerCommand) (CustomerResult, error) {
	out, err := c.customerOnly(ctx, meta, customerID, expectedVersion, cmd)
	if err != nil {
		return CustomerResult{}, err
	}
	return out.result(), nil
}

func (c *core) customerOnly(ctx context.Context, meta Meta, customerID string, expectedVersion int64, cmd domain.CustomerCommand) (customerOutcome, error) {
	id, err := customerKey(customerID)
	if err != nil {
		return customerOutcome{}, err
	}
	return c.onCustomer(ctx, meta, id, expectedVersion, false, func(cust domain.Customer, _ domain.TagCatalog) (customerDecision, error) {
		evs, err := domain.DecideCustomer(cust, cmd)
		return customerDecision{customer: evs}, err
	})
}
