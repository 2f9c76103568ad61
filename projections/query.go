package projections

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode"

	"github.com/partnerhub/customers/domain"
)

// Search fields (SearchParams.SearchBy).
const (
	SearchAll         = "all"
	SearchCompanyName = "companyName"
	SearchDomain      = "domain"
	SearchID          = "id"
	SearchTag         = "tag"
)

// Sort orders (SearchParams.Sort).
const (
	SortCompanyName     = "companyName"
	SortCompanyNameDesc = "-companyName"
	SortDomain          = "domain"
	SortDomainDesc      = "-domain"
)

// Page size limits shared by both queries.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// SearchParams are GET /v1/customers' query parameters. Zero values mean the
// defaults: SearchBy all, Sort companyName, Limit 50.
type SearchParams struct {
	Q            string
	SearchBy     string
	Relationship string   // "" for both
	Tags         []string // every one must be assigned (case-insensitive)
	Sort         string
	Limit        int
	Cursor       string // opaque, from CustomerPage.NextCursor
}

// CustomerItem is one row of the list: one per customer and relationship.
type CustomerItem struct {
	ID            string   `json:"id"`
	Relationship  string   `json:"relationship"`
	CompanyName   string   `json:"companyName"`
	PrimaryDomain string   `json:"primaryDomain"`
	Tags          []string `json:"tags"` // sorted by name, never nil
}

// CustomerPage is one page of search results; NextCursor is "" on the last.
type CustomerPage struct {
	Items      []CustomerItem `json:"items"`
	NextCursor string         `json:"nextCursor"`
}

// TagCount is one catalog tag with the number of customers holding it.
type TagCount struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	CustomerCount int64  `json:"customerCount"`
}

// SearchQuery is SearchParams validated and decoded, ready for a backend.
type SearchQuery struct {
	Text         string // Q folded, control characters as spaces, trimmed
	Pattern      string // LIKE pattern of Text ("" when Q is empty)
	SearchBy     string
	Relationship string
	TagsFolded   []string // Fold()ed tag names
	Sort         string
	Desc         bool
	Limit        int
	After        *CustomerCursor // nil on the first page
}

// CustomerCursor is the keyset position after which the next page starts.
type CustomerCursor struct {
	Sort         string `json:"o"`
	Key          string `json:"k"` // folded company name or domain
	ID           string `json:"i"`
	Relationship string `json:"r"`
}

// Encode returns the opaque cursor string.
func (c CustomerCursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SortKey returns the value a row is ordered by under sort: the folded
// company name (so that ordering ignores case and accents, and is the same
// byte order on every backend) or the (already lower-case) domain.
func SortKey(sort, companyName, primaryDomain string) string {
	if strings.TrimPrefix(sort, "-") == SortDomain {
		return primaryDomain
	}
	return Fold(companyName)
}

// Prepare validates p and decodes its cursor. Every problem is reported at
// once as a domain.CodeInvalid error.
func (p SearchParams) Prepare() (SearchQuery, error) {
	q := SearchQuery{SearchBy: p.SearchBy, Relationship: p.Relationship, Sort: p.Sort, Limit: p.Limit}
	var errs []domain.FieldError
	if q.SearchBy == "" {
		q.SearchBy = SearchAll
	}
	switch q.SearchBy {
	case SearchAll, SearchCompanyName, SearchDomain, SearchID, SearchTag:
	default:
		errs = append(errs, domain.FieldError{Field: "searchBy", Message: "must be one of all, companyName, domain, id, tag"})
	}
	switch q.Relationship {
	case "", domain.RelationshipDirectBill, domain.RelationshipIndirectReseller:
	default:
		errs = append(errs, domain.FieldError{Field: "relationship", Message: "must be direct-bill or indirect-reseller"})
	}
	if q.Sort == "" {
		q.Sort = SortCompanyName
	}
	switch q.Sort {
	case SortCompanyName, SortCompanyNameDesc, SortDomain, SortDomainDesc:
	default:
		errs = append(errs, domain.FieldError{Field: "sort", Message: "must be one of companyName, -companyName, domain, -domain"})
	}
	q.Desc = strings.HasPrefix(q.Sort, "-")
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		errs = append(errs, domain.FieldError{Field: "limit", Message: "must be between 1 and 500"})
	}
	// Control characters (a newline, a tab) become spaces: the stored
	// search text separates its fields with newlines, and a query must not
	// match across two fields.
	if t := strings.TrimSpace(strings.Map(controlToSpace, p.Q)); t != "" {
		q.Text = Fold(t)
		q.Pattern = LikePattern(q.Text)
	}
	for _, t := range p.Tags {
		if t = strings.TrimSpace(t); t != "" {
			q.TagsFolded = append(q.TagsFolded, Fold(t))
		}
	}
	if p.Cursor != "" {
		var c CustomerCursor
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		switch {
		case err != nil || c.ID == "":
			errs = append(errs, domain.FieldError{Field: "cursor", Message: "is not a cursor this API issued"})
		case c.Sort != q.Sort:
			errs = append(errs, domain.FieldError{Field: "cursor", Message: "was issued for another sort order"})
		default:
			q.After = &c
		}
	}
	if len(errs) > 0 {
		return SearchQuery{}, domain.Invalid(errs...)
	}
	return q, nil
}

// NextCursor returns the cursor after the last item when the page is full.
func (q SearchQuery) NextCursor(items []CustomerItem) string {
	if len(items) < q.Limit || len(items) == 0 {
		return ""
	}
	last := items[len(items)-1]
	return CustomerCursor{Sort: q.Sort, Key: SortKey(q.Sort, last.CompanyName, last.PrimaryDomain), ID: last.ID, Relationship: last.Relationship}.Encode()
}

// Activity operations and resource types (SPEC "Activity log").
const (
	OpCreateCustomer               = "create_customer"
	OpAddCustomerRelationship      = "add_customer_relationship"
	OpUpdateCustomerBillingProfile = "update_customer_billing_profile"
	OpCreateOrder                  = "create_order"
	OpCompleteOrder                = "complete_order"
	OpCancelOrder                  = "cancel_order"
	OpAssignCustomerTag            = "assign_customer_tag"
	OpUnassignCustomerTag          = "unassign_customer_tag"
	OpCreateTag                    = "create_tag"
	OpRenameTag                    = "rename_tag"
	OpDeleteTag                    = "delete_tag"
	OpCreateUser                   = "create_user"

	ResourceCustomer = "customer"
	ResourceOrder    = "order"
	ResourceTag      = "tag"
	ResourceUser     = "user"
)

// ActivityParams are GET /v1/activity's query parameters. A zero From or To
// is an open bound: the API applies SPEC's 30-day default before calling.
type ActivityParams struct {
	From, To     time.Time // inclusive From, exclusive To
	CustomerID   string
	ResourceType string
	Operation    string
	User         string // partner user's email
	Limit        int    // 1..500, default 50
	Cursor       string
}

// ActivityEntry is one activity-log entry (SPEC "Activity log").
type ActivityEntry struct {
	At           time.Time `json:"at"`
	PartnerUser  string    `json:"partnerUser"`
	CustomerID   string    `json:"customerId"`
	CustomerName string    `json:"customerName"`
	Operation    string    `json:"operation"`
	ResourceType string    `json:"resourceType"`
	OldValue     string    `json:"oldValue"`
	NewValue     string    `json:"newValue"`
	Position     int64     `json:"position"`
	PartnerID    string    `json:"-"`
}

// ActivityPage is one page of entries, newest first.
type ActivityPage struct {
	Items      []ActivityEntry `json:"items"`
	NextCursor string          `json:"nextCursor"`
}

// ActivityQuery is ActivityParams validated, ready for a backend.
type ActivityQuery struct {
	ActivityParams
	Before int64 // only entries below this position; 0: no bound
}

type activityCursor struct {
	Before int64 `json:"b"`
}

// Prepare validates p and decodes its cursor.
func (p ActivityParams) Prepare() (ActivityQuery, error) {
	q := ActivityQuery{ActivityParams: p}
	var errs []domain.FieldError
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		errs = append(errs, domain.FieldError{Field: "limit", Message: "must be between 1 and 500"})
	}
	switch q.ResourceType {
	case "", ResourceCustomer, ResourceOrder, ResourceTag, ResourceUser:
	default:
		errs = append(errs, domain.FieldError{Field: "resourceType", Message: "must be one of customer, order, tag, user"})
	}
	if !p.From.IsZero() && !p.To.IsZero() && p.To.Before(p.From) {
		errs = append(errs, domain.FieldError{Field: "to", Message: "must not be before from"})
	}
	if p.Cursor != "" {
		var c activityCursor
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		if err != nil || c.Before < 1 {
			errs = append(errs, domain.FieldError{Field: "cursor", Message: "is not a cursor this API issued"})
		}
		q.Before = c.Before
	}
	if len(errs) > 0 {
		return ActivityQuery{}, domain.Invalid(errs...)
	}
	return q, nil
}

// NextCursor returns the cursor after the last entry when the page is full.
func (q ActivityQuery) NextCursor(items []ActivityEntry) string {
	if len(items) < q.Limit || len(items) == 0 {
		return ""
	}
	b, _ := json.Marshal(activityCursor{Before: items[len(items)-1].Position})
	return base64.RawURLEncoding.EncodeToString(b)
}

func controlToSpace(r rune) rune {
	if unicode.IsControl(r) {
		return ' '
	}
	return r
}
