package pgread_test

import (
	"context"
	"testing"
	"time"

	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/readtest"
)

// The upkeep merges what the projector's inserts left in the GIN pending
// lists, and the list answers searches the same afterwards.
func TestIndexUpkeepEmptiesPendingLists(t *testing.T) {
	ctx := context.Background()
	_, store, db := storeBacked(t)
	for range 20 {
		createCustomer(t, store)
	}
	list := db.CustomerList()
	if err := list.ApplyBatch(ctx, readtest.All(t, store)); err != nil {
		t.Fatal(err)
	}
	before, err := list.SearchCustomers(ctx, "p1", projections.SearchParams{Q: "customer"})
	if err != nil || len(before.Items) != 20 {
		t.Fatalf("search before: %d items, %v", len(before.Items), err)
	}
	pages, err := db.CleanPendingLists(ctx)
	if err != nil || pages == 0 {
		t.Fatalf("first merge: %d pages, %v; want some (20 inserts pending)", pages, err)
	}
	if pages, err := db.CleanPendingLists(ctx); err != nil || pages != 0 {
		t.Fatalf("second merge: %d pages, %v; want none left", pages, err)
	}
	after, err := list.SearchCustomers(ctx, "p1", projections.SearchParams{Q: "customer"})
	if err != nil || len(after.Items) != 20 {
		t.Fatalf("search after: %d items, %v", len(after.Items), err)
	}

	// The loop runs until its context ends, and reports no failure when
	// there is none.
	runCtx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	var failures []error
	if err := db.RunIndexUpkeep(runCtx, 20*time.Millisecond, func(err error) { failures = append(failures, err) }); err != nil || len(failures) != 0 {
		t.Fatalf("RunIndexUpkeep = %v, failures %v", err, failures)
	}
}
