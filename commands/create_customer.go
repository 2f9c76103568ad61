package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// CreateCustomer creates a customer; ID is generated when empty. Tags are
// names, assigned as ChangeCustomerTags would. The primary domain is claimed
// for the partner in the same append, so two customers cannot share it.
type CreateCustomer struct {
	ID             string
	CompanyName    string
	PrimaryDomain  string
	Relationship   string
	BillingProfile *domain.BillingProfile
	Tags           []string
}

func (c *core) createCustomer(ctx context.Context, meta Meta, cmd CreateCustomer) (CustomerResult, error) {
	id := cmd.ID
	if id == "" {
		id = c.newID().String()
	} else if key, err := customerKey(id); err == nil {
		id = key // canonical spelling, so that one customer has one stream
	}
	newTagIDs := c.newTagIDs(cmd.Tags)
	out, err := c.onCustomer(ctx, meta, id, 0, len(cmd.Tags) == 0, func(cust domain.Customer, cat domain.TagCatalog) (customerDecision, error) {
		custEvents, catEvents, err := domain.DecideCreateCustomer(cust, cat, domain.CreateCustomer{
			ID: id, CompanyName: cmd.CompanyName, PrimaryDomain: cmd.PrimaryDomain, Relationship: cmd.Relationship,
			BillingProfile: cmd.BillingProfile, Tags: cmd.Tags, NewTagIDs: newTagIDs,
		})
		if err != nil {
			return customerDecision{}, err
		}
		d := custEvents[0].(domain.CustomerCreated).PrimaryDomain
		return customerDecision{customer: custEvents, catalog: catEvents, claims: []claim{{
			key: "domain/" + meta.PartnerID + "/" + d, field: "primaryDomain",
			message: "primary domain " + d + " is already used by another customer",
		}}}, nil
	})
	if err != nil {
		return CustomerResult{}, err
	}
	return out.result(), nil
}
