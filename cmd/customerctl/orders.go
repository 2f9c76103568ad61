package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/partnerhub/customers/domain"
)

type order struct {
	ID           string            `json:"id"`
	CustomerID   string            `json:"customerId"`
	Status       string            `json:"status"`
	Catalog      string            `json:"catalog"`
	BillingCycle string            `json:"billingCycle"`
	LineItems    []domain.LineItem `json:"lineItems"`
	Position     int64             `json:"position"`
}

// parseItem reads offerId:quantity[:termDuration]. The offer id may itself
// hold colons (marketplace ids do), so quantity and term are taken from the
// right.
func parseItem(s string) (domain.LineItem, error) {
	parts := strings.Split(s, ":")
	var term string
	if n := len(parts); n >= 3 && strings.HasPrefix(strings.ToUpper(parts[n-1]), "P") {
		term = strings.ToUpper(parts[n-1])
		parts = parts[:n-1]
	}
	if len(parts) < 2 {
		return domain.LineItem{}, usagef("--item %q: want offerId:quantity[:term]", s)
	}
	qty, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil {
		return domain.LineItem{}, usagef("--item %q: quantity %q is not a number", s, parts[len(parts)-1])
	}
	offer := strings.Join(parts[:len(parts)-1], ":")
	if offer == "" {
		return domain.LineItem{}, usagef("--item %q: empty offer id", s)
	}
	return domain.LineItem{OfferID: offer, Quantity: qty, TermDuration: term}, nil
}

func ordersCreate(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("orders create CUSTOMER_ID --catalog azure|marketplace|software|online-services --billing-cycle monthly|annual|one-time|none --item offerId:qty[:P1M|P1Y|P3Y] ...")
	o := c.apiFlags(fs)
	catalog := fs.String("catalog", "", "catalog (required)")
	cycle := fs.String("billing-cycle", "", "billing cycle (required)")
	var items stringList
	fs.Var(&items, "item", "line item offerId:quantity[:term] (repeatable, at least one)")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := required([2]string{"catalog", *catalog}, [2]string{"billing-cycle", *cycle}); err != nil {
		return err
	}
	if len(items) == 0 {
		return usagef("at least one --item is required")
	}
	lines := make([]domain.LineItem, 0, len(items))
	for _, s := range items {
		li, err := parseItem(s)
		if err != nil {
			return err
		}
		lines = append(lines, li)
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	var ord order
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodPost, path: "/v1/customers/" + pathSeg(pos[0]) + "/orders",
		body: map[string]any{"catalog": *catalog, "billingCycle": *cycle, "lineItems": lines}}, &ord)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	return writeOrders(c.stdout, []order{ord})
}

func ordersList(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("orders list CUSTOMER_ID")
	o := c.apiFlags(fs)
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	var page struct {
		Items []order `json:"items"`
	}
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodGet, path: "/v1/customers/" + pathSeg(pos[0]) + "/orders"}, &page)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	return writeOrders(c.stdout, page.Items)
}

func ordersComplete(ctx context.Context, c *cli, args []string) error {
	return orderMove(ctx, c, args, "complete")
}

func ordersCancel(ctx context.Context, c *cli, args []string) error {
	return orderMove(ctx, c, args, "cancel")
}

func orderMove(ctx context.Context, c *cli, args []string, verb string) error {
	fs := c.newFlags("orders " + verb + " CUSTOMER_ID ORDER_ID")
	o := c.apiFlags(fs)
	pos, err := c.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	var ord order
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodPost,
		path: "/v1/customers/" + pathSeg(pos[0]) + "/orders/" + pathSeg(pos[1]) + "/" + verb}, &ord)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	if ord.ID == "" {
		fmt.Fprintf(c.stdout, "order %s: %s (position %d)\n", pos[1], verb, ord.Position)
		return nil
	}
	return writeOrders(c.stdout, []order{ord})
}

func writeOrders(w io.Writer, orders []order) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER ID\tSTATUS\tCATALOG\tBILLING CYCLE\tLINE ITEMS")
	for _, o := range orders {
		items := make([]string, 0, len(o.LineItems))
		for _, li := range o.LineItems {
			s := fmt.Sprintf("%s x%d", li.OfferID, li.Quantity)
			if li.TermDuration != "" {
				s += " " + li.TermDuration
			}
			items = append(items, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.ID, o.Status, o.Catalog, o.BillingCycle, cell(strings.Join(items, ", ")))
	}
	return tw.Flush()
}
