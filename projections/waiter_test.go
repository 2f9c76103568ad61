package projections

import (
	"context"
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
