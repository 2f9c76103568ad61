package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/partnerhub/customers/domain"
)

func principalOf(r *http.Request) Principal {
	if st := stateOf(r.Context()); st != nil && st.principal != nil {
		return *st.principal
	}
	return Principal{}
}

func actorOf(r *http.Request) Actor {
	return Actor{Principal: principalOf(r), CorrelationID: CorrelationID(r.Context()),
		CausationID: r.Header.Get("Idempotency-Key")}
}

// pathID returns a path segment that must be a UUID, canonical. Anything else
// names no customer or order: 404, as for an unknown id.
func pathID(r *http.Request, name string) (string, error) {
	u, err := uuid.Parse(r.PathValue(name))
	if err != nil {
		return "", notFound()
	}
	return u.String(), nil
}

func sortStrings(s []string) {
	slices.SortFunc(s, func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type customerAnswer struct {
	Customer
	Position int64 `json:"position,omitempty"`
}

// answerCustomer writes a customer. After a command it is the state the
// command produced (Result.Customer), not a second read: a read that fails
// after a successful append would answer 500 for a command that took effect.
func (s *Server) answerCustomer(w http.ResponseWriter, c Customer, status int, position int64) error {
	c.Relationships = nonNil(c.Relationships)
	c.Tags = nonNil(c.Tags)
	c.Orders = nonNil(c.Orders)
	for i := range c.Orders {
		c.Orders[i].LineItems = nonNil(c.Orders[i].LineItems)
	}
	w.Header().Set("ETag", ETag(c.Version))
	if status == http.StatusCreated {
		w.Header().Set("Location", "/v1/customers/"+c.ID)
	}
	return writeJSON(w, status, customerAnswer{Customer: c, Position: position})
}

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request) error {
	var in CreateCustomerInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.ID != "" {
		u, err := uuid.Parse(in.ID)
		if err != nil {
			return domain.Invalid(domain.FieldError{Field: "id", Message: "must be a UUID (the customer's Microsoft ID)"})
		}
		in.ID = u.String()
	}
	res, err := s.cfg.Commands.CreateCustomer(r.Context(), actorOf(r), in)
	if err != nil {
		return err
	}
	return s.answerCustomer(w, res.Customer, http.StatusCreated, res.Position)
}

// pathCustomer reads the customer named in the path from its own stream.
// minPosition is accepted (and checked) like on every query, though the
// stream is always current.
func (s *Server) pathCustomer(r *http.Request) (Customer, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return Customer{}, err
	}
	if _, err := minPosition(r); err != nil {
		return Customer{}, err
	}
	return s.cfg.Customers.Customer(r.Context(), principalOf(r).PartnerID, id)
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.pathCustomer(r)
	if err != nil {
		return err
	}
	return s.answerCustomer(w, c, http.StatusOK, 0)
}

func (s *Server) addRelationship(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Relationship string `json:"relationship"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	res, err := s.cfg.Commands.AddRelationship(r.Context(), actorOf(r), id, in.Relationship)
	if err != nil {
		return err
	}
	return s.answerCustomer(w, res.Customer, http.StatusOK, res.Position)
}

func (s *Server) updateBillingProfile(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	expected, err := ifMatch(r)
	if err != nil {
		return err
	}
	var p domain.BillingProfile
	if err := decodeJSON(w, r, &p); err != nil {
		return err
	}
	res, err := s.cfg.Commands.UpdateBillingProfile(r.Context(), actorOf(r), id, expected, p)
	if err != nil {
		return err
	}
	return s.answerCustomer(w, res.Customer, http.StatusOK, res.Position)
}

type orderAnswer struct {
	Order
	Position int64 `json:"position"`
}

// answerOrder writes the order a command produced, with the customer's new
// version as ETag.
func (s *Server) answerOrder(w http.ResponseWriter, res Result, status int) error {
	o := res.Order
	o.LineItems = nonNil(o.LineItems)
	w.Header().Set("ETag", ETag(res.Version))
	if status == http.StatusCreated {
		w.Header().Set("Location", "/v1/customers/"+o.CustomerID+"/orders/"+o.ID)
	}
	return writeJSON(w, status, orderAnswer{Order: o, Position: res.Position})
}

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in CreateOrderInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	res, err := s.cfg.Commands.CreateOrder(r.Context(), actorOf(r), id, in)
	if err != nil {
		return err
	}
	return s.answerOrder(w, res, http.StatusCreated)
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) error {
	c, err := s.pathCustomer(r)
	if err != nil {
		return err
	}
	items := nonNil(c.Orders)
	for i := range items {
		items[i].LineItems = nonNil(items[i].LineItems)
	}
	w.Header().Set("ETag", ETag(c.Version))
	return writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *Server) orderMove(move func(context.Context, Actor, string, string) (Result, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		orderID, err := pathID(r, "orderId")
		if err != nil {
			return err
		}
		if err := noBody(w, r); err != nil {
			return err
		}
		res, err := move(r.Context(), actorOf(r), id, orderID)
		if err != nil {
			return err
		}
		return s.answerOrder(w, res, http.StatusOK)
	}
}

func (s *Server) completeOrder(w http.ResponseWriter, r *http.Request) error {
	return s.orderMove(s.cfg.Commands.CompleteOrder)(w, r)
}

func (s *Server) cancelOrder(w http.ResponseWriter, r *http.Request) error {
	return s.orderMove(s.cfg.Commands.CancelOrder)(w, r)
}

// noBody accepts an empty body or an empty JSON object, for actions that take
// no input.
func noBody(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if err != nil || len(strings.TrimSpace(string(body))) == 0 {
		return err
	}
	var v struct{}
	return decodeStrict(body, &v)
}

type tagChange struct {
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

func (s *Server) changeCustomerTags(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in tagChange
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if len(in.Add) == 0 && len(in.Remove) == 0 {
		return domain.Invalid(domain.FieldError{Field: "add", Message: "add or remove at least one tag"})
	}
	res, err := s.cfg.Commands.ChangeCustomerTags(r.Context(), actorOf(r), id, in.Add, in.Remove)
	if err != nil {
		return err
	}
	return s.answerCustomer(w, res.Customer, http.StatusOK, res.Position)
}

func (s *Server) assignTags(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		CustomerIDs []string `json:"customerIds"`
		tagChange
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	var fields []domain.FieldError
	if len(in.CustomerIDs) == 0 {
		fields = append(fields, domain.FieldError{Field: "customerIds", Message: "at least one customer id is required"})
	}
	if len(in.CustomerIDs) > 1000 {
		fields = append(fields, domain.FieldError{Field: "customerIds", Message: "at most 1000 customers at once"})
	}
	for i, id := range in.CustomerIDs {
		u, err := uuid.Parse(id)
		if err != nil {
			fields = append(fields, domain.FieldError{Field: "customerIds[" + strconv.Itoa(i) + "]", Message: "must be a UUID"})
			continue
		}
		in.CustomerIDs[i] = u.String()
	}
	if len(in.Add) == 0 && len(in.Remove) == 0 {
		fields = append(fields, domain.FieldError{Field: "add", Message: "add or remove at least one tag"})
	}
	if len(fields) > 0 {
		return domain.Invalid(fields...)
	}
	res, err := s.cfg.Commands.AssignTags(r.Context(), actorOf(r), in.CustomerIDs, in.Add, in.Remove)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"customerIds": in.CustomerIDs, "position": res.Position})
}

func (s *Server) listTags(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitMin(r, s.cfg.ListWaiter); err != nil {
		return err
	}
	tags, err := s.cfg.CustomerList.Tags(r.Context(), principalOf(r).PartnerID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": nonNil(tags)})
}

func (s *Server) createTag(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	res, err := s.cfg.Commands.CreateTag(r.Context(), actorOf(r), in.Name)
	if err != nil {
		return err
	}
	name := cmpOr(res.Name, in.Name)
	w.Header().Set("Location", "/v1/tags/"+url.PathEscape(name))
	return writeJSON(w, http.StatusCreated, map[string]any{"name": name, "customerCount": 0, "position": res.Position})
}

func (s *Server) renameTag(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	res, err := s.cfg.Commands.RenameTag(r.Context(), actorOf(r), r.PathValue("name"), in.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"name": cmpOr(res.Name, in.Name), "position": res.Position})
}

func (s *Server) deleteTag(w http.ResponseWriter, r *http.Request) error {
	res, err := s.cfg.Commands.DeleteTag(r.Context(), actorOf(r), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"name": cmpOr(res.Name, r.PathValue("name")), "position": res.Position})
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	res, err := s.cfg.Commands.CreateUser(r.Context(), actorOf(r), in.Email, in.Role)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store") // the answer holds a secret
	return writeJSON(w, http.StatusCreated, map[string]any{
		"id": res.ID, "email": in.Email, "role": in.Role, "token": res.Token, "position": res.Position})
}

// Queries.

// minPosition parses minPosition (absent: 0).
func minPosition(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("minPosition")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badParam("minPosition", "must be a non-negative integer")
	}
	return n, nil
}

// waitMin waits for the read model to apply minPosition, at most WaitTimeout;
// then 503 with Retry-After.
func (s *Server) waitMin(r *http.Request, waiter PositionWaiter) error {
	n, err := minPosition(r)
	if err != nil || n == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WaitTimeout)
	defer cancel()
	if err := waiter.WaitFor(ctx, n); err != nil {
		if ctx.Err() != nil {
			return &apiError{status: http.StatusServiceUnavailable, slug: "read-model-behind",
				detail: "the read model has not reached position " + strconv.FormatInt(n, 10) + " yet", retryAfter: 1}
		}
		return err
	}
	return nil
}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, "must be an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	return n, nil
}

func oneOf(q url.Values, name, def string, allowed ...string) (string, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	if !slices.Contains(allowed, v) {
		return "", badParam(name, "must be one of "+strings.Join(allowed, ", "))
	}
	return v, nil
}

func (s *Server) searchCustomers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var sq SearchQuery
	var err error
	sq.Q = q.Get("q")
	if len(sq.Q) > 200 {
		return badParam("q", "at most 200 characters")
	}
	if sq.SearchBy, err = oneOf(q, "searchBy", "all", "all", "companyName", "domain", "id", "tag"); err != nil {
		return err
	}
	if sq.Relationship, err = oneOf(q, "relationship", "", domain.RelationshipDirectBill, domain.RelationshipIndirectReseller); err != nil {
		return err
	}
	if sq.Sort, err = oneOf(q, "sort", "companyName", "companyName", "-companyName", "domain", "-domain"); err != nil {
		return err
	}
	if sq.Limit, err = intParam(q, "limit", 50, 1, 500); err != nil {
		return err
	}
	sq.Tags = q["tag"]
	sq.Cursor = q.Get("cursor")
	if err := s.waitMin(r, s.cfg.ListWaiter); err != nil {
		return err
	}
	page, err := s.cfg.CustomerList.SearchCustomers(r.Context(), principalOf(r).PartnerID, sq)
	if err != nil {
		return err
	}
	page.Items = nonNil(page.Items)
	for i := range page.Items {
		// Sorted as the CSV sorts them, whatever the backend's collation.
		page.Items[i].Tags = nonNil(page.Items[i].Tags)
		sortStrings(page.Items[i].Tags)
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) exportCustomers(w http.ResponseWriter, r *http.Request) error {
	// Search and filter parameters deliberately do not apply (SPEC).
	if err := s.waitMin(r, s.cfg.ListWaiter); err != nil {
		return err
	}
	header := []string{"Microsoft ID", "Company name", "Primary domain name", "Relationship", "Tags"}
	return csvStream(w, "Customers.csv", header, func(row func([]string) error) error {
		return s.cfg.CustomerList.ExportCustomers(r.Context(), principalOf(r).PartnerID, func(it ListItem) error {
			return row([]string{it.ID, it.CompanyName, it.PrimaryDomain, relationshipLabel(it.Relationship), joinTags(it.Tags)})
		})
	})
}

// maxActivityRange is the longest from..to an activity query may span.
const maxActivityRange = 366 * 24 * time.Hour

func (s *Server) activityQuery(r *http.Request) (ActivityQuery, error) {
	q := r.URL.Query()
	var aq ActivityQuery
	var err error
	// Default: the 30 days before to (before now when to is not given).
	aq.To = s.now().UTC()
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &aq.From}, {"to", &aq.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return aq, badParam(p.name, "must be an RFC 3339 date-time")
			}
			*p.dst = t.UTC()
		}
	}
	if aq.From.IsZero() {
		aq.From = aq.To.AddDate(0, 0, -30)
	}
	if aq.From.After(aq.To) {
		return aq, badParam("from", "must not be after to")
	}
	// A bound on the range keeps one request from scanning years of log.
	if aq.To.Sub(aq.From) > maxActivityRange {
		return aq, badParam("from", "the range from..to must not exceed 366 days")
	}
	if c := q.Get("customerId"); c != "" {
		u, err := uuid.Parse(c)
		if err != nil {
			return aq, badParam("customerId", "must be a UUID")
		}
		aq.CustomerID = u.String()
	}
	if aq.ResourceType, err = oneOf(q, "resourceType", "", "customer", "order", "tag", "user"); err != nil {
		return aq, err
	}
	aq.Operation = q.Get("operation")
	aq.User = q.Get("user")
	if aq.Limit, err = intParam(q, "limit", 50, 1, 500); err != nil {
		return aq, err
	}
	aq.Cursor = q.Get("cursor")
	return aq, nil
}

func (s *Server) activity(w http.ResponseWriter, r *http.Request) error {
	aq, err := s.activityQuery(r)
	if err != nil {
		return err
	}
	if err := s.waitMin(r, s.cfg.ActivityWaiter); err != nil {
		return err
	}
	page, err := s.cfg.Activity.Activity(r.Context(), principalOf(r).PartnerID, aq)
	if err != nil {
		return err
	}
	page.Items = nonNil(page.Items)
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) exportActivity(w http.ResponseWriter, r *http.Request) error {
	aq, err := s.activityQuery(r)
	if err != nil {
		return err
	}
	if err := s.waitMin(r, s.cfg.ActivityWaiter); err != nil {
		return err
	}
	header := []string{"Date-Time", "Affected customer", "Customer ID", "Action", "Partner user", "Old value", "New value"}
	return csvStream(w, "Activity.csv", header, func(row func([]string) error) error {
		return s.cfg.Activity.ExportActivity(r.Context(), principalOf(r).PartnerID, aq, func(e ActivityEntry) error {
			return row([]string{e.At.UTC().Format(time.RFC3339), e.CustomerName, e.CustomerID, e.Operation, e.PartnerUser, e.OldValue, e.NewValue})
		})
	})
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badParam("after", "must be a non-negative integer position")
		}
		after = n
	}
	limit, err := intParam(q, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	if _, err := minPosition(r); err != nil {
		return err
	}
	items, next, err := s.cfg.Events.Events(r.Context(), principalOf(r).PartnerID, after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Items     []json.RawMessage `json:"items"`
		NextAfter int64             `json:"nextAfter"`
	}{nonNil(items), next})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
