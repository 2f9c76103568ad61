package httpapi

import (
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"strings"
)

// csvCell protects spreadsheet users from formula injection: a cell starting
// with = + - @ tab or CR starts with ' instead.
func csvCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// countingWriter knows whether anything reached the client yet: until then an
// error can still be answered as a problem.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// csvStream writes a CSV download: UTF-8 with BOM, CRLF, RFC 4180 quoting.
// fill is called with a function that writes one row.
func csvStream(w http.ResponseWriter, filename string, header []string, fill func(row func([]string) error) error) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	cw := &countingWriter{w: w}
	out := csv.NewWriter(cw)
	out.UseCRLF = true
	started := false
	start := func() error {
		if started {
			return nil
		}
		started = true
		if _, err := io.WriteString(cw, "\ufeff"); err != nil {
			return err
		}
		return out.Write(header)
	}
	rows := 0
	err := fill(func(cells []string) error {
		if err := start(); err != nil {
			return err
		}
		for i := range cells {
			cells[i] = csvCell(cells[i])
		}
		if err := out.Write(cells); err != nil {
			return err
		}
		// Flush regularly so memory does not grow with the list.
		if rows++; rows%256 == 0 {
			out.Flush()
			return out.Error()
		}
		return nil
	})
	if err != nil {
		if cw.n == 0 {
			w.Header().Del("Content-Disposition")
			w.Header().Del("Content-Type")
			return err
		}
		// Too late for a problem: break the connection so the client sees a
		// truncated download rather than a short file that looks complete.
		panic(http.ErrAbortHandler)
	}
	if err := start(); err != nil {
		return err
	}
	out.Flush()
	if err := out.Error(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return err
	}
	return nil
}

func relationshipLabel(r string) string {
	switch r {
	case "direct-bill":
		return "Direct bill"
	case "indirect-reseller":
		return "Indirect reseller"
	}
	return r
}

func joinTags(tags []string) string {
	sorted := append([]string(nil), tags...)
	sortStrings(sorted)
	return strings.Join(sorted, "; ")
}
