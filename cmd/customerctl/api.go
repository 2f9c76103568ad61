package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const defaultURL = "http://127.0.0.1:8080"

// apiOptions are the flags every API command takes.
type apiOptions struct {
	url, token string
	json       bool
}

func (c *cli) apiFlags(fs *flag.FlagSet) *apiOptions {
	o := &apiOptions{}
	fs.StringVar(&o.url, "url", "", "API base URL (env CUSTOMERCTL_URL, default "+defaultURL+")")
	fs.StringVar(&o.token, "token", "", "bearer token (env CUSTOMERCTL_TOKEN)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	return o
}

// client is a thin HTTP client for the /v1 API.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

func (c *cli) client(o *apiOptions) (*client, error) {
	raw := firstNonEmpty(o.url, c.env("CUSTOMERCTL_URL"), defaultURL)
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("invalid --url %q: want http(s)://host[:port]", raw)
	}
	token := firstNonEmpty(o.token, c.env("CUSTOMERCTL_TOKEN"))
	if token == "" {
		return nil, usagef("no token: pass --token or set CUSTOMERCTL_TOKEN")
	}
	// No overall timeout: exports stream for as long as they need; the
	// dialer and header timeouts catch a dead server.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 60 * time.Second
	return &client{base: u, token: token, http: &http.Client{Transport: tr}}, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// request describes one API call.
type request struct {
	method  string
	path    string // under the base URL, already escaped, e.g. "/v1/customers/" + url.PathEscape(id)
	query   url.Values
	body    any // marshalled as JSON when non-nil
	headers map[string]string
	accept  string
}

// do sends r and returns the response when its status is 2xx; any other
// status becomes an *apiError read from the problem+json body.
func (cl *client) do(ctx context.Context, r request) (*http.Response, error) {
	target := cl.base.String() + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("encoding request body: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("building request %s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	req.Header.Set("Accept", firstNonEmpty(r.accept, "application/json"))
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling %s %s: %w", r.method, r.path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readProblem(resp)
	}
	return resp, nil
}

// doJSON sends r and decodes a 2xx JSON answer into out (if non-nil); it
// returns the raw body too, so --json can print exactly what the server said.
func (cl *client) doJSON(ctx context.Context, r request, out any) (json.RawMessage, http.Header, error) {
	resp, err := cl.do(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading answer of %s %s: %w", r.method, r.path, err)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, nil, fmt.Errorf("decoding answer of %s %s: %w", r.method, r.path, err)
		}
	}
	return raw, resp.Header, nil
}

// problem is an RFC 9457 problem document (SPEC "HTTP API").
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// apiError is a non-2xx answer, printed as
// "<title>: <detail> (<field>: <message>, ...)".
type apiError struct {
	status int
	p      problem
}

func (e *apiError) Error() string {
	var b strings.Builder
	b.WriteString(firstNonEmpty(e.p.Title, http.StatusText(e.status), fmt.Sprintf("HTTP %d", e.status)))
	if e.p.Detail != "" && e.p.Detail != e.p.Title {
		b.WriteString(": " + e.p.Detail)
	}
	if len(e.p.Errors) > 0 {
		parts := make([]string, 0, len(e.p.Errors))
		for _, fe := range e.p.Errors {
			if fe.Field == "" {
				parts = append(parts, fe.Message)
			} else {
				parts = append(parts, fe.Field+": "+fe.Message)
			}
		}
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	return b.String()
}

func readProblem(resp *http.Response) error {
	e := &apiError{status: resp.StatusCode}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		if err := json.Unmarshal(raw, &e.p); err == nil {
			return e
		}
	}
	// Not a problem document (a proxy's error page, say): show the status and
	// the start of the body.
	e.p = problem{Title: fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
	if s := strings.TrimSpace(string(raw)); s != "" {
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		e.p.Detail = s
	}
	return e
}

// isStatus reports whether err is an API answer with the given status.
func isStatus(err error, status int) bool {
	var e *apiError
	return errors.As(err, &e) && e.status == status
}

// printJSON writes raw JSON indented, one document.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		// Not JSON after all: print it as the server sent it.
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func pathSeg(s string) string { return url.PathEscape(s) }
