package commands

import (
	"context"
	"fmt"

	"github.com/partnerhub/customers/domain"
)

// MaxBulkCustomers bounds one bulk tag assignment: all its streams go into
// one transaction.
const MaxBulkCustomers = 1000

// BulkTagAssignment adds and removes tags on many customers in one atomic
// append: every customer changes, or none does. An unknown customer id fails
// the whole request with a 404 that names it.
type BulkTagAssignment struct {
	CustomerIDs []string
	Add         []string
	Remove      []string
}

// BulkTagResult answers a bulk assignment.
type BulkTagResult struct {
	Position int64
	Versions map[string]int64 // customer id -> stream version afterwards
}

func (c *core) bulkTagAssignment(ctx context.Context, meta Meta, cmd BulkTagAssignment) (BulkTagResult, error) {
	if err := requirePartner(meta); err != nil {
		return BulkTagResult{}, err
	}
	switch {
	case len(cmd.CustomerIDs) == 0:
		return BulkTagResult{}, domain.Invalid(domain.FieldError{Field: "customerIds", Message: "must name at least one customer"})
	case len(cmd.CustomerIDs) > MaxBulkCustomers:
		return BulkTagResult{}, domain.Invalid(domain.FieldError{Field: "customerIds", Message: fmt.Sprintf("must name at most %d customers", MaxBulkCustomers)})
	}
	var ids []string
	seen := map[string]bool{}
	for _, raw := range cmd.CustomerIDs {
		id, err := customerKey(raw)
		if err != nil {
			return BulkTagResult{}, domain.Errorf(domain.CodeNotFound, "customer %s not found", raw)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	newTagIDs := c.newTagIDs(cmd.Add)
	var streams []*stream
	u, err := c.run(ctx, meta, func(ctx context.Context, u *unit) error {
		cat, ts, err := u.catalog(ctx, meta.PartnerID)
		if err != nil {
			return err
		}
		customers := make([]domain.Customer, len(ids))
		streams = make([]*stream, len(ids))
		for i, id := range ids {
			if customers[i], streams[i], err = u.customer(ctx, meta.PartnerID, id); err != nil {
				return err
			}
		}
		catEvents, custEvents, err := domain.DecideTagAssignment(cat, customers, domain.ChangeTags{Add: cmd.Add, Remove: cmd.Remove, NewTagIDs: newTagIDs})
		if err != nil {
			return err
		}
		ts.emit(catEvents...)
		for i, evs := range custEvents {
			streams[i].emit(evs...)
		}
		return nil
	})
	if err != nil {
		return BulkTagResult{}, err
	}
	res := BulkTagResult{Position: u.position(), Versions: make(map[string]int64, len(ids))}
	for i, id := range ids {
		res.Versions[id] = streams[i].Version()
	}
	return res, nil
}
