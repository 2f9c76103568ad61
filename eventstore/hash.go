package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// ChainHash is the audit hash of an event: SHA-256 over the previous event's
// hash in the same stream (empty for version 1) followed by each field as an
// 8-byte big-endian length and its bytes. Length prefixes make the encoding
// unambiguous; chaining per stream (not globally) keeps appends to different
// streams concurrent. The PostgreSQL backend computes the same bytes in SQL;
// storetest checks that both agree with this function.
func ChainHash(prev []byte, e Event) []byte {
	h := sha256.New()
	h.Write(prev)
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(e.ID.String()))
	field([]byte(e.StreamID))
	field([]byte(strconv.FormatInt(e.StreamVersion, 10)))
	field([]byte(e.Type))
	field([]byte(e.Subject))
	field([]byte(e.PartnerID))
	field([]byte(e.ActorID))
	field([]byte(e.ActorEmail))
	field([]byte(e.CorrelationID))
	field([]byte(e.CausationID))
	field([]byte(strconv.FormatInt(e.RecordedAt.UnixMicro(), 10)))
	field(e.Data)
	return h.Sum(nil)
}
