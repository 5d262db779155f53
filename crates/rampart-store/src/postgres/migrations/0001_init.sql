-- 0001: the whole schema as of SQLite's 0003 (events, feedback, shadow pairs and their features,
-- rollout state, tenant caps, audit log).
--
-- events, feedback, pairs and pair_features are partitioned by UTC day on ts_ms (unix ms); their
-- partitions (<table>_pYYYYMMDD) are created ahead and on demand by the store, and retention
-- drops them whole. Unique keys of a partitioned table must hold the partition key, so "one row
-- per request id" is kept by the batch insert (it skips ids already stored), and the unique
-- indexes below also serve as the lookups by request id. Partitioned tables cannot have identity
-- columns here (PostgreSQL < 17): ids come from explicit sequences, in insertion order.

CREATE SEQUENCE events_id_seq;
CREATE TABLE events (
    id                bigint           NOT NULL DEFAULT nextval('events_id_seq'),
    request_id        text             NOT NULL,
    ts_ms             bigint           NOT NULL,
    route             text             NOT NULL,
    rollout           text,
    stage             text,
    variant           text             NOT NULL,
    cohort            text             NOT NULL,
    key_hash          text,
    tenant            text,
    class             text,
    status            integer          NOT NULL,
    outcome           text             NOT NULL,
    latency_ms        double precision NOT NULL,
    ttft_ms           double precision,
    prompt_tokens     bigint           NOT NULL,
    completion_tokens bigint           NOT NULL,
    cost_usd          double precision NOT NULL,
    refusal           boolean          NOT NULL,
    streamed          boolean          NOT NULL,
    finish_reason     text,
    output_text       text,
    UNIQUE (request_id, ts_ms)
) PARTITION BY RANGE (ts_ms);
CREATE INDEX events_rollout_ts ON events (rollout, ts_ms, id);

CREATE SEQUENCE feedback_id_seq;
CREATE TABLE feedback (
    id         bigint NOT NULL DEFAULT nextval('feedback_id_seq'),
    request_id text   NOT NULL,
    ts_ms      bigint NOT NULL,
    thumbs     text,
    outcome    text,
    final_text text
) PARTITION BY RANGE (ts_ms);
CREATE INDEX feedback_request ON feedback (request_id, id);

-- b_* is the baseline side, c_* the candidate side; JSON columns hold JSON text.
CREATE SEQUENCE pairs_id_seq;
CREATE TABLE pairs (
    id                   bigint           NOT NULL DEFAULT nextval('pairs_id_seq'),
    request_id           text             NOT NULL,
    ts_ms                bigint           NOT NULL,
    route                text             NOT NULL,
    rollout              text             NOT NULL,
    stage                text             NOT NULL,
    key_hash             text,
    tenant               text,
    class                text,
    prompt               text,
    prompt_hash          text             NOT NULL,
    b_variant            text             NOT NULL,
    b_model              text             NOT NULL,
    b_prompt_version     text,
    b_text               text,
    b_tool_calls         text,
    b_finish_reason      text,
    b_prompt_tokens      bigint           NOT NULL,
    b_completion_tokens  bigint           NOT NULL,
    b_latency_ms         double precision NOT NULL,
    b_ttft_ms            double precision,
    b_cost_usd           double precision NOT NULL,
    b_refusal            boolean          NOT NULL,
    b_error              text,
    b_cached             boolean          NOT NULL,
    c_variant            text             NOT NULL,
    c_model              text             NOT NULL,
    c_prompt_version     text,
    c_text               text,
    c_tool_calls         text,
    c_finish_reason      text,
    c_prompt_tokens      bigint           NOT NULL,
    c_completion_tokens  bigint           NOT NULL,
    c_latency_ms         double precision NOT NULL,
    c_ttft_ms            double precision,
    c_cost_usd           double precision NOT NULL,
    c_refusal            boolean          NOT NULL,
    c_error              text,
    c_cached             boolean          NOT NULL,
    tools                text,
    response_format      text,
    embedding_similarity double precision,
    judge_model          text,
    judge_first          text,
    judge_second         text,
    judge_cost_usd       double precision,
    judge_error          text,
    UNIQUE (rollout, request_id, ts_ms)
) PARTITION BY RANGE (ts_ms);
CREATE INDEX pairs_rollout_ts ON pairs (rollout, ts_ms, id);
CREATE INDEX pairs_rollout_class_ts ON pairs (rollout, class, ts_ms, id);
CREATE INDEX pairs_rollout_id ON pairs (rollout, id);

-- One row per pair (pair_id = pairs.id), written with it; flag bits as in SQLite's
-- (src/sqlite/features.rs).
CREATE TABLE pair_features (
    pair_id              bigint           NOT NULL,
    rollout              text             NOT NULL,
    stage                text             NOT NULL,
    request_id           text             NOT NULL,
    ts_ms                bigint           NOT NULL,
    class                text,
    tenant               text,
    b_flags              integer          NOT NULL,
    b_chars              bigint           NOT NULL,
    b_tokens             bigint           NOT NULL,
    b_completion_tokens  bigint           NOT NULL,
    b_opening            text,
    b_latency_ms         double precision NOT NULL,
    b_cost_usd           double precision NOT NULL,
    c_flags              integer          NOT NULL,
    c_chars              bigint           NOT NULL,
    c_tokens             bigint           NOT NULL,
    c_completion_tokens  bigint           NOT NULL,
    c_opening            text,
    c_latency_ms         double precision NOT NULL,
    c_cost_usd           double precision NOT NULL,
    exact_match          boolean          NOT NULL,
    normalized_match     boolean          NOT NULL,
    similarity           double precision NOT NULL,
    embedding_similarity double precision,
    equivalence          text,
    length_ratio         double precision,
    judge_first          text,
    judge_second         text,
    judge_failed         boolean
) PARTITION BY RANGE (ts_ms);
CREATE INDEX pair_features_rollout ON pair_features (rollout, pair_id);
CREATE INDEX pair_features_rollout_stage ON pair_features (rollout, stage, pair_id);

-- One row per rollout. `version` grows by one with every change: the base of compare-and-set
-- between replicas.
CREATE TABLE rollout_state (
    rollout    text   PRIMARY KEY,
    state_json text   NOT NULL,
    updated_ms bigint NOT NULL,
    version    bigint NOT NULL DEFAULT 1
);

CREATE TABLE tenant_caps (
    rollout     text             NOT NULL,
    tenant      text             NOT NULL,
    max_percent double precision NOT NULL,
    updated_ms  bigint           NOT NULL,
    PRIMARY KEY (rollout, tenant)
);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    rollout    text   NOT NULL,
    ts_ms      bigint NOT NULL,
    actor      text   NOT NULL,
    action     text   NOT NULL,
    from_state text   NOT NULL,
    to_state   text   NOT NULL,
    reason     text   NOT NULL,
    details    text   NOT NULL
);
CREATE INDEX audit_log_rollout ON audit_log (rollout, id);
