package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/partnerhub/customers/internal/testenv"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// runJSON runs the tool in-process and returns its JSON lines by scenario.
func runJSON(t *testing.T, ctx context.Context, getenv func(string) string, args ...string) map[string]map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"--json"}, args...), &stdout, &stderr, getenv)
	if code != 0 {
		t.Fatalf("exit code %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	lines := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		name, _ := m["scenario"].(string)
		t.Logf("%s", l)
		lines[name] = m
	}
	return lines
}

// checkLine asserts the keys the JSON contract promises, some throughput
// and no errors.
func checkLine(t *testing.T, lines map[string]map[string]any, scenario string) {
	t.Helper()
	m, ok := lines[scenario]
	if !ok {
		t.Errorf("no line for %s in %v", scenario, lines)
		return
	}
	for _, k := range []string{"scenario", "throughput", "p50_ms", "p95_ms", "p99_ms", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: key %q missing: %v", scenario, k, m)
		}
	}
	if tp, _ := m["throughput"].(float64); tp <= 0 {
		t.Errorf("%s: throughput %v, want > 0", scenario, m["throughput"])
	}
	if e, _ := m["errors"].(float64); e != 0 {
		t.Errorf("%s: %v errors", scenario, m["errors"])
	}
	p50, _ := m["p50_ms"].(float64)
	p99, _ := m["p99_ms"].(float64)
	if p50 <= 0 || p99 < p50 {
		t.Errorf("%s: p50 %v ms, p99 %v ms: want 0 < p50 <= p99", scenario, p50, p99)
	}
}

func buildCustomerd(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "customerd")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../customerd").CombinedOutput(); err != nil {
		t.Fatalf("building customerd: %v\n%s", err, out)
	}
	return bin
}

// Every scenario, briefly, against a customerd binary built from this
// module on the embedded store and NATS, the way an operator runs the tool.
func TestEveryScenarioAgainstAnEmbeddedCustomerd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := buildCustomerd(t, ctx)
	trace := filepath.Join(t.TempDir(), "lag.csv")
	lines := runJSON(t, ctx, env(nil), "--customerd", bin, "--duration", "1s", "--concurrency", "2",
		"--customers", "40", "--events", "400", "--rate", "100", "--warmup", "500ms", "--lag-trace", trace,
		"append", "commands", "mixed", "lag", "rebuild", "export")
	for _, s := range []string{"append", "commands", "mixed", "lag", "rebuild", "export"} {
		checkLine(t, lines, s)
	}
	if n, _ := lines["rebuild"]["events"].(float64); n < 400 {
		t.Errorf("rebuild replayed %v events, want at least the 400 seeded", lines["rebuild"]["events"])
	}
	// One second measured at 100/s after half a second left out.
	if n, _ := lines["lag"]["ops"].(float64); n < 80 || n > 110 {
		t.Errorf("lag measured %v creates, want about 100 (the warm-up's 50 left out)", lines["lag"]["ops"])
	}
	if b, _ := lines["export"]["bytes_per_export"].(float64); b < 40*40 {
		t.Errorf("an export of 40+ customers has %v bytes", lines["export"]["bytes_per_export"])
	}
	checkLagTrace(t, trace, lines["lag"]["ops"])
	if runtime.GOOS == "linux" {
		if b, ok := lines["lag"]["machine_cpu_busy_pct"].(float64); !ok || b <= 0 || b > 100 {
			t.Errorf("lag: machine_cpu_busy_pct = %v, want a share of the machine above 0 and at most 100", lines["lag"]["machine_cpu_busy_pct"])
		}
	}
}

// The machine's busy share counts user, nice, system, irq, softirq and
// steal time, and leaves out idle, iowait and the guest columns (already
// in user and nice).
func TestBusyPercentFromProcStat(t *testing.T) {
	from, err := parseCPUTimes([]byte("cpu  100 0 50 800 40 5 5 0 7 0\ncpu0 50 0 25 400 20 2 3 0 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if from != (cpuTimes{busy: 160, total: 1000}) {
		t.Fatalf("parsed %+v, want busy 160 of 1000", from)
	}
	// 300 ticks later: 150 busy (one of two CPUs), 100 idle, 50 iowait.
	to, err := parseCPUTimes([]byte("cpu  200 0 90 900 90 5 10 5 9 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := busyPercent(from, to); got != 50 {
		t.Errorf("busy share = %v%%, want 50", got)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu  1 2 x 4 5\n", "cpu 1 2\n"} {
		if _, err := parseCPUTimes([]byte(bad)); err == nil {
			t.Errorf("parseCPUTimes(%q) gave no error", bad)
		}
	}
}

// checkLagTrace reads a --lag-trace file: its header, then a row for each
// measured create, answered after the warm-up, with a lag and the
// create's own latency.
func checkLagTrace(t *testing.T, path string, ops any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("lag trace: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("lag trace: %v", err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "answered_ms,lag_ms,command_ms,relay_ms" {
		t.Fatalf("lag trace header: %v", rows)
	}
	if n, _ := ops.(float64); len(rows)-1 != int(n) {
		t.Errorf("lag trace has %d rows, the figures %v creates", len(rows)-1, ops)
	}
	for _, r := range rows[1:] {
		for i, v := range r[:3] {
			if x, err := strconv.ParseFloat(v, 64); err != nil || x < 0 {
				t.Fatalf("lag trace row %q: field %d is not a time", r, i)
			}
		}
	}
}

// Against a running customerd given by --url and --token, twice: the second
// run finds the tag catalog the first one created.
func TestRunsAgainstAGivenURLTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := startServer(ctx, serverOptions{binary: buildCustomerd(t, ctx), dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	for range 2 {
		lines := runJSON(t, ctx, env(nil), "--url", srv.url, "--token", srv.token, "--duration", "1s",
			"--concurrency", "2", "--customers", "20", "--rate", "50", "commands", "lag")
		checkLine(t, lines, "commands")
		checkLine(t, lines, "lag")
	}
	// A token the server does not know: the run fails and says so.
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"--url", srv.url, "--token", "not-a-token", "--duration", "1s", "commands"}, &stdout, &stderr, env(nil))
	if code != 1 || !strings.Contains(stderr.String(), "401") {
		t.Errorf("unknown token: exit %d, stderr %q; want 1 and the 401", code, stderr.String())
	}
}

// The store scenarios on PostgreSQL, in schemas of their own that are gone
// afterwards.
func TestStoreScenariosOnPostgresLeaveNoSchemaBehind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := testenv.UniqueName("cbtest_")
	lines := runJSON(t, ctx, env(map[string]string{"CUSTOMERD_DATABASE_URL": testenv.PostgresURL()}),
		"--schema", prefix, "--duration", "1s", "--concurrency", "2", "--events", "300", "append", "rebuild")
	checkLine(t, lines, "append")
	checkLine(t, lines, "rebuild")
	if lines["append"]["backend"] != "postgres" {
		t.Errorf("append ran on %v, want postgres", lines["append"]["backend"])
	}
	conn, err := pgx.Connect(ctx, testenv.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE $1`, prefix+"%").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d schemas named %s* left behind", left, prefix)
	}
}

func TestBadInvocationsExitTwoAndSayWhy(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "name at least one scenario"},
		{[]string{"nope"}, `unknown scenario "nope"`},
		{[]string{"--url", "http://10.1.2.3:8080", "--token", "x", "commands"}, "only loopback"},
		{[]string{"--url", "http://127.0.0.1:8080", "commands"}, "needs --token"},
		{[]string{"--concurrency", "0", "--rate", "-1", "append"}, "--concurrency must be"},
		{[]string{"--warmup", "-1s", "lag"}, "--warmup must be"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr, env(nil))
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 200; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 100 * time.Millisecond, 95: 190 * time.Millisecond, 99: 198 * time.Millisecond, 100: 200 * time.Millisecond} {
		if got := percentile(s, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %v", got)
	}
	if got := percentile(s[:1], 50); got != time.Millisecond {
		t.Errorf("p50 of one sample = %v", got)
	}
}
