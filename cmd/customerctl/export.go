package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

func customersExport(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("customers export [-o Customers.csv]")
	o := c.apiFlags(fs)
	out := fs.String("o", "Customers.csv", "output file, - for stdout")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	return c.download(ctx, cl, request{method: http.MethodGet, path: "/v1/customers/export", accept: "text/csv"}, *out)
}

// download streams a CSV answer to a file (or stdout): the body is copied as
// it arrives, never held in memory. A file is written under a temporary name
// and renamed only when complete, so a failed download leaves no half file
// that looks like a whole one.
func (c *cli) download(ctx context.Context, cl *client, r request, out string) error {
	resp, err := cl.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	var body io.Reader = resp.Body
	if isTerminal(c.stderr) {
		p := newByteProgress(c.stderr, resp.ContentLength)
		defer p.done()
		body = io.TeeReader(resp.Body, p)
	}

	if out == "-" {
		if _, err := io.Copy(c.stdout, body); err != nil {
			return fmt.Errorf("downloading %s: %w", r.path, err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.part")
	if err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	n, err := io.Copy(tmp, body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading %s to %s: %w", r.path, out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("saving %s: %w", out, err)
	}
	fmt.Fprintf(c.stderr, "wrote %s (%s)\n", out, humanBytes(n))
	return nil
}

func activityExport(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("activity export [--from T] [--to T] [-o activity.csv]")
	o := c.apiFlags(fs)
	from := fs.String("from", "", "start, RFC 3339 or YYYY-MM-DD (server default: 30 days ago)")
	to := fs.String("to", "", "end, RFC 3339 or YYYY-MM-DD (server default: now)")
	out := fs.String("o", "activity.csv", "output file, - for stdout")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	q, err := timeRange(*from, *to)
	if err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	return c.download(ctx, cl, request{method: http.MethodGet, path: "/v1/activity/export", query: q, accept: "text/csv"}, *out)
}

// parseTime accepts RFC 3339 or a bare date (midnight UTC), which is what an
// operator types.
func parseTime(name, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--%s %q: want RFC 3339 (2025-01-31T12:00:00Z) or a date (2025-01-31)", name, s)
}

func timeRange(from, to string) (url.Values, error) {
	q := url.Values{}
	for _, f := range []struct{ name, v string }{{"from", from}, {"to", to}} {
		if f.v == "" {
			continue
		}
		t, err := parseTime(f.name, f.v)
		if err != nil {
			return nil, err
		}
		q.Set(f.name, t.UTC().Format(time.RFC3339Nano))
	}
	return q, nil
}
