package projections

import (
	"testing"

	"github.com/partnerhub/customers/eventstore"
)

func positions(ps ...int64) []eventstore.Event {
	evs := make([]eventstore.Event, len(ps))
	for i, p := range ps {
		evs[i] = eventstore.Event{Position: p}
	}
	return evs
}

// A batch with gaps needs completing through the event after the last;
// once a read of the store covered the gap, the same batch needs nothing
// (the gap is a hole in the log), unless the checkpoint went back below
// where that read started.
func TestMissingThroughAndCompleted(t *testing.T) {
	batch := positions(2, 4, 5)
	for _, c := range []struct {
		name  string
		cp    int64
		read  Completed
		reach int64
		want  int64
	}{
		{name: "no gap", cp: 3, read: Completed{}, want: 0},
		{name: "gap inside", cp: 1, read: Completed{}, want: 4},
		{name: "gaps at the start and inside: through the last", cp: 0, read: Completed{}, want: 4},
		{name: "read covered it", cp: 1, read: Completed{After: 1, Through: 4}, want: 0},
		{name: "checkpoint went back below the read", cp: 0, read: Completed{After: 1, Through: 4}, want: 4},
		{name: "reach past the batch", cp: 3, read: Completed{}, reach: 7, want: 7},
	} {
		if got := MissingThrough(c.read.From(c.cp), batch, c.reach); got != c.want {
			t.Errorf("%s: MissingThrough = %d, want %d", c.name, got, c.want)
		}
	}
}
