package projections

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/relay"
)

// Config configures one projector's JetStream consumer.
type Config struct {
	Stream        string        // "CUSTOMER_EVENTS"
	Durable       string        // durable consumer name, one per projector
	FilterSubject string        // "customers.>"
	BatchSize     int           // most events applied per transaction (a batch is what has arrived), 1..10000
	AckWait       time.Duration // redelivery after this long without ack (default 30 s)
	PoisonSubject string        // where undecodable batches go (core NATS)
	Logger        *slog.Logger  // nil discards
}

// Validate reports every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	if c.Stream == "" || strings.ContainsAny(c.Stream, ".*> ") {
		errs = append(errs, fmt.Errorf("stream %q: must be a non-empty name without '.', '*', '>' or spaces", c.Stream))
	}
	if c.Durable == "" || strings.ContainsAny(c.Durable, ".*> ") {
		errs = append(errs, fmt.Errorf("durable %q: must be a non-empty name without '.', '*', '>' or spaces", c.Durable))
	}
	if c.FilterSubject == "" || strings.Contains(c.FilterSubject, " ") {
		errs = append(errs, fmt.Errorf("filter subject %q: must be a non-empty subject", c.FilterSubject))
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		errs = append(errs, fmt.Errorf("batch size %d: must be between 1 and 10000", c.BatchSize))
	}
	if c.AckWait < 0 {
		errs = append(errs, errors.New("ack wait must not be negative"))
	}
	if c.PoisonSubject == "" || strings.ContainsAny(c.PoisonSubject, "*> ") {
		errs = append(errs, fmt.Errorf("poison subject %q: must be a literal subject", c.PoisonSubject))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid projector config: %w", errors.Join(errs...))
	}
	return nil
}

// ErrUndecodable marks a batch holding an envelope or event data that can
// never be decoded: it goes to the poison subject instead of being retried.
var ErrUndecodable = errors.New("undecodable event")

// EventFromEnvelope turns a published envelope back into the stored event
// the projections apply (hash fields are not carried and stay empty).
func EventFromEnvelope(env relay.Envelope) (eventstore.Event, error) {
	id, err := uuid.Parse(env.ID)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("envelope id %q: %w", env.ID, err)
	}
	at, err := time.Parse(time.RFC3339Nano, env.Time)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("envelope time %q: %w", env.Time, err)
	}
	if env.Position < 1 || env.Type == "" || env.PartnerID == "" {
		return eventstore.Event{}, fmt.Errorf("envelope %s lacks position, type or partner id", env.ID)
	}
	email := env.Actor
	if email == env.ActorID {
		email = "" // the relay puts the id in actor when there is no email
	}
	return eventstore.Event{
		ID: id, StreamID: env.StreamID, StreamVersion: env.StreamVersion, Position: env.Position,
		Type: env.Type, Subject: env.Subject, Data: env.Data, RecordedAt: at.UTC(),
		Metadata: eventstore.Metadata{PartnerID: env.PartnerID, ActorID: env.ActorID, ActorEmail: email,
			CorrelationID: env.CorrelationID, CausationID: env.CausationID},
	}, nil
}

// Run feeds p from JetStream until ctx ends. It creates (or updates) the
// durable pull consumer and runs a watermill router whose one handler
// applies each batch (see batchSubscriber) in one transaction; the batch
// is acked only after that commits, so a crash means redelivery, which the
// checkpoint turns into a no-op.
//
// Why our own watermill Subscriber rather than watermill-nats: its
// JetStream support is marked beta and acks per message, while we need
// batch / ack-after-commit semantics, which nats.go's jetstream Consume
// gives with a channel and a loop.
func Run(ctx context.Context, nc *nats.Conn, cfg Config, p Projector, reg *domain.Registry) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	consumer := func(ctx context.Context) (jetstream.Consumer, error) {
		cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
			Durable: cfg.Durable, FilterSubject: cfg.FilterSubject, AckPolicy: jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: cfg.AckWait, MaxAckPending: maxAckPending * cfg.BatchSize,
		})
		if err != nil {
			return nil, fmt.Errorf("creating consumer %s on %s: %w", cfg.Durable, cfg.Stream, err)
		}
		return cons, nil
	}
	cons, err := consumer(ctx)
	if err != nil {
		return err
	}
	logger := watermill.NewSlogLogger(cfg.Logger)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return fmt.Errorf("creating router: %w", err)
	}
	poison, err := middleware.PoisonQueueWithFilter(natsPublisher{nc}, cfg.PoisonSubject, func(err error) bool {
		return errors.Is(err, ErrUndecodable)
	})
	if err != nil {
		return fmt.Errorf("creating poison queue: %w", err)
	}
	// Outermost first: a poison batch is not retried; panics become errors
	// that Retry sees.
	router.AddMiddleware(
		middleware.CorrelationID,
		poison,
		middleware.Retry{
			MaxRetries: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second, Multiplier: 2,
			ShouldRetry: func(rp middleware.RetryParams) bool { return !errors.Is(rp.Err, ErrUndecodable) },
			Logger:      logger,
		}.Middleware,
		middleware.Recoverer,
	)
	sub := &batchSubscriber{cons: cons, consumer: consumer, batch: cfg.BatchSize, log: cfg.Logger}
	router.AddNoPublisherHandler(cfg.Durable, cfg.FilterSubject, sub, func(msg *message.Message) error {
		return handleBatch(msg.Context(), p, reg, msg.Payload)
	})
	if err := router.Run(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("running projector %s: %w", p.Name(), err)
	}
	return nil
}

// handleBatch decodes a batch, applies the decodable events, and reports the
// rest as ErrUndecodable so the batch lands on the poison subject.
func handleBatch(ctx context.Context, p Projector, reg *domain.Registry, payload []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(payload, &raws); err != nil {
		return fmt.Errorf("%w: batch payload: %v", ErrUndecodable, err)
	}
	events := make([]eventstore.Event, 0, len(raws))
	var bad []string
	for i, raw := range raws {
		var env relay.Envelope
		err := json.Unmarshal(raw, &env)
		var ev eventstore.Event
		if err == nil {
			ev, err = EventFromEnvelope(env)
		}
		if err == nil {
			_, err = Decode(reg, ev)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("message %d: %v", i, err))
			continue
		}
		events = append(events, ev)
	}
	if err := p.ApplyBatch(ctx, events); err != nil {
		return fmt.Errorf("applying batch to %s: %w", p.Name(), err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrUndecodable, strings.Join(bad, "; "))
	}
	return nil
}

// batchSubscriber is a watermill Subscriber over a JetStream pull consumer:
// each watermill message is one batch (a JSON array of envelopes), and the
// JetStream messages are acked only when the handler acks it.
//
// Messages stream in through Consume, which keeps pull requests open and
// the client's buffer filled (and renews them after a reconnect), so a
// batch is whatever has arrived, taken without a round trip to the server.
// Fetching each batch (one pull for the first message, one for the rest)
// cost two round trips per batch, at 1,000 creates/s about half of a
// projector's cycle.
//
// A subscription that ends (the consumer deleted, or lost by a server that
// kept it in memory) is followed by another after a pause, on the consumer
// created again.
type batchSubscriber struct {
	cons     jetstream.Consumer                                // as Run created it
	consumer func(context.Context) (jetstream.Consumer, error) // creates it again
	batch    int
	log      *slog.Logger
	wg       sync.WaitGroup
	closed   chan struct{}
	once     sync.Once
}

// maxAckPending is how many batches' worth of messages the consumer lets
// go unacknowledged. A subscription holds about three: the batch being
// applied, the batch's worth queued for the next, and the client's buffer
// (a little more just after a reconnect, when nats.go asks for a full
// buffer again). One more lets a run that follows a stopped one go on at
// once, completing from the store what the stopped one held, rather than
// wait out those messages' ack wait.
const maxAckPending = 4

// pullExpiry is how long one pull request of Consume stays open on the
// server. Heartbeats come at half of it, and two missed ones renew the
// pull, so a pull the server lost without a reconnect (which renews at
// once) is noticed within this long.
const pullExpiry = 5 * time.Second

func (s *batchSubscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	s.once.Do(func() { s.closed = make(chan struct{}) })
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		cons := s.cons
		for {
			err := s.consume(ctx, cons, out)
			if err == nil || ctx.Err() != nil {
				return
			}
			s.log.Warn("consuming projector messages", "err", err)
			if s.pause(ctx) {
				return
			}
			if cons, err = s.consumer(ctx); err != nil {
				s.log.Warn("consuming projector messages", "err", err)
			}
		}
	}()
	return out, nil
}

// pause waits a second before a retry; done is true when ctx ended or the
// subscriber closed meanwhile.
func (s *batchSubscriber) pause(ctx context.Context) (done bool) {
	select {
	case <-time.After(time.Second):
		return false
	case <-ctx.Done():
		return true
	case <-s.closed:
		return true
	}
}

// errSubscriptionEnded: a Consume subscription ended on its own.
var errSubscriptionEnded = errors.New("subscription ended")

// consume runs one Consume subscription of cons (nil: none yet, an error)
// and hands its messages on in batches until ctx ends or the subscriber
// closes (nil), or the subscription ends on its own (an error): the
// consumer deleted, which the server reports, or gone, which missed
// heartbeats or "no responders" and a look at the consumer show. Messages
// it holds when it stops come again after their ack wait, behind later
// ones: the projector completes such a batch from the event store (see
// CompleteBatch).
func (s *batchSubscriber) consume(ctx context.Context, cons jetstream.Consumer, out chan<- *message.Message) error {
	if cons == nil {
		return errors.New("no consumer")
	}
	in := make(chan jetstream.Msg, s.batch)
	stopping := make(chan struct{})
	look := make(chan struct{}, 1) // the consumer may be gone: look (not in nats.go's goroutine)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case in <- m:
		case <-stopping:
		}
	}, jetstream.PullMaxMessages(s.batch), jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Warn("consuming projector messages", "err", err)
			// A pull to a consumer that no longer exists is answered "no
			// responders", then heartbeats are missed, and nats.go would
			// pull again forever. (A consumer deleted while a pull waits is
			// reported, and ends the subscription by itself.)
			if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrNoResponders) {
				select {
				case look <- struct{}{}:
				default:
				}
			}
		}))
	if err != nil {
		return fmt.Errorf("consuming: %w", err)
	}
	defer func() {
		close(stopping)
		cc.Stop()
	}()
	for {
		var first jetstream.Msg
		select {
		case first = <-in:
		case <-look:
			ictx, cancel := context.WithTimeout(ctx, pullExpiry)
			_, err := cons.Info(ictx)
			cancel()
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("%w: %w", errSubscriptionEnded, err)
			}
			continue
		case <-cc.Closed():
			return errSubscriptionEnded
		case <-ctx.Done():
			return nil
		case <-s.closed:
			return nil
		}
		batch := []jetstream.Msg{first}
	rest:
		for len(batch) < s.batch {
			select {
			case m := <-in:
				batch = append(batch, m)
			default:
				break rest
			}
		}
		if s.deliver(ctx, out, batch) {
			return nil
		}
	}
}

// deliver hands one batch to the router and acks its JetStream messages
// once the handler has. A nacked batch is handed on again after a pause,
// so nothing after it goes first. done is true when ctx ended or the
// subscriber closed meanwhile.
func (s *batchSubscriber) deliver(ctx context.Context, out chan<- *message.Message, msgs []jetstream.Msg) (done bool) {
	raws := make([]json.RawMessage, len(msgs))
	for i, m := range msgs {
		if json.Valid(m.Data()) {
			raws[i] = m.Data()
		} else {
			raws[i], _ = json.Marshal(string(m.Data())) // keep it, as a string, for the poison queue
		}
	}
	payload, _ := json.Marshal(raws)
	msg := message.NewMessage(watermill.NewUUID(), payload)
	if h := msgs[0].Headers(); h != nil {
		middleware.SetCorrelationID(h.Get("Nats-Msg-Id"), msg)
	}
	for {
		m := msg.Copy()
		m.SetContext(ctx)
		select {
		case out <- m:
		case <-ctx.Done():
			return true
		case <-s.closed:
			return true
		}
		select {
		case <-m.Acked():
			// A message whose ack is lost comes again after its ack wait,
			// a no-op then: not a reason to drop what this subscription
			// holds.
			var failed int
			var first error
			for _, jm := range msgs {
				if err := jm.Ack(); err != nil {
					failed, first = failed+1, cmp.Or(first, err)
				}
			}
			if failed > 0 {
				s.log.Warn("acking projector messages", "failed", failed, "of", len(msgs), "err", first)
			}
			return false
		case <-m.Nacked():
			if s.pause(ctx) {
				return true
			}
		case <-ctx.Done():
			return true
		case <-s.closed:
			return true
		}
	}
}

func (s *batchSubscriber) Close() error {
	s.once.Do(func() { s.closed = make(chan struct{}) })
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.wg.Wait()
	return nil
}

// natsPublisher publishes watermill messages on core NATS subjects (the
// poison queue), with metadata as headers.
type natsPublisher struct{ nc *nats.Conn }

func (p natsPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		nm := nats.NewMsg(topic)
		nm.Data = m.Payload
		for k, v := range m.Metadata {
			nm.Header.Set(k, v)
		}
		if err := p.nc.PublishMsg(nm); err != nil {
			return fmt.Errorf("publishing to %s: %w", topic, err)
		}
	}
	return p.nc.Flush()
}

func (natsPublisher) Close() error { return nil }
