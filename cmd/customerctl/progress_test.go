package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestEventProgressOnATerminalDrawsOneLine(t *testing.T) {
	var b bytes.Buffer
	p := newEventProgress(&b, true, "customer_list")
	p.start = time.Now().Add(-2 * time.Second)
	p.draw(500, 1000, time.Now())
	got := b.String()
	for _, want := range []string{"\rcustomer_list [", "50%", "500/1000", "events/s", "left"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "\n") {
		t.Errorf("a terminal bar redraws in place, got a newline: %q", got)
	}
	// 500 events in 2 s is 250/s: 500 left take about 2 s.
	if !strings.Contains(got, "250 events/s") || !strings.Contains(got, "2s left") {
		t.Errorf("rate or time left wrong: %q", got)
	}
}

func TestPlainProgressIsLines(t *testing.T) {
	var b bytes.Buffer
	p := newEventProgress(&b, false, "activity_log")
	p.update(10, 20) // first update always prints
	p.update(11, 20) // within the interval: nothing
	p.update(20, 20) // done: prints
	p.finish(20)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 || strings.Contains(b.String(), "\r") || !strings.HasPrefix(lines[2], "activity_log: 20 events in ") {
		t.Errorf("plain progress:\n%q", b.String())
	}
}

func TestDoubleDashEndsFlags(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{"position": 1}) })
	_, stderr, code := runCLI(t, apiEnv(f), "tags", "delete", "--json", "--", "-odd-name")
	if code != 0 {
		t.Fatalf("exit %d stderr %q", code, stderr)
	}
	if got := f.requests()[0].RawPath; got != "/v1/tags/-odd-name" {
		t.Errorf("path %q", got)
	}
}
