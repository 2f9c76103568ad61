package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// poolCustomer is a customer created before the measured run. Worker w
// owns the customers whose index is w modulo the concurrency, so the ETag
// it tracks from its own answers is always current: no 412s from the
// tool's own races.
type poolCustomer struct {
	id   string
	etag string
	tag  string // the tag the tool assigned last, "" if none
}

// pool is the pre-created customers of one run, shared by the scenarios.
type pool struct {
	customers []*poolCustomer
	seq       atomic.Int64
	run       string
	idemKeys  bool // send an Idempotency-Key with every POST
}

// idem returns the Idempotency-Key header pair for a POST, or none.
func (p *pool) idem() []string {
	if !p.idemKeys {
		return nil
	}
	return []string{"Idempotency-Key", uuid.NewString()}
}

func (p *pool) owned(w, conc int) []*poolCustomer {
	var out []*poolCustomer
	for i := w; i < len(p.customers); i += conc {
		out = append(out, p.customers[i])
	}
	return out
}

// createAnswer is the part of a command answer the tool reads.
type createAnswer struct {
	ID            string `json:"id"`
	PrimaryDomain string `json:"primaryDomain"`
	Position      int64  `json:"position"`
}

func (p *pool) createCustomer(ctx context.Context, c *client) (createAnswer, answer, error) {
	i := p.seq.Add(1)
	body := customerBody{CompanyName: companyName(i), PrimaryDomain: fmt.Sprintf("c%d-%s.example", i, p.run), Relationship: relationship(i)}
	a, err := c.do(ctx, http.MethodPost, "/v1/customers", body, p.idem()...)
	if err != nil {
		return createAnswer{}, a, err
	}
	var ca createAnswer
	if err := decode(a, &ca); err != nil {
		return ca, a, err
	}
	if ca.ID == "" || ca.PrimaryDomain == "" || ca.Position < 1 {
		return ca, a, fmt.Errorf("create answered without id or position: %.200s", a.body)
	}
	return ca, a, nil
}

// ensurePool creates the run's customers once (n of them, at least four per
// worker) and the tag catalog.
func (env *runEnv) ensurePool(ctx context.Context) (*pool, error) {
	if env.pool != nil {
		return env.pool, nil
	}
	c := env.client
	for _, t := range tagNames {
		_, err := c.do(ctx, http.MethodPost, "/v1/tags", map[string]string{"name": t})
		var se *statusError
		if err != nil && !(errors.As(err, &se) && se.status == http.StatusConflict) {
			return nil, fmt.Errorf("creating tag %s: %w", t, err)
		}
	}
	n := max(env.customers, env.concurrency*4)
	p := &pool{customers: make([]*poolCustomer, n), run: uuid.NewString()[:8], idemKeys: env.idemKeys}
	var next atomic.Int64
	var maxPos atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(env.concurrency, 16) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				ca, a, err := p.createCustomer(ctx, c)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("creating the customer pool: %w", err) })
					return
				}
				p.customers[i] = &poolCustomer{id: ca.ID, etag: a.header.Get("ETag")}
				for {
					m := maxPos.Load()
					if ca.Position <= m || maxPos.CompareAndSwap(m, ca.Position) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if err := env.waitProjected(ctx, maxPos.Load()); err != nil {
		return nil, err
	}
	if err := env.analyze(ctx); err != nil {
		return nil, err
	}
	env.pool = p
	return p, nil
}

// waitProjected waits until both read models have applied position: the
// scenarios read the customer list, and a projector backlog (the activity
// log's too) would otherwise load the measured run. A large pool may take
// the projectors longer than one minPosition wait (503).
func (env *runEnv) waitProjected(ctx context.Context, position int64) error {
	deadline := time.Now().Add(2 * time.Minute)
	for _, path := range []string{"/v1/customers", "/v1/activity"} {
		for {
			_, err := env.client.do(ctx, http.MethodGet, fmt.Sprintf("%s?limit=1&minPosition=%d", path, position), nil)
			if err == nil {
				break
			}
			var se *statusError
			if !errors.As(err, &se) || se.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				return fmt.Errorf("waiting for the read models to hold the pool: %w", err)
			}
			select { // a 503 may also come at once (the server not ready)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// analyze has PostgreSQL gather the statistics of the started customerd's
// tables. A database in service has them from autovacuum within a minute
// of growing; a schema made seconds ago has none, and the planner, taking
// the tables for empty, sorted the whole customer list for a look-up by
// domain (measured on 7,000 customers: 6.3 ms, and 1.2 ms once analyzed).
// Without this the scenarios would measure a database's first minute, not
// the service.
func (env *runEnv) analyze(ctx context.Context) error {
	if env.serverDB == "" {
		return nil
	}
	conn, err := connect(ctx, env.serverDB)
	if err != nil {
		return fmt.Errorf("connecting to the server's database: %w", err)
	}
	defer conn.Close(ctx)
	var tables string
	err = conn.QueryRow(ctx, `SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables)
	if err != nil {
		return fmt.Errorf("listing the server's tables: %w", err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE "+tables); err != nil {
		return fmt.Errorf("analyzing the server's tables: %w", err)
	}
	return nil
}

// worker is one goroutine's state in the HTTP scenarios.
type worker struct {
	rng   *rand.Rand
	owned []*poolCustomer
	all   []*poolCustomer
}

func newWorkers(p *pool, conc int) []*worker {
	ws := make([]*worker, conc)
	seed := uint64(time.Now().UnixNano())
	for w := range ws {
		ws[w] = &worker{rng: rand.New(rand.NewPCG(seed, uint64(w))), owned: p.owned(w, conc), all: p.customers}
	}
	return ws
}

// command runs one write: 20% creates, 30% billing-profile updates with
// If-Match (the ETag tracked from this worker's earlier answers), 25% tag
// changes, 25% orders. POSTs carry an Idempotency-Key, as a careful client's
// do, unless --idempotency-keys=false.
func (wk *worker) command(ctx context.Context, c *client, p *pool) error {
	r := wk.rng.IntN(100)
	if r < 20 || len(wk.owned) == 0 {
		_, _, err := p.createCustomer(ctx, c)
		return err
	}
	cu := wk.owned[wk.rng.IntN(len(wk.owned))]
	var a answer
	var err error
	switch {
	case r < 50:
		i := p.seq.Add(1)
		a, err = c.do(ctx, http.MethodPut, "/v1/customers/"+cu.id+"/billing-profile", billingProfile(companyName(i), i), "If-Match", cu.etag)
	case r < 75:
		change := map[string][]string{}
		if cu.tag == "" {
			change["add"] = []string{tagNames[wk.rng.IntN(len(tagNames))]}
		} else {
			change["remove"] = []string{cu.tag}
		}
		a, err = c.do(ctx, http.MethodPost, "/v1/customers/"+cu.id+"/tags", change, p.idem()...)
		if err == nil {
			if add := change["add"]; add != nil {
				cu.tag = add[0]
			} else {
				cu.tag = ""
			}
		}
	default:
		a, err = c.do(ctx, http.MethodPost, "/v1/customers/"+cu.id+"/orders", orderInput(p.seq.Add(1)), p.idem()...)
	}
	if err != nil {
		return err
	}
	if et := a.header.Get("ETag"); et != "" {
		cu.etag = et
	}
	return nil
}

// read runs one read: half searches (a word of the generated names, the
// first page of 20), half GETs of a customer of the pool.
func (wk *worker) read(ctx context.Context, c *client) error {
	if wk.rng.IntN(2) == 0 {
		q := url.Values{"q": {searchTerms[wk.rng.IntN(len(searchTerms))]}, "limit": {"20"}}
		_, err := c.do(ctx, http.MethodGet, "/v1/customers?"+q.Encode(), nil)
		return err
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/customers/"+wk.all[wk.rng.IntN(len(wk.all))].id, nil)
	return err
}

func scenarioCommands(ctx context.Context, env *runEnv) (Result, error) {
	p, err := env.ensurePool(ctx)
	if err != nil {
		return Result{}, err
	}
	ws := newWorkers(p, env.concurrency)
	return closedLoop(ctx, "commands", env.concurrency, env.duration, func(ctx context.Context, w int) error {
		return ws[w].command(ctx, env.client, p)
	}), nil
}

func scenarioMixed(ctx context.Context, env *runEnv) (Result, error) {
	p, err := env.ensurePool(ctx)
	if err != nil {
		return Result{}, err
	}
	ws := newWorkers(p, env.concurrency)
	return closedLoop(ctx, "mixed", env.concurrency, env.duration, func(ctx context.Context, w int) error {
		if ws[w].rng.IntN(100) < 70 {
			return ws[w].read(ctx, env.client)
		}
		return ws[w].command(ctx, env.client, p)
	}), nil
}

// scenarioLag issues creates at env.rate per second (open loop: the next
// create does not wait for the previous one) and measures, for each, the
// time from the create's answer until the customer list has applied it:
// GET /v1/customers?limit=1&minPosition=<the create's position>, which the
// server answers as soon as the list read model's checkpoint reaches that
// position (the SPEC's read-your-writes). Every lagCheckEvery-th create is
// then also looked up by its (unique) domain, untimed, and a missing row
// counts as an error, so the figure cannot pass for a list that lies. The
// create's own latency is reported as command_p99_ms.
func scenarioLag(ctx context.Context, env *runEnv) (Result, error) {
	p, err := env.ensurePool(ctx)
	if err != nil {
		return Result{}, err
	}
	c := env.client
	published, stopWatch, err := watchCreates(ctx, env.server)
	if err != nil {
		return Result{}, err
	}
	defer stopWatch()
	relayRec := &recorder{}
	// The trace file is created first, so that a bad path fails before the
	// run; its rows are kept in memory and written after it.
	var traceFile *os.File
	var trace []lagRow
	if env.lagTrace != "" {
		if traceFile, err = os.Create(env.lagTrace); err != nil {
			return Result{}, fmt.Errorf("creating the lag trace: %w", err)
		}
	}
	interval := time.Duration(float64(time.Second) / env.rate)
	// Enough in flight for the rate at a lag of a second; beyond that the
	// server is not keeping up and starting more would only add queueing.
	sem := make(chan struct{}, max(int(env.rate), env.concurrency))
	lagRec := &recorder{errs: newErrorLog()}
	cmdRec := &recorder{errs: lagRec.errs}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var late atomic.Int64
	start := time.Now()
	// Creates due before measureFrom (--warmup) run like the others, and
	// only their errors count.
	measureFrom := start.Add(env.warmup)
	deadline := measureFrom.Add(env.duration)
	// The machine's CPU over the measured creates: at 100% busy, the lag
	// is queueing for a core, whatever the code.
	var cpuFrom cpuTimes
	var cpuErr error
	cpuRead := false
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(deadline) || ctx.Err() != nil {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		measured := !due.Before(measureFrom)
		if measured && !cpuRead {
			cpuFrom, cpuErr = readCPUTimes()
			cpuRead = true
		}
		select {
		case sem <- struct{}{}:
		default:
			if measured {
				late.Add(1) // all slots busy: this create starts late
			}
			sem <- struct{}{}
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			ca, _, err := p.createCustomer(ctx, c)
			answered := time.Now()
			if err != nil {
				mu.Lock()
				cmdRec.fail(err)
				mu.Unlock()
				return
			}
			_, err = c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/customers?limit=1&minPosition=%d", ca.Position), nil)
			seen := time.Now()
			if err == nil && i%lagCheckEvery == 0 {
				err = checkListed(ctx, c, ca.PrimaryDomain, ca.ID, ca.Position)
			}
			mu.Lock()
			defer mu.Unlock()
			if !measured { // the warm-up's errors count, its times do not
				if err != nil {
					lagRec.fail(err)
				}
				return
			}
			cmdRec.ok(answered.Sub(t0))
			relayed := time.Duration(-1)
			if at, ok := published.Load(ca.ID); ok {
				relayed = max(at.(time.Time).Sub(answered), 0)
				relayRec.ok(relayed)
			}
			if err != nil {
				lagRec.fail(err)
				return
			}
			lagRec.ok(seen.Sub(answered))
			if traceFile != nil {
				trace = append(trace, lagRow{answered.Sub(measureFrom), seen.Sub(answered), answered.Sub(t0), relayed})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)
	cpuTo, err := readCPUTimes()
	cpuRead = cpuRead && cpuErr == nil && err == nil
	if traceFile != nil {
		if err := writeLagTrace(traceFile, trace); err != nil {
			return Result{}, err
		}
	}
	res := summarize("lag", env.concurrency, elapsed, []*recorder{lagRec})
	res.Errors += cmdRec.errors
	res.ErrorSamples = lagRec.errs.messages()
	cmd := summarize("lag-commands", 0, elapsed, []*recorder{cmdRec})
	res.Extra["target_rate"] = env.rate
	res.Extra["warmup_s"] = env.warmup.Seconds()
	res.Extra["command_p50_ms"] = ms(cmd.P50)
	res.Extra["command_p99_ms"] = ms(cmd.P99)
	res.Extra["late_starts"] = late.Load()
	if cpuRead {
		res.Extra["machine_cpu_busy_pct"] = math.Round(busyPercent(cpuFrom, cpuTo)*10) / 10
	}
	if relayRec.ops > 0 {
		rl := summarize("lag-relay", 0, elapsed, []*recorder{relayRec})
		res.Extra["relay_p50_ms"] = ms(rl.P50)
		res.Extra["relay_p99_ms"] = ms(rl.P99)
	}
	return res, nil
}

// lagRow is one row of the lag scenario's --lag-trace file: a create
// whose lag was seen, with when it was answered counted from the end of
// the warm-up, so that a tail can be placed in time. relayed < 0: not
// seen on NATS.
type lagRow struct{ answered, lag, command, relayed time.Duration }

// writeLagTrace writes rows to f as CSV, in milliseconds, in the order the
// creates finished, and closes f.
func writeLagTrace(f *os.File, rows []lagRow) error {
	w := csv.NewWriter(f)
	w.Write([]string{"answered_ms", "lag_ms", "command_ms", "relay_ms"})
	msField := func(d time.Duration) string { return strconv.FormatFloat(ms(d), 'f', 3, 64) }
	for _, r := range rows {
		relay := ""
		if r.relayed >= 0 {
			relay = msField(r.relayed)
		}
		w.Write([]string{msField(r.answered), msField(r.lag), msField(r.command), relay})
	}
	w.Flush()
	err := w.Error()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the lag trace: %w", err)
	}
	return nil
}

// lagCheckEvery spaces the lag scenario's look-ups: a search costs the
// server several creates' worth, and would otherwise be most of the load.
const lagCheckEvery = 50

// checkListed looks a created customer up in the list by its domain.
func checkListed(ctx context.Context, c *client, domain, id string, pos int64) error {
	q := url.Values{"q": {domain}, "searchBy": {"domain"}}
	a, err := c.do(ctx, http.MethodGet, "/v1/customers?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("looking customer %s up: %w", id, err)
	}
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := decode(a, &page); err != nil {
		return err
	}
	for _, it := range page.Items {
		if it.ID == id {
			return nil
		}
	}
	return fmt.Errorf("list at minPosition %d does not show customer %s", pos, id)
}

// watchCreates subscribes to the customer.created events a started
// customerd publishes and records when each customer's arrived, so the lag
// splits into the relay's leg (store to NATS) and the projector's (NATS to
// the list). Nothing is watched against --url.
func watchCreates(ctx context.Context, srv *server) (*sync.Map, func(), error) {
	seen := &sync.Map{}
	if srv == nil {
		return seen, func() {}, nil
	}
	nc, err := nats.Connect(srv.eventsURL, nats.Name("customerbench"))
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the events' NATS: %w", err)
	}
	_, err = nc.Subscribe(srv.subjectRoot+".*.customer.created", func(m *nats.Msg) {
		at := time.Now()
		var env struct {
			Subject string `json:"subject"`
		}
		if json.Unmarshal(m.Data, &env) == nil && env.Subject != "" {
			seen.Store(env.Subject, at)
		}
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("subscribing to the events: %w", err)
	}
	return seen, nc.Close, nil
}

// countingWriter counts what the export sends.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(b []byte) (int, error) { w.n += int64(len(b)); return len(b), nil }

// scenarioExport downloads Customers.csv of the loaded partner (the pool and
// whatever earlier scenarios created) back to back; bytes_per_s is the
// download rate over all workers.
func scenarioExport(ctx context.Context, env *runEnv) (Result, error) {
	// The pool is projected by then (ensurePool waits for it).
	if _, err := env.ensurePool(ctx); err != nil {
		return Result{}, err
	}
	var total, last atomic.Int64
	res := closedLoop(ctx, "export", env.concurrency, env.duration, func(ctx context.Context, w int) error {
		var cw countingWriter
		_, err := env.client.stream(ctx, "/v1/customers/export", &cw)
		if err != nil {
			return err
		}
		total.Add(cw.n)
		last.Store(cw.n)
		return nil
	})
	res.Extra["bytes_per_export"] = last.Load()
	if res.Elapsed > 0 {
		res.Extra["bytes_per_s"] = float64(total.Load()) / res.Elapsed.Seconds()
	}
	return res, nil
}

var _ io.Writer = (*countingWriter)(nil)
