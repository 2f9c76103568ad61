package main

import (
	"fmt"

	"github.com/partnerhub/customers/domain"
)

// The generated data looks like a partner's list: company names from a few
// words (some with accents, which the search folds), tags from a small
// catalog, German addresses (country and postal code are checked together).

var nameWords = []string{"Contoso", "Fabrikam", "Northwind", "Müller", "Tailspin", "Woodgrove", "Adventure Works",
	"Litware", "Proseware", "Wingtip", "Alpine Ski", "Coho Winery", "Żabka", "Lucerne", "Margie's Travel", "Trey Research"}

var nameSuffixes = []string{"Ltd.", "GmbH", "Inc.", "AG", "S.A.", "B.V."}

// searchTerms are what the read scenarios type into the search box.
var searchTerms = []string{"contoso", "wind", "muller", "tail", "grove", "works", "ware", "zabka", "lucerne", "research", "gmbh", "ski"}

var tagNames = []string{"gold", "silver", "bronze", "eu", "us", "renewal-due", "strategic", "churn-risk"}

func companyName(i int64) string {
	return fmt.Sprintf("%s %s %d", nameWords[i%int64(len(nameWords))], nameSuffixes[(i/int64(len(nameWords)))%int64(len(nameSuffixes))], i)
}

func relationship(i int64) string {
	if i%3 == 0 {
		return domain.RelationshipIndirectReseller
	}
	return domain.RelationshipDirectBill
}

func billingProfile(company string, i int64) domain.BillingProfile {
	return domain.BillingProfile{
		CompanyName: company, Email: fmt.Sprintf("billing%d@example.com", i),
		FirstName: "Jo", LastName: fmt.Sprintf("Tester%d", i), PhoneNumber: "+49 30 1234567",
		Culture: "de-DE", Language: "de",
		DefaultAddress: domain.Address{AddressLine1: fmt.Sprintf("Hauptstraße %d", i%200+1), City: "Berlin",
			PostalCode: fmt.Sprintf("1%04d", i%10000), Country: "DE"},
	}
}

// orderBody is POST /v1/customers/{id}/orders.
type orderBody struct {
	Catalog      string            `json:"catalog"`
	BillingCycle string            `json:"billingCycle"`
	LineItems    []domain.LineItem `json:"lineItems"`
}

var catalogs = []string{"azure", "marketplace", "software", "online-services"}

func orderInput(i int64) orderBody {
	return orderBody{
		Catalog: catalogs[i%int64(len(catalogs))], BillingCycle: "monthly",
		LineItems: []domain.LineItem{{OfferID: fmt.Sprintf("offer-%d", i%50), Quantity: int(i%20) + 1, TermDuration: "P1Y"}},
	}
}

// customerBody is POST /v1/customers.
type customerBody struct {
	CompanyName   string `json:"companyName"`
	PrimaryDomain string `json:"primaryDomain"`
	Relationship  string `json:"relationship"`
}
