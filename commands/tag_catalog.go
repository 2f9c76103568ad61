package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// TagResult answers a catalog command: the tag as it now is (as it was, for
// a delete).
type TagResult struct {
	Tag      domain.Tag
	Position int64
}

// onCatalog is the plumbing of the catalog commands.
func (c *core) onCatalog(ctx context.Context, meta Meta, cmd domain.TagCommand, name string) (TagResult, error) {
	if err := requirePartner(meta); err != nil {
		return TagResult{}, err
	}
	var tag domain.Tag
	u, err := c.run(ctx, meta, func(ctx context.Context, u *unit) error {
		cat, s, err := u.catalog(ctx, meta.PartnerID)
		if err != nil {
			return err
		}
		before, _ := cat.Lookup(name)
		evs, err := domain.DecideTagCatalog(cat, cmd)
		if err != nil {
			return err
		}
		s.emit(evs...)
		tag = before
		for _, e := range evs {
			switch e := e.(type) {
			case domain.TagCreated:
				tag = domain.Tag{ID: e.TagID, Name: e.Name}
			case domain.TagRenamed:
				tag = domain.Tag{ID: e.TagID, Name: e.NewName}
			}
		}
		return nil
	})
	if err != nil {
		return TagResult{}, err
	}
	return TagResult{Tag: tag, Position: u.position()}, nil
}
