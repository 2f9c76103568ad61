package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/partnerhub/customers/domain"
)

const (
	custID  = "6f1c1a8e-2b7d-4a55-9a0e-0d4b2d7e9a01"
	orderID = "0b8e7b7e-4b8a-4f0e-9d0b-6e3a3f1f2c11"
)

// want is the expected outcome of a decision: events, or an error code and
// (for validation) the field it names.
type want struct {
	events []domain.Event
	code   domain.Code
	field  string
}

func check(t *testing.T, got []domain.Event, err error, w want) {
	t.Helper()
	if w.code != "" {
		if err == nil {
			t.Fatalf("got events %+v, want error %s", got, w.code)
		}
		if c := domain.ErrorCode(err); c != w.code {
			t.Fatalf("got error %v (code %q), want code %q", err, c, w.code)
		}
		if w.field != "" {
			var de *domain.Error
			errors.As(err, &de)
			if !slices.ContainsFunc(de.Fields, func(f domain.FieldError) bool { return f.Field == w.field }) {
				t.Fatalf("error %v names fields %+v, want %q", err, de.Fields, w.field)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if !reflect.DeepEqual(got, w.events) {
		t.Fatalf("got events\n%#v\nwant\n%#v", got, w.events)
	}
}

func foldCustomer(events ...domain.Event) domain.Customer {
	var c domain.Customer
	for _, e := range events {
		c = domain.EvolveCustomer(c, e)
	}
	return c
}

func foldCatalog(events ...domain.Event) domain.TagCatalog {
	var t domain.TagCatalog
	for _, e := range events {
		t = domain.EvolveTagCatalog(t, e)
	}
	return t
}

func validProfile() domain.BillingProfile {
	return domain.BillingProfile{
		CompanyName: "Contoso Billing Ltd", Email: "billing@contoso.com", FirstName: "Ada", LastName: "Lovelace",
		PhoneNumber: "+1 (425) 555-0100", Culture: "en-US", Language: "en",
		DefaultAddress: domain.Address{AddressLine1: "1 Microsoft Way", City: "Redmond", State: "WA", PostalCode: "98052", Country: "US"},
	}
}

func created() domain.CustomerCreated {
	return domain.CustomerCreated{CustomerID: custID, CompanyName: "Contoso", PrimaryDomain: "contoso.com", Relationship: domain.RelationshipDirectBill}
}

func withProfile(mod func(*domain.BillingProfile)) *domain.BillingProfile {
	p := validProfile()
	mod(&p)
	return &p
}

func TestCreateCustomer(t *testing.T) {
	base := domain.CreateCustomer{ID: custID, CompanyName: "  Contoso  ", PrimaryDomain: "Contoso.COM", Relationship: domain.RelationshipDirectBill}
	mod := func(f func(*domain.CreateCustomer)) domain.CreateCustomer { c := base; f(&c); return c }
	normalized := validProfile()
	tests := []struct {
		name  string
		given []domain.Event
		cmd   domain.CreateCustomer
		want  want
	}{
		{"trims name and lower-cases domain", nil, base, want{events: []domain.Event{created()}}},
		{"with billing profile", nil, mod(func(c *domain.CreateCustomer) { c.BillingProfile = withProfile(func(p *domain.BillingProfile) {}) }),
			want{events: []domain.Event{domain.CustomerCreated{CustomerID: custID, CompanyName: "Contoso", PrimaryDomain: "contoso.com", Relationship: domain.RelationshipDirectBill, BillingProfile: &normalized}}}},
		{"indirect reseller", nil, mod(func(c *domain.CreateCustomer) { c.Relationship = domain.RelationshipIndirectReseller }),
			want{events: []domain.Event{domain.CustomerCreated{CustomerID: custID, CompanyName: "Contoso", PrimaryDomain: "contoso.com", Relationship: domain.RelationshipIndirectReseller}}}},
		{"existing id", []domain.Event{created()}, base, want{code: domain.CodeConflict}},
		{"existing id, bad body: the body's problem, read or not", []domain.Event{created()}, mod(func(c *domain.CreateCustomer) { c.PrimaryDomain = "contoso" }),
			want{code: domain.CodeInvalid, field: "primaryDomain"}},
		{"id not a uuid", nil, mod(func(c *domain.CreateCustomer) { c.ID = "42" }), want{code: domain.CodeInvalid, field: "id"}},
		{"blank name", nil, mod(func(c *domain.CreateCustomer) { c.CompanyName = "   " }), want{code: domain.CodeInvalid, field: "companyName"}},
		{"name of 201 characters", nil, mod(func(c *domain.CreateCustomer) { c.CompanyName = strings.Repeat("é", 201) }), want{code: domain.CodeInvalid, field: "companyName"}},
		{"name of 200 characters", nil, mod(func(c *domain.CreateCustomer) { c.CompanyName = strings.Repeat("é", 200) }),
			want{events: []domain.Event{domain.CustomerCreated{CustomerID: custID, CompanyName: strings.Repeat("é", 200), PrimaryDomain: "contoso.com", Relationship: domain.RelationshipDirectBill}}}},
		{"domain without dot", nil, mod(func(c *domain.CreateCustomer) { c.PrimaryDomain = "contoso" }), want{code: domain.CodeInvalid, field: "primaryDomain"}},
		{"domain with underscore", nil, mod(func(c *domain.CreateCustomer) { c.PrimaryDomain = "con_toso.com" }), want{code: domain.CodeInvalid, field: "primaryDomain"}},
		{"domain label starting with hyphen", nil, mod(func(c *domain.CreateCustomer) { c.PrimaryDomain = "-contoso.com" }), want{code: domain.CodeInvalid, field: "primaryDomain"}},
		{"domain numeric tld", nil, mod(func(c *domain.CreateCustomer) { c.PrimaryDomain = "10.0.0.1" }), want{code: domain.CodeInvalid, field: "primaryDomain"}},
		{"domain label of 64", nil, mod(func(c *domain.CreateCustomer) { c.PrimaryDomain = strings.Repeat("a", 64) + ".com" }), want{code: domain.CodeInvalid, field: "primaryDomain"}},
		{"unknown relationship", nil, mod(func(c *domain.CreateCustomer) { c.Relationship = "tier2" }), want{code: domain.CodeInvalid, field: "relationship"}},
		{"bad billing email", nil, mod(func(c *domain.CreateCustomer) {
			c.BillingProfile = withProfile(func(p *domain.BillingProfile) { p.Email = "nope" })
		}), want{code: domain.CodeInvalid, field: "billingProfile.email"}},
		{"bad billing postal code", nil, mod(func(c *domain.CreateCustomer) {
			c.BillingProfile = withProfile(func(p *domain.BillingProfile) { p.DefaultAddress.PostalCode = "ABC" })
		}), want{code: domain.CodeInvalid, field: "billingProfile.defaultAddress.postalCode"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.DecideCustomer(foldCustomer(tc.given...), tc.cmd)
			check(t, got, err, tc.want)
		})
	}
}

func TestCreateCustomerWithTags(t *testing.T) {
	cat := foldCatalog(domain.TagCreated{TagID: "t-gold", Name: "Gold"})
	cust, catEv, err := domain.DecideCreateCustomer(domain.Customer{}, cat, domain.CreateCustomer{
		ID: custID, CompanyName: "Contoso", PrimaryDomain: "contoso.com", Relationship: domain.RelationshipDirectBill,
		Tags: []string{"gold", "New One"}, NewTagIDs: []string{"n0", "n1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, catEv, nil, want{events: []domain.Event{domain.TagCreated{TagID: "n1", Name: "New One"}}})
	check(t, cust, nil, want{events: []domain.Event{created(),
		domain.CustomerTagAssigned{CustomerID: custID, TagID: "t-gold", Name: "Gold"},
		domain.CustomerTagAssigned{CustomerID: custID, TagID: "n1", Name: "New One"}}})
	if _, ok := cat.Lookup("New One"); ok {
		t.Fatal("deciding changed the caller's catalog")
	}

	_, _, err = domain.DecideCreateCustomer(domain.Customer{}, cat, domain.CreateCustomer{
		ID: custID, CompanyName: "Contoso", PrimaryDomain: "contoso.com", Relationship: domain.RelationshipDirectBill,
		Tags: []string{"ok", "bad;tag"}, NewTagIDs: []string{"n0", "n1"},
	})
	check(t, nil, err, want{code: domain.CodeInvalid, field: "tags[1]"})
}

func TestCustomerCommands(t *testing.T) {
	profile := validProfile()
	ordered := domain.OrderCreated{CustomerID: custID, OrderID: orderID, Catalog: "azure", BillingCycle: "monthly",
		LineItems: []domain.LineItem{{OfferID: "offer-1", Quantity: 1}}}
	order := domain.CreateOrder{OrderID: orderID, Catalog: "azure", BillingCycle: "monthly", LineItems: []domain.LineItem{{OfferID: " offer-1 ", Quantity: 1}}}
	orderWith := func(f func(*domain.CreateOrder)) domain.CreateOrder {
		o := order
		o.LineItems = slices.Clone(order.LineItems)
		f(&o)
		return o
	}
	tests := []struct {
		name  string
		given []domain.Event
		cmd   domain.CustomerCommand
		want  want
	}{
		{"add second relationship", []domain.Event{created()}, domain.AddRelationship{Relationship: domain.RelationshipIndirectReseller},
			want{events: []domain.Event{domain.CustomerRelationshipAdded{CustomerID: custID, Relationship: domain.RelationshipIndirectReseller}}}},
		{"add relationship it has", []domain.Event{created()}, domain.AddRelationship{Relationship: domain.RelationshipDirectBill}, want{code: domain.CodeConflict}},
		{"add relationship after it was added", []domain.Event{created(), domain.CustomerRelationshipAdded{CustomerID: custID, Relationship: domain.RelationshipIndirectReseller}},
			domain.AddRelationship{Relationship: domain.RelationshipIndirectReseller}, want{code: domain.CodeConflict}},
		{"add unknown relationship", []domain.Event{created()}, domain.AddRelationship{Relationship: "x"}, want{code: domain.CodeInvalid, field: "relationship"}},
		{"add relationship to missing customer", nil, domain.AddRelationship{Relationship: domain.RelationshipDirectBill}, want{code: domain.CodeNotFound}},
		{"update billing profile", []domain.Event{created()}, domain.UpdateBillingProfile{BillingProfile: profile},
			want{events: []domain.Event{domain.CustomerBillingProfileUpdated{CustomerID: custID, BillingProfile: profile}}}},
		{"update carries previous profile", []domain.Event{created(), domain.CustomerBillingProfileUpdated{CustomerID: custID, BillingProfile: profile}},
			domain.UpdateBillingProfile{BillingProfile: *withProfile(func(p *domain.BillingProfile) { p.FirstName = "Grace" })},
			want{events: []domain.Event{domain.CustomerBillingProfileUpdated{CustomerID: custID, BillingProfile: *withProfile(func(p *domain.BillingProfile) { p.FirstName = "Grace" }), PreviousProfile: &profile}}}},
		{"update missing customer", nil, domain.UpdateBillingProfile{BillingProfile: profile}, want{code: domain.CodeNotFound}},
		{"create order", []domain.Event{created()}, order, want{events: []domain.Event{ordered}}},
		{"create order on missing customer", nil, order, want{code: domain.CodeNotFound}},
		{"create order twice", []domain.Event{created(), ordered}, order, want{code: domain.CodeConflict}},
		{"order with term", []domain.Event{created()}, orderWith(func(o *domain.CreateOrder) {
			o.LineItems[0].TermDuration = "P3Y"
			o.Catalog = "online-services"
			o.BillingCycle = "one-time"
		}),
			want{events: []domain.Event{domain.OrderCreated{CustomerID: custID, OrderID: orderID, Catalog: "online-services", BillingCycle: "one-time", LineItems: []domain.LineItem{{OfferID: "offer-1", Quantity: 1, TermDuration: "P3Y"}}}}}},
		{"order unknown catalog", []domain.Event{created()}, orderWith(func(o *domain.CreateOrder) { o.Catalog = "hardware" }), want{code: domain.CodeInvalid, field: "catalog"}},
		{"order unknown billing cycle", []domain.Event{created()}, orderWith(func(o *domain.CreateOrder) { o.BillingCycle = "weekly" }), want{code: domain.CodeInvalid, field: "billingCycle"}},
		{"order without line items", []domain.Event{created()}, orderWith(func(o *domain.CreateOrder) { o.LineItems = nil }), want{code: domain.CodeInvalid, field: "lineItems"}},
		{"order empty offer", []domain.Event{created()}, orderWith(func(o *domain.CreateOrder) { o.LineItems[0].OfferID = " " }), want{code: domain.CodeInvalid, field: "lineItems[0].offerId"}},
		{"order quantity 0", []domain.Event{created()}, orderWith(func(o *domain.CreateOrder) { o.LineItems[0].Quantity = 0 }), want{code: domain.CodeInvalid, field: "lineItems[0].quantity"}},
		{"order quantity 10001", []domain.Event{created()}, orderWith(func(o *domain.CreateOrder) { o.LineItems[0].Quantity = 10001 }), want{code: domain.CodeInvalid, field: "lineItems[0].quantity"}},
		{"order quantity 10000", []domain.Event{created()}, orderWith(func(o *domain.CreateOrder) { o.LineItems[0].Quantity = 10000 }),
			want{events: []domain.Event{domain.OrderCreated{CustomerID: custID, OrderID: orderID, Catalog: "azure", BillingCycle: "monthly", LineItems: []domain.LineItem{{OfferID: "offer-1", Quantity: 10000}}}}}},
		{"order bad term", []domain.Event{created()}, orderWith(func(o *domain.CreateOrder) { o.LineItems[0].TermDuration = "P2Y" }), want{code: domain.CodeInvalid, field: "lineItems[0].termDuration"}},
		{"complete order", []domain.Event{created(), ordered}, domain.CompleteOrder{OrderID: orderID},
			want{events: []domain.Event{domain.OrderCompleted{CustomerID: custID, OrderID: orderID}}}},
		{"cancel order", []domain.Event{created(), ordered}, domain.CancelOrder{OrderID: orderID},
			want{events: []domain.Event{domain.OrderCancelled{CustomerID: custID, OrderID: orderID}}}},
		{"complete completed", []domain.Event{created(), ordered, domain.OrderCompleted{CustomerID: custID, OrderID: orderID}}, domain.CompleteOrder{OrderID: orderID}, want{code: domain.CodeConflict}},
		{"cancel completed", []domain.Event{created(), ordered, domain.OrderCompleted{CustomerID: custID, OrderID: orderID}}, domain.CancelOrder{OrderID: orderID}, want{code: domain.CodeConflict}},
		{"complete cancelled", []domain.Event{created(), ordered, domain.OrderCancelled{CustomerID: custID, OrderID: orderID}}, domain.CompleteOrder{OrderID: orderID}, want{code: domain.CodeConflict}},
		{"cancel cancelled", []domain.Event{created(), ordered, domain.OrderCancelled{CustomerID: custID, OrderID: orderID}}, domain.CancelOrder{OrderID: orderID}, want{code: domain.CodeConflict}},
		{"complete unknown order", []domain.Event{created()}, domain.CompleteOrder{OrderID: orderID}, want{code: domain.CodeNotFound}},
		{"cancel order of missing customer", nil, domain.CancelOrder{OrderID: orderID}, want{code: domain.CodeNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.DecideCustomer(foldCustomer(tc.given...), tc.cmd)
			check(t, got, err, tc.want)
		})
	}
}

func TestBillingCompanyNameBecomesCustomerName(t *testing.T) {
	p := validProfile()
	c := foldCustomer(created(), domain.CustomerBillingProfileUpdated{CustomerID: custID, BillingProfile: p})
	if c.CompanyName != p.CompanyName {
		t.Fatalf("company name %q, want the billing one %q", c.CompanyName, p.CompanyName)
	}
	if v := c.View(domain.TagCatalog{}); v.CompanyName != p.CompanyName || v.BillingProfile.CompanyName != p.CompanyName {
		t.Fatalf("view %+v", v)
	}
}

func TestBillingProfileFields(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*domain.BillingProfile)
		field string // "" when valid
	}{
		{"valid", func(p *domain.BillingProfile) {}, ""},
		{"missing company", func(p *domain.BillingProfile) { p.CompanyName = "" }, "companyName"},
		{"long company", func(p *domain.BillingProfile) { p.CompanyName = strings.Repeat("x", 201) }, "companyName"},
		{"missing email", func(p *domain.BillingProfile) { p.Email = "" }, "email"},
		{"email with display name", func(p *domain.BillingProfile) { p.Email = "Ada <ada@contoso.com>" }, "email"},
		{"email without domain dot", func(p *domain.BillingProfile) { p.Email = "ada@contoso" }, "email"},
		{"missing first name", func(p *domain.BillingProfile) { p.FirstName = " " }, "firstName"},
		{"missing last name", func(p *domain.BillingProfile) { p.LastName = "" }, "lastName"},
		{"phone with letters", func(p *domain.BillingProfile) { p.PhoneNumber = "call me" }, "phoneNumber"},
		{"bad culture", func(p *domain.BillingProfile) { p.Culture = "xx-yy" }, "culture"},
		{"bad language", func(p *domain.BillingProfile) { p.Language = "english" }, "language"},
		{"no culture or language", func(p *domain.BillingProfile) { p.Culture, p.Language = "", "" }, ""},
		{"missing address line", func(p *domain.BillingProfile) { p.DefaultAddress.AddressLine1 = "" }, "defaultAddress.addressLine1"},
		{"missing city", func(p *domain.BillingProfile) { p.DefaultAddress.City = "" }, "defaultAddress.city"},
		{"missing country", func(p *domain.BillingProfile) { p.DefaultAddress.Country = "" }, "defaultAddress.country"},
		{"unknown country", func(p *domain.BillingProfile) { p.DefaultAddress.Country = "XX" }, "defaultAddress.country"},
		{"alpha-3 country", func(p *domain.BillingProfile) { p.DefaultAddress.Country = "USA" }, "defaultAddress.country"},
		{"lower-case country accepted", func(p *domain.BillingProfile) { p.DefaultAddress.Country = "us" }, ""},
		{"other country, free postal code", func(p *domain.BillingProfile) {
			p.DefaultAddress.Country, p.DefaultAddress.PostalCode = "JP", "100-0001"
		}, ""},
		{"other country, no postal code", func(p *domain.BillingProfile) { p.DefaultAddress.Country, p.DefaultAddress.PostalCode = "HK", "" }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := validProfile()
			tc.mod(&p)
			_, err := domain.DecideCustomer(foldCustomer(created()), domain.UpdateBillingProfile{BillingProfile: p})
			if tc.field == "" {
				check(t, nil, err, want{events: nil, code: ""})
				return
			}
			check(t, nil, err, want{code: domain.CodeInvalid, field: tc.field})
		})
	}
}

func TestPostalCodes(t *testing.T) {
	tests := []struct {
		country string
		valid   []string
		invalid []string
	}{
		{"US", []string{"98052", "98052-6399"}, []string{"9805", "980521", "98052-63", "ABCDE", ""}},
		{"CA", []string{"K1A 0B1", "k1a0b1", "H3Z 2Y7"}, []string{"K1A 0B", "D1A 0B1", "W1A 0B1", "12345", "K1A-0B1X"}},
		{"GB", []string{"SW1A 1AA", "EC1A 1BB", "W1A 0AX", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "sw1a1aa", "GIR 0AA"}, []string{"SW1A", "12345", "QW1 1AA", "SW1A 1AAA", "SW1A 1CA"}},
		{"DE", []string{"10115", "80331"}, []string{"1011", "101150", "D-10115", "ABCDE"}},
		{"FR", []string{"75001", "20000"}, []string{"7500", "750011", "F-75001"}},
		{"NL", []string{"1012 AB", "1012AB", "9999zz"}, []string{"0123 AB", "1012 A", "1012 ABC", "10123"}},
		{"AT", []string{"1010", "6020"}, []string{"101", "10100", "0100", "A-1010"}},
		{"CH", []string{"8001", "1200"}, []string{"800", "80011", "0800", "CH-8001"}},
	}
	for _, tc := range tests {
		for _, code := range append(slices.Clone(tc.valid), tc.invalid...) {
			isValid := slices.Contains(tc.valid, code)
			t.Run(fmt.Sprintf("%s/%q", tc.country, code), func(t *testing.T) {
				p := validProfile()
				p.DefaultAddress.Country, p.DefaultAddress.PostalCode = tc.country, code
				got, errs := domain.NormalizeBillingProfile("billingProfile", p)
				if isValid {
					if len(errs) > 0 {
						t.Fatalf("%s %q rejected: %+v", tc.country, code, errs)
					}
					if got.DefaultAddress.PostalCode != strings.ToUpper(code) {
						t.Fatalf("stored postal code %q", got.DefaultAddress.PostalCode)
					}
					return
				}
				if len(errs) != 1 || errs[0].Field != "billingProfile.defaultAddress.postalCode" {
					t.Fatalf("%s %q: errors %+v, want one on billingProfile.defaultAddress.postalCode", tc.country, code, errs)
				}
			})
		}
	}
	// A code valid in one country is checked against the country given.
	p := validProfile()
	p.DefaultAddress.Country, p.DefaultAddress.PostalCode = "AT", "98052"
	if _, errs := domain.NormalizeBillingProfile("", p); len(errs) != 1 || errs[0].Field != "defaultAddress.postalCode" {
		t.Fatalf("US code in AT: %+v", errs)
	}
}

func TestCountryCodes(t *testing.T) {
	n := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			if domain.IsCountryCode(string([]rune{a, b})) {
				n++
			}
		}
	}
	if n != 249 {
		t.Fatalf("%d country codes, ISO 3166-1 has 249", n)
	}
	for _, c := range []string{"US", "DE", "SS", "AX", "ZW"} {
		if !domain.IsCountryCode(c) {
			t.Errorf("%s rejected", c)
		}
	}
	for _, c := range []string{"UK", "EU", "XX", "us", "D", "E S", ""} {
		if domain.IsCountryCode(c) {
			t.Errorf("%q accepted", c)
		}
	}
}
