package pgread

import (
	"context"
	"fmt"
	"time"
)

// The customer list's GIN indexes take new entries into a pending list and
// merge it into the index when it passes gin_pending_list_limit (4 MB),
// inside the insert that passes it: the projector's. That merge stalled the
// projector for 100-250 ms under load, and those stalls were the list's lag
// tail. Merging from another connection every second keeps the lists short
// and the work off the projector's path (inserts go on during a merge).
// Measured at 1,000 creates/s, alternated with and without: lag p99 69-88
// against 143-213 ms in three pairs, 103-169 against 131-282 ms in five
// later ones. A smaller pending list bounds the merge too, but made every
// insert half as expensive again.
//
// The indexes are the list's GIN indexes as the catalog has them, so a
// new or renamed one is never missed.
const cleanPendingListsSQL = `SELECT coalesce(sum(gin_clean_pending_list(i.indexrelid)), 0)::bigint
	FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
	WHERE i.indrelid = 'rm_customers'::regclass AND am.amname = 'gin'`

// DefaultUpkeepEvery is how often RunIndexUpkeep merges the pending lists.
const DefaultUpkeepEvery = time.Second

// CleanPendingLists merges the customer list's GIN pending lists into their
// indexes and returns how many pending pages it merged.
func (db *DB) CleanPendingLists(ctx context.Context) (int64, error) {
	var pages int64
	err := db.pool.QueryRow(ctx, cleanPendingListsSQL).Scan(&pages)
	if err != nil {
		return 0, fmt.Errorf("merging the customer list's index pending lists: %w", err)
	}
	return pages, nil
}

// RunIndexUpkeep calls CleanPendingLists every interval until ctx ends.
// A failure (the database down) is tried again at the next interval;
// onError hears the first of a run of failures, not one a second.
func (db *DB) RunIndexUpkeep(ctx context.Context, every time.Duration, onError func(error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		_, err := db.CleanPendingLists(ctx)
		if err != nil && ctx.Err() == nil && !failing {
			onError(err)
		}
		failing = err != nil
	}
}
