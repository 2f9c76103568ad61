package domain

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// Tag is a catalog tag.
type Tag struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// SortTags sorts by name ignoring case, then by exact name, then id, so that
// every reader lists tags in the same order.
func SortTags(tags []Tag) {
	slices.SortFunc(tags, func(a, b Tag) int {
		return cmp.Or(cmp.Compare(FoldName(a.Name), FoldName(b.Name)), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
}

// TagCatalog is a partner's tag catalog, folded by EvolveTagCatalog. It is
// the source of truth for which tags exist and what they are called: a
// rename or delete is one catalog event, never a write to every customer.
// Like Customer, Evolve reuses the state's maps.
type TagCatalog struct {
	Names map[string]string // tag id -> name
	byKey map[string]string // FoldName(name) -> tag id
}

// Lookup finds a tag by name, ignoring case.
func (t TagCatalog) Lookup(name string) (Tag, bool) {
	id, ok := t.byKey[FoldName(name)]
	if !ok {
		return Tag{}, false
	}
	return Tag{ID: id, Name: t.Names[id]}, true
}

func (t TagCatalog) clone() TagCatalog {
	return TagCatalog{Names: maps.Clone(t.Names), byKey: maps.Clone(t.byKey)}
}

// Tags lists the catalog sorted by name.
func (t TagCatalog) Tags() []Tag {
	tags := make([]Tag, 0, len(t.Names))
	for id, name := range t.Names {
		tags = append(tags, Tag{ID: id, Name: name})
	}
	SortTags(tags)
	return tags
}

// Catalog commands. Tags are addressed by name, ignoring case, as in the API.

// TagCommand is any command DecideTagCatalog accepts.
type TagCommand interface{ tagCommand() }

type CreateTag struct {
	TagID string
	Name  string
}

type RenameTag struct {
	Name    string
	NewName string
}

type DeleteTag struct{ Name string }

func (CreateTag) tagCommand() {}
func (RenameTag) tagCommand() {}
func (DeleteTag) tagCommand() {}

func tagNotFound(name string) error { return Errorf(CodeNotFound, "tag %q not found", name) }

// DecideTagCatalog decides create, rename and delete.
func DecideTagCatalog(t TagCatalog, cmd TagCommand) ([]Event, error) {
	switch cmd := cmd.(type) {
	case CreateTag:
		name, err := NormalizeTagName(cmd.Name)
		if err != nil {
			return nil, Invalid(fieldErr("name", "%v", err))
		}
		if old, ok := t.Lookup(name); ok {
			return nil, Errorf(CodeConflict, "tag %q already exists", old.Name)
		}
		if cmd.TagID == "" {
			return nil, fmt.Errorf("creating tag %q: no tag id given", name)
		}
		return []Event{TagCreated{TagID: cmd.TagID, Name: name}}, nil
	case RenameTag:
		tag, ok := t.Lookup(cmd.Name)
		if !ok {
			return nil, tagNotFound(cmd.Name)
		}
		name, err := NormalizeTagName(cmd.NewName)
		if err != nil {
			return nil, Invalid(fieldErr("name", "%v", err))
		}
		if other, ok := t.Lookup(name); ok && other.ID != tag.ID {
			return nil, Errorf(CodeConflict, "tag %q already exists", other.Name)
		}
		if name == tag.Name {
			return nil, nil // already called that: nothing happens
		}
		return []Event{TagRenamed{TagID: tag.ID, OldName: tag.Name, NewName: name}}, nil
	case DeleteTag:
		tag, ok := t.Lookup(cmd.Name)
		if !ok {
			return nil, tagNotFound(cmd.Name)
		}
		return []Event{TagDeleted{TagID: tag.ID, Name: tag.Name}}, nil
	}
	return nil, fmt.Errorf("unknown tag command %T", cmd)
}

// EvolveTagCatalog applies one catalog event.
func EvolveTagCatalog(t TagCatalog, e Event) TagCatalog {
	if t.Names == nil {
		t.Names, t.byKey = map[string]string{}, map[string]string{}
	}
	switch e := e.(type) {
	case TagCreated:
		t.Names[e.TagID] = e.Name
		t.byKey[FoldName(e.Name)] = e.TagID
	case TagRenamed:
		delete(t.byKey, FoldName(t.Names[e.TagID]))
		t.Names[e.TagID] = e.NewName
		t.byKey[FoldName(e.NewName)] = e.TagID
	case TagDeleted:
		delete(t.byKey, FoldName(t.Names[e.TagID]))
		delete(t.Names, e.TagID)
	}
	return t
}

// ChangeTags adds and removes tags by name on one or more customers.
//
// Add: a name matching a catalog tag ignoring case assigns that tag, spelled
// as in the catalog; any other name creates a tag (id NewTagIDs[i] for
// Add[i]) and assigns it. Assigning a tag the customer already has changes
// nothing.
//
// Remove: removing a tag the customer does not have, or a name that is not in
// the catalog, changes nothing and is not an error, so that one bulk request
// can tidy many customers whatever each of them holds.
type ChangeTags struct {
	Add       []string
	Remove    []string
	NewTagIDs []string
	// Field names Add in validation errors ("add" by default; "tags" when
	// creating a customer).
	Field string
}

func normalizeTagNames(field string, names []string) ([]string, []FieldError) {
	var errs []FieldError
	out := make([]string, len(names))
	for i, n := range names {
		v, err := NormalizeTagName(n)
		if err != nil {
			errs = append(errs, fieldErr(field+"["+strconv.Itoa(i)+"]", "%v", err))
		}
		out[i] = v
	}
	return out, errs
}

// DecideTagAssignment decides a tag change on every given customer at once:
// the catalog events (new tags) and, for customers[i], customerEvents[i]. The
// limit of 150 tags counts effective tags (those still in the catalog).
func DecideTagAssignment(cat TagCatalog, customers []Customer, cmd ChangeTags) (catalogEvents []Event, customerEvents [][]Event, err error) {
	field := cmp.Or(cmd.Field, "add")
	add, errs := normalizeTagNames(field, cmd.Add)
	remove, rerrs := normalizeTagNames("remove", cmd.Remove)
	errs = append(errs, rerrs...)
	for i, r := range remove {
		if r != "" && slices.ContainsFunc(add, func(a string) bool { return FoldName(a) == FoldName(r) }) {
			errs = append(errs, fieldErr("remove["+strconv.Itoa(i)+"]", "%q is also in %s", r, field))
		}
	}
	if len(errs) > 0 {
		return nil, nil, Invalid(errs...)
	}
	for _, c := range customers {
		if !c.Exists {
			return nil, nil, Errorf(CodeNotFound, "customer %s not found", c.ID)
		}
	}
	var addTags []Tag
	cloned := false
	for i, name := range add {
		tag, ok := cat.Lookup(name)
		if !ok {
			if i >= len(cmd.NewTagIDs) || cmd.NewTagIDs[i] == "" {
				return nil, nil, fmt.Errorf("assigning tag %q: no id given for a new tag", name)
			}
			tag = Tag{ID: cmd.NewTagIDs[i], Name: name}
			created := TagCreated{TagID: tag.ID, Name: tag.Name}
			catalogEvents = append(catalogEvents, created)
			if !cloned { // never change the caller's catalog
				cat, cloned = cat.clone(), true
			}
			cat = EvolveTagCatalog(cat, created)
		}
		if !slices.Contains(addTags, tag) {
			addTags = append(addTags, tag)
		}
	}
	var removeTags []Tag
	for _, name := range remove {
		if tag, ok := cat.Lookup(name); ok {
			removeTags = append(removeTags, tag)
		}
	}
	customerEvents = make([][]Event, len(customers))
	for i, c := range customers {
		var evs []Event
		for _, t := range removeTags {
			if _, has := c.TagIDs[t.ID]; has {
				evs = append(evs, CustomerTagUnassigned{CustomerID: c.ID, TagID: t.ID, Name: t.Name})
			}
		}
		// Count without mutating the caller's state: effective tags now,
		// minus removals, plus additions the customer lacks.
		n := len(c.EffectiveTags(cat)) - len(evs)
		for _, t := range addTags {
			if _, has := c.TagIDs[t.ID]; !has {
				evs = append(evs, CustomerTagAssigned{CustomerID: c.ID, TagID: t.ID, Name: t.Name})
				n++
			}
		}
		if n > MaxTagsPerCustomer {
			return nil, nil, Invalid(fieldErr(field, "customer %s would have %d tags; at most %d are allowed", c.ID, n, MaxTagsPerCustomer))
		}
		customerEvents[i] = evs
	}
	return catalogEvents, customerEvents, nil
}
