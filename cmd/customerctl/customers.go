package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/partnerhub/customers/domain"
)

// customer is the answer of GET /v1/customers/{id} and POST /v1/customers.
type customer struct {
	ID             string                 `json:"id"`
	CompanyName    string                 `json:"companyName"`
	PrimaryDomain  string                 `json:"primaryDomain"`
	Relationships  []string               `json:"relationships"`
	BillingProfile *domain.BillingProfile `json:"billingProfile"`
	Tags           []string               `json:"tags"`
	Orders         []order                `json:"orders"`
	Position       int64                  `json:"position"`
}

// customerItem is one row of GET /v1/customers.
type customerItem struct {
	ID            string   `json:"id"`
	Relationship  string   `json:"relationship"`
	CompanyName   string   `json:"companyName"`
	PrimaryDomain string   `json:"primaryDomain"`
	Tags          []string `json:"tags"`
}

func customersCreate(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("customers create --company-name NAME --domain DOMAIN --relationship direct-bill|indirect-reseller [--id UUID] [--tag NAME ...]")
	o := c.apiFlags(fs)
	name := fs.String("company-name", "", "company name (required)")
	dom := fs.String("domain", "", "primary domain (required)")
	rel := fs.String("relationship", "", "direct-bill or indirect-reseller (required)")
	id := fs.String("id", "", "Microsoft customer id (UUID); generated when omitted")
	var tags stringList
	fs.Var(&tags, "tag", "tag to assign (repeatable)")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := required([2]string{"company-name", *name}, [2]string{"domain", *dom}, [2]string{"relationship", *rel}); err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	body := map[string]any{"companyName": *name, "primaryDomain": *dom, "relationship": *rel}
	if *id != "" {
		body["id"] = *id
	}
	if len(tags) > 0 {
		body["tags"] = []string(tags)
	}
	var cu customer
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodPost, path: "/v1/customers", body: body}, &cu)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	return writeCustomer(c.stdout, cu)
}

func customersList(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("customers list [--q TEXT] [--search-by all|companyName|domain|id|tag] [--relationship R] [--tag NAME ...] [--sort companyName|-companyName|domain|-domain] [--limit N] [--cursor C]")
	o := c.apiFlags(fs)
	q := fs.String("q", "", "search text (substring, case- and accent-insensitive)")
	by := fs.String("search-by", "", "all (default), companyName, domain, id or tag")
	rel := fs.String("relationship", "", "only this relationship")
	var tags stringList
	fs.Var(&tags, "tag", "only customers with this tag (repeatable, all must match)")
	sortBy := fs.String("sort", "", "companyName (default), -companyName, domain or -domain")
	limit := fs.Int("limit", 0, "page size, 1 to 500 (server default 50)")
	cursor := fs.String("cursor", "", "cursor from a previous page")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	query := url.Values{}
	set := func(k, v string) {
		if v != "" {
			query.Set(k, v)
		}
	}
	set("q", *q)
	set("searchBy", *by)
	set("relationship", *rel)
	set("sort", *sortBy)
	set("cursor", *cursor)
	if *limit != 0 {
		query.Set("limit", strconv.Itoa(*limit))
	}
	for _, t := range tags {
		query.Add("tag", t)
	}
	var page struct {
		Items      []customerItem `json:"items"`
		NextCursor string         `json:"nextCursor"`
	}
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodGet, path: "/v1/customers", query: query}, &page)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRELATIONSHIP\tCOMPANY NAME\tPRIMARY DOMAIN\tTAGS")
	for _, it := range page.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.ID, it.Relationship, cell(it.CompanyName), it.PrimaryDomain, cell(strings.Join(it.Tags, "; ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextCursor != "" {
		// On stderr, so that stdout stays a clean table for pipes.
		fmt.Fprintf(c.stderr, "more: --cursor %s\n", page.NextCursor)
	}
	return nil
}

func customersGet(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("customers get ID")
	o := c.apiFlags(fs)
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	var cu customer
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodGet, path: "/v1/customers/" + pathSeg(pos[0])}, &cu)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	return writeCustomer(c.stdout, cu)
}

func customersAddRelationship(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("customers add-relationship ID --relationship direct-bill|indirect-reseller")
	o := c.apiFlags(fs)
	rel := fs.String("relationship", "", "direct-bill or indirect-reseller (required)")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := required([2]string{"relationship", *rel}); err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	var cu customer
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodPost, path: "/v1/customers/" + pathSeg(pos[0]) + "/relationships",
		body: map[string]string{"relationship": *rel}}, &cu)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	if cu.ID == "" {
		// The answer may carry only the position: say what was done.
		fmt.Fprintf(c.stdout, "added %s to %s (position %d)\n", *rel, pos[0], cu.Position)
		return nil
	}
	return writeCustomer(c.stdout, cu)
}

// writeCustomer prints one customer as a two-column table, then its orders.
func writeCustomer(w io.Writer, cu customer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, cell(v)) }
	row("ID", cu.ID)
	row("Company name", cu.CompanyName)
	row("Primary domain", cu.PrimaryDomain)
	row("Relationships", strings.Join(cu.Relationships, ", "))
	row("Tags", strings.Join(cu.Tags, "; "))
	if bp := cu.BillingProfile; bp != nil {
		row("Billing company", bp.CompanyName)
		row("Billing contact", strings.TrimSpace(bp.FirstName+" "+bp.LastName+" <"+bp.Email+">"))
		a := bp.DefaultAddress
		row("Billing address", joinNonEmpty(", ", a.AddressLine1, a.AddressLine2, a.PostalCode+" "+a.City, a.State, a.Country))
	}
	if cu.Position > 0 {
		row("Position", strconv.FormatInt(cu.Position, 10))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(cu.Orders) > 0 {
		fmt.Fprintln(w)
		return writeOrders(w, cu.Orders)
	}
	return nil
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// cell keeps tabwriter columns intact whatever a value contains.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// rawOf re-encodes v: used where the answer is assembled locally.
func rawOf(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
