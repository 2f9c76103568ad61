package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// CreateTag adds a tag to the partner's catalog.
type CreateTag struct{ Name string }

func (c *core) createTag(ctx context.Context, meta Meta, cmd CreateTag) (TagResult, error) {
	id := c.newID().String()
	return c.onCatalog(ctx, meta, domain.CreateTag{TagID: id, Name: cmd.Name}, cmd.Name)
}
