package main

import (
	"context"
	"fmt"
	"net/http"
	"text/tabwriter"
)

func usersCreate(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("users create --email EMAIL --role admin-agent|sales-agent")
	o := c.apiFlags(fs)
	email := fs.String("email", "", "the user's e-mail (required)")
	role := fs.String("role", "", "admin-agent or sales-agent (required)")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := required([2]string{"email", *email}, [2]string{"role", *role}); err != nil {
		return err
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	var u struct {
		ID       string `json:"id"`
		Email    string `json:"email"`
		Role     string `json:"role"`
		Token    string `json:"token"`
		Position int64  `json:"position"`
	}
	raw, _, err := cl.doJSON(ctx, request{method: http.MethodPost, path: "/v1/users",
		body: map[string]string{"email": *email, "role": *role}}, &u)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\t%s\nEmail\t%s\nRole\t%s\nToken\t%s\n", u.ID, u.Email, u.Role, u.Token)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stderr, "the token is shown only once: store it now")
	return nil
}
