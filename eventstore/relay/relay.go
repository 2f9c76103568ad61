// Package relay publishes the event log to NATS JetStream, in log order, as
// CloudEvents envelopes (SPEC "Events").
//
// Delivery: every publish carries Nats-Msg-Id = event id and
// Nats-Expected-Last-Sequence = the stream sequence the relay believes is
// last. The second header makes JetStream reject a message when an earlier
// one was lost (connection drop mid-window), so the stream is always a
// gap-free prefix of the log and never reordered. After any error the relay
// resynchronises: it reads the position in its own last message in the
// stream (passing over other writers' messages and deleted ones) and
// continues from max(checkpoint, that position), so a crash after publishing
// but before saving the checkpoint republishes nothing. The duplicate window
// (Options.Duplicates, default 10 minutes) is a second line of defence for
// a stream whose tail holds none of the relay's messages (purged, or many
// from other writers): the relay then starts from its checkpoint (saved
// every CheckpointEvery), and what it publishes again is dropped as
// duplicates.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/partnerhub/customers/eventstore"
)

// Defaults of Options.
const (
	DefaultStream          = "CUSTOMER_EVENTS"
	DefaultSubjectRoot     = "customers"
	DefaultDuplicates      = 10 * time.Minute
	DefaultCheckpointName  = "relay"
	DefaultMaxInFlight     = 256
	DefaultAckTimeout      = 10 * time.Second
	DefaultCheckpointEvery = time.Second
)

// Options configures a Relay. Zero values take the defaults above.
type Options struct {
	Stream         string        // JetStream stream name
	SubjectRoot    string        // first subject token; the stream takes <root>.>
	Duplicates     time.Duration // the stream's duplicate window
	CheckpointName string        // name of the position in eventstore.Checkpoints
	// CheckpointEvery spaces the saves of the position (and one is made
	// when the relay stops). A restart resumes from the stream's last
	// message, so the saved position only backs that up (a stream whose
	// tail was deleted); saving it after every batch was one more commit
	// per batch, waiting for its WAL flush, on the publishing path.
	CheckpointEvery time.Duration
	MaxInFlight     int           // unacknowledged publishes at once
	AckTimeout      time.Duration // how long to wait for one publish ack
	RetryMin        time.Duration // first back-off after an error (default 100 ms)
	RetryMax        time.Duration // longest back-off (default 5 s)
	Logger          *slog.Logger  // nil discards
	// PublicData, if set, rewrites an event's data before it is published,
	// so that fields private to the service never reach subscribers.
	PublicData func(eventType string, data []byte) []byte
}

func (o *Options) defaults() {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.SubjectRoot == "" {
		o.SubjectRoot = DefaultSubjectRoot
	}
	if o.Duplicates == 0 {
		o.Duplicates = DefaultDuplicates
	}
	if o.CheckpointName == "" {
		o.CheckpointName = DefaultCheckpointName
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Relay tails the store and publishes to JetStream. Run it once per process.
type Relay struct {
	store eventstore.Store
	cps   eventstore.Checkpoints
	js    jetstream.JetStream
	opts  Options
	// position is the highest log position known to be in the stream with
	// everything before it; read by metrics, written by Run.
	position atomic.Int64
}

// New builds a relay. nc should reconnect forever (nats.MaxReconnects(-1)):
// the relay survives a NATS restart by waiting for the connection to return.
func New(store eventstore.Store, cps eventstore.Checkpoints, nc *nats.Conn, opts Options) (*Relay, error) {
	opts.defaults()
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4*opts.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("relay: creating JetStream context: %w", err)
	}
	return &Relay{store: store, cps: cps, js: js, opts: opts}, nil
}

// Position is the highest log position published and acknowledged.
func (r *Relay) Position() int64 { return r.position.Load() }

// StreamConfig is the configuration the relay gives its stream.
func (r *Relay) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        r.opts.Stream,
		Description: "Customer list events as CloudEvents, in log order",
		Subjects:    []string{r.opts.SubjectRoot + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  r.opts.Duplicates,
	}
}

// EnsureStream creates the stream or updates its configuration.
func (r *Relay) EnsureStream(ctx context.Context) (jetstream.Stream, error) {
	s, err := r.js.CreateOrUpdateStream(ctx, r.StreamConfig())
	if err != nil {
		return nil, fmt.Errorf("relay: ensuring stream %s: %w", r.opts.Stream, err)
	}
	return s, nil
}

// Run publishes until ctx ends, retrying with back-off after any error
// (NATS or database down). It returns nil when ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	wait := r.opts.RetryMin
	for {
		before := r.position.Load()
		err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errResync) {
			// A duplicate moved the relay past an event the stream holds
			// already (republished from a checkpoint behind a stream whose
			// tail holds none of the relay's messages): one per resync, so
			// a second of such events would take minutes with a back-off
			// after each.
			r.opts.Logger.Debug("relay: resynchronising after a duplicate", "err", err, "position", r.position.Load())
			wait = r.opts.RetryMin
			continue
		}
		if r.position.Load() > before {
			wait = r.opts.RetryMin // progress was made: this is a fresh failure
		}
		r.opts.Logger.Warn("relay: publishing interrupted, resuming", "err", err, "position", r.position.Load(), "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, r.opts.RetryMax)
	}
}

// errResync reports a duplicate ack: the stream did not grow, so every
// message after it in the window expected one sequence too many; start
// over from the stream's tail. (Another writer's message shows as a wrong
// last sequence, an ordinary error.)
var errResync = errors.New("relay: duplicate acknowledged, resynchronising")

func (r *Relay) runOnce(ctx context.Context) error {
	stream, err := r.EnsureStream(ctx)
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("relay: reading stream info: %w", err)
	}
	nextSeq := info.State.LastSeq // expected last sequence of the next publish
	tail, err := r.tailPosition(ctx, stream, info.State.FirstSeq, info.State.LastSeq)
	if err != nil {
		return err
	}
	cp, err := r.cps.LoadCheckpoint(ctx, r.opts.CheckpointName)
	if err != nil {
		return fmt.Errorf("relay: loading checkpoint: %w", err)
	}
	start := max(cp, tail, r.position.Load())
	saved, savedAt := cp, time.Now()
	save := func(ctx context.Context) error {
		p := r.position.Load()
		if p <= saved {
			return nil
		}
		if err := r.cps.SaveCheckpoint(ctx, r.opts.CheckpointName, p); err != nil {
			return fmt.Errorf("relay: saving checkpoint: %w", err)
		}
		saved, savedAt = p, time.Now()
		return nil
	}
	r.position.Store(start)
	if err := save(ctx); err != nil { // a start from the stream's tail ahead of the checkpoint
		return err
	}
	r.opts.Logger.Info("relay: publishing", "stream", r.opts.Stream, "after", start, "stream_seq", nextSeq)
	err = r.store.Subscribe(ctx, start, func(ctx context.Context, batch []eventstore.Event) error {
		for len(batch) > 0 {
			n := min(len(batch), r.opts.MaxInFlight)
			if err := r.publish(ctx, batch[:n], &nextSeq); err != nil {
				return err
			}
			batch = batch[n:]
		}
		if time.Since(savedAt) < r.opts.CheckpointEvery {
			return nil
		}
		return save(ctx)
	})
	// What was published since the last save, saved on the way out (the
	// caller's context may be done by now).
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if serr := save(sctx); serr != nil {
		r.opts.Logger.Warn("relay: saving the checkpoint on stopping", "err", serr)
	}
	return err
}

// tailLookBack bounds how far back from the stream's last message
// tailPosition looks for the relay's own: past it, the relay starts from its
// checkpoint and what it publishes again is dropped as duplicates.
const tailLookBack = 64

// tailPosition is the log position in the relay's last message in the
// stream, 0 when the stream is empty or holds none of the relay's envelopes
// among its last tailLookBack messages. Messages of other writers and
// deleted ones are passed over: starting behind them from the checkpoint,
// every republished event was a duplicate, and each cost a resync. A
// relay's message is an envelope whose id is its message id, so another
// writer's copy of an envelope (from GET /v1/events, say) is not taken for
// one. Sequences below firstSeq are gone (purged) and not asked for.
func (r *Relay) tailPosition(ctx context.Context, stream jetstream.Stream, firstSeq, lastSeq uint64) (int64, error) {
	for seq := lastSeq; seq > 0 && seq >= firstSeq && lastSeq-seq < tailLookBack; seq-- {
		msg, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted or purged
		}
		if err != nil {
			return 0, fmt.Errorf("relay: reading stream message %d: %w", seq, err)
		}
		var env struct {
			ID       string `json:"id"`
			Position int64  `json:"position"`
		}
		if json.Unmarshal(msg.Data, &env) == nil && env.Position > 0 && env.ID != "" &&
			msg.Header.Get(jetstream.MsgIDHeader) == env.ID {
			return env.Position, nil
		}
		r.opts.Logger.Debug("relay: stream message is not the relay's", "seq", seq, "subject", msg.Subject)
	}
	return 0, nil
}

// publish sends events asynchronously and waits for every ack in order, so
// the position only advances over a gap-free prefix.
func (r *Relay) publish(ctx context.Context, events []eventstore.Event, nextSeq *uint64) error {
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, e := range events {
		msg, err := r.message(e)
		if err != nil {
			return err
		}
		f, err := r.js.PublishMsgAsync(msg,
			jetstream.WithMsgID(e.ID.String()),
			jetstream.WithExpectLastSequence(*nextSeq))
		if err != nil {
			return fmt.Errorf("relay: publishing event %s at position %d: %w", e.ID, e.Position, err)
		}
		*nextSeq++
		futures = append(futures, f)
	}
	timeout := time.NewTimer(r.opts.AckTimeout + time.Second)
	defer timeout.Stop()
	for i, f := range futures {
		e := events[i]
		select {
		case ack := <-f.Ok():
			r.position.Store(e.Position)
			if ack.Duplicate {
				// Stored earlier, so the stream did not grow: every message
				// after it in this window expected one sequence too many.
				return fmt.Errorf("%w: event %s at position %d was a duplicate of sequence %d", errResync, e.ID, e.Position, ack.Sequence)
			}
		case err := <-f.Err():
			return fmt.Errorf("relay: publishing event %s at position %d: %w", e.ID, e.Position, err)
		case <-timeout.C:
			// The client's own async timeout should fire first; this guards
			// against a future that never resolves.
			return fmt.Errorf("relay: no ack for event %s at position %d", e.ID, e.Position)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *Relay) message(e eventstore.Event) (*nats.Msg, error) {
	if r.opts.PublicData != nil {
		e.Data = r.opts.PublicData(e.Type, e.Data)
	}
	body, err := json.Marshal(NewEnvelope(e))
	if err != nil {
		return nil, fmt.Errorf("relay: encoding event %s: %w", e.ID, err)
	}
	msg := nats.NewMsg(Subject(r.opts.SubjectRoot, e.PartnerID, e.Type))
	msg.Data = body
	msg.Header.Set("Content-Type", ContentType)
	return msg, nil
}
