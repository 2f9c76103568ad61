package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeBackend is a small in-memory stand-in for the command handlers and
// read models, enough to drive every endpoint. Users are real: user.created
// events in a real event store, read by the real Directory.
type fakeBackend struct {
	store eventstore.Store
	reg   *domain.Registry

	mu        sync.Mutex
	pos       int64
	customers map[string]*Customer       // partner/id
	tags      map[string]map[string]bool // partner -> catalog names
	block     chan struct{}              // CreateCustomer "block" waits on it
	commands  int                        // commands that changed something
}

func key(p, id string) string { return p + "/" + id }

func (b *fakeBackend) bump() int64 { b.pos++; b.commands++; return b.pos }

func (b *fakeBackend) customer(partner, id string) (*Customer, error) {
	c, ok := b.customers[key(partner, id)]
	if !ok {
		return nil, domain.Errorf(domain.CodeNotFound, "customer %s not found", id)
	}
	return c, nil
}

func validRelationship(r string) bool {
	return r == domain.RelationshipDirectBill || r == domain.RelationshipIndirectReseller
}

func (b *fakeBackend) CreateCustomer(ctx context.Context, a Actor, in CreateCustomerInput) (Result, error) {
	switch in.CompanyName {
	case "panic!":
		panic("fake command panics")
	case "internal!":
		return Result{}, errors.New("database password is hunter2")
	case "block":
		select {
		case <-b.block:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	var fields []domain.FieldError
	if n := len(strings.TrimSpace(in.CompanyName)); n < 1 || n > 200 {
		fields = append(fields, domain.FieldError{Field: "companyName", Message: "must be 1 to 200 characters"})
	}
	if !validRelationship(in.Relationship) {
		fields = append(fields, domain.FieldError{Field: "relationship", Message: "must be direct-bill or indirect-reseller"})
	}
	if len(fields) > 0 {
		return Result{}, domain.Invalid(fields...)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if in.ID == "" {
		in.ID = uuid.NewString()
	}
	if _, ok := b.customers[key(a.PartnerID, in.ID)]; ok {
		return Result{}, domain.Errorf(domain.CodeConflict, "customer %s exists", in.ID)
	}
	b.customers[key(a.PartnerID, in.ID)] = &Customer{ID: in.ID, CompanyName: in.CompanyName,
		PrimaryDomain: in.PrimaryDomain, Relationships: []string{in.Relationship},
		BillingProfile: in.BillingProfile, Tags: in.Tags, Version: 1}
	return Result{ID: in.ID, Version: 1, Position: b.bump(), Customer: snapshot(b.customers[key(a.PartnerID, in.ID)])}, nil
}

func (b *fakeBackend) AddRelationship(_ context.Context, a Actor, id, rel string) (Result, error) {
	if !validRelationship(rel) {
		return Result{}, domain.Invalid(domain.FieldError{Field: "relationship", Message: "unknown relationship"})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.customer(a.PartnerID, id)
	if err != nil {
		return Result{}, err
	}
	if slices.Contains(c.Relationships, rel) {
		return Result{}, domain.Errorf(domain.CodeConflict, "relationship exists")
	}
	c.Relationships = append(c.Relationships, rel)
	c.Version++
	return Result{Version: c.Version, Position: b.bump(), Customer: snapshot(c)}, nil
}

func (b *fakeBackend) UpdateBillingProfile(_ context.Context, a Actor, id string, expected int64, p domain.BillingProfile) (Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.customer(a.PartnerID, id)
	if err != nil {
		return Result{}, err
	}
	if expected != eventstore.AnyVersion && expected != c.Version {
		return Result{}, domain.Errorf(domain.CodePrecondition, "customer is at version %d", c.Version)
	}
	if p.Email == "" {
		return Result{}, domain.Invalid(domain.FieldError{Field: "email", Message: "required"})
	}
	c.BillingProfile = &p
	c.CompanyName = p.CompanyName
	c.Version++
	return Result{Version: c.Version, Position: b.bump(), Customer: snapshot(c)}, nil
}

func (b *fakeBackend) CreateOrder(_ context.Context, a Actor, id string, in CreateOrderInput) (Result, error) {
	if len(in.LineItems) == 0 {
		return Result{}, domain.Invalid(domain.FieldError{Field: "lineItems", Message: "at least one line item"})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.customer(a.PartnerID, id)
	if err != nil {
		return Result{}, err
	}
	o := Order{ID: uuid.NewString(), CustomerID: id, Status: "pending", Catalog: in.Catalog,
		BillingCycle: in.BillingCycle, LineItems: in.LineItems}
	c.Orders = append(c.Orders, o)
	c.Version++
	return Result{ID: o.ID, Version: c.Version, Position: b.bump(), Order: o}, nil
}

func (b *fakeBackend) moveOrder(a Actor, id, orderID, to string) (Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.customer(a.PartnerID, id)
	if err != nil {
		return Result{}, err
	}
	for i := range c.Orders {
		if c.Orders[i].ID == orderID {
			if c.Orders[i].Status != "pending" {
				return Result{}, domain.Errorf(domain.CodeConflict, "order is %s", c.Orders[i].Status)
			}
			c.Orders[i].Status = to
			c.Version++
			return Result{Version: c.Version, Position: b.bump(), Order: c.Orders[i]}, nil
		}
	}
	return Result{}, domain.Errorf(domain.CodeNotFound, "order not found")
}

func (b *fakeBackend) CompleteOrder(_ context.Context, a Actor, id, orderID string) (Result, error) {
	return b.moveOrder(a, id, orderID, "completed")
}

func (b *fakeBackend) CancelOrder(_ context.Context, a Actor, id, orderID string) (Result, error) {
	return b.moveOrder(a, id, orderID, "cancelled")
}

func (b *fakeBackend) ChangeCustomerTags(_ context.Context, a Actor, id string, add, remove []string) (Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.customer(a.PartnerID, id)
	if err != nil {
		return Result{}, err
	}
	c.Tags = append(c.Tags, add...)
	c.Version++
	return Result{Version: c.Version, Position: b.bump(), Customer: snapshot(c)}, nil
}

func (b *fakeBackend) AssignTags(_ context.Context, a Actor, ids, add, remove []string) (Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if _, err := b.customer(a.PartnerID, id); err != nil {
			return Result{}, err
		}
	}
	return Result{Position: b.bump()}, nil
}

func (b *fakeBackend) catalog(p string) map[string]bool {
	if b.tags[p] == nil {
		b.tags[p] = map[string]bool{}
	}
	return b.tags[p]
}

func (b *fakeBackend) CreateTag(_ context.Context, a Actor, name string) (Result, error) {
	if name == "" {
		return Result{}, domain.Invalid(domain.FieldError{Field: "name", Message: "required"})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.catalog(a.PartnerID)[name] {
		return Result{}, domain.Errorf(domain.CodeConflict, "tag exists")
	}
	b.catalog(a.PartnerID)[name] = true
	return Result{Position: b.bump()}, nil
}

func (b *fakeBackend) RenameTag(_ context.Context, a Actor, name, newName string) (Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.catalog(a.PartnerID)[name] {
		return Result{}, domain.Errorf(domain.CodeNotFound, "no tag %q", name)
	}
	delete(b.catalog(a.PartnerID), name)
	b.catalog(a.PartnerID)[newName] = true
	return Result{Position: b.bump()}, nil
}

func (b *fakeBackend) DeleteTag(_ context.Context, a Actor, name string) (Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.catalog(a.PartnerID)[name] {
		return Result{}, domain.Errorf(domain.CodeNotFound, "no tag %q", name)
	}
	delete(b.catalog(a.PartnerID), name)
	return Result{Position: b.bump()}, nil
}

// CreateUser appends a real user.created event, so the Directory must find
// the new token in the store.
func (b *fakeBackend) CreateUser(ctx context.Context, a Actor, email, role string) (Result, error) {
	if role != domain.RoleAdminAgent && role != domain.RoleSalesAgent {
		return Result{}, domain.Invalid(domain.FieldError{Field: "role", Message: "must be admin-agent or sales-agent"})
	}
	if !strings.Contains(email, "@") {
		return Result{}, domain.Invalid(domain.FieldError{Field: "email", Message: "must be an email address"})
	}
	id, tok := uuid.NewString(), "tok-"+uuid.NewString()
	pos, err := addUser(ctx, b.store, b.reg, a.PartnerID, id, email, role, tok)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: id, Position: pos, Token: tok}, nil
}

func addUser(ctx context.Context, store eventstore.Store, reg *domain.Registry, partner, id, email, role, token string) (int64, error) {
	typ, data, err := reg.Marshal(domain.UserCreated{UserID: id, Email: email, Role: role, TokenHash: TokenHash(token)})
	if err != nil {
		return 0, err
	}
	res, err := store.Append(ctx, eventstore.AppendRequest{StreamID: domain.UserStream(partner, id),
		ExpectedVersion: eventstore.NoStream, Events: []eventstore.NewEvent{{ID: uuid.New(), Type: typ, Data: data,
			Metadata: eventstore.Metadata{PartnerID: partner}}}})
	if err != nil {
		return 0, err
	}
	return res[0].LastPosition, nil
}

func (b *fakeBackend) Customer(_ context.Context, partner, id string) (Customer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.customer(partner, id)
	if err != nil {
		return Customer{}, err
	}
	cp := *c
	cp.Orders = slices.Clone(c.Orders)
	return cp, nil
}

func (b *fakeBackend) rows(partner string) []ListItem {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ListItem
	for k, c := range b.customers {
		if !strings.HasPrefix(k, partner+"/") {
			continue
		}
		for _, r := range c.Relationships {
			out = append(out, ListItem{ID: c.ID, Relationship: r, CompanyName: c.CompanyName,
				PrimaryDomain: c.PrimaryDomain, Tags: slices.Clone(c.Tags)})
		}
	}
	slices.SortFunc(out, func(a, b ListItem) int {
		return strings.Compare(a.CompanyName+a.ID+a.Relationship, b.CompanyName+b.ID+b.Relationship)
	})
	return out
}

func (b *fakeBackend) SearchCustomers(_ context.Context, partner string, q SearchQuery) (SearchPage, error) {
	if q.Cursor != "" {
		return SearchPage{}, domain.Invalid(domain.FieldError{Field: "cursor", Message: "invalid cursor"})
	}
	return SearchPage{Items: b.rows(partner)}, nil
}

func (b *fakeBackend) ExportCustomers(_ context.Context, partner string, row func(ListItem) error) error {
	for _, it := range b.rows(partner) {
		if err := row(it); err != nil {
			return err
		}
	}
	return nil
}

func (b *fakeBackend) Tags(_ context.Context, partner string) ([]Tag, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Tag
	for n := range b.catalog(partner) {
		out = append(out, Tag{Name: n})
	}
	return out, nil
}

func (b *fakeBackend) Activity(context.Context, string, ActivityQuery) (ActivityPage, error) {
	return ActivityPage{}, nil
}

func (b *fakeBackend) ExportActivity(_ context.Context, _ string, _ ActivityQuery, row func(ActivityEntry) error) error {
	return row(ActivityEntry{At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), PartnerUser: "admin@a",
		CustomerName: "=cmd()", Operation: "create_customer"})
}

func (b *fakeBackend) Events(context.Context, string, int64, int) ([]json.RawMessage, int64, error) {
	return []json.RawMessage{json.RawMessage(`{"specversion":"1.0"}`)}, 1, nil
}

// WaitFor waits until the fake's position reaches position.
func (b *fakeBackend) WaitFor(ctx context.Context, position int64) error {
	for {
		b.mu.Lock()
		p := b.pos
		b.mu.Unlock()
		if p >= position {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Tokens of the fixture's users: partner A has an admin and a sales agent,
// partner B an admin.
const (
	tokAdminA = "token-admin-a"
	tokSalesA = "token-sales-a"
	tokAdminB = "token-admin-b"
	partnerA  = "partner-a"
	partnerB  = "partner-b"
)

// sharedEnv holds what many fixtures share: the event store with the users
// and the directory over it, and the idempotency store.
type sharedEnv struct {
	store *sqlite.Store
	dir   *Directory
	idem  IdempotencyStore
}

func newSharedEnv(t testing.TB) *sharedEnv {
	t.Helper()
	ctx := context.Background()
	dirPath := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dirPath, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := domain.NewRegistry()
	for _, u := range []struct{ partner, email, role, tok string }{
		{partnerA, "admin@a", domain.RoleAdminAgent, tokAdminA},
		{partnerA, "sales@a", domain.RoleSalesAgent, tokSalesA},
		{partnerB, "admin@b", domain.RoleAdminAgent, tokAdminB},
	} {
		if _, err := addUser(ctx, store, reg, u.partner, uuid.NewString(), u.email, u.role, u.tok); err != nil {
			t.Fatal(err)
		}
	}
	idem, err := OpenSQLiteIdempotency(ctx, filepath.Join(dirPath, "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idem.Close() })
	return &sharedEnv{store: store, dir: NewDirectory(store), idem: idem}
}

type fixture struct {
	*sharedEnv
	b    *fakeBackend
	srv  *Server
	ts   *httptest.Server
	logs *syncBuffer
	// Partner A's customer with one pending order, and A's tag "vip".
	customerID, orderID string
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func newFixture(t testing.TB, env *sharedEnv) *fixture {
	t.Helper()
	b := &fakeBackend{store: env.store, reg: domain.NewRegistry(), customers: map[string]*Customer{},
		tags: map[string]map[string]bool{}, block: make(chan struct{})}
	logs := &syncBuffer{}
	srv, err := New(Config{
		Commands: b, Customers: b, CustomerList: b, Activity: b, Events: b,
		Users: env.dir, Idempotency: env.idem, ListWaiter: b, ActivityWaiter: b,
		Ready:       func(context.Context) error { return nil },
		Registry:    prometheus.NewRegistry(),
		Logger:      slog.New(slog.NewJSONHandler(logs, nil)),
		WaitTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	f := &fixture{sharedEnv: env, b: b, srv: srv, ts: ts, logs: logs}
	ctx := context.Background()
	admin := Actor{Principal: Principal{PartnerID: partnerA}}
	res, err := b.CreateCustomer(ctx, admin, CreateCustomerInput{CompanyName: "Contoso Ltd.", PrimaryDomain: "contoso.com",
		Relationship: domain.RelationshipDirectBill})
	if err != nil {
		t.Fatal(err)
	}
	f.customerID = res.ID
	ord, err := b.CreateOrder(ctx, admin, f.customerID, CreateOrderInput{Catalog: "azure", BillingCycle: "monthly",
		LineItems: []domain.LineItem{{OfferID: "o1", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	f.orderID = ord.ID
	if _, err := b.CreateTag(ctx, admin, "vip"); err != nil {
		t.Fatal(err)
	}
	b.commands = 0
	return f
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) problem(t testing.TB) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want application/problem+json; body %s", r.status, ct, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v does not match status %d", p, r.status)
	}
	return p
}

func (f *fixture) do(t testing.TB, method, path, token, body string, headers ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// snapshot copies a customer as a command's result carries it, so later
// changes to the fake's state do not show through.
func snapshot(c *Customer) Customer {
	out := *c
	out.Relationships = slices.Clone(c.Relationships)
	out.Tags = slices.Clone(c.Tags)
	out.Orders = slices.Clone(c.Orders)
	return out
}
