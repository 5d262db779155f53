-- 0001: events, feedback, shadow pairs, rollout state and audit log.

CREATE TABLE events (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT    NOT NULL UNIQUE,
    ts_ms             INTEGER NOT NULL,
    route             TEXT    NOT NULL,
    rollout           TEXT,
    stage             TEXT,
    variant           TEXT    NOT NULL,
    cohort            TEXT    NOT NULL,
    key_hash          TEXT,
    tenant            TEXT,
    class             TEXT,
    status            INTEGER NOT NULL,
    outcome           TEXT    NOT NULL,
    latency_ms        REAL    NOT NULL,
    ttft_ms           REAL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd          REAL    NOT NULL,
    refusal           INTEGER NOT NULL,
    streamed          INTEGER NOT NULL,
    finish_reason     TEXT,
    output_text       TEXT
);
CREATE INDEX events_rollout_ts ON events (rollout, ts_ms);

CREATE TABLE feedback (
    id         INTEGER PRIMARY KEY,
    request_id TEXT    NOT NULL,
    ts_ms      INTEGER NOT NULL,
    thumbs     TEXT,
    outcome    TEXT,
    final_text TEXT
);
CREATE INDEX feedback_request ON feedback (request_id);

-- b_* is the baseline side, c_* the candidate side; *_tool_calls is JSON text.
CREATE TABLE pairs (
    id                  INTEGER PRIMARY KEY,
    request_id          TEXT    NOT NULL,
    ts_ms               INTEGER NOT NULL,
    route               TEXT    NOT NULL,
    rollout             TEXT    NOT NULL,
    stage               TEXT    NOT NULL,
    key_hash            TEXT,
    tenant              TEXT,
    class               TEXT,
    prompt              TEXT,
    prompt_hash         TEXT    NOT NULL,
    b_variant           TEXT    NOT NULL,
    b_model             TEXT    NOT NULL,
    b_prompt_version    TEXT,
    b_text              TEXT,
    b_tool_calls        TEXT,
    b_finish_reason     TEXT,
    b_prompt_tokens     INTEGER NOT NULL,
    b_completion_tokens INTEGER NOT NULL,
    b_latency_ms        REAL    NOT NULL,
    b_ttft_ms           REAL,
    b_cost_usd          REAL    NOT NULL,
    b_refusal           INTEGER NOT NULL,
    b_error             TEXT,
    b_cached            INTEGER NOT NULL,
    c_variant           TEXT    NOT NULL,
    c_model             TEXT    NOT NULL,
    c_prompt_version    TEXT,
    c_text              TEXT,
    c_tool_calls        TEXT,
    c_finish_reason     TEXT,
    c_prompt_tokens     INTEGER NOT NULL,
    c_completion_tokens INTEGER NOT NULL,
    c_latency_ms        REAL    NOT NULL,
    c_ttft_ms           REAL,
    c_cost_usd          REAL    NOT NULL,
    c_refusal           INTEGER NOT NULL,
    c_error             TEXT,
    c_cached            INTEGER NOT NULL,
    UNIQUE (rollout, request_id)
);
CREATE INDEX pairs_rollout_ts ON pairs (rollout, ts_ms);
CREATE INDEX pairs_rollout_class_ts ON pairs (rollout, class, ts_ms);
-- (rollout) alone is ordered by rowid: for_each_pair walks it in id order.
CREATE INDEX pairs_rollout_id ON pairs (rollout);

CREATE TABLE rollout_state (
    rollout    TEXT    PRIMARY KEY,
    state_json TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    rollout    TEXT    NOT NULL,
    ts_ms      INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    from_state TEXT    NOT NULL,
    to_state   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    details    TEXT    NOT NULL
);
CREATE INDEX audit_log_rollout ON audit_log (rollout, id);
