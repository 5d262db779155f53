-- 0004: slow business outcomes (POST /v1/outcomes), attributed to the cohort served.

CREATE TABLE outcomes (
    id          INTEGER PRIMARY KEY,
    rollout     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    value       REAL    NOT NULL,
    cohort      TEXT    NOT NULL,
    variant     TEXT    NOT NULL,
    stage       TEXT,
    request_id  TEXT,
    key_hash    TEXT,
    served_ms   INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
);
-- The slow gate's query: a rollout's outcomes by serving time, grouped by name and cohort.
CREATE INDEX outcomes_rollout_served ON outcomes (rollout, served_ms);
-- One outcome of a name per request: a retried batch is harmless.
CREATE UNIQUE INDEX outcomes_request_name ON outcomes (request_id, name)
    WHERE request_id IS NOT NULL;
