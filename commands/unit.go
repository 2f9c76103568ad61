package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
)

type core struct {
	store       eventstore.Store
	reg         *domain.Registry
	newID       func() uuid.UUID
	random      io.Reader
	maxAttempts int
	retryPause  time.Duration                 // first pause before resending an append of unknown outcome
	observe     func(command, outcome string) // WithOutcomes; nil: none
}

// stream is one stream of a unit, loaded or taken not to exist, and the
// events decided for it.
type stream struct {
	id        string
	subject   string // event subject: the customer id, or ""
	version   int64  // as loaded; the expected version of the append
	lastPos   int64  // position of the last loaded event
	pending   []domain.Event
	claims    []string
	result    eventstore.AppendResult
	appended  bool
	claimText map[string]domain.FieldError // claim -> what a clash means
}

func (s *stream) emit(evs ...domain.Event) { s.pending = append(s.pending, evs...) }

// claim takes a unique key with the append; msg explains a clash to the user.
func (s *stream) claim(key, field, msg string) {
	s.claims = append(s.claims, key)
	if s.claimText == nil {
		s.claimText = map[string]domain.FieldError{}
	}
	s.claimText[key] = domain.FieldError{Field: field, Message: msg}
}

// Version is the stream's version after the unit committed.
func (s *stream) Version() int64 {
	if s.appended {
		return s.result.Version
	}
	return s.version
}

// unit is one attempt of one command: the streams it read and what it
// decided. A fresh unit is built for every attempt.
type unit struct {
	c       *core
	streams []*stream
	// exact: a conflict means the caller's expected version (If-Match) is
	// stale, so it is reported at once as a failed precondition.
	exact   bool
	attempt int // 1 for the first attempt of the command
}

// load reads and decodes a stream; fold receives each event.
func (u *unit) load(ctx context.Context, streamID, subject string, fold func(domain.Event)) (*stream, error) {
	s, err := u.add(streamID, subject)
	if err != nil {
		return nil, err
	}
	evs, err := u.c.store.Load(ctx, streamID, 1)
	if err != nil {
		return nil, fmt.Errorf("loading stream %s: %w", streamID, err)
	}
	for _, e := range evs {
		de, err := u.c.reg.Unmarshal(e.Type, e.Data)
		if err != nil {
			return nil, fmt.Errorf("loading stream %s at version %d: %w", streamID, e.StreamVersion, err)
		}
		fold(de)
		s.version, s.lastPos = e.StreamVersion, e.Position
	}
	return s, nil
}

// add adds a stream to the unit at version 0: load folds it from the
// store; added alone, it is taken not to exist, and its append expects
// no stream.
func (u *unit) add(streamID, subject string) (*stream, error) {
	for _, s := range u.streams {
		if s.id == streamID {
			return nil, fmt.Errorf("stream %s: added twice in one command", streamID)
		}
	}
	s := &stream{id: streamID, subject: subject}
	u.streams = append(u.streams, s)
	return s, nil
}

func (u *unit) customer(ctx context.Context, partnerID, customerID string) (domain.Customer, *stream, error) {
	var c domain.Customer
	s, err := u.load(ctx, domain.CustomerStream(partnerID, customerID), customerID, func(e domain.Event) { c = domain.EvolveCustomer(c, e) })
	if c.ID == "" {
		c.ID = customerID // so that "not found" errors can name it
	}
	return c, s, err
}

func (u *unit) catalog(ctx context.Context, partnerID string) (domain.TagCatalog, *stream, error) {
	var t domain.TagCatalog
	s, err := u.load(ctx, domain.TagCatalogStream(partnerID), "", func(e domain.Event) { t = domain.EvolveTagCatalog(t, e) })
	return t, s, err
}

// position is where a reader has to be to see this unit's outcome: the last
// appended event, or for a command that changed nothing, the last event read.
func (u *unit) position() int64 {
	var p int64
	for _, s := range u.streams {
		if s.appended {
			p = max(p, s.result.LastPosition)
		} else {
			p = max(p, s.lastPos)
		}
	}
	return p
}

// commit appends every stream's pending events in one atomic Append.
func (u *unit) commit(ctx context.Context, meta Meta) error {
	var reqs []eventstore.AppendRequest
	var targets []*stream
	for _, s := range u.streams {
		if len(s.pending) == 0 {
			continue
		}
		req := eventstore.AppendRequest{StreamID: s.id, ExpectedVersion: s.version, Claims: s.claims}
		if s.version == 0 {
			req.ExpectedVersion = eventstore.NoStream
		}
		for _, e := range s.pending {
			typ, data, err := u.c.reg.Marshal(e)
			if err != nil {
				return err
			}
			req.Events = append(req.Events, eventstore.NewEvent{
				ID: u.c.newID(), Type: typ, Subject: s.subject, Data: data,
				Metadata: eventstore.Metadata{
					PartnerID: meta.PartnerID, ActorID: meta.ActorID, ActorEmail: meta.ActorEmail,
					CorrelationID: meta.CorrelationID, CausationID: meta.CausationID,
				},
			})
		}
		reqs = append(reqs, req)
		targets = append(targets, s)
	}
	if len(reqs) == 0 {
		return nil
	}
	results, err := u.c.appendOnce(ctx, reqs)
	if err != nil {
		return err
	}
	for i, r := range results {
		targets[i].result, targets[i].appended = r, true
	}
	return nil
}

// appendOnce appends reqs so that they take effect exactly once even when an
// attempt's outcome is unknown. An error that is not a domain answer
// (conflict, claim) may come after the commit (a connection cut while the
// commit was acknowledged), so the same requests, with the same event ids,
// are sent again after a pause: the store answers an append whose events are
// all stored with the stored results, so a retry never applies twice. A
// store that stays unreachable is reported as unavailable (503), not as an
// internal error.
func (c *core) appendOnce(ctx context.Context, reqs []eventstore.AppendRequest) ([]eventstore.AppendResult, error) {
	pause := c.retryPause
	var err error
	for attempt := 1; ; attempt++ {
		var results []eventstore.AppendResult
		results, err = c.store.Append(ctx, reqs...)
		if err == nil || !outcomeUnknown(err) {
			return results, err
		}
		if attempt == c.maxAttempts {
			break
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, fmt.Errorf("appending events: %w", ctx.Err())
		}
		pause = min(2*pause, time.Second)
	}
	e := domain.Errorf(domain.CodeUnavailable, "the event store is unavailable; try again")
	return nil, fmt.Errorf("appending events after %d attempts: %w: %w", c.maxAttempts, e, err)
}

// outcomeUnknown reports whether an append error leaves open whether the
// events were stored: anything but the store's own answers and the caller
// giving up.
func outcomeUnknown(err error) bool {
	return !errors.Is(err, eventstore.ErrConflict) && !errors.Is(err, eventstore.ErrClaimTaken) &&
		!errors.Is(err, eventstore.ErrClosed) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded)
}

// run tries a command until it commits, fails, or has conflicted
// maxAttempts times. decide loads, decides and emits; it runs again from
// scratch after a conflict, on fresh state.
func (c *core) run(ctx context.Context, meta Meta, decide func(ctx context.Context, u *unit) error) (*unit, error) {
	for attempt := 1; ; attempt++ {
		u := &unit{c: c, attempt: attempt}
		if err := decide(ctx, u); err != nil {
			return nil, err
		}
		err := u.commit(ctx, meta)
		var conflict *eventstore.ConflictError
		var claim *eventstore.ClaimError
		switch {
		case err == nil:
			return u, nil
		case errors.As(err, &conflict) && u.exact:
			return nil, domain.Errorf(domain.CodePrecondition, "the customer has changed since version %d was read", conflict.Expected)
		case errors.As(err, &conflict) && attempt < c.maxAttempts:
			continue
		case errors.As(err, &conflict):
			return nil, domain.Errorf(domain.CodeConflict, "concurrent changes kept conflicting after %d attempts; try again", attempt)
		case errors.As(err, &claim):
			return nil, u.claimError(claim.Claim)
		default:
			return nil, fmt.Errorf("appending events: %w", err)
		}
	}
}

func (u *unit) claimError(key string) error {
	for _, s := range u.streams {
		if f, ok := s.claimText[key]; ok {
			e := domain.Errorf(domain.CodeConflict, "%s", f.Message)
			e.Fields = []domain.FieldError{f}
			return e
		}
	}
	return domain.Errorf(domain.CodeConflict, "%s is already taken", key)
}

func requirePartner(meta Meta) error {
	if meta.PartnerID == "" {
		return errors.New("command without a partner id")
	}
	return nil
}

// customerKey turns a client's customer id into the canonical form used in
// stream ids. Anything that is not a UUID cannot exist: 404.
func customerKey(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", domain.Errorf(domain.CodeNotFound, "customer not found")
	}
	return u.String(), nil
}

// newTagIDs gives one fresh id per name, used for names that turn out new.
func (c *core) newTagIDs(names []string) []string {
	ids := make([]string, len(names))
	for i := range names {
		ids[i] = c.newID().String()
	}
	return ids
}
