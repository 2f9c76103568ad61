package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// CancelOrder moves a pending order to cancelled.
type CancelOrder struct {
	CustomerID string
	OrderID    string
}

func (c *core) cancelOrder(ctx context.Context, meta Meta, cmd CancelOrder) (OrderResult, error) {
	return c.orderCommand(ctx, meta, cmd.CustomerID, cmd.OrderID, domain.CancelOrder{OrderID: cmd.OrderID})
}
