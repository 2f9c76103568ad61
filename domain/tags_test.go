package domain_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/partnerhub/customers/domain"
)

func TestTagCatalog(t *testing.T) {
	gold := domain.TagCreated{TagID: "t1", Name: "Gold"}
	silver := domain.TagCreated{TagID: "t2", Name: "Silver"}
	tests := []struct {
		name  string
		given []domain.Event
		cmd   domain.TagCommand
		want  want
	}{
		{"create", nil, domain.CreateTag{TagID: "t1", Name: " Gold "}, want{events: []domain.Event{gold}}},
		{"create 50 characters", nil, domain.CreateTag{TagID: "t1", Name: strings.Repeat("ü", 50)}, want{events: []domain.Event{domain.TagCreated{TagID: "t1", Name: strings.Repeat("ü", 50)}}}},
		{"create 51 characters", nil, domain.CreateTag{TagID: "t1", Name: strings.Repeat("ü", 51)}, want{code: domain.CodeInvalid, field: "name"}},
		{"create empty", nil, domain.CreateTag{TagID: "t1", Name: "  "}, want{code: domain.CodeInvalid, field: "name"}},
		{"create with semicolon", nil, domain.CreateTag{TagID: "t1", Name: "a;b"}, want{code: domain.CodeInvalid, field: "name"}},
		{"create with control character", nil, domain.CreateTag{TagID: "t1", Name: "a\tb"}, want{code: domain.CodeInvalid, field: "name"}},
		{"create with newline", nil, domain.CreateTag{TagID: "t1", Name: "a\nb"}, want{code: domain.CodeInvalid, field: "name"}},
		{"create clash ignoring case", []domain.Event{gold}, domain.CreateTag{TagID: "t9", Name: "GOLD"}, want{code: domain.CodeConflict}},
		{"create clash by case folding", []domain.Event{domain.TagCreated{TagID: "t1", Name: "Straße"}}, domain.CreateTag{TagID: "t9", Name: "STRASSE"}, want{code: domain.CodeConflict}},
		{"create after delete", []domain.Event{gold, domain.TagDeleted{TagID: "t1", Name: "Gold"}}, domain.CreateTag{TagID: "t9", Name: "gold"}, want{events: []domain.Event{domain.TagCreated{TagID: "t9", Name: "gold"}}}},
		{"rename", []domain.Event{gold}, domain.RenameTag{Name: "gold", NewName: "Platinum"}, want{events: []domain.Event{domain.TagRenamed{TagID: "t1", OldName: "Gold", NewName: "Platinum"}}}},
		{"rename to own other case", []domain.Event{gold}, domain.RenameTag{Name: "Gold", NewName: "GOLD"}, want{events: []domain.Event{domain.TagRenamed{TagID: "t1", OldName: "Gold", NewName: "GOLD"}}}},
		{"rename to same name", []domain.Event{gold}, domain.RenameTag{Name: "Gold", NewName: "Gold"}, want{events: nil}},
		{"rename onto another tag", []domain.Event{gold, silver}, domain.RenameTag{Name: "Gold", NewName: "silver"}, want{code: domain.CodeConflict}},
		{"rename unknown", []domain.Event{gold}, domain.RenameTag{Name: "Bronze", NewName: "Copper"}, want{code: domain.CodeNotFound}},
		{"rename to invalid", []domain.Event{gold}, domain.RenameTag{Name: "Gold", NewName: "a;b"}, want{code: domain.CodeInvalid, field: "name"}},
		{"rename frees the old name", []domain.Event{gold, domain.TagRenamed{TagID: "t1", OldName: "Gold", NewName: "Platinum"}}, domain.CreateTag{TagID: "t9", Name: "Gold"},
			want{events: []domain.Event{domain.TagCreated{TagID: "t9", Name: "Gold"}}}},
		{"delete ignoring case", []domain.Event{gold}, domain.DeleteTag{Name: "GOLD"}, want{events: []domain.Event{domain.TagDeleted{TagID: "t1", Name: "Gold"}}}},
		{"delete unknown", []domain.Event{gold}, domain.DeleteTag{Name: "Bronze"}, want{code: domain.CodeNotFound}},
		{"delete deleted", []domain.Event{gold, domain.TagDeleted{TagID: "t1", Name: "Gold"}}, domain.DeleteTag{Name: "Gold"}, want{code: domain.CodeNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.DecideTagCatalog(foldCatalog(tc.given...), tc.cmd)
			check(t, got, err, tc.want)
		})
	}
}

func TestTagAssignment(t *testing.T) {
	const other = "9a9a9a9a-2b7d-4a55-9a0e-0d4b2d7e9a01"
	gold := domain.TagCreated{TagID: "t1", Name: "Gold"}
	silver := domain.TagCreated{TagID: "t2", Name: "Silver"}
	hasGold := domain.CustomerTagAssigned{CustomerID: custID, TagID: "t1", Name: "Gold"}
	tests := []struct {
		name      string
		catalog   []domain.Event
		customers [][]domain.Event
		cmd       domain.ChangeTags
		wantCat   []domain.Event
		wantCust  [][]domain.Event
		err       want
	}{
		{name: "existing tag matched ignoring case, catalog spelling",
			catalog: []domain.Event{gold}, customers: [][]domain.Event{{created()}},
			cmd:      domain.ChangeTags{Add: []string{"gOLD"}, NewTagIDs: []string{"n0"}},
			wantCust: [][]domain.Event{{hasGold}}},
		{name: "new tag is created and assigned",
			customers: [][]domain.Event{{created()}},
			cmd:       domain.ChangeTags{Add: []string{"Gold"}, NewTagIDs: []string{"t1"}},
			wantCat:   []domain.Event{gold}, wantCust: [][]domain.Event{{hasGold}}},
		{name: "same new name twice in different case creates one tag",
			customers: [][]domain.Event{{created()}},
			cmd:       domain.ChangeTags{Add: []string{"Gold", "GOLD"}, NewTagIDs: []string{"t1", "t9"}},
			wantCat:   []domain.Event{gold}, wantCust: [][]domain.Event{{hasGold}}},
		{name: "assigning a tag the customer has is a no-op",
			catalog: []domain.Event{gold}, customers: [][]domain.Event{{created(), hasGold}},
			cmd:      domain.ChangeTags{Add: []string{"gold"}, NewTagIDs: []string{"n0"}},
			wantCust: [][]domain.Event{nil}},
		{name: "remove ignoring case",
			catalog: []domain.Event{gold}, customers: [][]domain.Event{{created(), hasGold}},
			cmd:      domain.ChangeTags{Remove: []string{"GOLD"}},
			wantCust: [][]domain.Event{{domain.CustomerTagUnassigned{CustomerID: custID, TagID: "t1", Name: "Gold"}}}},
		{name: "remove a tag the customer lacks is a no-op",
			catalog: []domain.Event{gold}, customers: [][]domain.Event{{created()}},
			cmd:      domain.ChangeTags{Remove: []string{"Gold", "not-in-catalog"}},
			wantCust: [][]domain.Event{nil}},
		{name: "renamed tag is assigned under its new name",
			catalog:   []domain.Event{gold, domain.TagRenamed{TagID: "t1", OldName: "Gold", NewName: "Platinum"}},
			customers: [][]domain.Event{{created()}},
			cmd:       domain.ChangeTags{Add: []string{"platinum"}, NewTagIDs: []string{"n0"}},
			wantCust:  [][]domain.Event{{domain.CustomerTagAssigned{CustomerID: custID, TagID: "t1", Name: "Platinum"}}}},
		{name: "bulk: each customer gets what it lacks",
			catalog: []domain.Event{gold, silver},
			customers: [][]domain.Event{{created(), hasGold},
				{domain.CustomerCreated{CustomerID: other, CompanyName: "B", PrimaryDomain: "b.com", Relationship: domain.RelationshipDirectBill}}},
			cmd:     domain.ChangeTags{Add: []string{"gold", "New"}, Remove: []string{"silver"}, NewTagIDs: []string{"n0", "n1"}},
			wantCat: []domain.Event{domain.TagCreated{TagID: "n1", Name: "New"}},
			wantCust: [][]domain.Event{
				{domain.CustomerTagAssigned{CustomerID: custID, TagID: "n1", Name: "New"}},
				{domain.CustomerTagAssigned{CustomerID: other, TagID: "t1", Name: "Gold"}, domain.CustomerTagAssigned{CustomerID: other, TagID: "n1", Name: "New"}}}},
		{name: "unknown customer is 404",
			catalog: []domain.Event{gold}, customers: [][]domain.Event{{created()}, nil},
			cmd: domain.ChangeTags{Add: []string{"gold"}, NewTagIDs: []string{"n0"}},
			err: want{code: domain.CodeNotFound}},
		{name: "invalid add name names its index",
			customers: [][]domain.Event{{created()}},
			cmd:       domain.ChangeTags{Add: []string{"ok", "x;y"}, NewTagIDs: []string{"n0", "n1"}},
			err:       want{code: domain.CodeInvalid, field: "add[1]"}},
		{name: "invalid remove name names its index",
			customers: [][]domain.Event{{created()}},
			cmd:       domain.ChangeTags{Remove: []string{strings.Repeat("x", 51)}},
			err:       want{code: domain.CodeInvalid, field: "remove[0]"}},
		{name: "same name added and removed",
			customers: [][]domain.Event{{created()}},
			cmd:       domain.ChangeTags{Add: []string{"Gold"}, Remove: []string{"gold"}, NewTagIDs: []string{"n0"}},
			err:       want{code: domain.CodeInvalid, field: "remove[0]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var customers []domain.Customer
			for i, evs := range tc.customers {
				c := foldCustomer(evs...)
				if evs == nil {
					c.ID = fmt.Sprint("missing-", i)
				}
				customers = append(customers, c)
			}
			cat, cust, err := domain.DecideTagAssignment(foldCatalog(tc.catalog...), customers, tc.cmd)
			if tc.err.code != "" {
				check(t, nil, err, tc.err)
				return
			}
			check(t, cat, err, want{events: tc.wantCat})
			if len(cust) != len(tc.wantCust) {
				t.Fatalf("got %d customers' events, want %d", len(cust), len(tc.wantCust))
			}
			for i := range cust {
				check(t, cust[i], nil, want{events: tc.wantCust[i]})
			}
		})
	}
}

// customerWithTags returns a catalog of n tags and a customer holding all.
func customerWithTags(n int) ([]domain.Event, []domain.Event) {
	var catalog []domain.Event
	cust := []domain.Event{created()}
	for i := range n {
		id, name := fmt.Sprint("t", i), fmt.Sprint("tag-", i)
		catalog = append(catalog, domain.TagCreated{TagID: id, Name: name})
		cust = append(cust, domain.CustomerTagAssigned{CustomerID: custID, TagID: id, Name: name})
	}
	return catalog, cust
}

func TestTagLimit(t *testing.T) {
	add := func(names ...string) domain.ChangeTags {
		return domain.ChangeTags{Add: names, NewTagIDs: names}
	}
	t.Run("150th tag is allowed", func(t *testing.T) {
		catalog, cust := customerWithTags(149)
		_, evs, err := domain.DecideTagAssignment(foldCatalog(catalog...), []domain.Customer{foldCustomer(cust...)}, add("one-more"))
		if err != nil || len(evs[0]) != 1 {
			t.Fatalf("events %v, error %v", evs, err)
		}
	})
	t.Run("151st tag is refused", func(t *testing.T) {
		catalog, cust := customerWithTags(150)
		_, _, err := domain.DecideTagAssignment(foldCatalog(catalog...), []domain.Customer{foldCustomer(cust...)}, add("one-more"))
		check(t, nil, err, want{code: domain.CodeInvalid, field: "add"})
	})
	t.Run("re-adding a held tag at the limit is fine", func(t *testing.T) {
		catalog, cust := customerWithTags(150)
		_, evs, err := domain.DecideTagAssignment(foldCatalog(catalog...), []domain.Customer{foldCustomer(cust...)}, add("TAG-7"))
		if err != nil || len(evs[0]) != 0 {
			t.Fatalf("events %v, error %v", evs, err)
		}
	})
	t.Run("removing one makes room in the same change", func(t *testing.T) {
		catalog, cust := customerWithTags(150)
		cmd := add("one-more")
		cmd.Remove = []string{"tag-0"}
		_, evs, err := domain.DecideTagAssignment(foldCatalog(catalog...), []domain.Customer{foldCustomer(cust...)}, cmd)
		if err != nil || len(evs[0]) != 2 {
			t.Fatalf("events %v, error %v", evs, err)
		}
	})
	t.Run("deleted catalog tags do not count", func(t *testing.T) {
		catalog, cust := customerWithTags(150)
		catalog = append(catalog, domain.TagDeleted{TagID: "t3", Name: "tag-3"})
		cat := foldCatalog(catalog...)
		c := foldCustomer(cust...)
		if n := len(c.EffectiveTags(cat)); n != 149 {
			t.Fatalf("%d effective tags, want 149", n)
		}
		if _, _, err := domain.DecideTagAssignment(cat, []domain.Customer{c}, add("one-more")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("limit names the customer in a bulk change", func(t *testing.T) {
		catalog, cust := customerWithTags(150)
		_, _, err := domain.DecideTagAssignment(foldCatalog(catalog...), []domain.Customer{foldCustomer(cust...)}, domain.ChangeTags{Add: []string{"x"}, NewTagIDs: []string{"x"}})
		if err == nil || !strings.Contains(err.Error(), custID) {
			t.Fatalf("error %v does not name the customer", err)
		}
	})
}

func TestEffectiveTagsFollowCatalog(t *testing.T) {
	cat := foldCatalog(
		domain.TagCreated{TagID: "t1", Name: "Gold"},
		domain.TagCreated{TagID: "t2", Name: "bronze"},
		domain.TagCreated{TagID: "t3", Name: "Silver"},
		domain.TagRenamed{TagID: "t1", OldName: "Gold", NewName: "Platinum"},
		domain.TagDeleted{TagID: "t3", Name: "Silver"},
	)
	c := foldCustomer(created(),
		domain.CustomerTagAssigned{CustomerID: custID, TagID: "t1", Name: "Gold"},
		domain.CustomerTagAssigned{CustomerID: custID, TagID: "t2", Name: "bronze"},
		domain.CustomerTagAssigned{CustomerID: custID, TagID: "t3", Name: "Silver"},
	)
	got := c.View(cat).Tags
	if strings.Join(got, ",") != "bronze,Platinum" {
		t.Fatalf("tags %q, want [bronze Platinum]", got)
	}
}

func TestUserAndPartner(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	userID := "5d3c1a8e-2b7d-4a55-9a0e-0d4b2d7e9a01"
	tests := []struct {
		name  string
		given []domain.Event
		cmd   domain.CreateUser
		want  want
	}{
		{"create lower-cases email", nil, domain.CreateUser{UserID: userID, Email: " Ada@Contoso.COM ", Role: domain.RoleAdminAgent, TokenHash: hash},
			want{events: []domain.Event{domain.UserCreated{UserID: userID, Email: "ada@contoso.com", Role: domain.RoleAdminAgent, TokenHash: hash}}}},
		{"bad email", nil, domain.CreateUser{UserID: userID, Email: "ada", Role: domain.RoleSalesAgent, TokenHash: hash}, want{code: domain.CodeInvalid, field: "email"}},
		{"bad role", nil, domain.CreateUser{UserID: userID, Email: "a@b.com", Role: "root", TokenHash: hash}, want{code: domain.CodeInvalid, field: "role"}},
		{"bad hash", nil, domain.CreateUser{UserID: userID, Email: "a@b.com", Role: domain.RoleSalesAgent, TokenHash: "plain-token"}, want{code: domain.CodeInvalid}},
		{"exists", []domain.Event{domain.UserCreated{UserID: userID}}, domain.CreateUser{UserID: userID, Email: "a@b.com", Role: domain.RoleSalesAgent, TokenHash: hash}, want{code: domain.CodeConflict}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u domain.User
			for _, e := range tc.given {
				u = domain.EvolveUser(u, e)
			}
			got, err := domain.DecideUser(u, tc.cmd)
			check(t, got, err, tc.want)
		})
	}
	got, err := domain.DecidePartner(domain.Partner{}, domain.CreatePartner{PartnerID: userID, Name: " Fabrikam "})
	check(t, got, err, want{events: []domain.Event{domain.PartnerCreated{PartnerID: userID, Name: "Fabrikam"}}})
	_, err = domain.DecidePartner(domain.Partner{}, domain.CreatePartner{PartnerID: userID, Name: " "})
	check(t, nil, err, want{code: domain.CodeInvalid, field: "name"})
	_, err = domain.DecidePartner(domain.EvolvePartner(domain.Partner{}, domain.PartnerCreated{PartnerID: userID, Name: "F"}), domain.CreatePartner{PartnerID: userID, Name: "F"})
	check(t, nil, err, want{code: domain.CodeConflict})
}
