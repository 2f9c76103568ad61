// Package eventstore defines the append-only event log that is the system of
// record: streams with optimistic concurrency, a gap-safe global order, and a
// per-stream hash chain for audits. Backends live in sub-packages and all pass
// the conformance suite in eventstore/storetest.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Expected-version sentinels for AppendRequest.ExpectedVersion. Any value >= 1
// means "the stream is exactly at that version".
const (
	// AnyVersion appends whatever the stream's current version is.
	AnyVersion int64 = -1
	// NoStream requires that the stream does not exist yet.
	NoStream int64 = 0
)

// Metadata travels with every event. It is part of the hash chain.
type Metadata struct {
	PartnerID     string `json:"partnerId"`
	ActorID       string `json:"actorId,omitempty"`
	ActorEmail    string `json:"actorEmail,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
}

// NewEvent is an event to append.
type NewEvent struct {
	ID      uuid.UUID // idempotency key: appending an id already stored is a no-op
	Type    string    // stable name, e.g. "customer.created"
	Subject string    // what the event is about (customer id), "" if nothing
	Data    []byte    // JSON, stored byte for byte
	Metadata
}

// Event is a stored event.
type Event struct {
	ID            uuid.UUID
	StreamID      string
	StreamVersion int64 // 1 for the first event of a stream
	Position      int64 // global, strictly increasing in read order, >= 1
	Type          string
	Subject       string
	Data          []byte
	Metadata
	RecordedAt time.Time // UTC, microsecond precision
	PrevHash   []byte    // Hash of the previous event of the stream; empty for version 1
	Hash       []byte    // ChainHash(PrevHash, this event)
}

// AppendRequest appends events to one stream.
type AppendRequest struct {
	StreamID        string
	ExpectedVersion int64 // AnyVersion, NoStream, or an exact version >= 1
	Events          []NewEvent
	// Claims are unique keys (for example "domain/<partner>/<name>") taken
	// atomically with the append. A key already taken by another append fails
	// the whole append with a *ClaimError.
	Claims []string
}

// AppendResult tells where a stream's new events landed.
type AppendResult struct {
	StreamID      string
	Version       int64 // stream version after the append
	FirstPosition int64
	LastPosition  int64
}

// ReadRequest selects a slice of the global log.
type ReadRequest struct {
	After     int64    // exclusive global position
	Limit     int      // at most this many events; <= 0 means a backend default
	PartnerID string   // only this partner's events, if set
	Types     []string // only events of these types, if set
}

// Store is the event log. Every implementation must pass storetest.Run.
type Store interface {
	// Append appends to one or more streams atomically: all requests succeed
	// or none is stored. A wrong expected version is a *ConflictError, and
	// it is found before claims are: a request that fails both conflicts
	// (a create that assumed its stream new relies on it).
	// Appending events whose ids are all stored already (a retry) succeeds
	// and returns the original results without storing anything.
	Append(ctx context.Context, reqs ...AppendRequest) ([]AppendResult, error)
	// Load returns a stream's events with version >= fromVersion, in order.
	// A stream that does not exist yields no events and no error.
	Load(ctx context.Context, streamID string, fromVersion int64) ([]Event, error)
	// ReadAll returns events in global order after req.After. It never
	// returns an event at position P while an event at a position below P
	// may still become visible: a reader that has passed P never later finds
	// a committed event before P.
	ReadAll(ctx context.Context, req ReadRequest) ([]Event, error)
	// Subscribe catches up from position after and then follows new appends
	// until ctx ends or handle returns an error. handle sees each event once,
	// in global order, in batches.
	Subscribe(ctx context.Context, after int64, handle func(ctx context.Context, batch []Event) error) error
	// Head returns the highest position a reader may safely have seen.
	Head(ctx context.Context) (int64, error)
	Close() error
}

// Checkpoints keeps named positions (the relay's, for example) in the same
// database as the log. Both backends implement it.
type Checkpoints interface {
	// LoadCheckpoint returns the saved position, or 0 if none was saved.
	LoadCheckpoint(ctx context.Context, name string) (int64, error)
	SaveCheckpoint(ctx context.Context, name string, position int64) error
}

// ErrConflict is matched by every *ConflictError.
var ErrConflict = errors.New("eventstore: wrong expected version")

// ErrClaimTaken is matched by every *ClaimError.
var ErrClaimTaken = errors.New("eventstore: unique claim already taken")

// ErrClosed is returned by a closed store.
var ErrClosed = errors.New("eventstore: store is closed")

// ConflictError reports an optimistic-concurrency failure.
type ConflictError struct {
	StreamID string
	Expected int64
	Actual   int64 // 0 when the stream does not exist
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: stream %q is at version %d, expected %d", e.StreamID, e.Actual, e.Expected)
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ClaimError reports a unique claim that another stream holds.
type ClaimError struct{ Claim string }

func (e *ClaimError) Error() string {
	return fmt.Sprintf("eventstore: claim %q is already taken", e.Claim)
}

func (e *ClaimError) Is(target error) bool { return target == ErrClaimTaken }
