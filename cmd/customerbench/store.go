package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/partnerhub/customers/commands"
	"github.com/partnerhub/customers/domain"
	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/postgres"
	"github.com/partnerhub/customers/eventstore/sqlite"
	"github.com/partnerhub/customers/internal/testenv"
	"github.com/partnerhub/customers/projections"
	"github.com/partnerhub/customers/projections/pgread"
	"github.com/partnerhub/customers/projections/sqliteread"
)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// connect opens one connection to the database at url, which may carry
// the pool settings customerd's pool takes (pool_max_conns, ...): a plain
// pgx.Connect would send them to the server as settings it does not know.
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

// freshSchema drops and recreates schema in the database at base and
// returns a connection string whose search_path is that schema, so every
// table the stores create lands there. Each run starts empty: figures must
// not depend on what an earlier run left behind.
func freshSchema(ctx context.Context, base, schema string) (string, error) {
	if !schemaName.MatchString(schema) {
		return "", fmt.Errorf("schema %q: want lower-case letters, digits and _", schema)
	}
	conn, err := connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+id+" CASCADE"); err != nil {
		return "", fmt.Errorf("dropping schema %s: %w", schema, err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+id); err != nil {
		return "", fmt.Errorf("creating schema %s: %w", schema, err)
	}
	return testenv.WithSearchPath(base, schema), nil
}

// dropSchema removes a schema this run created.
func dropSchema(ctx context.Context, base, schema string) error {
	conn, err := connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("dropping schema %s: %w", schema, err)
	}
	return nil
}

// benchStore is an event store for the store-level scenarios, with the read
// models next to it for rebuild.
type benchStore struct {
	store     eventstore.Store
	readModel func(ctx context.Context) ([]projections.Projector, func(), error)
	backend   string
}

// openBenchStore opens a fresh store: PostgreSQL in schema <schema>_<name>
// when databaseURL is set, else SQLite files in dir/<name>.
func openBenchStore(ctx context.Context, env *runEnv, name string) (*benchStore, func(), error) {
	if env.databaseURL == "" {
		dir := filepath.Join(env.dir, name)
		s, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"))
		if err != nil {
			return nil, nil, fmt.Errorf("opening the SQLite event store: %w", err)
		}
		return &benchStore{store: s, backend: "sqlite", readModel: func(ctx context.Context) ([]projections.Projector, func(), error) {
			db, err := sqliteread.Open(ctx, filepath.Join(dir, "readmodels.db"), sqliteread.Options{})
			if err != nil {
				return nil, nil, fmt.Errorf("opening the SQLite read models: %w", err)
			}
			return []projections.Projector{db.CustomerList(), db.ActivityLog()}, db.Close, nil
		}}, func() { _ = s.Close() }, nil
	}
	schema := env.schema + "_" + name
	u, err := freshSchema(ctx, env.databaseURL, schema)
	if err != nil {
		return nil, nil, err
	}
	s, err := postgres.Open(ctx, u, postgres.Options{MaxConns: int32(max(env.concurrency+4, 8))})
	if err != nil {
		return nil, nil, fmt.Errorf("opening the PostgreSQL event store: %w", err)
	}
	cleanup := func() {
		_ = s.Close()
		if !env.keep {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = dropSchema(ctx, env.databaseURL, schema)
		}
	}
	return &benchStore{store: s, backend: "postgres", readModel: func(ctx context.Context) ([]projections.Projector, func(), error) {
		db, err := pgread.Open(ctx, u, pgread.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("opening the PostgreSQL read models: %w", err)
		}
		return []projections.Projector{db.CustomerList(), db.ActivityLog()}, db.Close, nil
	}}, cleanup, nil
}

// scenarioAppend: single-event appends, each to a stream of its own, from
// the workers; the store alone, no HTTP.
func scenarioAppend(ctx context.Context, env *runEnv) (Result, error) {
	bs, cleanup, err := openBenchStore(ctx, env, "append")
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	run := uuid.NewString()[:8]
	var n atomic.Int64
	res := closedLoop(ctx, "append", env.concurrency, env.duration, func(ctx context.Context, w int) error {
		i := n.Add(1)
		_, err := bs.store.Append(ctx, eventstore.AppendRequest{
			StreamID:        fmt.Sprintf("bench-%s-%d", run, i),
			ExpectedVersion: eventstore.NoStream,
			Events: []eventstore.NewEvent{{
				ID: uuid.New(), Type: "bench.appended", Subject: fmt.Sprint(i),
				Data:     fmt.Appendf(nil, `{"n":%d,"worker":%d}`, i, w),
				Metadata: eventstore.Metadata{PartnerID: "bench", ActorID: "customerbench"},
			}},
		})
		if err != nil {
			return fmt.Errorf("appending: %w", err)
		}
		return nil
	})
	res.Extra["backend"] = bs.backend
	return res, nil
}

// scenarioRebuild seeds the store with env.events events of real commands
// (customers with billing profiles, tags and orders) and rebuilds both read
// models from it, as `customerctl projections rebuild` does, until the
// duration has passed (at least once). Throughput is events replayed per
// second; the latencies are whole rebuilds.
func scenarioRebuild(ctx context.Context, env *runEnv) (Result, error) {
	bs, cleanup, err := openBenchStore(ctx, env, "rebuild")
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	seedStart := time.Now()
	events, err := seedStore(ctx, bs.store, env.events, env.concurrency)
	if err != nil {
		return Result{}, err
	}
	seeded := time.Since(seedStart)
	pjs, closeRM, err := bs.readModel(ctx)
	if err != nil {
		return Result{}, err
	}
	defer closeRM()

	if os.Getenv("GOGC") == "" { // as customerctl runs a rebuild
		defer debug.SetGCPercent(debug.SetGCPercent(pgread.RebuildGCPercent))
	}
	rec := &recorder{errs: newErrorLog()}
	start := time.Now()
	deadline := start.Add(env.duration)
	for rec.ops+rec.errors == 0 || time.Now().Before(deadline) {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		var rerr error
		for _, p := range pjs {
			if err := p.Rebuild(ctx, bs.store, nil); err != nil {
				rerr = fmt.Errorf("rebuilding %s: %w", p.Name(), err)
				break
			}
		}
		if rerr != nil {
			rec.fail(rerr)
			continue
		}
		rec.ok(time.Since(t0))
	}
	res := summarize("rebuild", 1, time.Since(start), []*recorder{rec})
	res.Extra["rebuilds_per_s"] = res.Throughput
	if res.Elapsed > 0 {
		res.Throughput = float64(res.Ops*events) / res.Elapsed.Seconds()
	}
	res.Extra["unit"] = "events/s"
	res.Extra["events"] = events
	res.Extra["projections"] = len(pjs)
	res.Extra["backend"] = bs.backend
	res.Extra["seed_s"] = seeded.Seconds()
	return res, nil
}

// seedStore runs commands straight on the store until at least want events
// are stored, and returns how many there are. Each customer gets a billing
// profile, a tag and an order: the event mix a real partner's log has.
func seedStore(ctx context.Context, store eventstore.Store, want int64, conc int) (int64, error) {
	cmds := commands.New(store, domain.NewRegistry())
	p, err := cmds.CreatePartner.Handle(ctx, commands.Meta{}, commands.CreatePartner{Name: "customerbench"})
	if err != nil {
		return 0, fmt.Errorf("seeding: creating partner: %w", err)
	}
	u, err := cmds.CreateUser.Handle(ctx, commands.Meta{PartnerID: p.ID}, commands.CreateUser{Email: "bench@localhost", Role: domain.RoleAdminAgent})
	if err != nil {
		return 0, fmt.Errorf("seeding: creating user: %w", err)
	}
	meta := commands.Meta{PartnerID: p.ID, ActorID: u.ID, ActorEmail: "bench@localhost", CorrelationID: "customerbench-seed"}
	for _, t := range tagNames {
		if _, err := cmds.CreateTag.Handle(ctx, meta, commands.CreateTag{Name: t}); err != nil {
			return 0, fmt.Errorf("seeding: creating tag %s: %w", t, err)
		}
	}
	const perCustomer = 4 // created, billing profile, tag, order
	customers := (want + perCustomer - 1) / perCustomer
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range max(conc, 1) {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > customers || ctx.Err() != nil {
					return
				}
				if err := seedCustomer(ctx, cmds, meta, i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	head, err := store.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("seeding: reading the head: %w", err)
	}
	return head, nil
}

func seedCustomer(ctx context.Context, cmds *commands.Commands, meta commands.Meta, i int64) error {
	name := companyName(i)
	c, err := cmds.CreateCustomer.Handle(ctx, meta, commands.CreateCustomer{
		CompanyName: name, PrimaryDomain: fmt.Sprintf("seed-%d.example", i), Relationship: relationship(i)})
	if err != nil {
		return fmt.Errorf("seeding: creating customer: %w", err)
	}
	if _, err := cmds.UpdateBillingProfile.Handle(ctx, meta, commands.UpdateBillingProfile{
		CustomerID: c.Customer.ID, ExpectedVersion: eventstore.AnyVersion, BillingProfile: billingProfile(name, i)}); err != nil {
		return fmt.Errorf("seeding: billing profile: %w", err)
	}
	if _, err := cmds.ChangeCustomerTags.Handle(ctx, meta, commands.ChangeCustomerTags{CustomerID: c.Customer.ID, Add: []string{tagNames[i%int64(len(tagNames))]}}); err != nil {
		return fmt.Errorf("seeding: tagging: %w", err)
	}
	o := orderInput(i)
	if _, err := cmds.CreateOrder.Handle(ctx, meta, commands.CreateOrder{CustomerID: c.Customer.ID, Catalog: o.Catalog, BillingCycle: o.BillingCycle, LineItems: o.LineItems}); err != nil {
		return fmt.Errorf("seeding: order: %w", err)
	}
	return nil
}
