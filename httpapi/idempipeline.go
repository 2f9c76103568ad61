package httpapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// idemPipeline sends the PostgreSQL idempotency store's claims and answers
// in pipelines, a group commit: whatever queued while the previous pipeline
// was out goes in the next, as one round trip and one commit. A POST with an
// Idempotency-Key made three round trips (claim, append, answer); at 1,000
// creates/s the claims and answers were two of every five round trips
// customerd made, and on two shared cores each one's wake-ups cost more than
// its statement. Idle, an op goes out at once, alone, as before.
//
// PostgreSQL runs a pipeline as one transaction, so one op's error would
// roll back the others: after a statement error the pipeline's ops run
// again one by one, each getting its own outcome.
type idemPipeline struct {
	pool *pgxpool.Pool
	ops  chan *idemOp
	ctx  context.Context // ends with close
	stop context.CancelFunc
	done sync.WaitGroup

	mu     sync.RWMutex // closed, and sends to ops (read-locked)
	closed bool
}

// idemOp is one statement and its caller's wait. A claim reads whether a
// row came back (the key is the caller's); an answer only executes.
type idemOp struct {
	ctx      context.Context
	sql      string
	args     []any
	query    bool // a claim: RETURNING a row when the key was taken
	returned bool
	err      error
	finished chan struct{}
}

// idemPipelineMax bounds a pipeline, so that one slow round trip does not
// hold a long queue's worth of callers behind a single commit.
const idemPipelineMax = 64

// idemPipelineTimeout bounds a pipeline's round trip: the callers' own
// contexts may end first (they stop waiting), but the ops already sent are
// the database's to finish.
const idemPipelineTimeout = 5 * time.Second

func newIdemPipeline(pool *pgxpool.Pool) *idemPipeline {
	ctx, cancel := context.WithCancel(context.Background())
	p := &idemPipeline{pool: pool, ops: make(chan *idemOp, idemPipelineMax), stop: cancel, ctx: ctx}
	p.done.Add(1)
	go p.run()
	return p
}

// close stops the pipeline after the one in flight; ops still queued or
// sent later fail.
func (p *idemPipeline) close() {
	// Once closed is set no op is queued, so run's last drain answers
	// every op that was.
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stop()
	p.done.Wait()
}

// do queues op and waits for its outcome, or for ctx.
func (p *idemPipeline) do(ctx context.Context, sql string, query bool, args ...any) (returned bool, err error) {
	op := &idemOp{ctx: ctx, sql: sql, args: args, query: query, finished: make(chan struct{})}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return false, errIdemClosed
	}
	select {
	case p.ops <- op:
	case <-ctx.Done():
		p.mu.RUnlock()
		return false, ctx.Err()
	}
	p.mu.RUnlock()
	select {
	case <-op.finished:
		return op.returned, op.err
	case <-ctx.Done():
		// The op may still run; as with a statement cut short, an
		// unanswered claim holds its key until its lock lapses.
		return false, ctx.Err()
	}
}

var errIdemClosed = errors.New("the idempotency store is closed")

func (p *idemPipeline) run() {
	defer p.done.Done()
	batch := make([]*idemOp, 0, idemPipelineMax)
	for {
		batch = batch[:0]
		select {
		case <-p.ctx.Done():
			p.failQueued()
			return
		case op := <-p.ops:
			batch = append(batch, op)
		}
	fill:
		for len(batch) < idemPipelineMax {
			select {
			case op := <-p.ops:
				batch = append(batch, op)
			default:
				break fill
			}
		}
		p.send(batch)
	}
}

// failQueued answers the ops left in the queue at Close.
func (p *idemPipeline) failQueued() {
	for {
		select {
		case op := <-p.ops:
			op.err = errIdemClosed
			close(op.finished)
		default:
			return
		}
	}
}

// send runs batch as one pipeline (its callers that gave up are left out)
// and, after a statement error, each op alone.
func (p *idemPipeline) send(batch []*idemOp) {
	live := batch[:0]
	for _, op := range batch {
		if err := op.ctx.Err(); err != nil {
			op.err = err
			close(op.finished)
			continue
		}
		live = append(live, op)
	}
	if len(live) == 0 {
		return
	}
	err := p.exec(live)
	if pgErr := (*pgconn.PgError)(nil); len(live) > 1 && errors.As(err, &pgErr) {
		// Rolled back whole; only the statement's own op should fail.
		for _, op := range live {
			op.err = p.exec([]*idemOp{op})
			close(op.finished)
		}
		return
	}
	for _, op := range live {
		if err != nil {
			op.err = err
		}
		close(op.finished)
	}
}

// exec sends ops in one pipeline and records each claim's outcome.
func (p *idemPipeline) exec(ops []*idemOp) error {
	ctx, cancel := context.WithTimeout(p.ctx, idemPipelineTimeout)
	defer cancel()
	var b pgx.Batch
	for _, op := range ops {
		b.Queue(op.sql, op.args...)
	}
	br := p.pool.SendBatch(ctx, &b)
	var err error
	for _, op := range ops {
		if !op.query {
			if _, err = br.Exec(); err != nil {
				break
			}
			continue
		}
		var got string
		err = br.QueryRow().Scan(&got)
		op.returned = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
		if err != nil {
			break
		}
	}
	// Close reads the commit's outcome: an op's result means nothing
	// until the pipeline's transaction has committed.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		for _, op := range ops {
			op.returned = false
		}
		return fmt.Errorf("idempotency pipeline of %d: %w", len(ops), err)
	}
	return nil
}
