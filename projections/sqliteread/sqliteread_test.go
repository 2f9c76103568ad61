package sqliteread_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/partnerhub/customers/projections/readtest"
	"github.com/partnerhub/customers/projections/sqliteread"
)

func openDB(t testing.TB, path string) *sqliteread.DB {
	t.Helper()
	db, err := sqliteread.Open(context.Background(), path, sqliteread.Options{})
	if err != nil {
		t.Fatalf("opening read models: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func open(t *testing.T) readtest.Models {
	db := openDB(t, filepath.Join(t.TempDir(), "readmodels.db"))
	return readtest.Models{Customers: db.CustomerList(), Activity: db.ActivityLog()}
}

func TestReadModels(t *testing.T) { readtest.Run(t, open) }
