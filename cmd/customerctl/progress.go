package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// byteProgress redraws one line with the bytes received so far; it is used
// only when the writer is a terminal.
type byteProgress struct {
	w     io.Writer
	total int64 // -1 when unknown
	n     int64
	start time.Time
	last  time.Time
}

func newByteProgress(w io.Writer, total int64) *byteProgress {
	now := time.Now()
	return &byteProgress{w: w, total: total, start: now}
}

func (p *byteProgress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
	return len(b), nil
}

func (p *byteProgress) draw() {
	rate := float64(p.n) / max(time.Since(p.start).Seconds(), 0.001)
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s / %s  %s/s ", humanBytes(p.n), humanBytes(p.total), humanBytes(int64(rate)))
	} else {
		fmt.Fprintf(p.w, "\r%s  %s/s ", humanBytes(p.n), humanBytes(int64(rate)))
	}
}

func (p *byteProgress) done() {
	p.draw()
	fmt.Fprintln(p.w)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// eventProgress reports a replay's progress: a bar with events/s and time
// left on a terminal, a plain line every few seconds otherwise (logs, CI).
type eventProgress struct {
	w        io.Writer
	tty      bool
	label    string
	start    time.Time
	last     time.Time
	interval time.Duration
}

func newEventProgress(w io.Writer, tty bool, label string) *eventProgress {
	iv := 5 * time.Second
	if tty {
		iv = 100 * time.Millisecond
	}
	return &eventProgress{w: w, tty: tty, label: label, start: time.Now(), interval: iv}
}

// update is called with events done so far and the total to do.
func (p *eventProgress) update(done, total int64) {
	now := time.Now()
	if now.Sub(p.last) < p.interval && done < total {
		return
	}
	p.last = now
	p.draw(done, total, now)
}

func (p *eventProgress) draw(done, total int64, now time.Time) {
	elapsed := now.Sub(p.start)
	rate := float64(done) / max(elapsed.Seconds(), 0.001)
	left := "?"
	if rate > 0 && total >= done {
		left = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %d/%d events (%.0f%%), %.0f events/s, %s left\n", p.label, done, total, pct, rate, left)
		return
	}
	const width = 30
	filled := int(pct / 100 * width)
	filled = min(max(filled, 0), width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	fmt.Fprintf(p.w, "\r%s [%s] %3.0f%% %d/%d  %.0f events/s  %s left ", p.label, bar, pct, done, total, rate, left)
}

// finish prints the final state and a summary line.
func (p *eventProgress) finish(done int64) {
	now := time.Now()
	if p.tty {
		p.draw(done, done, now)
		fmt.Fprintln(p.w)
	}
	el := now.Sub(p.start)
	fmt.Fprintf(p.w, "%s: %d events in %s (%.0f events/s)\n", p.label, done, el.Round(time.Millisecond), float64(done)/max(el.Seconds(), 0.001))
}
