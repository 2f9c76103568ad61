package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Upcaster rewrites an older stored shape of an event's data into the shape
// the current Go type decodes. It must leave current data unchanged, so that
// upcasters can run on every read without knowing the stored version.
type Upcaster func(data []byte) ([]byte, error)

type registration struct {
	goType    reflect.Type
	upcasters []Upcaster
}

// Registry maps stable event type names to Go types and back. It is built by
// NewRegistry and passed to whoever encodes or decodes events: there is no
// package-level registry.
type Registry struct {
	byName map[string]registration
}

// NewRegistry returns a registry with every event of the contract registered.
func NewRegistry() *Registry {
	r := &Registry{byName: map[string]registration{}}
	for _, e := range []Event{
		CustomerCreated{}, CustomerRelationshipAdded{}, CustomerBillingProfileUpdated{},
		CustomerTagAssigned{}, CustomerTagUnassigned{},
		OrderCreated{}, OrderCompleted{}, OrderCancelled{},
		TagCreated{}, TagRenamed{}, TagDeleted{},
		UserCreated{}, PartnerCreated{},
	} {
		r.Register(e)
	}
	return r
}

// Register adds an event type (a value, not a pointer) under its EventType
// name, with upcasters applied in order before decoding. Registering a name
// twice is a programming error and panics at start-up.
func (r *Registry) Register(e Event, upcasters ...Upcaster) {
	name := e.EventType()
	if _, dup := r.byName[name]; dup {
		panic(fmt.Sprintf("domain: event type %q registered twice", name))
	}
	r.byName[name] = registration{goType: reflect.TypeOf(e), upcasters: upcasters}
}

// Known reports whether typ is registered.
func (r *Registry) Known(typ string) bool {
	_, ok := r.byName[typ]
	return ok
}

// Marshal encodes an event to its type name and JSON data.
func (r *Registry) Marshal(e Event) (string, []byte, error) {
	name := e.EventType()
	if _, ok := r.byName[name]; !ok {
		return "", nil, fmt.Errorf("encoding event: type %q is not registered", name)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("encoding event %s: %w", name, err)
	}
	return name, data, nil
}

// Unmarshal decodes stored data of the named type into its Go value (the
// value type, for example CustomerCreated, never a pointer).
func (r *Registry) Unmarshal(typ string, data []byte) (Event, error) {
	reg, ok := r.byName[typ]
	if !ok {
		return nil, fmt.Errorf("decoding event: type %q is not registered", typ)
	}
	for i, up := range reg.upcasters {
		var err error
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("upcasting %s (step %d): %w", typ, i+1, err)
		}
	}
	ptr := reflect.New(reg.goType)
	if err := json.Unmarshal(data, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", typ, err)
	}
	return ptr.Elem().Interface().(Event), nil
}
