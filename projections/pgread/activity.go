package pgread

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/projections"
)

var activityTables = []string{"rm_activity", "rm_activity_names"}

var activityIndexes = []string{"rm_activity_pkey", "rm_activity_by_partner", "rm_activity_by_at", "rm_activity_by_customer",
	"rm_activity_by_operation", "rm_activity_names_pkey"}

func activityTableDDL(sfx string) []string {
	return []string{
		`CREATE TABLE rm_activity` + sfx + ` (position bigint NOT NULL, partner_id text NOT NULL, at timestamptz NOT NULL,
			partner_user text NOT NULL, customer_id text NOT NULL, customer_name text NOT NULL, operation text NOT NULL,
			resource_type text NOT NULL, old_value text NOT NULL, new_value text NOT NULL)`,
		`CREATE TABLE rm_activity_names` + sfx + ` (partner_id text NOT NULL, customer_id text NOT NULL, name text NOT NULL)`,
	}
}

func activityIndexDDL(sfx string) []string {
	return []string{
		`ALTER TABLE rm_activity` + sfx + ` ADD CONSTRAINT rm_activity_pkey` + sfx + ` PRIMARY KEY (position)`,
		`CREATE INDEX rm_activity_by_partner` + sfx + ` ON rm_activity` + sfx + ` (partner_id, position)`,
		`CREATE INDEX rm_activity_by_at` + sfx + ` ON rm_activity` + sfx + ` (partner_id, at)`,
		`CREATE INDEX rm_activity_by_customer` + sfx + ` ON rm_activity` + sfx + ` (partner_id, customer_id, position)`,
		`CREATE INDEX rm_activity_by_operation` + sfx + ` ON rm_activity` + sfx + ` (partner_id, operation, position)`,
		`ALTER TABLE rm_activity_names` + sfx + ` ADD CONSTRAINT rm_activity_names_pkey` + sfx + ` PRIMARY KEY (partner_id, customer_id)`,
	}
}

func activityDDL(sfx string) []string {
	out := []string{
		`CREATE TABLE rm_activity (position bigint NOT NULL, partner_id text NOT NULL, at timestamptz NOT NULL,
			partner_user text NOT NULL, customer_id text NOT NULL, customer_name text NOT NULL, operation text NOT NULL,
			resource_type text NOT NULL, old_value text NOT NULL, new_value text NOT NULL, CONSTRAINT rm_activity_pkey PRIMARY KEY (position))`,
		`CREATE TABLE rm_activity_names (partner_id text NOT NULL, customer_id text NOT NULL, name text NOT NULL,
			CONSTRAINT rm_activity_names_pkey PRIMARY KEY (partner_id, customer_id))`,
	}
	for _, s := range activityIndexDDL(sfx) {
		if strings.HasPrefix(s, "CREATE INDEX") {
			out = append(out, s)
		}
	}
	return out
}

// ActivityLog is the activity-log read model in PostgreSQL.
type ActivityLog struct{ db *DB }

var _ projections.ActivityLog = (*ActivityLog)(nil)

func (a *ActivityLog) Name() string { return projections.ActivityLogName }

func (a *ActivityLog) Checkpoint(ctx context.Context) (int64, error) {
	return a.db.checkpoint(ctx, projections.ActivityLogName)
}

// ApplyBatch applies events in one transaction with the checkpoint.
func (a *ActivityLog) ApplyBatch(ctx context.Context, events []eventstore.Event) error {
	return a.db.applyBatch(ctx, a.Name(), events, func(r reader, q *pgx.Batch, evs []eventstore.Event) error {
		return a.queue(ctx, r, q, "", evs)
	})
}

// Apply writes one entry per activity event inside tx.
func (a *ActivityLog) Apply(ctx context.Context, tx pgx.Tx, events []eventstore.Event) error {
	return a.apply(ctx, tx, "", events)
}

func (a *ActivityLog) apply(ctx context.Context, tx pgx.Tx, sfx string, events []eventstore.Event) error {
	var q pgx.Batch
	if err := a.queue(ctx, tx, &q, sfx, events); err != nil {
		return err
	}
	if err := sendQueued(ctx, tx, &q); err != nil {
		return fmt.Errorf("writing the activity of positions %d to %d: %w", events[0].Position, events[len(events)-1].Position, err)
	}
	return nil
}

// queue queues the statements that write events' activity to the tables
// with suffix sfx. Names the batch sets are answered from memory, so a
// read (through r) never needs a queued write.
func (a *ActivityLog) queue(ctx context.Context, r reader, q *pgx.Batch, sfx string, events []eventstore.Event) error {
	names := &pgNames{r: r, sfx: sfx, known: map[[2]string]string{}, queue: q}
	for _, ev := range events {
		e, err := projections.Decode(a.db.reg, ev)
		if err != nil {
			return err
		}
		entry, ok, err := projections.ActivityFor(ctx, names, ev, e)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		q.Queue(`INSERT INTO rm_activity`+sfx+` (position, partner_id, at, partner_user, customer_id, customer_name,
			operation, resource_type, old_value, new_value) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT DO NOTHING`,
			activityRow(entry)...)
	}
	return nil
}

func activityRow(e projections.ActivityEntry) []any {
	return []any{e.Position, e.PartnerID, e.At, e.PartnerUser, e.CustomerID, e.CustomerName, e.Operation, e.ResourceType, e.OldValue, e.NewValue}
}

var activityCols = []string{"position", "partner_id", "at", "partner_user", "customer_id", "customer_name", "operation", "resource_type", "old_value", "new_value"}

// pgNames is rm_activity_names for one batch: a name is read from the table
// once, writes join the batch's queue and are remembered.
type pgNames struct {
	r     reader
	sfx   string
	known map[[2]string]string
	queue *pgx.Batch
}

func (n *pgNames) CustomerName(ctx context.Context, p, id string) (string, error) {
	if name, ok := n.known[[2]string{p, id}]; ok {
		return name, nil
	}
	var name string
	err := n.r.QueryRow(ctx, `SELECT name FROM rm_activity_names`+n.sfx+` WHERE partner_id = $1 AND customer_id = $2`, p, id).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	if err == nil {
		n.known[[2]string{p, id}] = name
	}
	return name, err
}

func (n *pgNames) SetCustomerName(_ context.Context, p, id, name string) error {
	n.known[[2]string{p, id}] = name
	n.queue.Queue(`INSERT INTO rm_activity_names`+n.sfx+` (partner_id, customer_id, name) VALUES ($1,$2,$3)
		ON CONFLICT (partner_id, customer_id) DO UPDATE SET name = excluded.name`, p, id, name)
	return nil
}

// QueryActivity answers GET /v1/activity: newest first, keyset on position.
func (a *ActivityLog) QueryActivity(ctx context.Context, partnerID string, p projections.ActivityParams) (projections.ActivityPage, error) {
	q, err := p.Prepare()
	if err != nil {
		return projections.ActivityPage{}, err
	}
	args := []any{partnerID}
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	where := []string{"partner_id = $1"}
	if !q.From.IsZero() {
		where = append(where, "at >= "+arg(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "at < "+arg(q.To))
	}
	for col, v := range map[string]string{"customer_id": q.CustomerID, "resource_type": q.ResourceType, "operation": q.Operation, "partner_user": q.User} {
		if v != "" {
			where = append(where, col+" = "+arg(v))
		}
	}
	if q.Before > 0 {
		where = append(where, "position < "+arg(q.Before))
	}
	rows, err := a.db.pool.Query(ctx, `SELECT `+strings.Join(activityCols, ", ")+` FROM rm_activity WHERE `+
		strings.Join(where, " AND ")+` ORDER BY position DESC LIMIT `+strconv.Itoa(q.Limit), args...)
	if err != nil {
		return projections.ActivityPage{}, fmt.Errorf("querying activity: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (projections.ActivityEntry, error) {
		var e projections.ActivityEntry
		err := r.Scan(&e.Position, &e.PartnerID, &e.At, &e.PartnerUser, &e.CustomerID, &e.CustomerName, &e.Operation, &e.ResourceType, &e.OldValue, &e.NewValue)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return projections.ActivityPage{}, fmt.Errorf("querying activity: %w", err)
	}
	return projections.ActivityPage{Items: items, NextCursor: q.NextCursor(items)}, nil
}

// Rebuild streams entries into fresh tables with COPY (names kept in
// memory: one string per customer), then swaps them in.
func (a *ActivityLog) Rebuild(ctx context.Context, store eventstore.Store, progress func(done, total int64)) error {
	if progress == nil {
		progress = func(int64, int64) {}
	}
	head, err := store.Head(ctx)
	if err != nil {
		return fmt.Errorf("rebuilding activity log: %w", err)
	}
	var drop []string
	for _, t := range activityTables {
		drop = append(drop, `DROP TABLE IF EXISTS `+t+`_new`)
	}
	if err := execAll(ctx, a.db.pool, append(drop, activityTableDDL("_new")...)); err != nil {
		return fmt.Errorf("rebuilding activity log: %w", err)
	}
	names := projections.MemNames{}
	var done, rebuilt int64
	err = projections.ReadLog(ctx, store, 0, head, logPage, func(evs []eventstore.Event) error {
		var rows [][]any
		for _, ev := range evs {
			e, err := projections.Decode(a.db.reg, ev)
			if err != nil {
				return err
			}
			entry, ok, err := projections.ActivityFor(ctx, names, ev, e)
			if err != nil {
				return err
			}
			if ok {
				rows = append(rows, activityRow(entry))
			}
		}
		if _, err := a.db.pool.CopyFrom(ctx, pgx.Identifier{"rm_activity_new"}, activityCols, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copying activity: %w", err)
		}
		done += int64(len(evs))
		rebuilt = evs[len(evs)-1].Position
		progress(done, head)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuilding activity log: %w", err)
	}
	var nameRows [][]any
	for k, v := range names {
		nameRows = append(nameRows, []any{k[0], k[1], v})
	}
	if _, err := a.db.pool.CopyFrom(ctx, pgx.Identifier{"rm_activity_names_new"}, []string{"partner_id", "customer_id", "name"}, pgx.CopyFromRows(nameRows)); err != nil {
		return fmt.Errorf("rebuilding activity log: copying names: %w", err)
	}
	if err := execAll(ctx, a.db.pool, activityIndexDDL("_new")); err != nil {
		return fmt.Errorf("rebuilding activity log: %w", err)
	}
	return a.db.swap(ctx, a.Name(), rebuilt, activityTables, activityIndexes, store, func(tx pgx.Tx, evs []eventstore.Event) error {
		return a.apply(ctx, tx, "_new", evs)
	})
}
