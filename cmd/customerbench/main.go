// Command customerbench loads customerd and reports throughput and latency
// percentiles per named scenario:
//
//	append    event store only: single-event appends to distinct streams
//	commands  HTTP writes: creates, billing updates (If-Match), tag changes, orders
//	mixed     HTTP, 70% searches and gets, 30% writes as in commands
//	lag       creates at --rate per second; time from a create's answer until
//	          the customer list shows it
//	rebuild   replay of both read models from a seeded store (events/s)
//	export    GET /v1/customers/export of the loaded partner (bytes/s)
//
// The HTTP scenarios run against the customerd at --url (with --token), or
// against one the tool starts on free loopback ports with a fresh data
// directory: --customerd PATH, else customerd on PATH, else built from this
// module. The store scenarios, and a started customerd, use PostgreSQL when
// CUSTOMERD_DATABASE_URL (or --database-url) is set, each in a schema of its
// own named after --schema and recreated empty, else the embedded SQLite
// store in a temporary directory.
//
// Usage: customerbench [flags] scenario...
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// runEnv is one invocation's settings and shared state.
type runEnv struct {
	concurrency int
	duration    time.Duration
	customers   int
	events      int64
	rate        float64
	warmup      time.Duration // lag: paced creates left out of the figures first
	lagTrace    string        // lag: a CSV of the measured creates, "" for none
	schema      string
	keep        bool
	databaseURL string
	natsURL     string
	dir         string // scratch directory, removed at the end

	client *client // HTTP scenarios; set once a server is known
	pool   *pool
	server *server // nil with --url
	// serverDB is the started customerd's PostgreSQL (its schema on the
	// search path); "" with the embedded store or --url.
	serverDB string

	profileDir string
	idemKeys   bool
}

type scenario struct {
	name string
	http bool
	run  func(ctx context.Context, env *runEnv) (Result, error)
}

func scenarios() []scenario {
	return []scenario{
		{"append", false, scenarioAppend},
		{"commands", true, scenarioCommands},
		{"mixed", true, scenarioMixed},
		{"lag", true, scenarioLag},
		{"rebuild", false, scenarioRebuild},
		{"export", true, scenarioExport},
	}
}

func scenarioNames() string {
	var names []string
	for _, s := range scenarios() {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

// run returns the exit code: 0 when every scenario ran (its errors are in
// the report), 1 when one could not run, 2 for a bad invocation.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	env := &runEnv{}
	fs := flag.NewFlagSet("customerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: customerbench [flags] scenario...\nScenarios: %s\nFlags:\n", scenarioNames())
		fs.PrintDefaults()
	}
	fs.IntVar(&env.concurrency, "concurrency", 8, "concurrent workers")
	fs.DurationVar(&env.duration, "duration", 5*time.Second, "how long each scenario runs")
	jsonOut := fs.Bool("json", false, "one JSON object per scenario per line instead of a table")
	target := fs.String("url", "", "customerd to load (loopback only); default: start one")
	token := fs.String("token", getenv("CUSTOMERCTL_TOKEN"), "bearer token for --url (env CUSTOMERCTL_TOKEN); its user must be an admin-agent")
	binary := fs.String("customerd", "", "customerd binary to start (default: customerd on PATH, else built from source)")
	fs.StringVar(&env.databaseURL, "database-url", getenv("CUSTOMERD_DATABASE_URL"), "PostgreSQL for the store scenarios and a started customerd (env CUSTOMERD_DATABASE_URL); embedded SQLite when empty")
	fs.StringVar(&env.natsURL, "nats-url", getenv("CUSTOMERD_NATS_URL"), "NATS for a started customerd (env CUSTOMERD_NATS_URL); embedded when empty")
	fs.StringVar(&env.schema, "schema", "customerbench", "PostgreSQL schema prefix: <schema>_append, <schema>_rebuild, <schema>_server, recreated empty")
	fs.BoolVar(&env.keep, "keep", false, "keep the PostgreSQL schemas after the run")
	fs.IntVar(&env.customers, "customers", 1000, "customers created before the HTTP scenarios")
	fs.Int64Var(&env.events, "events", 20000, "events seeded for rebuild")
	fs.Float64Var(&env.rate, "rate", 1000, "lag: creates per second")
	fs.DurationVar(&env.warmup, "warmup", 0, "lag: run at --rate for this long first and leave those creates out of the figures (the step from idle to the rate)")
	fs.StringVar(&env.lagTrace, "lag-trace", "", "lag: write FILE, a CSV row per measured create whose lag was seen (when it was answered, its lag, its own latency, when the relay published it), to see when a tail happened")
	fs.BoolVar(&env.idemKeys, "idempotency-keys", true, "send an Idempotency-Key with every POST, as a careful client does")
	fs.StringVar(&env.profileDir, "cpuprofile-dir", "", "build customerd with pprof and write its CPU profile of each HTTP scenario to DIR/customerd-<scenario>.pprof")

	// Scenario names and flags may be mixed: parse up to each name.
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	todo, err := pick(names)
	if err == nil {
		err = env.check(*target, *token)
	}
	if err != nil {
		fmt.Fprintf(stderr, "customerbench: %v\n", err)
		return 2
	}

	env.dir, err = os.MkdirTemp("", "customerbench-")
	if err != nil {
		fmt.Fprintf(stderr, "customerbench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(env.dir)

	if needsHTTP(todo) {
		stopServer, err := env.connect(ctx, *target, *token, *binary)
		if err != nil {
			fmt.Fprintf(stderr, "customerbench: %v\n", err)
			return 1
		}
		defer stopServer()
	}

	rep := newReporter(stdout, *jsonOut)
	code := 0
	for _, s := range todo {
		res, err := env.runProfiled(ctx, s, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "customerbench: %s: %v\n", s.name, err)
			code = 1
			continue
		}
		rep.add(res)
		for _, m := range res.ErrorSamples {
			fmt.Fprintf(stderr, "customerbench: %s: error: %s\n", s.name, m)
		}
		if ctx.Err() != nil {
			break
		}
	}
	rep.flush()
	if ctx.Err() != nil {
		return 1
	}
	return code
}

// runProfiled runs a scenario, recording customerd's CPU profile meanwhile
// when asked to. The customer pool is created first, so the profile (of
// --duration) covers the measured loop only.
func (env *runEnv) runProfiled(ctx context.Context, s scenario, stderr io.Writer) (Result, error) {
	if env.profileDir == "" || !s.http || env.server == nil {
		return s.run(ctx, env)
	}
	if _, err := env.ensurePool(ctx); err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(env.profileDir, 0o750); err != nil {
		return Result{}, fmt.Errorf("creating %s: %w", env.profileDir, err)
	}
	path := filepath.Join(env.profileDir, "customerd-"+s.name+".pprof")
	done := make(chan error, 1)
	go func() { done <- env.server.profile(ctx, env.duration, path) }()
	res, err := s.run(ctx, env)
	if perr := <-done; perr != nil {
		fmt.Fprintf(stderr, "customerbench: %s: %v\n", s.name, perr)
	}
	return res, err
}

func pick(names []string) ([]scenario, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("name at least one scenario (%s)", scenarioNames())
	}
	var out []scenario
	for _, n := range names {
		i := -1
		for j, s := range scenarios() {
			if s.name == n {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q (one of %s)", n, scenarioNames())
		}
		out = append(out, scenarios()[i])
	}
	return out, nil
}

func needsHTTP(ss []scenario) bool {
	for _, s := range ss {
		if s.http {
			return true
		}
	}
	return false
}

func (env *runEnv) check(target, token string) error {
	var problems []string
	if env.concurrency < 1 || env.concurrency > 4096 {
		problems = append(problems, "--concurrency must be 1 to 4096")
	}
	if env.duration <= 0 || env.duration > time.Hour {
		problems = append(problems, "--duration must be more than 0 and at most 1h")
	}
	if env.warmup < 0 || env.warmup > time.Hour {
		problems = append(problems, "--warmup must be between 0 and 1h")
	}
	if env.rate <= 0 || env.rate > 100000 {
		problems = append(problems, "--rate must be more than 0 and at most 100000")
	}
	if env.customers < 1 || env.events < 1 {
		problems = append(problems, "--customers and --events must be at least 1")
	}
	if !schemaName.MatchString(env.schema) {
		problems = append(problems, "--schema must be lower-case letters, digits and _")
	}
	if target != "" {
		if err := checkLoopback(target); err != nil {
			problems = append(problems, err.Error())
		}
		if token == "" {
			problems = append(problems, "--url needs --token (or CUSTOMERCTL_TOKEN)")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// connect points the HTTP scenarios at --url, or starts a customerd.
func (env *runEnv) connect(ctx context.Context, target, token, binary string) (func(), error) {
	if target != "" {
		env.client = newClient(target, token, env.concurrency)
		return func() {}, nil
	}
	o := serverOptions{binary: binary, natsURL: env.natsURL, dir: env.dir, profileDir: env.profileDir}
	schema := env.schema + "_server"
	if env.databaseURL != "" {
		u, err := freshSchema(ctx, env.databaseURL, schema)
		if err != nil {
			return nil, err
		}
		o.databaseURL = u
		env.serverDB = u
	}
	srv, err := startServer(ctx, o)
	if err != nil {
		return nil, err
	}
	env.client = newClient(srv.url, srv.token, env.concurrency)
	env.server = srv
	return func() {
		srv.Stop()
		if env.databaseURL != "" && !env.keep {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = dropSchema(dctx, env.databaseURL, schema)
		}
	}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// reporter prints results: JSON lines as they come, or one table at the end.
type reporter struct {
	w       io.Writer
	json    bool
	results []Result
}

func newReporter(w io.Writer, asJSON bool) *reporter { return &reporter{w: w, json: asJSON} }

func (r *reporter) add(res Result) {
	if !r.json {
		r.results = append(r.results, res)
		return
	}
	line := map[string]any{}
	for k, v := range res.Extra {
		line[k] = v
	}
	if _, ok := line["unit"]; !ok {
		line["unit"] = "ops/s"
	}
	line["scenario"] = res.Scenario
	line["throughput"] = res.Throughput
	line["p50_ms"] = ms(res.P50)
	line["p95_ms"] = ms(res.P95)
	line["p99_ms"] = ms(res.P99)
	line["max_ms"] = ms(res.Max)
	line["errors"] = res.Errors
	line["ops"] = res.Ops
	line["duration_s"] = res.Elapsed.Seconds()
	line["concurrency"] = res.Concurrency
	b, _ := json.Marshal(line)
	fmt.Fprintf(r.w, "%s\n", b)
}

func (r *reporter) flush() {
	if r.json || len(r.results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(r.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tops\tthroughput\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\t")
	for _, res := range r.results {
		unit := "/s"
		if u, ok := res.Extra["unit"].(string); ok {
			unit = " " + u
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f%s\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", res.Scenario, res.Ops, res.Throughput, unit,
			ms(res.P50), ms(res.P95), ms(res.P99), ms(res.Max), res.Errors)
	}
	_ = tw.Flush()
	for _, res := range r.results {
		if len(res.Extra) == 0 {
			continue
		}
		var parts []string
		for _, k := range sortedKeys(res.Extra) {
			parts = append(parts, fmt.Sprintf("%s=%v", k, res.Extra[k]))
		}
		fmt.Fprintf(r.w, "%s: %s\n", res.Scenario, strings.Join(parts, " "))
	}
}
