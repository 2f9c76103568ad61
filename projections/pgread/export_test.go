package pgread

// ExportSQL is the export query, for the benchmark's COPY of the same rows.
const ExportSQL = exportSQL

// Unordered reports whether db holds partnerID's list as not stored in
// name order (orderHints), for tests of which way a search went.
func Unordered(db *DB, partnerID string) bool { return db.order.unordered(partnerID) }

// Narrowed counts db's searches whose page a name bound answered.
func Narrowed(db *DB) int64 { return db.narrowed.Load() }

// PrefixBounded counts db's searches ranked with the bound of the rows
// that start with the word (whether or not there were enough of them).
func PrefixBounded(db *DB) int64 { return db.prefixBounded.Load() }

// SearchWalk is how many rows a search walks before it turns to the indexes.
const SearchWalk = searchWalk
