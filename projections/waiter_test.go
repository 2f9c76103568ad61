package projections

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/partnerhub/customers/domain"
)

func TestWaiterWakesOnCommitAndTimesOut(t *testing.T) {
	w := NewWaiter(time.Hour)
	done := make(chan error, 1)
	go func() { done <- w.Wait(context.Background(), CustomerListName, 5, 5*time.Second) }()
	w.Committed(CustomerListName, 4)
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v before position 5 was committed", err)
	case <-time.After(50 * time.Millisecond):
	}
	w.Committed(CustomerListName, 5)
	if err := <-done; err != nil {
		t.Fatalf("Wait after commit of 5: %v", err)
	}
	err := w.Wait(context.Background(), ActivityLogName, 1, 20*time.Millisecond)
	if domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Fatalf("Wait past its deadline = %v, want an unavailable error", err)
	}
}

func TestFoldFindsAccentedNames(t *testing.T) {
	for in, want := range map[string]string{"Müller GmbH": "muller gmbh", "Straße": "strasse", "CONTOSO Ltd.": "contoso ltd.", "Ærø Øst": "aero ost", "Łódź": "lodz"} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

// A waiter reads the checkpoint at once only when its projector has been
// quiet for the poll interval; while commits come, it waits for them.
func TestWaiterReadsCheckpointOnlyWhenQuiet(t *testing.T) {
	w := NewWaiter(time.Minute) // no tick within the test: only Wait's first read counts
	var loads atomic.Int32
	stored := int64(7) // applied by another process: only a read finds it
	w.load = func(context.Context, string) (int64, error) { loads.Add(1); return stored, nil }

	if err := w.Wait(context.Background(), CustomerListName, 7, time.Second); err != nil {
		t.Fatalf("Wait for a position only the checkpoint holds: %v", err)
	}
	if n := loads.Swap(0); n != 1 {
		t.Fatalf("%d checkpoint reads by a waiter on a quiet projector, want 1", n)
	}
	// What a read found is no sign of this process committing: the next
	// waiter reads again.
	stored = 8
	if err := w.Wait(context.Background(), CustomerListName, 8, time.Second); err != nil {
		t.Fatalf("Wait for a position only the checkpoint holds, again: %v", err)
	}
	if n := loads.Swap(0); n != 1 {
		t.Fatalf("%d checkpoint reads by the next waiter, want 1", n)
	}

	w.Committed(CustomerListName, 8)
	done := make(chan error, 1)
	go func() { done <- w.Wait(context.Background(), CustomerListName, 9, 5*time.Second) }()
	time.Sleep(50 * time.Millisecond)
	w.Committed(CustomerListName, 9)
	if err := <-done; err != nil {
		t.Fatalf("Wait after commit of 9: %v", err)
	}
	if n := loads.Load(); n != 0 {
		t.Fatalf("%d checkpoint reads by a waiter on a committing projector, want 0", n)
	}
}

// A waiter kept past the poll interval by a lagging projector reads no
// checkpoint at its ticks while the projector commits; once the projector
// is quiet, a tick reads it.
func TestWaiterTicksReadOnlyWhenQuiet(t *testing.T) {
	// Long enough that no scheduling stall between two commits 2 ms apart
	// makes the projector look quiet, on a busy two-core machine too.
	const every = 500 * time.Millisecond
	w := NewWaiter(every)
	var loads atomic.Int32
	var stored atomic.Int64
	w.load = func(context.Context, string) (int64, error) { loads.Add(1); return stored.Load(), nil }
	w.Committed(CustomerListName, 1)
	done := make(chan error, 1)
	go func() { done <- w.Wait(context.Background(), CustomerListName, 1000, 10*time.Second) }()
	// Commits 2 ms apart for five poll intervals, none reaching 1000.
	for p, end := int64(2), time.Now().Add(5*every); time.Now().Before(end); p++ {
		time.Sleep(2 * time.Millisecond)
		w.Committed(CustomerListName, min(p, 999))
	}
	if n := loads.Load(); n != 0 {
		t.Fatalf("%d checkpoint reads by a waiter on a committing projector, want 0", n)
	}
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v before position 1000 was applied", err)
	default:
	}
	stored.Store(1000) // applied by another process: only a read finds it
	if err := <-done; err != nil {
		t.Fatalf("Wait for a position only the checkpoint holds: %v", err)
	}
	if loads.Load() == 0 {
		t.Fatal("no checkpoint read once the projector was quiet")
	}
}
