package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// UpdateBillingProfile replaces a customer's billing profile. A non-zero
// ExpectedVersion (the If-Match ETag) must be the customer's current version
// exactly: otherwise domain.CodePrecondition, with no retry, since the
// client decided on what it saw at that version.
type UpdateBillingProfile struct {
	CustomerID      string
	ExpectedVersion int64
	BillingProfile  domain.BillingProfile
}

func (c *core) updateBillingProfile(ctx context.Context, meta Meta, cmd UpdateBillingProfile) (CustomerResult, error) {
	return c.simpleCustomerCommand(ctx, meta, cmd.CustomerID, cmd.ExpectedVersion, domain.UpdateBillingProfile{BillingProfile: cmd.BillingProfile})
}
