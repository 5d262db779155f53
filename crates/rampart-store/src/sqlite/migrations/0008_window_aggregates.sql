-- 0008: per-second window aggregates (src/aggregates.rs), as PostgreSQL's 0005. A single node
-- does not flush them (its controller sees all its traffic); the table exists so both backends
-- keep the same store and the shared suite runs on both.

CREATE TABLE window_aggregates (
    rollout     TEXT    NOT NULL,
    second      INTEGER NOT NULL,
    replica     TEXT    NOT NULL,
    side        TEXT    NOT NULL,
    requests    INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    refusals    INTEGER NOT NULL,
    feedback    INTEGER NOT NULL,
    thumbs_up   INTEGER NOT NULL,
    thumbs_down INTEGER NOT NULL,
    latency     BLOB,
    custom      BLOB    NOT NULL,
    PRIMARY KEY (rollout, second, replica, side)
) WITHOUT ROWID;
-- Retention deletes by second alone.
CREATE INDEX window_aggregates_second ON window_aggregates (second);
