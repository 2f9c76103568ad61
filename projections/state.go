package projections

import (
	"context"
	"iter"
	"slices"
	"sort"
	"strings"
)

// CustomerListState is the customer list held in memory: the rebuild folds
// the log into it before bulk-writing, and tests use it as the oracle. It
// implements CustomerListWriter.
//
// Each tag keeps the set of customers holding it, so deleting a tag costs
// the number of its holders, not a scan of every customer.
type CustomerListState struct {
	customers map[[2]string]*memCustomer // (partner, customer)
	tags      map[[2]string]*memTag      // (partner, tag id)
}

type memCustomer struct {
	partner, id  string
	rels         []string
	company, dom string
	tags         []*memTag // few per customer: a slice beats a map
}

type memTag struct {
	id, name string
	holders  map[*memCustomer]struct{}
}

// NewCustomerListState returns an empty list.
func NewCustomerListState() *CustomerListState {
	return &CustomerListState{customers: map[[2]string]*memCustomer{}, tags: map[[2]string]*memTag{}}
}

func (s *CustomerListState) CreateCustomer(_ context.Context, p, id, rel, company, dom string) error {
	k := [2]string{p, id}
	if _, ok := s.customers[k]; ok {
		return nil
	}
	s.customers[k] = &memCustomer{partner: p, id: id, rels: []string{rel}, company: company, dom: dom}
	return nil
}

func (s *CustomerListState) AddRelationship(_ context.Context, p, id, rel string) error {
	c := s.customers[[2]string{p, id}]
	if c == nil || slices.Contains(c.rels, rel) {
		return nil
	}
	c.rels = append(c.rels, rel)
	return nil
}

func (s *CustomerListState) SetCompanyName(_ context.Context, p, id, name string) error {
	if c := s.customers[[2]string{p, id}]; c != nil {
		c.company = name
	}
	return nil
}

func (s *CustomerListState) CreateTag(_ context.Context, p, tagID, name string) error {
	s.tag(p, tagID, name)
	return nil
}

// tag returns the catalog entry, creating it with name if missing.
func (s *CustomerListState) tag(p, tagID, name string) *memTag {
	k := [2]string{p, tagID}
	t := s.tags[k]
	if t == nil {
		t = &memTag{id: tagID, name: name, holders: map[*memCustomer]struct{}{}}
		s.tags[k] = t
	}
	return t
}

func (s *CustomerListState) AssignTag(_ context.Context, p, id, tagID, name string) error {
	t := s.tag(p, tagID, name)
	c := s.customers[[2]string{p, id}]
	if c == nil || slices.Contains(c.tags, t) {
		return nil
	}
	c.tags = append(c.tags, t)
	t.holders[c] = struct{}{}
	return nil
}

func (s *CustomerListState) UnassignTag(_ context.Context, p, id, tagID string) error {
	t := s.tags[[2]string{p, tagID}]
	c := s.customers[[2]string{p, id}]
	if t == nil || c == nil {
		return nil
	}
	if i := slices.Index(c.tags, t); i >= 0 {
		c.tags = slices.Delete(c.tags, i, i+1)
		delete(t.holders, c)
	}
	return nil
}

func (s *CustomerListState) RenameTag(_ context.Context, p, tagID, name string) error {
	if t := s.tags[[2]string{p, tagID}]; t != nil {
		t.name = name
	}
	return nil
}

func (s *CustomerListState) DeleteTag(_ context.Context, p, tagID string) error {
	k := [2]string{p, tagID}
	t := s.tags[k]
	if t == nil {
		return nil
	}
	delete(s.tags, k)
	for c := range t.holders {
		if i := slices.Index(c.tags, t); i >= 0 {
			c.tags = slices.Delete(c.tags, i, i+1)
		}
	}
	return nil
}

// StateCustomer is one customer of the in-memory list: one row per
// relationship, all sharing the other fields.
type StateCustomer struct {
	PartnerID, ID              string
	Relationships              []string
	CompanyName, PrimaryDomain string
	CompanyKey                 string   // Fold(CompanyName)
	SearchText                 string   // SearchText(CompanyName, PrimaryDomain, ID)
	TagIDs, TagNames           []string // sorted by name, never nil
}

// Customers yields every customer in no particular order. The value is
// reused between iterations.
func (s *CustomerListState) Customers() iter.Seq[*StateCustomer] {
	return func(yield func(*StateCustomer) bool) {
		var sc StateCustomer
		var tags []*memTag
		for _, c := range s.customers {
			key := foldFast(c.company)
			tags = append(tags[:0], c.tags...)
			slices.SortFunc(tags, func(a, b *memTag) int { return strings.Compare(a.name, b.name) })
			ids, names := make([]string, len(tags)), make([]string, len(tags))
			for i, t := range tags {
				ids[i], names[i] = t.id, t.name
			}
			sc = StateCustomer{PartnerID: c.partner, ID: c.id, Relationships: c.rels, CompanyName: c.company, PrimaryDomain: c.dom,
				CompanyKey: key, SearchText: key + "\n" + c.dom + "\n" + foldFast(c.id), TagIDs: ids, TagNames: names}
			if !yield(&sc) {
				return
			}
		}
	}
}

// foldFast is Fold with a shortcut for ASCII text (ids, most names), where
// Fold only lowers case.
func foldFast(s string) string {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return Fold(s)
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if upper {
		return strings.ToLower(s)
	}
	return s
}

// Rows returns every row, ordered by partner, folded company name, id and
// relationship: the export's order, and the order a rebuild stores them in.
func (s *CustomerListState) Rows() []CustomerRow {
	n := 0
	for _, c := range s.customers {
		n += len(c.rels)
	}
	out := make([]CustomerRow, 0, n) // grown by append, 1M rows were copied 20 times over
	for c := range s.Customers() {
		for _, r := range c.Relationships {
			out = append(out, CustomerRow{PartnerID: c.PartnerID, TagIDs: c.TagIDs, CompanyKey: c.CompanyKey, SearchText: c.SearchText,
				CustomerItem: CustomerItem{ID: c.ID, Relationship: r, CompanyName: c.CompanyName, PrimaryDomain: c.PrimaryDomain, Tags: c.TagNames}})
		}
	}
	// Sorted by index, then moved once: swapping the rows themselves
	// (200 bytes each) made a 1M-event rebuild 5% slower.
	order := make([]int32, len(out))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int { return compareRows(&out[i], &out[j]) })
	sorted := make([]CustomerRow, len(out))
	for i, k := range order {
		sorted[i] = out[k]
	}
	return sorted
}

// compareRows compares one key at a time: most pairs differ in the name.
func compareRows(a, b *CustomerRow) int {
	if a.PartnerID != b.PartnerID {
		return strings.Compare(a.PartnerID, b.PartnerID)
	}
	if a.CompanyKey != b.CompanyKey {
		return strings.Compare(a.CompanyKey, b.CompanyKey)
	}
	if a.ID != b.ID {
		return strings.Compare(a.ID, b.ID)
	}
	return strings.Compare(a.Relationship, b.Relationship)
}

// TagAssignment is one customer holding one tag.
type TagAssignment struct{ PartnerID, CustomerID, TagID string }

// TagAssignments returns every customer's tags, in no particular order.
func (s *CustomerListState) TagAssignments() []TagAssignment {
	var out []TagAssignment
	for _, c := range s.customers {
		for _, t := range c.tags {
			out = append(out, TagAssignment{c.partner, c.id, t.id})
		}
	}
	return out
}

// Tags returns the catalog ordered by partner and name.
func (s *CustomerListState) Tags() []StoredTag {
	out := make([]StoredTag, 0, len(s.tags))
	for k, t := range s.tags {
		out = append(out, StoredTag{PartnerID: k[0], TagCount: TagCount{ID: t.id, Name: t.name, CustomerCount: int64(len(t.holders))}})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PartnerID != out[j].PartnerID {
			return out[i].PartnerID < out[j].PartnerID
		}
		return out[i].Name < out[j].Name
	})
	return out
}
