package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/partnerhub/customers/eventstore/storetest"
)

// TestConformance runs the shared suite, each store on a fresh file. The
// gap-safety case is nearly moot here (commits are serialized, so positions
// become visible in order), but it still checks that aborted appends vanish
// and that readers see every committed event exactly once.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return newStore(t)
	}, storetest.Options{
		NewStoreWithHook: func(t *testing.T, beforeCommit func(ctx context.Context) error) eventstore.Store {
			s, err := sqlite.OpenWithHook(t.Context(), filepath.Join(t.TempDir(), "events.db"), beforeCommit)
			if err != nil {
				t.Fatalf("OpenWithHook: %v", err)
			}
			return s
		},
	})
}
