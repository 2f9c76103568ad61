package projections_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/partnerhub/customers/projections"
)

func TestReadLogPagesUpToTheGivenEnd(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), sqlite.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 10 {
		if _, err := s.Append(ctx, eventstore.AppendRequest{StreamID: "s", ExpectedVersion: int64(i),
			Events: []eventstore.NewEvent{{ID: uuid.New(), Type: "t", Data: []byte(`{}`), Metadata: eventstore.Metadata{PartnerID: "p"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(after, upTo int64, size int) (pages [][]int64) {
		t.Helper()
		err := projections.ReadLog(ctx, s, after, upTo, size, func(evs []eventstore.Event) error {
			var ps []int64
			for _, e := range evs {
				ps = append(ps, e.Position)
			}
			pages = append(pages, ps)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return pages
	}
	// Events past upTo (appended after the caller read its head) stay out.
	if got := read(0, 7, 3); !slices.EqualFunc(got, [][]int64{{1, 2, 3}, {4, 5, 6}, {7}}, slices.Equal) {
		t.Errorf("pages after 0 up to 7 by 3: %v", got)
	}
	if got := read(8, 100, 5); !slices.EqualFunc(got, [][]int64{{9, 10}}, slices.Equal) {
		t.Errorf("pages after 8 to the end: %v", got)
	}
	stop := errors.New("stop")
	calls := 0
	err = projections.ReadLog(ctx, s, 0, 10, 2, func([]eventstore.Event) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("a page's error: got %v after %d calls, want it at once", err, calls)
	}
}
