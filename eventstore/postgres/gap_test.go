package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/postgres"
	"github.com/partnerhub/customers/internal/testenv"
)

// TestReadersWaitForAnOpenLowerPosition holds the append that took position
// 1 open while position 2 commits: readers must not pass 1 until it settles,
// whether it then commits or rolls back.
func TestReadersWaitForAnOpenLowerPosition(t *testing.T) {
	for _, outcome := range []string{"commit", "rollback"} {
		t.Run(outcome, func(t *testing.T) {
			ctx := t.Context()
			var (
				mu      sync.Mutex
				hold    = true
				entered = make(chan struct{})
				release = make(chan error)
			)
			st := open(t, testenv.PostgresSchema(t), postgres.Options{BeforeCommit: func(context.Context) error {
				mu.Lock()
				h := hold
				hold = false // only the first append waits
				mu.Unlock()
				if !h {
					return nil
				}
				close(entered)
				return <-release
			}})
			appendOne := func(stream string) error {
				_, err := st.Append(ctx, eventstore.AppendRequest{StreamID: stream, ExpectedVersion: eventstore.NoStream,
					Events: []eventstore.NewEvent{{ID: uuid.New(), Type: "t", Data: []byte("{}")}}})
				return err
			}
			slow := make(chan error, 1)
			go func() { slow <- appendOne("slow") }()
			<-entered // position 1 taken, not committed
			if err := appendOne("fast"); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if evs, err := st.ReadAll(ctx, eventstore.ReadRequest{}); err != nil || len(evs) != 0 {
					t.Fatalf("ReadAll while position 1 is open: %d events, %v; want none", len(evs), err)
				}
				if h, err := st.Head(ctx); err != nil || h != 0 {
					t.Fatalf("Head while position 1 is open: %d, %v; want 0", h, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			want := 2
			if outcome == "rollback" {
				release <- errors.New("rolled back on purpose")
				want = 1
			} else {
				release <- nil
			}
			if err := <-slow; (err == nil) != (outcome == "commit") {
				t.Fatalf("slow append: %v", err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				evs, err := st.ReadAll(ctx, eventstore.ReadRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) == want {
					if evs[len(evs)-1].StreamID != "fast" {
						t.Fatalf("last event is from %q, want fast", evs[len(evs)-1].StreamID)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the %s, ReadAll returns %d events, want %d", outcome, len(evs), want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
