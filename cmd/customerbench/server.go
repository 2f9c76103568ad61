package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/partnerhub/customers/eventstore/relay"
)

// server is a customerd process this tool started.
type server struct {
	cmd     *exec.Cmd
	url     string
	token   string
	logPath string
	exited  chan struct{}
	waitErr error
	// stream is the JetStream stream of this run on an external NATS
	// (deleted by Stop); "" with the embedded one.
	stream, natsURL string
	pprofAddr       string // "" unless profiling
	// eventsURL and subjectRoot say where the events are published, so
	// the lag scenario can time the relay's leg on its own.
	eventsURL, subjectRoot string
}

// profile records customerd's CPU profile for d into path.
func (s *server) profile(ctx context.Context, d time.Duration, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.pprofAddr, max(int(d.Seconds()), 1)), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching the CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching the CPU profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// serverOptions say how to start customerd.
type serverOptions struct {
	binary      string // --customerd; "" finds or builds one
	databaseURL string // "" for the embedded store
	natsURL     string // "" for the embedded NATS
	dir         string // scratch directory (data dir, log, built binary)
	profileDir  string // where CPU profiles go; "" for none
}

// findCustomerd returns the binary to run: the given path, customerd on
// PATH, or one built from this module's source into dir. With profiling it
// is always built, with pprofFile added to its main package.
func findCustomerd(ctx context.Context, given, dir string, profiling bool) (string, error) {
	if given != "" && !profiling {
		return given, nil
	}
	if p, err := exec.LookPath("customerd"); err == nil && !profiling {
		return p, nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("no customerd on PATH and not inside the module to build one: pass --customerd PATH or --url")
	}
	root := filepath.Dir(gomod)
	args := []string{"build", "-o", filepath.Join(dir, "customerd")}
	if profiling {
		// An overlay adds the file to the build only: the repository's
		// customerd never serves pprof.
		src := filepath.Join(dir, "pprof.go")
		overlay := filepath.Join(dir, "overlay.json")
		ov, _ := json.Marshal(map[string]any{"Replace": map[string]string{
			filepath.Join(root, "cmd", "customerd", "zz_customerbench_pprof.go"): src}})
		if err := errors.Join(os.WriteFile(src, []byte(pprofFile), 0o600), os.WriteFile(overlay, ov, 0o600)); err != nil {
			return "", fmt.Errorf("writing the pprof overlay: %w", err)
		}
		args = append(args, "-overlay", overlay)
	}
	build := exec.CommandContext(ctx, "go", append(args, "github.com/partnerhub/customers/cmd/customerd")...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building customerd: %w\n%s", err, out)
	}
	return filepath.Join(dir, "customerd"), nil
}

// pprofFile serves net/http/pprof on CUSTOMERBENCH_PPROF_ADDR, on a
// listener of its own (customerd's API uses its own mux).
const pprofFile = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("CUSTOMERBENCH_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// startServer starts customerd on free loopback ports with a fresh data
// directory and a random bootstrap token, and waits until that token can
// read the API.
func startServer(ctx context.Context, o serverOptions) (*server, error) {
	bin, err := findCustomerd(ctx, o.binary, o.dir, o.profileDir != "")
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 24)
	_, _ = rand.Read(tok)
	s := &server{url: "http://" + httpAddr, token: hex.EncodeToString(tok),
		logPath: filepath.Join(o.dir, "customerd.log"), exited: make(chan struct{})}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the customerd log: %w", err)
	}
	// Not CommandContext: Stop ends the process gracefully, not with a kill.
	s.cmd = exec.Command(bin)
	env := []string{}
	if o.profileDir != "" {
		if s.pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		env = append(env, "CUSTOMERBENCH_PPROF_ADDR="+s.pprofAddr)
	}
	if o.natsURL != "" {
		// A shared NATS server: a stream and subject root of this run's own,
		// so neither it nor anyone else sees the other's events.
		s.stream = "CUSTOMERBENCH_" + hex.EncodeToString(tok[:6])
		s.natsURL = o.natsURL
		s.eventsURL, s.subjectRoot = o.natsURL, strings.ToLower(s.stream)
		env = append(env, "CUSTOMERD_NATS_STREAM="+s.stream, "CUSTOMERD_NATS_SUBJECT_ROOT="+s.subjectRoot)
	} else {
		s.eventsURL, s.subjectRoot = "nats://"+natsAddr, relay.DefaultSubjectRoot
	}
	s.cmd.Env = append(append(withoutCustomerdEnv(os.Environ()), env...),
		"CUSTOMERD_ADDR="+httpAddr,
		"CUSTOMERD_NATS_LISTEN="+natsAddr,
		"CUSTOMERD_DATA_DIR="+filepath.Join(o.dir, "data"),
		"CUSTOMERD_DATABASE_URL="+o.databaseURL,
		"CUSTOMERD_NATS_URL="+o.natsURL,
		"CUSTOMERD_BOOTSTRAP_TOKEN="+s.token)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, s.logTail())
	}
	return s, nil
}

// withoutCustomerdEnv drops inherited CUSTOMERD_ variables so that only the
// ones set here reach the server.
func withoutCustomerdEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CUSTOMERD_") {
			out = append(out, kv)
		}
	}
	return out
}

// waitReady polls an authenticated read until it answers 200: /readyz alone
// does not say that the bootstrap user is known to the API yet.
func (s *server) waitReady(ctx context.Context, limit time.Duration) error {
	c := newClient(s.url, s.token, 1)
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("customerd exited before it was ready: %v", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, last = c.do(rctx, http.MethodGet, "/v1/tags", nil)
		cancel()
		if last == nil {
			return nil
		}
	}
	return fmt.Errorf("customerd not ready after %s: %v", limit, last)
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "customerd log (" + s.logPath + "):\n" + string(bytes.TrimSpace(b))
}

// Stop asks customerd to shut down (SIGTERM) and kills it if it has not
// exited after 25 s.
func (s *server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(25 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	if s.stream != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if nc, err := nats.Connect(s.natsURL); err == nil {
			if js, err := jetstream.New(nc); err == nil {
				_ = js.DeleteStream(ctx, s.stream)
			}
			nc.Close()
		}
	}
}
