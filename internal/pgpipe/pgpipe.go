// Package pgpipe sends short statements of many goroutines to PostgreSQL
// in pipelines, a group commit: what queued while a pipeline was out goes
// in the next one, as one round trip and one commit. Idle, a
// statement goes out at once, alone, as it would through the pool.
//
// On a machine where the database and its clients share a few cores, a
// round trip's wake-ups (two processes scheduled, twice) cost more than a
// short statement: at 1,000 creates/s customerd made five round trips a
// create, and the database spent over a third of its time in the kernel.
//
// PostgreSQL runs a pipeline as one transaction, so one statement's error
// rolls back the others: after a statement error, the pipeline's
// statements run again one by one, each getting its own outcome. The
// transaction is shared in every other way too: a setting made with
// set_config(..., true) or SET LOCAL, and a row lock, last until the whole
// pipeline commits, so a Pipe is for statements that can share them (the
// idempotency store's, which all commit asynchronously). When the
// connection fails, every statement of the pipeline gets the error,
// although the commit may have happened, as with a statement sent alone.
package pgpipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrClosed is Do's error after Close.
var ErrClosed = errors.New("pgpipe: closed")

// maxBatch bounds a pipeline, so that one slow round trip does not hold
// a long queue behind one commit; timeout bounds its round trip (callers'
// contexts may end sooner: they stop waiting only while their statement
// is still queued).
const (
	maxBatch = 64
	timeout  = 5 * time.Second
)

// Pipe queues statements for its one worker: one pipeline is out at a
// time, so the statements of two pipelines never wait on each other's
// locks.
type Pipe struct {
	pool *pgxpool.Pool
	ops  chan *op
	ctx  context.Context // ends with Close
	stop context.CancelFunc
	wg   sync.WaitGroup

	// mu orders Close after every send to ops (which hold it read-locked),
	// so that the worker's last drain answers everything queued.
	mu sync.RWMutex
}

// op is one statement and its caller's wait.
type op struct {
	ctx      context.Context
	sql      string
	args     []any
	read     func(pgx.Rows) error
	state    atomic.Int32 // queued, then taken by the worker or abandoned by its caller
	err      error
	finished chan struct{}
}

// An op's states: a caller whose context ends abandons a queued op, and
// the worker passes over it; once the worker has taken it, the caller waits
// for its outcome, so that what committed is known (a claim the caller
// does not hear of would hold its key until its lock lapses).
const (
	queued int32 = iota
	taken
	abandoned
)

func newOp(ctx context.Context, read func(pgx.Rows) error, sql string, args ...any) *op {
	return &op{ctx: ctx, sql: sql, args: args, read: read, finished: make(chan struct{})}
}

// New starts the worker; Close stops it.
func New(pool *pgxpool.Pool) *Pipe {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pipe{pool: pool, ops: make(chan *op, maxBatch), ctx: ctx, stop: cancel}
	p.wg.Go(p.run)
	return p
}

// Close waits for the pipeline out and stops the worker; statements
// still queued, and later calls of Do, fail with ErrClosed.
func (p *Pipe) Close() {
	p.mu.Lock()
	p.stop()
	p.mu.Unlock()
	p.wg.Wait()
}

// Do runs sql in the next pipeline and waits for its commit. It gives up
// when ctx ends before the worker has taken the statement; once it has, it
// waits for the outcome (each pipeline is bounded by timeout). read, if not
// nil, reads the statement's rows; it runs on the worker, may run more than
// once (a pipeline rolled back runs its statements again one by one), and
// what it read counts only when Do returns nil. A nil read discards the
// rows.
func (p *Pipe) Do(ctx context.Context, read func(pgx.Rows) error, sql string, args ...any) error {
	o := newOp(ctx, read, sql, args...)
	p.mu.RLock()
	if p.ctx.Err() != nil {
		p.mu.RUnlock()
		return ErrClosed
	}
	select {
	case p.ops <- o:
	case <-ctx.Done():
		p.mu.RUnlock()
		return ctx.Err()
	}
	p.mu.RUnlock()
	select {
	case <-o.finished:
		return o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		<-o.finished
		return o.err
	}
}

func (p *Pipe) run() {
	batch := make([]*op, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-p.ctx.Done():
			p.failQueued()
			return
		case o := <-p.ops:
			batch = append(batch, o)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-p.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		if p.ctx.Err() != nil { // closed meanwhile: nothing more goes out
			for _, o := range batch {
				o.err = ErrClosed
				close(o.finished)
			}
			p.failQueued()
			return
		}
		p.send(batch)
	}
}

// failQueued answers what is left in the queue at Close.
func (p *Pipe) failQueued() {
	for {
		select {
		case o := <-p.ops:
			o.err = ErrClosed
			close(o.finished)
		default:
			return
		}
	}
}

// send runs batch as one pipeline (its callers that gave up are left out)
// and, after a statement error, each statement alone.
func (p *Pipe) send(batch []*op) {
	live := batch[:0]
	for _, o := range batch {
		if o.ctx.Err() != nil && o.state.CompareAndSwap(queued, abandoned) {
			o.err = o.ctx.Err()
			close(o.finished)
			continue
		}
		if !o.state.CompareAndSwap(queued, taken) {
			continue // abandoned: its caller has gone
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	err := p.exec(live)
	if pgErr := (*pgconn.PgError)(nil); len(live) > 1 && errors.As(err, &pgErr) {
		// Rolled back whole; only the statement's own op should fail.
		for _, o := range live {
			if err := p.exec([]*op{o}); err != nil {
				o.err = err
			}
			close(o.finished)
		}
		return
	}
	for _, o := range live {
		if err != nil {
			o.err = err
		}
		close(o.finished)
	}
}

// exec sends ops in one pipeline. A read's own error is its op's; a
// statement's error or the commit's is returned for all of them. Close
// does not cut a pipeline short: its callers wait for what it did.
func (p *Pipe) exec(ops []*op) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var b pgx.Batch
	for _, o := range ops {
		o.err = nil
		b.Queue(o.sql, o.args...)
	}
	br := p.pool.SendBatch(ctx, &b)
	var err error
	for _, o := range ops {
		rows, qerr := br.Query()
		if qerr == nil && o.read != nil {
			o.err = o.read(rows)
		}
		rows.Close()
		if err = rows.Err(); err != nil {
			break
		}
		if qerr != nil {
			err = qerr
			break
		}
	}
	// Close reads the commit's outcome: nothing read means anything until
	// the pipeline's transaction has committed.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("in a pipeline of %d: %w", len(ops), err)
	}
	return nil
}
