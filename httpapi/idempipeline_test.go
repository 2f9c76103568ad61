package httpapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

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

func newOp(ctx context.Context, sql string, query bool, args ...any) *idemOp {
	return &idemOp{ctx: ctx, sql: sql, args: args, query: query, finished: make(chan struct{})}
}

// The ops of one pipeline commit together, in one transaction, and each
// claim learns whether its row came back.
func TestIdemPipelineIsOneTransaction(t *testing.T) {
	pool := pipelineTable(t)
	p := newIdemPipeline(pool)
	defer p.close()
	ctx := context.Background()
	ops := []*idemOp{
		newOp(ctx, pipedInsert, true, "a"),
		newOp(ctx, pipedInsert, true, "a"), // the same key: already there
		newOp(ctx, `UPDATE piped SET k = 'b' WHERE k = $1`, false, "a"),
	}
	p.send(ops)
	for i, op := range ops {
		<-op.finished
		if op.err != nil {
			t.Fatalf("op %d: %v", i, op.err)
		}
	}
	if !ops[0].returned || ops[1].returned {
		t.Errorf("returned = %v, %v; want the first insert's row only", ops[0].returned, ops[1].returned)
	}
	got := pipedXIDs(t, pool)
	if len(got) != 1 || got["b"] == "" {
		t.Fatalf("rows %v, want one row b (inserted as a, then renamed in the same pipeline)", got)
	}
}

// A statement error rolls the pipeline back; its ops then run one by one,
// so only the failing one fails, and the others commit (each in its own
// transaction).
func TestIdemPipelineStatementErrorFailsOnlyItsOp(t *testing.T) {
	pool := pipelineTable(t)
	p := newIdemPipeline(pool)
	defer p.close()
	ctx := context.Background()
	ops := []*idemOp{
		newOp(ctx, pipedInsert, true, "before"),
		newOp(ctx, `SELECT 1/0`, false),
		newOp(ctx, pipedInsert, true, "after"),
	}
	p.send(ops)
	for _, op := range ops {
		<-op.finished
	}
	if ops[1].err == nil || !strings.Contains(ops[1].err.Error(), "division by zero") {
		t.Errorf("failing op's error = %v, want division by zero", ops[1].err)
	}
	for _, i := range []int{0, 2} {
		if ops[i].err != nil || !ops[i].returned {
			t.Errorf("op %d: returned %v, err %v; want its row", i, ops[i].returned, ops[i].err)
		}
	}
	got := pipedXIDs(t, pool)
	if len(got) != 2 || got["before"] == got["after"] {
		t.Fatalf("rows %v, want before and after in transactions of their own", got)
	}
}

// Concurrent callers share pipelines: each gets its own outcome, and under
// load fewer pipelines go out than ops.
func TestIdemPipelineConcurrentCallers(t *testing.T) {
	pool := pipelineTable(t)
	p := newIdemPipeline(pool)
	defer p.close()
	const callers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := string(rune('A'+c)) + strings.Repeat("x", i)
				took, err := p.do(context.Background(), pipedInsert, true, k)
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
func TestIdemPipelineCancelledAndClosed(t *testing.T) {
	pool := pipelineTable(t)
	p := newIdemPipeline(pool)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	op := newOp(gone, pipedInsert, true, "gone")
	p.send([]*idemOp{op})
	<-op.finished
	if !errors.Is(op.err, context.Canceled) {
		t.Errorf("a cancelled caller's op: %v, want context.Canceled", op.err)
	}
	if _, err := p.do(gone, pipedInsert, true, "gone"); !errors.Is(err, context.Canceled) {
		t.Errorf("do with a cancelled context: %v", err)
	}

	p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.do(ctx, pipedInsert, true, "late"); !errors.Is(err, errIdemClosed) {
		t.Errorf("do after close: %v, want errIdemClosed", err)
	}
	if got := pipedXIDs(t, pool); len(got) != 0 {
		t.Errorf("rows %v, want none", got)
	}
}
