package main

import (
	"context"
	"errors"
)

func partnerCreate(ctx context.Context, c *cli, args []string) error {
	return errors.New("not yet")
}

func userCreate(ctx context.Context, c *cli, args []string) error {
	return errors.New("not yet")
}
