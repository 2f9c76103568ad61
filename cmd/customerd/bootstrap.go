package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// Bootstrap names (SPEC "Tenancy and roles").
const (
	bootstrapPartner = "default"
	bootstrapEmail   = "admin@localhost"
)

// bootstrap creates partner "default" and its admin-agent admin@localhost
// whose token is token, if token is set and the store has no partner yet.
// On a store with a partner it does nothing, so a restart with the same
// setting is harmless.
func bootstrap(ctx context.Context, store eventstore.Store, cmds *commands.Commands, token string, log *slog.Logger) error {
	if token == "" {
		return nil
	}
	partners, err := store.ReadAll(ctx, eventstore.ReadRequest{Limit: 1, Types: []string{domain.TypePartnerCreated}})
	if err != nil {
		return fmt.Errorf("bootstrap: looking for partners: %w", err)
	}
	if len(partners) > 0 {
		log.Info("the store has a partner; CUSTOMERD_BOOTSTRAP_TOKEN ignored")
		return nil
	}
	meta := commands.Meta{CorrelationID: "customerd-bootstrap"}
	p, err := cmds.CreatePartner.Handle(ctx, meta, commands.CreatePartner{Name: bootstrapPartner})
	if err != nil {
		return fmt.Errorf("bootstrap: creating partner %q: %w", bootstrapPartner, err)
	}
	meta.PartnerID = p.ID
	u, err := cmds.CreateUser.Handle(ctx, meta, commands.CreateUser{Email: bootstrapEmail, Role: domain.RoleAdminAgent, Token: token})
	if err != nil {
		return fmt.Errorf("bootstrap: creating user %s: %w", bootstrapEmail, err)
	}
	log.Info("bootstrapped an empty store", "partner", bootstrapPartner, "partner_id", p.ID, "user", bootstrapEmail, "user_id", u.ID)
	return nil
}
