package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// CreatePartner creates a tenant with a generated id. meta.PartnerID is
// ignored: the event belongs to the new partner.
type CreatePartner struct{ Name string }

// PartnerResult answers CreatePartner.
type PartnerResult struct {
	ID       string
	Position int64
}

func (c *core) createPartner(ctx context.Context, meta Meta, cmd CreatePartner) (PartnerResult, error) {
	id := c.newID().String()
	meta.PartnerID = id
	u, err := c.run(ctx, meta, func(ctx context.Context, u *unit) error {
		var p domain.Partner
		s, err := u.load(ctx, domain.PartnerStream(id), "", func(e domain.Event) { p = domain.EvolvePartner(p, e) })
		if err != nil {
			return err
		}
		evs, err := domain.DecidePartner(p, domain.CreatePartner{PartnerID: id, Name: cmd.Name})
		s.emit(evs...)
		return err
	})
	if err != nil {
		return PartnerResult{}, err
	}
	return PartnerResult{ID: id, Position: u.position()}, nil
}
