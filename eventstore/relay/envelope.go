package relay

import (
	"encoding/json"
	"strings"

	"github.com/partnerhub/customers/eventstore"
)

// SpecVersion is the CloudEvents version of every envelope.
const SpecVersion = "1.0"

// ContentType is the NATS Content-Type header of a published envelope
// (CloudEvents NATS binding, structured mode).
const ContentType = "application/cloudevents+json"

// TimeLayout is RFC 3339 in UTC with microsecond fractions, the precision the
// event store keeps; a fixed width keeps the strings sortable.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Envelope is the CloudEvents 1.0 JSON envelope of an event (SPEC "Events").
// The same envelope is published on NATS and returned by GET /v1/events.
type Envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"` // "/customers/partners/<partnerId>"
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"` // customer id, if any
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data,omitempty"`

	// Extension attributes.
	Position      int64  `json:"position"`
	StreamID      string `json:"streamid"`
	StreamVersion int64  `json:"streamversion"`
	PartnerID     string `json:"partnerid"`
	// Actor is the acting user's email, or the user id when there is no
	// email; ActorID is always the user id. Both are omitted for events no
	// user caused (e.g. written by the operator CLI).
	Actor         string `json:"actor,omitempty"`
	ActorID       string `json:"actorid,omitempty"`
	CorrelationID string `json:"correlationid,omitempty"`
	CausationID   string `json:"causationid,omitempty"`
}

// Source is the CloudEvents source of a partner's events.
func Source(partnerID string) string { return "/customers/partners/" + partnerID }

// NewEnvelope wraps a stored event; Data is carried byte for byte.
func NewEnvelope(e eventstore.Event) Envelope {
	actor := e.ActorEmail
	if actor == "" {
		actor = e.ActorID
	}
	var data json.RawMessage
	if len(e.Data) > 0 {
		data = json.RawMessage(e.Data)
	}
	return Envelope{
		SpecVersion:     SpecVersion,
		ID:              e.ID.String(),
		Source:          Source(e.PartnerID),
		Type:            e.Type,
		Subject:         e.Subject,
		Time:            e.RecordedAt.UTC().Format(TimeLayout),
		DataContentType: "application/json",
		Data:            data,
		Position:        e.Position,
		StreamID:        e.StreamID,
		StreamVersion:   e.StreamVersion,
		PartnerID:       e.PartnerID,
		Actor:           actor,
		ActorID:         e.ActorID,
		CorrelationID:   e.CorrelationID,
		CausationID:     e.CausationID,
	}
}

// Subject is the NATS subject of an event: <root>.<partnerId>.<eventType>,
// the type's dot kept (customers.<p>.order.created). Characters that NATS
// gives a meaning in subjects are replaced by "_" in the partner id, so a
// strange id cannot publish outside its partner's subtree.
func Subject(root, partnerID, eventType string) string {
	return root + "." + token(partnerID) + "." + eventType
}

func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}
