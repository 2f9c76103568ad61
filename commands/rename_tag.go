package commands

import (
	"context"

	"github.com/partnerhub/customers/domain"
)

// RenameTag renames a catalog tag (found by name, ignoring case). Every
// customer holding it shows the new name: customers hold tag ids, so this
// writes only the catalog.
type RenameTag struct {
	Name    string
	NewName string
}

func (c *core) renameTag(ctx context.Context, meta Meta, cmd RenameTag) (TagResult, error) {
	return c.onCatalog(ctx, meta, domain.RenameTag{Name: cmd.Name, NewName: cmd.NewName}, cmd.Name)
}
