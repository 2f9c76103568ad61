package commands_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// A caller-supplied token (customerd's bootstrap token) becomes the user's
// token: only its hash is stored, and a short or blank-containing one is
// refused without appending anything.
func TestCreateUserWithSuppliedToken(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		cmds := commands.New(store, domain.NewRegistry())
		p, err := cmds.CreatePartner.Handle(ctx, commands.Meta{}, commands.CreatePartner{Name: "default"})
		if err != nil {
			t.Fatal(err)
		}
		pm := commands.Meta{PartnerID: p.ID}
		for _, bad := range []string{"short-token-15c", "sixteen chars ok", "tab\tinside-the-token"} {
			_, err := cmds.CreateUser.Handle(ctx, pm, commands.CreateUser{Email: "a@localhost.example", Role: domain.RoleAdminAgent, Token: bad})
			if de := wantCode(t, err, domain.CodeInvalid); len(de.Fields) != 1 || de.Fields[0].Field != "token" {
				t.Fatalf("token %q: fields %+v", bad, de.Fields)
			}
		}
		if evs := allEvents(t, store); len(evs) != 1 {
			t.Fatalf("refused tokens appended events: %d events", len(evs))
		}

		const token = "0123456789abcdef" // exactly the minimum
		u, err := cmds.CreateUser.Handle(ctx, pm, commands.CreateUser{Email: "admin@localhost", Role: domain.RoleAdminAgent, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		if u.Token != token {
			t.Fatalf("token %q, want the supplied %q", u.Token, token)
		}
		evs, _ := store.ReadAll(ctx, eventstore.ReadRequest{PartnerID: p.ID, Types: []string{domain.TypeUserCreated}})
		if len(evs) != 1 || strings.Contains(string(evs[0].Data), token) || !strings.Contains(string(evs[0].Data), commands.HashToken(token)) {
			t.Fatalf("stored user events %+v", evs)
		}
	})
}

func TestOutcomesAreReportedPerCommand(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		var got []string
		cmds := commands.New(store, domain.NewRegistry(), commands.WithOutcomes(func(command, outcome string) {
			got = append(got, command+"="+outcome)
		}))
		c, _ := cmds.CreateCustomer.Handle(ctx, meta, newCustomer("contoso.com"))
		_, _ = cmds.CreateCustomer.Handle(ctx, meta, newCustomer("contoso.com"))
		_, _ = cmds.CreateCustomer.Handle(ctx, meta, newCustomer("not a domain"))
		_, _ = cmds.UpdateBillingProfile.Handle(ctx, meta, commands.UpdateBillingProfile{
			CustomerID: c.Customer.ID, ExpectedVersion: 7, BillingProfile: domain.BillingProfile{CompanyName: "Contoso"}})
		_, _ = cmds.CompleteOrder.Handle(ctx, meta, commands.CompleteOrder{CustomerID: c.Customer.ID, OrderID: "nope"})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, _ = cmds.CreateTag.Handle(cctx, meta, commands.CreateTag{Name: "vip"})
		want := []string{"create_customer=ok", "create_customer=conflict", "create_customer=invalid",
			"update_billing_profile=precondition", "complete_order=not_found", "create_tag=canceled"}
		if !slices.Equal(got, want) {
			t.Fatalf("outcomes\n got %v\nwant %v", got, want)
		}
	})
}
