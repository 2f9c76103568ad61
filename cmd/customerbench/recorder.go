package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Latencies are kept as every sample, sorted once at the end, rather than in
// an HDR histogram: percentiles are then exact (nearest rank), a sample costs
// 8 bytes (a 10 s run at 10,000 ops/s keeps 800 KB), each worker appends to
// its own slice so recording takes no lock, and the tool needs no module
// beyond the repository's. An HDR histogram pays off for hour-long runs at
// high rates, which a 2-core loopback benchmark does not do.
type recorder struct {
	samples []time.Duration
	ops     int64
	errors  int64
	errs    *errorLog
}

func (r *recorder) ok(d time.Duration) {
	r.samples = append(r.samples, d)
	r.ops++
}

func (r *recorder) fail(err error) {
	r.errors++
	r.errs.add(err)
}

// errorLog keeps the first few distinct error messages of a scenario so the
// report can say what failed, not only how often.
type errorLog struct {
	mu   sync.Mutex
	seen map[string]int
	keep []string
}

const keptErrors = 5

func newErrorLog() *errorLog { return &errorLog{seen: map[string]int{}} }

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := err.Error()
	if _, ok := l.seen[msg]; !ok && len(l.keep) < keptErrors {
		l.keep = append(l.keep, msg)
	}
	l.seen[msg]++
}

func (l *errorLog) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.keep))
	for i, m := range l.keep {
		out[i] = fmt.Sprintf("%s (x%d)", m, l.seen[m])
	}
	return out
}

// Result is one scenario's figures.
type Result struct {
	Scenario    string
	Ops         int64
	Errors      int64
	Elapsed     time.Duration
	Concurrency int
	// Throughput is Ops per second unless the scenario says otherwise
	// (rebuild: events per second).
	Throughput    float64
	P50, P95, P99 time.Duration
	Max           time.Duration
	ErrorSamples  []string
	Extra         map[string]any // scenario-specific figures, added to the JSON line
}

// summarize merges the workers' recorders into a Result.
func summarize(name string, conc int, elapsed time.Duration, recs []*recorder) Result {
	res := Result{Scenario: name, Elapsed: elapsed, Concurrency: conc, Extra: map[string]any{}}
	var all []time.Duration
	for _, r := range recs {
		all = append(all, r.samples...)
		res.Ops += r.ops
		res.Errors += r.errors
	}
	if len(recs) > 0 && recs[0].errs != nil {
		res.ErrorSamples = recs[0].errs.messages()
	}
	slices.Sort(all)
	res.P50, res.P95, res.P99 = percentile(all, 50), percentile(all, 95), percentile(all, 99)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	if elapsed > 0 {
		res.Throughput = float64(res.Ops) / elapsed.Seconds()
	}
	return res
}

// percentile is the nearest-rank percentile of sorted samples (0 if none).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

// closedLoop runs op from conc workers back to back until d has passed (or
// ctx ends): a worker starts no new operation after the deadline, and the
// operations in flight then finish normally, so the loop stops by itself
// without failing requests. Throughput counts successful operations over
// the time until the last worker is done.
func closedLoop(ctx context.Context, name string, conc int, d time.Duration, op func(ctx context.Context, worker int) error) Result {
	errs := newErrorLog()
	recs := make([]*recorder, conc)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range conc {
		rec := &recorder{errs: errs, samples: make([]time.Duration, 0, 1024)}
		recs[w] = rec
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				if err := op(ctx, w); err != nil {
					if ctx.Err() != nil {
						return // interrupted: not the server's error
					}
					rec.fail(err)
					continue
				}
				rec.ok(time.Since(t0))
			}
		})
	}
	wg.Wait()
	return summarize(name, conc, time.Since(start), recs)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
