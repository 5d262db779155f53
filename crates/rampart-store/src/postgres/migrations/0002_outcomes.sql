-- 0002: slow business outcomes (POST /v1/outcomes), attributed to the cohort served (as SQLite's
-- 0004). Not partitioned: outcomes are few (one per request and name at most) and kept, like the
-- audit log; store.retention does not apply to them.

CREATE TABLE outcomes (
    id          bigserial        PRIMARY KEY,
    rollout     text             NOT NULL,
    name        text             NOT NULL,
    value       double precision NOT NULL,
    cohort      text             NOT NULL,
    variant     text             NOT NULL,
    stage       text,
    request_id  text,
    key_hash    text,
    served_ms   bigint           NOT NULL,
    at_ms       bigint           NOT NULL,
    received_ms bigint           NOT NULL
);
-- The slow gate's query: a rollout's outcomes by serving time, grouped by name and cohort.
CREATE INDEX outcomes_rollout_served ON outcomes (rollout, served_ms);
-- One outcome of a name per request: a retried batch is harmless.
CREATE UNIQUE INDEX outcomes_request_name ON outcomes (request_id, name)
    WHERE request_id IS NOT NULL;
