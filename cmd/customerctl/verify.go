package main

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/partnerhub/customers/eventstore"
)

// verifyBatch is how many events one ReadAll fetches.
const verifyBatch = 1000

// breakage is the first thing found wrong in one stream.
type breakage struct {
	StreamID string
	Position int64 // global position of the first bad event
	Reason   string
}

// chainState is what verify remembers per stream: enough to check the next
// event, never the events themselves, so memory grows with streams only.
type chainState struct {
	version int64
	hash    []byte
	broken  *breakage
	// gapVersion is the version missing at broken.Position; if it turns up
	// later the stream was reordered rather than cut.
	gapVersion int64
}

// verifyResult is the outcome of a full scan.
type verifyResult struct {
	Streams int
	Events  int64
	Broken  []breakage // ordered by first bad position
}

// verifyChains reads the whole log (or one partner's part of it) in global
// order and checks each stream's chain: versions contiguous from 1, PrevHash
// equal to the previous event's stored hash, and the stored hash equal to
// eventstore.ChainHash recomputed from the content.
func verifyChains(ctx context.Context, store eventstore.Store, partnerID string, progress func(done int64)) (verifyResult, error) {
	streams := map[string]*chainState{}
	var res verifyResult
	err := readLog(ctx, store, partnerID, verifyBatch, func(batch []eventstore.Event) error {
		for i := range batch {
			e := &batch[i]
			res.Events++
			st := streams[e.StreamID]
			if st == nil {
				st = &chainState{}
				streams[e.StreamID] = st
			}
			checkEvent(st, e)
		}
		if progress != nil {
			progress(res.Events)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Streams = len(streams)
	for _, st := range streams {
		if st.broken != nil {
			res.Broken = append(res.Broken, *st.broken)
		}
	}
	sort.Slice(res.Broken, func(i, j int) bool { return res.Broken[i].Position < res.Broken[j].Position })
	return res, nil
}

func checkEvent(st *chainState, e *eventstore.Event) {
	if st.broken != nil {
		// Already broken: only watch for the missing version turning up
		// late, which makes the first fault a reordering.
		if st.gapVersion > 0 && e.StreamVersion == st.gapVersion {
			st.broken.Reason = fmt.Sprintf("reordered: version %d is stored after version %d", e.StreamVersion, st.version)
			st.gapVersion = 0
		}
		return
	}
	fail := func(reason string) { st.broken = &breakage{StreamID: e.StreamID, Position: e.Position, Reason: reason} }
	want := st.version + 1
	switch {
	case e.StreamVersion > want:
		fail(fmt.Sprintf("missing version %d (found version %d)", want, e.StreamVersion))
		st.gapVersion = want
	case e.StreamVersion < want:
		fail(fmt.Sprintf("reordered: version %d is stored after version %d", e.StreamVersion, st.version))
	case !bytes.Equal(e.PrevHash, st.hash):
		fail(fmt.Sprintf("previous-hash mismatch at version %d: the chain link to version %d is broken", e.StreamVersion, st.version))
	case !bytes.Equal(eventstore.ChainHash(e.PrevHash, *e), e.Hash):
		fail(fmt.Sprintf("hash mismatch at version %d: the event's content was changed", e.StreamVersion))
	}
	st.version = e.StreamVersion
	st.hash = e.Hash
}
