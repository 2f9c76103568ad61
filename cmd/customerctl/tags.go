package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
)

type tagRow struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	CustomerCount int64  `json:"customerCount"`
}

func tagsList(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("tags list")
	o := c.apiFlags(fs)
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	var page struct {
		Items []tagRow `json:"items"`
	}
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodGet, path: "/v1/tags"}, &page)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCUSTOMERS")
	for _, t := range page.Items {
		fmt.Fprintf(tw, "%s\t%d\n", cell(t.Name), t.CustomerCount)
	}
	return tw.Flush()
}

func tagsCreate(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("tags create NAME")
	o := c.apiFlags(fs)
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	return c.tagCall(ctx, o, request{method: http.MethodPost, path: "/v1/tags", body: map[string]string{"name": pos[0]}},
		fmt.Sprintf("created tag %q", pos[0]))
}

func tagsRename(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("tags rename OLD NEW")
	o := c.apiFlags(fs)
	pos, err := c.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	return c.tagCall(ctx, o, request{method: http.MethodPatch, path: "/v1/tags/" + pathSeg(pos[0]), body: map[string]string{"name": pos[1]}},
		fmt.Sprintf("renamed tag %q to %q", pos[0], pos[1]))
}

func tagsDelete(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("tags delete NAME")
	o := c.apiFlags(fs)
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	return c.tagCall(ctx, o, request{method: http.MethodDelete, path: "/v1/tags/" + pathSeg(pos[0])},
		fmt.Sprintf("deleted tag %q", pos[0]))
}

func tagsAssign(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("tags assign ID [--add NAME ...] [--remove NAME ...]")
	o := c.apiFlags(fs)
	var add, remove stringList
	fs.Var(&add, "add", "tag to assign (repeatable)")
	fs.Var(&remove, "remove", "tag to unassign (repeatable)")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if len(add) == 0 && len(remove) == 0 {
		return usagef("give --add or --remove")
	}
	body := map[string][]string{"add": nonNil(add), "remove": nonNil(remove)}
	var what []string
	if len(add) > 0 {
		what = append(what, "added "+strings.Join(add, ", "))
	}
	if len(remove) > 0 {
		what = append(what, "removed "+strings.Join(remove, ", "))
	}
	return c.tagCall(ctx, o, request{method: http.MethodPost, path: "/v1/customers/" + pathSeg(pos[0]) + "/tags", body: body},
		fmt.Sprintf("%s: %s", pos[0], strings.Join(what, "; ")))
}

func nonNil(l stringList) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// tagCall sends a tag command and prints either the JSON answer or a line
// saying what was done and at which log position.
func (c *cli) tagCall(ctx context.Context, o *apiOptions, r request, done string) error {
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	var ans struct {
		Position int64 `json:"position"`
	}
	raw, _, err := cl.doJSON(ctx, r, &ans)
	if err != nil {
		return err
	}
	if o.json {
		if len(raw) == 0 {
			raw = rawOf(ans)
		}
		return printJSON(c.stdout, raw)
	}
	if ans.Position > 0 {
		fmt.Fprintf(c.stdout, "%s (position %d)\n", done, ans.Position)
	} else {
		fmt.Fprintln(c.stdout, done)
	}
	return nil
}
