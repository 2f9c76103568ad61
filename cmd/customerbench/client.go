package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client calls the customerd HTTP API as one user.
type client struct {
	base  string // http://host:port, no trailing slash
	token string
	hc    *http.Client
}

func newClient(base, token string, conc int) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// One kept-alive connection per worker (and the lag scenario's bursts):
	// the default of 2 idle connections per host would make most requests
	// open a new TCP connection and measure the handshake.
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = max(conc*2, 1024)
	tr.DisableCompression = true
	return &client{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// answer is an HTTP answer with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// statusError is a non-2xx answer, named by its request.
type statusError struct {
	method, path string
	status       int
	body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, pathOnly(e.path), e.status, e.body)
}

// pathOnly keeps error messages groupable: ids and queries differ per call.
func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if len(s) == 36 && strings.Count(s, "-") == 4 {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

// do sends a request; a non-2xx status is a *statusError. hdr is name,
// value pairs.
func (c *client) do(ctx context.Context, method, path string, body any, hdr ...string) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return answer{}, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, pathOnly(path), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("reading %s %s: %w", method, pathOnly(path), err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return a, &statusError{method: method, path: path, status: resp.StatusCode, body: strings.TrimSpace(string(b[:min(len(b), 300)]))}
	}
	return a, nil
}

// stream sends a GET and copies the body to w, for the export.
func (c *client) stream(ctx context.Context, path string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, fmt.Errorf("building GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", pathOnly(path), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return 0, &statusError{method: "GET", path: path, status: resp.StatusCode, body: string(b)}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("reading GET %s: %w", pathOnly(path), err)
	}
	return n, nil
}

// decode reads a JSON answer into v.
func decode(a answer, v any) error {
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("decoding answer %.100q: %w", a.body, err)
	}
	return nil
}

// checkLoopback refuses a target that is not on this machine: the tool
// generates load and must not be pointed at a shared server by accident.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want http://host:port", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--url %q: only loopback targets (127.0.0.1, ::1, localhost) are allowed", raw)
}
