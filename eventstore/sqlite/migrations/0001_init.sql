-- The event log. position is the global order; AUTOINCREMENT guarantees a
-- position is never handed out twice, even if the highest row were removed.
CREATE TABLE streams (
    stream_id TEXT PRIMARY KEY,
    version   INTEGER NOT NULL CHECK (version >= 1),
    last_hash BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT NOT NULL UNIQUE,
    stream_id      TEXT NOT NULL REFERENCES streams (stream_id),
    stream_version INTEGER NOT NULL CHECK (stream_version >= 1),
    type           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    partner_id     TEXT NOT NULL,
    actor_id       TEXT NOT NULL,
    actor_email    TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    causation_id   TEXT NOT NULL,
    recorded_at    INTEGER NOT NULL, -- unix microseconds, UTC
    data           BLOB NOT NULL,
    prev_hash      BLOB NOT NULL,
    hash           BLOB NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_partner_position ON events (partner_id, position);
CREATE INDEX events_type_position ON events (type, position);

CREATE TABLE claims (
    claim     TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL REFERENCES streams (stream_id)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
