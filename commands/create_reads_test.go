package commands_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// loadCounter counts the streams a command reads.
type loadCounter struct {
	eventstore.Store
	loads atomic.Int32
}

func (s *loadCounter) Load(ctx context.Context, streamID string, fromVersion int64) ([]eventstore.Event, error) {
	s.loads.Add(1)
	return s.Store.Load(ctx, streamID, fromVersion)
}

// A create without tags reads nothing on its first attempt; a customer that
// exists after all is still refused as existing, and nothing is appended.
func TestCreateReadsOnlyWhenItMust(t *testing.T) {
	forEachStore(t, func(t *testing.T, store eventstore.Store) {
		ctx := context.Background()
		counted := &loadCounter{Store: store}
		cmds := commands.New(counted, domain.NewRegistry())

		first, err := cmds.CreateCustomer.Handle(ctx, meta, newCustomer("contoso.com"))
		if err != nil {
			t.Fatal(err)
		}
		if n := counted.loads.Swap(0); n != 0 {
			t.Errorf("create without tags read %d streams, want 0", n)
		}
		if first.Version != 1 || first.Position < 1 || first.Customer.CompanyName != "Contoso" {
			t.Errorf("create answered %+v", first)
		}

		tagged := newCustomer("fabrikam.com")
		tagged.Tags = []string{"Gold"}
		if _, err := cmds.CreateCustomer.Handle(ctx, meta, tagged); err != nil {
			t.Fatal(err)
		}
		if n := counted.loads.Swap(0); n != 2 {
			t.Errorf("create with a tag read %d streams, want 2 (customer and catalog)", n)
		}

		before := len(allEvents(t, store))
		again := newCustomer("northwind.com")
		again.ID = first.Customer.ID
		_, err = cmds.CreateCustomer.Handle(ctx, meta, again)
		de := wantCode(t, err, domain.CodeConflict)
		if !strings.Contains(de.Message, "already exists") {
			t.Errorf("existing id answered %q, want it to say the customer already exists", de.Message)
		}
		if n := counted.loads.Load(); n != 2 {
			t.Errorf("create of an existing id read %d streams, want 2 (on its second attempt)", n)
		}
		// The same with the primary domain of another customer: the
		// customer's existence is the answer, not the domain.
		again.PrimaryDomain = "fabrikam.com"
		_, err = cmds.CreateCustomer.Handle(ctx, meta, again)
		if de := wantCode(t, err, domain.CodeConflict); !strings.Contains(de.Message, "already exists") {
			t.Errorf("existing id with a taken domain answered %q, want it to say the customer already exists", de.Message)
		}
		// A body that is not valid is refused as such, existing id or not.
		again.CompanyName = ""
		_, err = cmds.CreateCustomer.Handle(ctx, meta, again)
		wantCode(t, err, domain.CodeInvalid)
		// With one attempt allowed, nothing is assumed: still "exists".
		again.CompanyName = "Northwind"
		_, err = commands.New(store, domain.NewRegistry(), commands.WithMaxAttempts(1)).CreateCustomer.Handle(ctx, meta, again)
		if de := wantCode(t, err, domain.CodeConflict); !strings.Contains(de.Message, "already exists") {
			t.Errorf("existing id with one attempt answered %q, want it to say the customer already exists", de.Message)
		}
		if after := len(allEvents(t, store)); after != before {
			t.Errorf("refused creates appended %d events", after-before)
		}
	})
}
