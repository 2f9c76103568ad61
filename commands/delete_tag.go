package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// DeleteTag removes a tag from the catalog and so from every customer.
type DeleteTag struct{ Name string }

func (c *core) deleteTag(ctx context.Context, meta Meta, cmd DeleteTag) (TagResult, error) {
	return c.onCatalog(ctx, meta, domain.DeleteTag{Name: cmd.Name}, cmd.Name)
}
