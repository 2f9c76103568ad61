package pgread

// ExportSQL is the export query, for the benchmark's COPY of the same rows.
const ExportSQL = exportSQL

// Unordered reports whether db holds partnerID's list as not stored in
// name order (orderHints), for tests of which way a search went.
func Unordered(db *DB, partnerID string) bool { return db.order.unordered(partnerID) }
