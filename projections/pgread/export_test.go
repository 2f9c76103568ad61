package pgread

// ExportSQL is the export query, for the benchmark's COPY of the same rows.
const ExportSQL = exportSQL
