package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

// Principal is the authenticated user. The partner id of every request comes
// from here and nowhere else.
type Principal struct {
	UserID    string
	Email     string
	PartnerID string
	Role      string
}

// Users finds the user a bearer token belongs to.
type Users interface {
	// UserByToken returns the user whose token hashes to the hash of token,
	// and false if there is none.
	UserByToken(ctx context.Context, token string) (Principal, bool, error)
}

// TokenHash is the stored form of a bearer token: hex SHA-256.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != ""
}

func unauthorized(detail string) *apiError {
	return &apiError{status: http.StatusUnauthorized, slug: "unauthorized", detail: detail,
		header: http.Header{"Www-Authenticate": {`Bearer realm="customers"`}}}
}

// Directory is the user directory built from the event store's user.created
// events. A lookup that misses first catches up to the store's head, so a
// token created a moment ago works at once; Run catches up now and then
// besides, so that a miss has little of the log to read.
type Directory struct {
	// Refresh is how often Run catches up (default a second).
	Refresh time.Duration
	// OnError, if set, sees Run's failed catch-ups; Run goes on, and the
	// lookups report their own.
	OnError func(error)

	store eventstore.Store
	reg   *domain.Registry

	mu     sync.RWMutex
	byHash map[string]Principal
	pos    int64 // every user.created event up to here is applied

	catchUp sync.Mutex // one synchronous catch-up at a time
}

// NewDirectory returns an empty directory over store; call Load or Run.
func NewDirectory(store eventstore.Store) *Directory {
	return &Directory{store: store, reg: domain.NewRegistry(), byHash: map[string]Principal{}}
}

// Load catches up with the store's head.
func (d *Directory) Load(ctx context.Context) error {
	d.catchUp.Lock()
	defer d.catchUp.Unlock()
	head, err := d.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("reading event store head for the user directory: %w", err)
	}
	for {
		d.mu.RLock()
		after := d.pos
		d.mu.RUnlock()
		if after >= head {
			return nil
		}
		evs, err := d.store.ReadAll(ctx, eventstore.ReadRequest{After: after, Limit: 1000,
			Types: []string{domain.TypeUserCreated}})
		if err != nil {
			return fmt.Errorf("reading users after position %d: %w", after, err)
		}
		if len(evs) == 0 {
			// No user events up to head: everything up to head is applied.
			d.advance(head)
			return nil
		}
		if err := d.apply(evs); err != nil {
			return err
		}
	}
}

// Run catches up with the store every Refresh until ctx ends. It used to
// follow every append, which read the whole log for the few user.created
// events in it (as many reads as the relay makes), while a lookup that
// misses finds a new user at its first request anyway.
func (d *Directory) Run(ctx context.Context) error {
	if err := d.Load(ctx); err != nil {
		return err
	}
	every := d.Refresh
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := d.Load(ctx); err != nil && ctx.Err() == nil && d.OnError != nil {
			d.OnError(err)
		}
	}
}

func (d *Directory) advance(pos int64) {
	d.mu.Lock()
	if pos > d.pos {
		d.pos = pos
	}
	d.mu.Unlock()
}

func (d *Directory) apply(evs []eventstore.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ev := range evs {
		if ev.Type == domain.TypeUserCreated {
			e, err := d.reg.Unmarshal(ev.Type, ev.Data)
			if err != nil {
				return fmt.Errorf("user directory: event at position %d: %w", ev.Position, err)
			}
			u := e.(domain.UserCreated)
			d.byHash[strings.ToLower(u.TokenHash)] = Principal{
				UserID: u.UserID, Email: u.Email, PartnerID: ev.PartnerID, Role: u.Role}
		}
		if ev.Position > d.pos {
			d.pos = ev.Position
		}
	}
	return nil
}

func (d *Directory) lookup(hash string) (Principal, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	p, ok := d.byHash[hash]
	return p, ok
}

// UserByToken implements Users.
func (d *Directory) UserByToken(ctx context.Context, token string) (Principal, bool, error) {
	hash := TokenHash(token)
	p, ok := d.lookup(hash)
	if !ok {
		if err := d.Load(ctx); err != nil {
			return Principal{}, false, err
		}
		p, ok = d.lookup(hash)
	}
	if !ok {
		return Principal{}, false, nil
	}
	// The map found the entry by hash; confirm in constant time anyway so no
	// code path compares token material with an early-exit comparison.
	if subtle.ConstantTimeCompare([]byte(hash), []byte(TokenHash(token))) != 1 {
		return Principal{}, false, nil
	}
	return p, true, nil
}

// Role sets. The role table of SPEC "Tenancy and roles" is the Roles field of
// the route table in routes.go, and nowhere else.
func anyAgent() []string  { return []string{domain.RoleAdminAgent, domain.RoleSalesAgent} }
func adminOnly() []string { return []string{domain.RoleAdminAgent} }

func roleAllowed(role string, allowed []string) bool {
	for _, a := range allowed {
		if a == role {
			return true
		}
	}
	return false
}
