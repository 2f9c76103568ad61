package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/relay"
	"github.com/partnerhub/customers/eventstore/sqlite"
)

func TestBadSettingsAreReportedTogetherOnOneLine(t *testing.T) {
	env := map[string]string{
		"CUSTOMERD_ADDR":        "localhost",
		"CUSTOMERD_NATS_LISTEN": "127.0.0.1:99999",
		"CUSTOMERD_DATA_DIR":    t.TempDir(),
	}
	var stderr bytes.Buffer
	code := run([]string{"-database-url", "mysql://nope"}, func(k string) string { return env[k] }, &stderr)
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	out := stderr.String()
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "customerd: ") {
		t.Fatalf("want one line starting with customerd:, got %q", out)
	}
	for _, want := range []string{"CUSTOMERD_ADDR", "CUSTOMERD_NATS_LISTEN", "CUSTOMERD_DATABASE_URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("message does not name %s: %q", want, out)
		}
	}
}

func TestFlagsOverrideEnvironmentOverDefaults(t *testing.T) {
	env := map[string]string{"CUSTOMERD_ADDR": "127.0.0.1:9000", "CUSTOMERD_DATA_DIR": "/env"}
	cfg, err := LoadConfig([]string{"-data-dir", "/flag"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Addr: "127.0.0.1:9000", DataDir: "/flag", NATSListen: "127.0.0.1:4223",
		NATSStream: "CUSTOMER_EVENTS", NATSSubjectRoot: "customers"}
	if cfg != want {
		t.Fatalf("config = %+v, want %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// process is a running customerd binary.
type process struct {
	cmd   *exec.Cmd
	lines chan map[string]any // stderr's JSON log lines
	done  chan error
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "customerd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startBinary(t *testing.T, bin string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, lines: make(chan map[string]any, 1000), done: make(chan error, 1)}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				m = map[string]any{"msg": sc.Text()}
			}
			// Access-log lines of answered requests would drown the rest
			// under load; server errors are still shown.
			if m["msg"] != "http request" || m["level"] == "ERROR" {
				t.Logf("customerd: %s", sc.Text())
			}
			select {
			case p.lines <- m:
			default:
			}
		}
		close(p.lines)
		p.done <- cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		// The reader logs through t: it must be done before the test is.
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	})
	return p
}

// waitLog returns the first log line with the given message.
func (p *process) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				t.Fatalf("customerd exited before logging %q", msg)
			}
			if m["msg"] == msg {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q log line after 20 s", msg)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The real binary on an empty data dir: healthy, ready, publishing what is
// in the store to its embedded NATS, and exiting 0 on SIGTERM.
func TestBinaryServesHealthPublishesAndStopsOnSIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	bin := buildBinary(t)
	dataDir := t.TempDir()

	// An event already in the store before customerd starts.
	store, err := sqlite.Open(ctx, filepath.Join(dataDir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if _, err := store.Append(ctx, eventstore.AppendRequest{StreamID: "customer-p1-c1", Events: []eventstore.NewEvent{{
		ID: id, Type: "customer.created", Subject: "c1", Data: []byte(`{"customerId":"c1"}`),
		Metadata: eventstore.Metadata{PartnerID: "p1", ActorID: "u1", ActorEmail: "a@example.com"},
	}}}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	p := startBinary(t, bin,
		"CUSTOMERD_ADDR=127.0.0.1:0", "CUSTOMERD_NATS_LISTEN=127.0.0.1:0",
		"CUSTOMERD_DATA_DIR="+dataDir, "CUSTOMERD_DATABASE_URL=", "CUSTOMERD_NATS_URL=")
	natsURL, _ := p.waitLog(t, "embedded NATS listening")["url"].(string)
	base := "http://" + p.waitLog(t, "customerd started")["addr"].(string)

	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatalf("connecting to the embedded NATS at %q: %v", natsURL, err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	cons, err := js.OrderedConsumer(ctx, relay.DefaultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"customers.>"}})
	for err != nil && ctx.Err() == nil { // the relay creates the stream shortly after start
		time.Sleep(50 * time.Millisecond)
		cons, err = js.OrderedConsumer(ctx, relay.DefaultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"customers.>"}})
	}
	if err != nil {
		t.Fatalf("consumer on %s: %v", relay.DefaultStream, err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(20 * time.Second))
	if err != nil {
		t.Fatalf("reading the published event: %v", err)
	}
	var env relay.Envelope
	if err := json.Unmarshal(msg.Data(), &env); err != nil {
		t.Fatal(err)
	}
	if msg.Subject() != "customers.p1.customer.created" || env.ID != id.String() || env.Subject != "c1" {
		t.Fatalf("published %s %+v, want customers.p1.customer.created with id %s", msg.Subject(), env, id)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("customerd after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("customerd still running 25 s after SIGTERM")
	}
}
