package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultPlan sizes the fault tests. The default is short, one fault of each
// kind under a few seconds of load; CUSTOMERS_LONG_FAULTS=1 repeats each
// fault several times under longer load.
type faultPlan struct {
	rounds      int           // faults of each kind (the database cut: twice that)
	workers     int           // concurrent load clients
	warm, after time.Duration // load before each fault, and after the last
	natsDown    time.Duration // how long NATS stays stopped
}

func planFromEnv() faultPlan {
	if os.Getenv("CUSTOMERS_LONG_FAULTS") == "1" {
		return faultPlan{rounds: 5, workers: 6, warm: 4 * time.Second, after: 5 * time.Second, natsDown: 5 * time.Second}
	}
	return faultPlan{rounds: 1, workers: 4, warm: 1500 * time.Millisecond, after: 1500 * time.Millisecond, natsDown: 2 * time.Second}
}

// TestFaults drives the real binary on PostgreSQL and a NATS server of the
// test's own through crashes and outages under load; one build serves all.
func TestFaults(t *testing.T) {
	bin := buildBinary(t)
	plan := planFromEnv()
	t.Run("SIGKILL under load", func(t *testing.T) { testKillUnderLoad(t, bin, plan) })
	t.Run("NATS restarted under load", func(t *testing.T) { testNATSRestartUnderLoad(t, bin, plan) })
	// The client resends a POST answered 5xx with its Idempotency-Key: a
	// command whose answer was lost to the cut must still take effect once.
	t.Run("database connections cut under load, 5xx retried with their Idempotency-Key", func(t *testing.T) {
		testDatabaseCutUnderLoad(t, bin, plan, true)
	})
	t.Run("64 concurrent If-Match billing updates", func(t *testing.T) { testConcurrentIfMatch(t, bin) })
}

// customerd killed with SIGKILL mid-load and restarted on the same database
// and NATS: every command answered with success survives, once.
func testKillUnderLoad(t *testing.T, bin string, plan faultPlan) {
	f := newFaultEnv(t, bin)
	f.start(t)
	l := startLoad(t, f.base, plan.workers, true)
	var restarted time.Time
	for range plan.rounds {
		time.Sleep(plan.warm)
		f.kill(t)
		f.start(t)
		restarted = time.Now()
	}
	time.Sleep(plan.after)
	attempts := l.finish()
	if n := ackedBetween(attempts, restarted, time.Now()); n == 0 {
		t.Fatal("no command succeeded after the restart")
	}
	f.verify(t, attempts)
}

// NATS stopped and started again mid-load: commands go on (the log is in
// PostgreSQL), readiness says NATS is down meanwhile, and afterwards the
// relay and the projectors have caught up without gaps or duplicates.
func testNATSRestartUnderLoad(t *testing.T, bin string, plan faultPlan) {
	f := newFaultEnv(t, bin)
	f.start(t)
	l := startLoad(t, f.base, plan.workers, true)
	type outage struct{ from, to time.Time }
	var outages []outage
	for range plan.rounds {
		time.Sleep(plan.warm)
		from := time.Now()
		f.stopNATS()
		for {
			code, rz := f.readyz()
			if code == http.StatusServiceUnavailable && rz.Checks["nats"] != "ok" {
				break
			}
			if time.Since(from) > plan.natsDown {
				t.Fatalf("NATS stopped %s ago, /readyz still %d %+v", plan.natsDown, code, rz)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(plan.natsDown - time.Since(from))
		f.startNATS(t)
		outages = append(outages, outage{from, time.Now()})
		f.waitReady(t)
	}
	time.Sleep(plan.after)
	attempts := l.finish()
	for _, o := range outages {
		if n := ackedBetween(attempts, o.from, o.to); n == 0 {
			t.Errorf("no command succeeded while NATS was down (%s)", o.to.Sub(o.from).Round(time.Millisecond))
		}
	}
	if n := ackedBetween(attempts, outages[len(outages)-1].to, time.Now()); n == 0 {
		t.Fatal("no command succeeded after NATS came back")
	}
	f.verify(t, attempts)
}

// Every database connection of customerd terminated mid-load, twice per
// round: the pool reconnects, and whatever was answered with success stays.
func testDatabaseCutUnderLoad(t *testing.T, bin string, plan faultPlan, retry5xx bool) {
	f := newFaultEnv(t, bin)
	f.start(t)
	l := startLoad(t, f.base, plan.workers, retry5xx)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cut time.Time
	for range 2 * plan.rounds {
		time.Sleep(plan.warm)
		if n := f.terminateBackends(ctx, t); n == 0 {
			t.Fatal("customerd holds no database connection to cut")
		}
		cut = time.Now()
	}
	time.Sleep(plan.after)
	attempts := l.finish()
	if n := ackedBetween(attempts, cut, time.Now()); n == 0 {
		t.Fatal("no command succeeded after the last cut")
	}
	f.verify(t, attempts)
}

// billingProfile is a valid profile whose company name tells the writers
// apart.
func billingProfile(company string) string {
	return `{"companyName":"` + company + `","email":"billing@example.com","firstName":"Jo","lastName":"Doe",` +
		`"defaultAddress":{"addressLine1":"Hauptstr. 1","city":"Berlin","postalCode":"10115","country":"DE"}}`
}

// getCustomer returns the customer's ETag as a version and its billing
// company name.
func getCustomer(t *testing.T, url string) (int64, string) {
	t.Helper()
	got := call(t, "GET", url, bootstrapToken, "")
	if got.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, got.status, got.body)
	}
	var c struct {
		BillingProfile *struct{ CompanyName string } `json:"billingProfile"`
	}
	got.decode(t, &c)
	v, err := strconv.ParseInt(strings.Trim(got.header.Get("ETag"), `"`), 10, 64)
	if err != nil {
		t.Fatalf("ETag %q: %v", got.header.Get("ETag"), err)
	}
	if c.BillingProfile == nil {
		return v, ""
	}
	return v, c.BillingProfile.CompanyName
}

// 64 clients update one customer's billing profile with If-Match at once:
// per version exactly one wins, the others get 412, and no update is lost
// without its client being told.
func testConcurrentIfMatch(t *testing.T, bin string) {
	const clients = 64
	f := newFaultEnv(t, bin)
	f.start(t)
	created := call(t, "POST", f.base+"/v1/customers", bootstrapToken,
		`{"companyName":"Contended Ltd","primaryDomain":"contended.example","relationship":"direct-bill"}`)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	var c struct{ ID string }
	created.decode(t, &c)
	cust := f.base + "/v1/customers/" + c.ID
	v0, _ := getCustomer(t, cust)

	// Round 1: every client carries the same ETag.
	start := make(chan struct{})
	statuses := make([]int, clients)
	var wg sync.WaitGroup
	hc := httpClient()
	for i := range clients {
		wg.Go(func() {
			<-start
			code, _, body, err := send(hc, "PUT", cust+"/billing-profile", billingProfile(fmt.Sprintf("Race %d", i)),
				"If-Match", fmt.Sprintf(`"%d"`, v0))
			if err != nil {
				t.Errorf("client %d: %v", i, err)
			}
			if code != http.StatusOK && code != http.StatusPreconditionFailed {
				t.Errorf("client %d: %d %s, want 200 or 412", i, code, body)
			}
			statuses[i] = code
		})
	}
	close(start)
	wg.Wait()
	winner := slices.Index(statuses, http.StatusOK)
	if n := countOf(statuses, http.StatusOK); n != 1 {
		t.Fatalf("%d of %d updates with the same If-Match won, want exactly 1 (statuses %v)", n, clients, statuses)
	}
	if n := countOf(statuses, http.StatusPreconditionFailed); n != clients-1 {
		t.Fatalf("%d updates got 412, want %d", n, clients-1)
	}
	v1, name := getCustomer(t, cust)
	if v1 != v0+1 || name != fmt.Sprintf("Race %d", winner) {
		t.Fatalf("after the race: version %d and profile %q, want %d and %q", v1, name, v0+1, fmt.Sprintf("Race %d", winner))
	}

	// Round 2: every client reads, writes with If-Match and, told 412,
	// reads again, until its own update is in.
	positions := make([]int64, clients)
	deadline := time.Now().Add(2 * time.Minute)
	for i := range clients {
		wg.Go(func() {
			for tries := 0; time.Now().Before(deadline); tries++ {
				code, h, _, err := send(hc, "GET", cust, "")
				if err != nil || code != http.StatusOK {
					t.Errorf("client %d: GET %d %v", i, code, err)
					return
				}
				code, _, body, err := send(hc, "PUT", cust+"/billing-profile", billingProfile(fmt.Sprintf("Chain %d", i)),
					"If-Match", h.Get("ETag"))
				switch {
				case err != nil:
					t.Errorf("client %d: %v", i, err)
					return
				case code == http.StatusOK:
					var p struct{ Position int64 }
					if err := json.Unmarshal(body, &p); err != nil {
						t.Errorf("client %d: %v in %s", i, err, body)
					}
					positions[i] = p.Position
					return
				case code != http.StatusPreconditionFailed:
					t.Errorf("client %d: %d %s, want 200 or 412", i, code, body)
					return
				}
				jitter(time.Duration(1+tries%8) * time.Millisecond)
			}
			t.Errorf("client %d: no update won in 2 minutes", i)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if v, _ := getCustomer(t, cust); v != v1+clients {
		t.Fatalf("version %d after %d more updates from %d", v, clients, v1)
	}

	// The log holds the race's winner and each chained update exactly once,
	// at the position its client was told, each a version of its own; none
	// of the race's losers is in it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type stored struct{ position, version int64 }
	profiles := map[string][]stored{}
	var versions []int64
	for _, e := range readEvents(ctx, t, f.dbURL) {
		if e.typ == "customer.billing_profile_updated" && e.data.CustomerID == c.ID {
			name := e.data.BillingProfile.CompanyName
			profiles[name] = append(profiles[name], stored{e.position, e.version})
			versions = append(versions, e.version)
		}
	}
	if race := profiles[fmt.Sprintf("Race %d", winner)]; len(race) != 1 || race[0].version != v1 {
		t.Errorf("the race's winner in the log: %v, want once at version %d", race, v1)
	}
	for i := range clients {
		if got := profiles[fmt.Sprintf("Chain %d", i)]; len(got) != 1 || got[0].position != positions[i] {
			t.Errorf("client %d was answered position %d; its update is in the log at %v", i, positions[i], got)
		}
	}
	if len(profiles) != 1+clients {
		t.Errorf("%d distinct profiles in the log, want %d: %v", len(profiles), 1+clients, profiles)
	}
	for i, v := range versions {
		if v != v1+int64(i) {
			t.Fatalf("billing updates at versions %v, want %d to %d once each", versions, v1, v1+clients)
		}
	}
}

func countOf(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}
