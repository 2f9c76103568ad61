package domain

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Limits of the contract (SPEC "Domain rules").
const (
	MaxCompanyNameLen  = 200
	MaxTagNameLen      = 50
	MaxTagsPerCustomer = 150
	MaxLineItems       = 100
	MaxQuantity        = 10000
	maxPersonNameLen   = 100
	maxFieldLen        = 200
	maxDomainLen       = 253
)

// isoCountries lists every ISO 3166-1 alpha-2 code, each followed by a space,
// so that a code is valid exactly when it occurs at an offset divisible by 3.
// A constant rather than a map keeps the package free of mutable state.
const isoCountries = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ " +
	"EC EE EG EH ER ES ET " +
	"FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT " +
	"JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ " +
	"LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ " +
	"OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY " +
	"QA " +
	"RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU " +
	"WF WS " +
	"YE YT " +
	"ZA ZM ZW "

// IsCountryCode reports whether code is an ISO 3166-1 alpha-2 code (upper case).
func IsCountryCode(code string) bool {
	if len(code) != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' {
		return false
	}
	for i := 0; i+2 <= len(isoCountries); i += 3 {
		if isoCountries[i:i+2] == code {
			return true
		}
	}
	return false
}

// Postal code formats of the countries SPEC names. Patterns are matched
// against the upper-cased, trimmed code. Compiled once; never modified.
var postalCodeFormats = map[string]struct {
	re      *regexp.Regexp
	example string
}{
	"US": {regexp.MustCompile(`^[0-9]{5}(-[0-9]{4})?$`), "12345 or 12345-6789"},
	// Canada: letters D, F, I, O, Q, U never occur; W and Z never lead.
	"CA": {regexp.MustCompile(`^[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z] ?[0-9][ABCEGHJ-NPRSTV-Z][0-9]$`), "K1A 0B1"},
	// United Kingdom: outward code (A9, A99, AA9, AA99, A9A, AA9A), inward 9AA.
	"GB": {regexp.MustCompile(`^(GIR ?0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRV-Y]) ?[0-9][ABD-HJLNP-UW-Z]{2})$`), "SW1A 1AA"},
	"DE": {regexp.MustCompile(`^[0-9]{5}$`), "10115"},
	"FR": {regexp.MustCompile(`^[0-9]{5}$`), "75001"},
	"NL": {regexp.MustCompile(`^[1-9][0-9]{3} ?[A-Z]{2}$`), "1012 AB"},
	"AT": {regexp.MustCompile(`^[1-9][0-9]{3}$`), "1010"},
	"CH": {regexp.MustCompile(`^[1-9][0-9]{3}$`), "8001"},
}

// dnsLabel is one label of a host name (RFC 1123), lower case.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// FoldName is the key under which tag names are compared ignoring case
// (Unicode case folding, so "STRASSE" and "straße" are the same tag).
func FoldName(name string) string {
	return cases.Fold().String(name)
}

func fieldErr(field, format string, args ...any) FieldError {
	return FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// join builds a JSON field path, leaving out an empty prefix.
func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// checkText validates a required or optional free-text field: length in
// characters and no control characters.
func checkText(errs *[]FieldError, field, value string, required bool, max int) {
	n := utf8.RuneCountInString(value)
	switch {
	case !utf8.ValidString(value):
		*errs = append(*errs, fieldErr(field, "must be valid UTF-8"))
	case required && n == 0:
		*errs = append(*errs, fieldErr(field, "is required"))
	case n > max:
		*errs = append(*errs, fieldErr(field, "must be at most %d characters", max))
	case strings.IndexFunc(value, unicode.IsControl) >= 0:
		*errs = append(*errs, fieldErr(field, "must not contain control characters"))
	}
}

// NormalizeCompanyName trims a company name and checks its length.
func normalizeCompanyName(errs *[]FieldError, field, name string) string {
	name = strings.TrimSpace(name)
	checkText(errs, field, name, true, MaxCompanyNameLen)
	return name
}

// NormalizeDomain lower-cases and checks a DNS name: at least two labels,
// letters, digits and inner hyphens, a non-numeric top-level label.
func NormalizeDomain(domain string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(domain))
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", fmt.Errorf("is required")
	}
	if len(d) > maxDomainLen {
		return "", fmt.Errorf("must be at most %d characters", maxDomainLen)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("must be a DNS name such as contoso.com")
	}
	for _, l := range labels {
		if !dnsLabel.MatchString(l) {
			return "", fmt.Errorf("must be a DNS name such as contoso.com (label %q is not valid)", l)
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", fmt.Errorf("must be a DNS name such as contoso.com (the last label must not be numeric)")
	}
	return d, nil
}

// NormalizeEmail trims and checks a bare e-mail address (no display name),
// whose domain part must be a DNS name.
func NormalizeEmail(email string) (string, error) {
	e := strings.TrimSpace(email)
	if e == "" {
		return "", fmt.Errorf("is required")
	}
	if len(e) > 254 {
		return "", fmt.Errorf("must be at most 254 characters")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e {
		return "", fmt.Errorf("must be an e-mail address such as name@contoso.com")
	}
	at := strings.LastIndexByte(e, '@')
	// localhost is the one single-label domain accepted: the bootstrap admin
	// of a first local run is admin@localhost (SPEC "Tenancy and roles").
	if host := e[at+1:]; host == "localhost" {
		return e, nil
	}
	if _, err := NormalizeDomain(e[at+1:]); err != nil {
		return "", fmt.Errorf("must be an e-mail address such as name@contoso.com")
	}
	return e, nil
}

// ValidRelationship reports whether r is one of the two relationships.
func ValidRelationship(r string) bool {
	return r == RelationshipDirectBill || r == RelationshipIndirectReseller
}

// NormalizeBillingProfile trims every field, upper-cases the country and the
// postal code of the checked countries, and validates the whole profile. Field
// errors are named under prefix (for example "billingProfile").
func NormalizeBillingProfile(prefix string, p BillingProfile) (BillingProfile, []FieldError) {
	var errs []FieldError
	trim := strings.TrimSpace
	p.CompanyName = normalizeCompanyName(&errs, join(prefix, "companyName"), p.CompanyName)
	if e, err := NormalizeEmail(p.Email); err != nil {
		errs = append(errs, fieldErr(join(prefix, "email"), "%v", err))
	} else {
		p.Email = e
	}
	p.FirstName, p.LastName, p.PhoneNumber = trim(p.FirstName), trim(p.LastName), trim(p.PhoneNumber)
	checkText(&errs, join(prefix, "firstName"), p.FirstName, true, maxPersonNameLen)
	checkText(&errs, join(prefix, "lastName"), p.LastName, true, maxPersonNameLen)
	checkText(&errs, join(prefix, "phoneNumber"), p.PhoneNumber, false, 50)
	if p.PhoneNumber != "" && strings.Trim(p.PhoneNumber, "+0123456789 ()-./") != "" {
		errs = append(errs, fieldErr(join(prefix, "phoneNumber"), "must contain only digits, spaces and + ( ) - . /"))
	}
	p.Culture, p.Language = trim(p.Culture), trim(p.Language)
	for _, f := range []struct {
		name  string
		value *string
	}{{"culture", &p.Culture}, {"language", &p.Language}} {
		if *f.value == "" {
			continue
		}
		// A known BCP 47 tag such as "en-US" or "de"; stored in canonical form.
		tag, err := language.Parse(*f.value)
		if err != nil || len(*f.value) > 35 {
			errs = append(errs, fieldErr(join(prefix, f.name), "must be a language tag such as en-US"))
			continue
		}
		*f.value = tag.String()
	}
	a := &p.DefaultAddress
	ap := join(prefix, "defaultAddress")
	a.AddressLine1, a.AddressLine2, a.City = trim(a.AddressLine1), trim(a.AddressLine2), trim(a.City)
	a.State, a.Region = trim(a.State), trim(a.Region)
	a.Country = strings.ToUpper(trim(a.Country))
	a.PostalCode = trim(a.PostalCode)
	checkText(&errs, join(ap, "addressLine1"), a.AddressLine1, true, maxFieldLen)
	checkText(&errs, join(ap, "addressLine2"), a.AddressLine2, false, maxFieldLen)
	checkText(&errs, join(ap, "city"), a.City, true, maxFieldLen)
	checkText(&errs, join(ap, "state"), a.State, false, maxFieldLen)
	checkText(&errs, join(ap, "region"), a.Region, false, maxFieldLen)
	switch {
	case a.Country == "":
		errs = append(errs, fieldErr(join(ap, "country"), "is required"))
	case !IsCountryCode(a.Country):
		errs = append(errs, fieldErr(join(ap, "country"), "must be an ISO 3166-1 alpha-2 country code such as US"))
	}
	if f, ok := postalCodeFormats[a.Country]; ok {
		a.PostalCode = strings.ToUpper(a.PostalCode)
		if !f.re.MatchString(a.PostalCode) {
			errs = append(errs, fieldErr(join(ap, "postalCode"), "is not a valid postal code for %s (for example %s)", a.Country, f.example))
		}
	} else {
		checkText(&errs, join(ap, "postalCode"), a.PostalCode, false, 20)
	}
	return p, errs
}

// NormalizeTagName trims a tag name and checks it: 1 to 50 characters, no
// control characters, no ';' (the export joins tags with "; ").
func NormalizeTagName(name string) (string, error) {
	n := strings.TrimSpace(name)
	switch {
	case !utf8.ValidString(n):
		return "", fmt.Errorf("must be valid UTF-8")
	case n == "":
		return "", fmt.Errorf("is required")
	case utf8.RuneCountInString(n) > MaxTagNameLen:
		return "", fmt.Errorf("must be at most %d characters", MaxTagNameLen)
	case strings.IndexFunc(n, unicode.IsControl) >= 0:
		return "", fmt.Errorf("must not contain control characters")
	case strings.ContainsRune(n, ';'):
		return "", fmt.Errorf("must not contain ';'")
	}
	return n, nil
}
