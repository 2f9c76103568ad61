package pgread

import (
	"testing"
	"time"
)

// TestOrderHints: a partner marked as not stored in name order stays so for
// orderHintFor, and others are not affected.
func TestOrderHints(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h := orderHints{now: func() time.Time { return now }}
	if h.unordered("p1") {
		t.Fatal("a partner never seen is unordered")
	}
	h.mark("p1")
	if !h.unordered("p1") || h.unordered("p2") {
		t.Fatalf("after marking p1: p1 %v, p2 %v; want true, false", h.unordered("p1"), h.unordered("p2"))
	}
	now = now.Add(orderHintFor - time.Second)
	if !h.unordered("p1") {
		t.Fatal("the hint lapsed early")
	}
	now = now.Add(time.Second)
	if h.unordered("p1") {
		t.Fatal("the hint outlived orderHintFor")
	}
}
