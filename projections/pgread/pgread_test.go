package pgread_test

import (
	"context"
	"testing"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections/pgread"
	"github.com/partnerhub/customers/projections/readtest"
)

func open(t *testing.T) readtest.Models {
	db, err := pgread.Open(context.Background(), testenv.PostgresSchema(t), pgread.Options{})
	if err != nil {
		t.Fatalf("opening read models: %v", err)
	}
	t.Cleanup(db.Close)
	return readtest.Models{Customers: db.CustomerList(), Activity: db.ActivityLog()}
}

func TestReadModels(t *testing.T) { readtest.Run(t, open) }

func TestReadModelsWithStore(t *testing.T) {
	readtest.RunWithStore(t, func(t *testing.T, store eventstore.Store) readtest.Models {
		db, err := pgread.Open(context.Background(), testenv.PostgresSchema(t), pgread.Options{Store: store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return readtest.Models{Customers: db.CustomerList(), Activity: db.ActivityLog()}
	})
}
