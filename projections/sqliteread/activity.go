package sqliteread

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/projections"
)

var activityTableNames = []string{"rm_activity", "rm_activity_names"}

// activityTables is the activity log's DDL (see customerTables for why the
// indexes are UNIQUE constraints). at is Unix microseconds, the precision
// of eventstore.Event.RecordedAt. Each index ends in position, so a
// partner's entries filtered by customer or operation come newest first
// straight from the index.
func activityTables(sfx string) []string {
	return []string{
		`CREATE TABLE rm_activity` + sfx + ` (position INTEGER PRIMARY KEY, partner_id TEXT NOT NULL, at INTEGER NOT NULL,
			partner_user TEXT NOT NULL, customer_id TEXT NOT NULL, customer_name TEXT NOT NULL, operation TEXT NOT NULL,
			resource_type TEXT NOT NULL, old_value TEXT NOT NULL, new_value TEXT NOT NULL,
			UNIQUE (partner_id, position),
			UNIQUE (partner_id, at, position),
			UNIQUE (partner_id, customer_id, position),
			UNIQUE (partner_id, operation, position))`,
		`CREATE TABLE rm_activity_names` + sfx + ` (partner_id TEXT NOT NULL, customer_id TEXT NOT NULL, name TEXT NOT NULL,
			PRIMARY KEY (partner_id, customer_id)) WITHOUT ROWID`,
	}
}

const activityCols = `position, partner_id, at, partner_user, customer_id, customer_name, operation, resource_type, old_value, new_value`

// ActivityLog is the activity-log read model in SQLite.
type ActivityLog struct{ db *DB }

var _ projections.ActivityLog = (*ActivityLog)(nil)

func (a *ActivityLog) Name() string { return projections.ActivityLogName }

func (a *ActivityLog) Checkpoint(ctx context.Context) (int64, error) {
	return a.db.checkpoint(ctx, projections.ActivityLogName)
}

// ApplyBatch applies events in one transaction with the checkpoint.
func (a *ActivityLog) ApplyBatch(ctx context.Context, events []eventstore.Event) error {
	return a.db.applyBatch(ctx, a.Name(), events, func(tx *sql.Tx, evs []eventstore.Event) error {
		return a.write(ctx, tx, "", &sqlNames{tx: tx}, evs)
	})
}

// entries calls emit with the activity entry of each event that has one.
func (a *ActivityLog) entries(ctx context.Context, names projections.CustomerNames, events []eventstore.Event, emit func(projections.ActivityEntry) error) error {
	for _, ev := range events {
		e, err := projections.Decode(a.db.reg, ev)
		if err != nil {
			return err
		}
		entry, ok, err := projections.ActivityFor(ctx, names, ev, e)
		if err != nil {
			return err
		}
		if ok {
			if err := emit(entry); err != nil {
				return fmt.Errorf("writing activity at position %d: %w", ev.Position, err)
			}
		}
	}
	return nil
}

// write inserts the entries of events into rm_activity<sfx> inside tx.
func (a *ActivityLog) write(ctx context.Context, tx *sql.Tx, sfx string, names projections.CustomerNames, events []eventstore.Event) error {
	st, err := tx.PrepareContext(ctx, `INSERT INTO rm_activity`+sfx+` (`+activityCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return fmt.Errorf("preparing activity insert: %w", err)
	}
	defer st.Close()
	return a.entries(ctx, names, events, func(e projections.ActivityEntry) error {
		_, err := st.ExecContext(ctx, e.Position, e.PartnerID, e.At.UnixMicro(), e.PartnerUser, e.CustomerID, e.CustomerName,
			e.Operation, e.ResourceType, e.OldValue, e.NewValue)
		return err
	})
}

// sqlNames is projections.CustomerNames over rm_activity_names<sfx>.
type sqlNames struct {
	tx  *sql.Tx
	sfx string
}

func (n *sqlNames) CustomerName(ctx context.Context, p, id string) (string, error) {
	var name string
	err := n.tx.QueryRowContext(ctx, `SELECT name FROM rm_activity_names`+n.sfx+` WHERE partner_id = ? AND customer_id = ?`, p, id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}

func (n *sqlNames) SetCustomerName(ctx context.Context, p, id, name string) error {
	_, err := n.tx.ExecContext(ctx, `INSERT INTO rm_activity_names`+n.sfx+` (partner_id, customer_id, name) VALUES (?, ?, ?)
		ON CONFLICT (partner_id, customer_id) DO UPDATE SET name = excluded.name`, p, id, name)
	return err
}

// QueryActivity answers GET /v1/activity: newest first, keyset on position.
func (a *ActivityLog) QueryActivity(ctx context.Context, partnerID string, p projections.ActivityParams) (projections.ActivityPage, error) {
	q, err := p.Prepare()
	if err != nil {
		return projections.ActivityPage{}, err
	}
	query, args := `SELECT `+activityCols+` FROM rm_activity WHERE partner_id = ?`, []any{partnerID}
	and := func(cond string, v any) { query += " AND " + cond; args = append(args, v) }
	if !q.From.IsZero() {
		and(`at >= ?`, q.From.UnixMicro())
	}
	if !q.To.IsZero() {
		and(`at < ?`, q.To.UnixMicro())
	}
	for _, f := range []struct{ col, v string }{{"customer_id", q.CustomerID}, {"resource_type", q.ResourceType}, {"operation", q.Operation}, {"partner_user", q.User}} {
		if f.v != "" {
			and(f.col+` = ?`, f.v)
		}
	}
	if q.Before > 0 {
		and(`position < ?`, q.Before)
	}
	rows, err := a.db.read.QueryContext(ctx, query+` ORDER BY position DESC LIMIT `+strconv.Itoa(q.Limit), args...)
	if err != nil {
		return projections.ActivityPage{}, fmt.Errorf("querying activity: %w", err)
	}
	defer rows.Close()
	items := []projections.ActivityEntry{}
	for rows.Next() {
		var e projections.ActivityEntry
		var at int64
		if err := rows.Scan(&e.Position, &e.PartnerID, &at, &e.PartnerUser, &e.CustomerID, &e.CustomerName, &e.Operation, &e.ResourceType, &e.OldValue, &e.NewValue); err != nil {
			return projections.ActivityPage{}, fmt.Errorf("querying activity: %w", err)
		}
		e.At = time.UnixMicro(at).UTC()
		items = append(items, e)
	}
	if err := rows.Err(); err != nil {
		return projections.ActivityPage{}, fmt.Errorf("querying activity: %w", err)
	}
	return projections.ActivityPage{Items: items, NextCursor: q.NextCursor(items)}, nil
}

// Rebuild writes the entries into fresh tables, one transaction per page of
// the log (customer names kept in memory: one string per customer), then
// swaps them in.
func (a *ActivityLog) Rebuild(ctx context.Context, store eventstore.Store, progress func(done, total int64)) error {
	run, err := startRebuild(ctx, store, progress)
	if err != nil {
		return fmt.Errorf("rebuilding activity log: %w", err)
	}
	if err := a.db.createNew(ctx, activityTableNames, activityTables("_new")); err != nil {
		return fmt.Errorf("rebuilding activity log: %w", err)
	}
	names := projections.MemNames{}
	err = run.replay(ctx, store, func(evs []eventstore.Event) error {
		return a.db.inTx(ctx, "loading activity", func(tx *sql.Tx) error { return a.write(ctx, tx, "_new", names, evs) })
	})
	if err != nil {
		return fmt.Errorf("rebuilding activity log: %w", err)
	}
	type name struct{ p, id, name string }
	var all []name
	for k, v := range names {
		all = append(all, name{k[0], k[1], v})
	}
	err = a.db.inChunks(ctx, "loading customer names", len(all), func(tx *sql.Tx, lo, hi int) error {
		return insertEach(ctx, tx, `INSERT INTO rm_activity_names_new (partner_id, customer_id, name) VALUES (?, ?, ?)`, lo, hi, func(i int) []any {
			return []any{all[i].p, all[i].id, all[i].name}
		})
	})
	if err != nil {
		return fmt.Errorf("rebuilding activity log: %w", err)
	}
	return a.db.swap(ctx, a.Name(), run.last, activityTableNames, store, func(tx *sql.Tx, evs []eventstore.Event) error {
		return a.write(ctx, tx, "_new", &sqlNames{tx: tx, sfx: "_new"}, evs)
	})
}
