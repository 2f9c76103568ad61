package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"
)

// activityEntry is one entry of GET /v1/activity (SPEC "Activity log").
type activityEntry struct {
	At           time.Time `json:"at"`
	PartnerUser  string    `json:"partnerUser"`
	CustomerID   string    `json:"customerId"`
	CustomerName string    `json:"customerName"`
	Operation    string    `json:"operation"`
	ResourceType string    `json:"resourceType"`
	OldValue     string    `json:"oldValue"`
	NewValue     string    `json:"newValue"`
	Position     int64     `json:"position"`
}

func activityList(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("activity list [--from T] [--to T] [--customer ID] [--resource-type T] [--operation OP] [--user EMAIL] [--limit N] [--cursor C]")
	o := c.apiFlags(fs)
	from := fs.String("from", "", "start, RFC 3339 or YYYY-MM-DD (server default: 30 days ago)")
	to := fs.String("to", "", "end, RFC 3339 or YYYY-MM-DD (server default: now)")
	customerID := fs.String("customer", "", "only this customer")
	resourceType := fs.String("resource-type", "", "customer, order, tag or user")
	operation := fs.String("operation", "", "only this operation, e.g. create_order")
	user := fs.String("user", "", "only this partner user")
	limit := fs.Int("limit", 0, "page size")
	cursor := fs.String("cursor", "", "cursor from a previous page")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	q, err := timeRange(*from, *to)
	if err != nil {
		return err
	}
	for k, v := range map[string]string{"customerId": *customerID, "resourceType": *resourceType, "operation": *operation, "user": *user, "cursor": *cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *limit != 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	var page struct {
		Items      []activityEntry `json:"items"`
		NextCursor string          `json:"nextCursor"`
	}
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodGet, path: "/v1/activity", query: q}, &page)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	if err := writeActivity(c.stdout, page.Items); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(c.stderr, "more: --cursor %s\n", page.NextCursor)
	}
	return nil
}

// activityTable prints activity entries as an aligned table. tabwriter holds
// everything until Flush, so long replays flush every few hundred rows (the
// column widths are per block then, which is fine for a log).
type activityTable struct {
	tw   *tabwriter.Writer
	rows int
}

func newActivityTable(w io.Writer) *activityTable {
	t := &activityTable{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	fmt.Fprintln(t.tw, "AT\tPOSITION\tUSER\tOPERATION\tRESOURCE\tCUSTOMER ID\tCUSTOMER NAME\tOLD VALUE\tNEW VALUE")
	return t
}

func (t *activityTable) add(e activityEntry) error {
	fmt.Fprintf(t.tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
		e.At.UTC().Format(time.RFC3339), e.Position, cell(e.PartnerUser), e.Operation, e.ResourceType,
		e.CustomerID, cell(e.CustomerName), cell(e.OldValue), cell(e.NewValue))
	t.rows++
	if t.rows%500 == 0 {
		return t.tw.Flush()
	}
	return nil
}

func (t *activityTable) flush() error { return t.tw.Flush() }

func writeActivity(w io.Writer, entries []activityEntry) error {
	t := newActivityTable(w)
	for _, e := range entries {
		if err := t.add(e); err != nil {
			return err
		}
	}
	return t.flush()
}

// writeActivityJSON writes one entry as a JSON line.
func writeActivityJSON(w io.Writer, e activityEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
