package main

import (
	"context"
	"fmt"
)

func projectionsRebuild(ctx context.Context, c *cli, args []string) error {
	return fmt.Errorf("not yet")
}
