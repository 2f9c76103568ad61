package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/partnerhub/customers/eventstore"
)

// fakeLog is an in-memory log whose reads can be made to fail.
type fakeLog struct {
	mu       sync.Mutex
	events   []eventstore.Event
	failNext int   // fail this many reads
	failWith error // with this error
	reads    int
}

func (l *fakeLog) add(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		l.events = append(l.events, eventstore.Event{Position: int64(len(l.events) + 1)})
	}
}

func (l *fakeLog) read(ctx context.Context, after int64, limit int) ([]eventstore.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	if l.failNext > 0 {
		l.failNext--
		return nil, l.failWith
	}
	var out []eventstore.Event
	for _, e := range l.events {
		if e.Position > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// collector records what handle saw and signals when it has seen n events.
type collector struct {
	mu      sync.Mutex
	seen    []int64
	batches int
	want    int
	done    chan struct{}
}

func newCollector(want int) *collector {
	return &collector{want: want, done: make(chan struct{})}
}

func (c *collector) handle(ctx context.Context, batch []eventstore.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	for _, e := range batch {
		c.seen = append(c.seen, e.Position)
	}
	if len(c.seen) == c.want {
		close(c.done)
	}
	return nil
}

func (c *collector) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("saw %d of %d events", len(c.seen), c.want)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.seen {
		if p != int64(i+1) {
			t.Fatalf("event %d has position %d; want every position once, in order", i, p)
		}
	}
}

func runFollow(ctx context.Context, read eventstore.ReadFunc, wake <-chan struct{}, opts eventstore.FollowOptions, c *collector) chan error {
	errc := make(chan error, 1)
	go func() { errc <- eventstore.Follow(ctx, read, wake, 0, opts, c.handle) }()
	return errc
}

func TestFollowCatchesUpInBatchesThenFollowsWakeUps(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := &fakeLog{}
	log.add(25)
	wake := make(chan struct{}, 1)
	c := newCollector(30)
	// A poll interval of an hour: only the wake-up can deliver the last 5.
	errc := runFollow(ctx, log.read, wake, eventstore.FollowOptions{BatchSize: 10, PollInterval: time.Hour}, c)
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.seen) == 25 })
	if c.batches != 3 {
		t.Errorf("caught up in %d batches, want 3 (10+10+5)", c.batches)
	}
	log.add(5)
	wake <- struct{}{}
	c.wait(t)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v after cancel, want context.Canceled", err)
	}
}

func TestFollowPollsWithoutWakeChannel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := &fakeLog{}
	c := newCollector(3)
	errc := runFollow(ctx, log.read, nil, eventstore.FollowOptions{PollInterval: 10 * time.Millisecond}, c)
	log.add(3)
	c.wait(t)
	cancel()
	<-errc
}

func TestFollowRetriesFailingReads(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := &fakeLog{failNext: 3, failWith: errors.New("connection reset")}
	log.add(4)
	var reported atomic.Int32
	c := newCollector(4)
	errc := runFollow(ctx, log.read, nil, eventstore.FollowOptions{
		MinBackoff:  time.Millisecond,
		OnReadError: func(error) { reported.Add(1) },
	}, c)
	c.wait(t)
	if n := reported.Load(); n != 3 {
		t.Errorf("OnReadError saw %d errors, want 3", n)
	}
	cancel()
	<-errc
}

func TestFollowStopsOnClosedStore(t *testing.T) {
	log := &fakeLog{failNext: 1, failWith: eventstore.ErrClosed}
	err := eventstore.Follow(t.Context(), log.read, nil, 0, eventstore.FollowOptions{}, newCollector(1).handle)
	if !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("Follow returned %v, want ErrClosed", err)
	}
}

func TestFollowReturnsHandleError(t *testing.T) {
	log := &fakeLog{}
	log.add(2)
	boom := errors.New("boom")
	err := eventstore.Follow(t.Context(), log.read, nil, 0, eventstore.FollowOptions{},
		func(context.Context, []eventstore.Event) error { return boom })
	if err != boom {
		t.Fatalf("Follow returned %v, want handle's error unchanged", err)
	}
}

func TestFollowRereadsQuicklyWhileStalled(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	log := &fakeLog{}
	err := eventstore.Follow(ctx, log.read, nil, 0, eventstore.FollowOptions{
		PollInterval: time.Hour,
		Stalled:      func() bool { return true },
		StalledPoll:  time.Millisecond,
	}, newCollector(1).handle)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Follow returned %v, want DeadlineExceeded", err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.reads < 10 {
		t.Fatalf("read %d times in 200ms while stalled; want a quick re-read loop", log.reads)
	}
}

func TestFollowRejectsOutOfOrderReads(t *testing.T) {
	read := func(ctx context.Context, after int64, limit int) ([]eventstore.Event, error) {
		return []eventstore.Event{{Position: 2}, {Position: 2}}, nil
	}
	err := eventstore.Follow(t.Context(), read, nil, 0, eventstore.FollowOptions{},
		func(context.Context, []eventstore.Event) error { return nil })
	if err == nil {
		t.Fatal("Follow accepted a batch with a repeated position")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
