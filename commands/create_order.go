package commands

import (
	"context"
	"fmt"

	"github.com/partnerhub/customers/domain"
)

// CreateOrder places a pending order on an existing customer; the order id
// is generated.
type CreateOrder struct {
	CustomerID   string
	Catalog      string
	BillingCycle string
	LineItems    []domain.LineItem
}

func (c *core) createOrder(ctx context.Context, meta Meta, cmd CreateOrder) (OrderResult, error) {
	orderID := c.newID().String()
	return c.orderCommand(ctx, meta, cmd.CustomerID, orderID, domain.CreateOrder{
		OrderID: orderID, Catalog: cmd.Catalog, BillingCycle: cmd.BillingCycle, LineItems: cmd.LineItems,
	})
}

func (c *core) orderCommand(ctx context.Context, meta Meta, customerID, orderID string, cmd domain.CustomerCommand) (OrderResult, error) {
	out, err := c.customerOnly(ctx, meta, customerID, 0, cmd)
	if err != nil {
		return OrderResult{}, err
	}
	o, ok := out.customer.Order(orderID)
	if !ok {
		return OrderResult{}, fmt.Errorf("order %s missing after the command", orderID)
	}
	return OrderResult{Order: o, Version: out.version, Position: out.position}, nil
}
