package relay_test

import (
	"context"
	"sync"
	"time"

	"github.com/partnerhub/customers/eventstore"
)

// memStore is a minimal in-memory eventstore.Store and Checkpoints for the
// relay's tests: only what the relay uses is implemented faithfully.
type memStore struct {
	mu          sync.Mutex
	events      []eventstore.Event
	versions    map[string]int64
	checkpoints map[string]int64
	changed     chan struct{} // closed and replaced on every append
}

func newMemStore() *memStore {
	return &memStore{versions: map[string]int64{}, checkpoints: map[string]int64{}, changed: make(chan struct{})}
}

func (m *memStore) Append(ctx context.Context, reqs ...eventstore.AppendRequest) ([]eventstore.AppendResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []eventstore.AppendResult
	for _, req := range reqs {
		res := eventstore.AppendResult{StreamID: req.StreamID}
		for _, ne := range req.Events {
			m.versions[req.StreamID]++
			e := eventstore.Event{
				ID: ne.ID, StreamID: req.StreamID, StreamVersion: m.versions[req.StreamID],
				Position: int64(len(m.events)) + 1, Type: ne.Type, Subject: ne.Subject,
				Data: ne.Data, Metadata: ne.Metadata, RecordedAt: time.Now().UTC().Truncate(time.Microsecond),
			}
			m.events = append(m.events, e)
			if res.FirstPosition == 0 {
				res.FirstPosition = e.Position
			}
			res.LastPosition, res.Version = e.Position, e.StreamVersion
		}
		out = append(out, res)
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return out, nil
}

func (m *memStore) Load(ctx context.Context, streamID string, fromVersion int64) ([]eventstore.Event, error) {
	panic("not used by the relay")
}

func (m *memStore) ReadAll(ctx context.Context, req eventstore.ReadRequest) ([]eventstore.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	limit := req.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []eventstore.Event
	for _, e := range m.events[min(int(req.After), len(m.events)):] {
		if len(out) == limit {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

func (m *memStore) Subscribe(ctx context.Context, after int64, handle func(context.Context, []eventstore.Event) error) error {
	for {
		m.mu.Lock()
		changed := m.changed
		m.mu.Unlock()
		batch, _ := m.ReadAll(ctx, eventstore.ReadRequest{After: after, Limit: 100})
		if len(batch) > 0 {
			if err := handle(ctx, batch); err != nil {
				return err
			}
			after = batch[len(batch)-1].Position
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

func (m *memStore) Head(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.events)), nil
}

func (m *memStore) Close() error { return nil }

func (m *memStore) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checkpoints[name], nil
}

func (m *memStore) SaveCheckpoint(ctx context.Context, name string, position int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checkpoints[name] = position
	return nil
}
