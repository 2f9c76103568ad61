package pgpipe

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/partnerhub/customers/internal/testenv"
)

// pipelineTable opens a pool on a fresh schema with a table whose rows
// record the transaction that wrote them.
func pipelineTable(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE piped (k text PRIMARY KEY, xid text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return pool
}

const pipedInsert = `INSERT INTO piped VALUES ($1, pg_current_xact_id()::text) ON CONFLICT DO NOTHING RETURNING k`

func pipedXIDs(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT k, xid FROM piped`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var k, x string
		if err := rows.Scan(&k, &x); err != nil {
			t.Fatal(err)
		}
		got[k] = x
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return got
}

// insertOp is an op of pipedInsert whose row, when one comes back, sets
// *returned.
func insertOp(ctx context.Context, k string, returned *bool) *op {
	return newOp(ctx, func(rows pgx.Rows) error {
		*returned = rows.Next()
		return nil
	}, pipedInsert, k)
}

// The statements of one pipeline commit together, in one transaction, and
// each reads its own rows.
func TestPipelineIsOneTransaction(t *testing.T) {
	pool := pipelineTable(t)
	p := New(pool)
	defer p.Close()
	ctx := context.Background()
	var first, again, other bool
	ops := []*op{
		insertOp(ctx, "a", &first),
		insertOp(ctx, "a", &again), // the same key: already there
		insertOp(ctx, "b", &other),
	}
	p.send(ops)
	for i, o := range ops {
		<-o.finished
		if o.err != nil {
			t.Fatalf("op %d: %v", i, o.err)
		}
	}
	if !first || again || !other {
		t.Errorf("returned = %v, %v, %v; want a's first insert and b's", first, again, other)
	}
	got := pipedXIDs(t, pool)
	if len(got) != 2 || got["a"] != got["b"] {
		t.Fatalf("rows %v, want a and b written by one transaction", got)
	}
}

// A statement error rolls the pipeline back; its ops then run one by one,
// so only the failing one fails, and the others commit (each in its own
// transaction).
func TestPipelineStatementErrorFailsOnlyItsOp(t *testing.T) {
	pool := pipelineTable(t)
	p := New(pool)
	defer p.Close()
	ctx := context.Background()
	returned := make([]bool, 3)
	ops := []*op{
		insertOp(ctx, "before", &returned[0]),
		newOp(ctx, nil, `SELECT 1/0`),
		insertOp(ctx, "after", &returned[2]),
	}
	p.send(ops)
	for _, o := range ops {
		<-o.finished
	}
	var pgErr *pgconn.PgError
	if !errors.As(ops[1].err, &pgErr) || pgErr.Code != "22012" {
		t.Errorf("failing op's error = %v, want division by zero", ops[1].err)
	}
	for _, i := range []int{0, 2} {
		if ops[i].err != nil || !returned[i] {
			t.Errorf("op %d: returned %v, err %v; want its row", i, returned[i], ops[i].err)
		}
	}
	got := pipedXIDs(t, pool)
	if len(got) != 2 || got["before"] == got["after"] {
		t.Fatalf("rows %v, want before and after in transactions of their own", got)
	}
}

// Concurrent callers share pipelines: each gets its own outcome, and under
// load fewer pipelines go out than ops.
func TestPipelineConcurrentCallers(t *testing.T) {
	pool := pipelineTable(t)
	p := New(pool)
	defer p.Close()
	const callers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := string(rune('A'+c)) + strings.Repeat("x", i)
				took := false
				err := p.Do(context.Background(), func(rows pgx.Rows) error {
					took = rows.Next()
					return nil
				}, pipedInsert, k)
				if err == nil && !took {
					err = errors.New("a fresh key's insert returned no row: " + k)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := pipedXIDs(t, pool)
	if len(got) != callers*each {
		t.Fatalf("%d rows, want %d", len(got), callers*each)
	}
	xids := map[string]bool{}
	for _, x := range got {
		xids[x] = true
	}
	if len(xids) >= callers*each {
		t.Errorf("%d ops took %d transactions: none shared a pipeline", callers*each, len(xids))
	}
	t.Logf("%d ops in %d pipelines", callers*each, len(xids))
}

// A caller that gave up is left out of the pipeline; after close, queued
// and new ops fail without reaching the database.
func TestPipelineCancelledAndClosed(t *testing.T) {
	pool := pipelineTable(t)
	p := New(pool)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	var returned bool
	o := insertOp(gone, "gone", &returned)
	p.send([]*op{o})
	<-o.finished
	if !errors.Is(o.err, context.Canceled) {
		t.Errorf("a cancelled caller's op: %v, want context.Canceled", o.err)
	}
	if err := p.Do(gone, nil, pipedInsert, "gone"); !errors.Is(err, context.Canceled) {
		t.Errorf("Do with a cancelled context: %v", err)
	}

	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Do(ctx, nil, pipedInsert, "late"); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close: %v, want ErrClosed", err)
	}
	if got := pipedXIDs(t, pool); len(got) != 0 {
		t.Errorf("rows %v, want none", got)
	}
}

// Close lets a pipeline that is out finish, and its caller hears what it
// did; a caller whose context ends once its statement is out waits for the
// outcome too (a claim it did not hear of would hold its key).
func TestPipelineOutcomeOnceTaken(t *testing.T) {
	pool := pipelineTable(t)
	p := New(pool)
	slow := `INSERT INTO piped SELECT $1, pg_current_xact_id()::text FROM pg_sleep(0.2) RETURNING k`
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	var took bool
	go func() {
		done <- p.Do(ctx, func(rows pgx.Rows) error {
			took = rows.Next()
			return nil
		}, slow, "cancelled")
	}()
	time.Sleep(50 * time.Millisecond) // out, and sleeping in the database
	cancel()
	if err := <-done; err != nil || !took {
		t.Errorf("a caller cancelled once its statement was out: %v, row %v; want the outcome (a row)", err, took)
	}

	go func() { done <- p.Do(context.Background(), nil, slow, "closing") }()
	time.Sleep(50 * time.Millisecond)
	p.Close()
	if err := <-done; err != nil {
		t.Errorf("a statement out at Close: %v, want its outcome", err)
	}
	if got := pipedXIDs(t, pool); len(got) != 2 {
		t.Errorf("rows %v, want both", got)
	}
}
