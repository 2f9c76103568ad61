package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/partnerhub/customers/domain"
)

// billingUpdate replaces a customer's billing profile. The base is the file
// (--file) or, without one, the current profile; flags then override single
// fields. The ETag of the GET goes back as If-Match, so a concurrent change
// answers 412 instead of being overwritten.
func billingUpdate(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlags("billing update ID [--file profile.json] [--company-name ... --email ... field flags]")
	o := c.apiFlags(fs)
	file := fs.String("file", "", "JSON file with the full billing profile")
	fields := map[string]*string{}
	for _, f := range []struct{ name, usage string }{
		{"company-name", "billing company name"}, {"email", "billing e-mail"},
		{"first-name", "first name"}, {"last-name", "last name"},
		{"phone", "phone number"}, {"culture", "culture, e.g. en-US"}, {"language", "language, e.g. en"},
		{"address-line1", "address line 1"}, {"address-line2", "address line 2"},
		{"city", "city"}, {"state", "state"}, {"postal-code", "postal code"},
		{"country", "country, ISO 3166-1 alpha-2"}, {"region", "region"},
	} {
		fields[f.name] = fs.String(f.name, "", f.usage)
	}
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	anyField := false
	for name := range fields {
		anyField = anyField || set[name]
	}
	if *file == "" && !anyField {
		return usagef("give --file or at least one field flag")
	}
	cl, err := c.client(o)
	if err != nil {
		return err
	}
	id := pos[0]

	var cu customer
	_, hdr, err := cl.doJSON(ctx, request{method: http.MethodGet, path: "/v1/customers/" + pathSeg(id)}, &cu)
	if err != nil {
		return fmt.Errorf("reading customer %s: %w", id, err)
	}
	etag := hdr.Get("ETag")
	if etag == "" {
		return fmt.Errorf("reading customer %s: the server sent no ETag", id)
	}

	var profile domain.BillingProfile
	switch {
	case *file != "":
		b, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("reading billing profile: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&profile); err != nil {
			return fmt.Errorf("reading billing profile %s: %w", *file, err)
		}
	case cu.BillingProfile != nil:
		profile = *cu.BillingProfile
	}
	apply := map[string]*string{
		"company-name": &profile.CompanyName, "email": &profile.Email,
		"first-name": &profile.FirstName, "last-name": &profile.LastName,
		"phone": &profile.PhoneNumber, "culture": &profile.Culture, "language": &profile.Language,
		"address-line1": &profile.DefaultAddress.AddressLine1, "address-line2": &profile.DefaultAddress.AddressLine2,
		"city": &profile.DefaultAddress.City, "state": &profile.DefaultAddress.State,
		"postal-code": &profile.DefaultAddress.PostalCode, "country": &profile.DefaultAddress.Country,
		"region": &profile.DefaultAddress.Region,
	}
	for name, dst := range apply {
		if set[name] {
			*dst = *fields[name]
		}
	}

	var out customer
	raw, _, err := cl.doJSON(ctx, request{
		method:  http.MethodPut,
		path:    "/v1/customers/" + pathSeg(id) + "/billing-profile",
		body:    profile,
		headers: map[string]string{"If-Match": etag},
	}, &out)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(c.stdout, raw)
	}
	if out.ID == "" {
		fmt.Fprintf(c.stdout, "billing profile of %s updated (position %d)\n", id, out.Position)
		return nil
	}
	return writeCustomer(c.stdout, out)
}
