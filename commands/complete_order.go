package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// CompleteOrder moves a pending order to completed.
type CompleteOrder struct {
	CustomerID string
	OrderID    string
}

func (c *core) completeOrder(ctx context.Context, meta Meta, cmd CompleteOrder) (OrderResult, error) {
	return c.orderCommand(ctx, meta, cmd.CustomerID, cmd.OrderID, domain.CompleteOrder{OrderID: cmd.OrderID})
}
