package main

import (
	"context"
	"fmt"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
)

// operatorActor names the CLI as the actor of the events it appends, so the
// activity log shows who created a user when no partner user did.
const operatorActor = "customerctl"

func partnerCreate(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("partner create --name NAME")
	so := c.storeFlags(fs)
	name := fs.String("name", "", "the partner's name (required)")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := required([2]string{"name", *name}); err != nil {
		return err
	}
	store, err := c.openStore(ctx, so, true)
	if err != nil {
		return err
	}
	defer store.Close()
	res, err := commands.New(store, domain.NewRegistry()).CreatePartner.Handle(ctx,
		commands.Meta{ActorID: operatorActor, ActorEmail: operatorActor}, commands.CreatePartner{Name: *name})
	if err != nil {
		return fmt.Errorf("creating partner: %w", err)
	}
	fmt.Fprintln(c.stdout, res.ID)
	return nil
}

func userCreate(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("user create --partner ID --email EMAIL --role admin-agent|sales-agent")
	so := c.storeFlags(fs)
	partner := fs.String("partner", "", "the partner id (required)")
	email := fs.String("email", "", "the user's e-mail (required)")
	role := fs.String("role", "", "admin-agent or sales-agent (required)")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := required([2]string{"partner", *partner}, [2]string{"email", *email}, [2]string{"role", *role}); err != nil {
		return err
	}
	if *role != domain.RoleAdminAgent && *role != domain.RoleSalesAgent {
		return usagef("--role %q: want %s or %s", *role, domain.RoleAdminAgent, domain.RoleSalesAgent)
	}
	store, err := c.openStore(ctx, so, false)
	if err != nil {
		return err
	}
	defer store.Close()
	res, err := commands.New(store, domain.NewRegistry()).CreateUser.Handle(ctx,
		commands.Meta{PartnerID: *partner, ActorID: operatorActor, ActorEmail: operatorActor},
		commands.CreateUser{Email: *email, Role: *role})
	if err != nil {
		return fmt.Errorf("creating user: %w", err)
	}
	// The token alone, so that scripts can capture it: TOKEN=$(customerctl user create ...).
	fmt.Fprintln(c.stdout, res.Token)
	return nil
}
