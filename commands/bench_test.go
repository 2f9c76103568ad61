package commands_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
)

// BenchmarkCreateCustomer measures one command end to end (load, decide,
// claim, append) on each store.
func BenchmarkCreateCustomer(b *testing.B) {
	for name, open := range adapters() {
		b.Run(name, func(b *testing.B) {
			store := open(b)
			cmds := commands.New(store, domain.NewRegistry())
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				if _, err := cmds.CreateCustomer.Handle(ctx, meta, newCustomer(fmt.Sprintf("c%d.com", i))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBulkTagAssignment100 tags (or untags) 100 customers in one atomic
// append.
func BenchmarkBulkTagAssignment100(b *testing.B) {
	for name, open := range adapters() {
		b.Run(name, func(b *testing.B) {
			store := open(b)
			cmds := commands.New(store, domain.NewRegistry())
			ctx := context.Background()
			var ids []string
			for i := range 100 {
				r, err := cmds.CreateCustomer.Handle(ctx, meta, newCustomer(fmt.Sprintf("c%d.com", i)))
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, r.Customer.ID)
			}
			add := true
			for b.Loop() {
				// Alternately assign and unassign, so that every iteration
				// writes 100 events and no customer reaches the tag limit.
				cmd := commands.BulkTagAssignment{CustomerIDs: ids, Add: []string{"bench"}}
				if !add {
					cmd = commands.BulkTagAssignment{CustomerIDs: ids, Remove: []string{"bench"}}
				}
				add = !add
				if _, err := cmds.BulkTagAssignment.Handle(ctx, meta, cmd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
