-- 0002: what the comparison needs besides the texts, and the per-pair features table.

-- The request's tools and response_format (JSON text), the answers' embedding similarity, and
-- the judge's verdicts (judge_model is NULL when the pair was not judged; judge_first is with
-- the baseline shown as A, judge_second with the candidate as A: 'a', 'b', 'tie' or NULL).
ALTER TABLE pairs ADD COLUMN tools TEXT;
ALTER TABLE pairs ADD COLUMN response_format TEXT;
ALTER TABLE pairs ADD COLUMN embedding_similarity REAL;
ALTER TABLE pairs ADD COLUMN judge_model TEXT;
ALTER TABLE pairs ADD COLUMN judge_first TEXT;
ALTER TABLE pairs ADD COLUMN judge_second TEXT;
ALTER TABLE pairs ADD COLUMN judge_cost_usd REAL;
ALTER TABLE pairs ADD COLUMN judge_error TEXT;

-- One row per pair (pair_id = pairs.id), computed from the pair when it is stored, so a report
-- reads these short rows and never the texts. Derived data: a migration that changes what a
-- feature means rebuilds it. b_flags / c_flags pack a side's yes/no features (bit layout in
-- src/sqlite/features.rs); equivalence is NULL when either side failed.
CREATE TABLE pair_features (
    pair_id              INTEGER PRIMARY KEY,
    rollout              TEXT    NOT NULL,
    request_id           TEXT    NOT NULL,
    ts_ms                INTEGER NOT NULL,
    stage                TEXT    NOT NULL,
    class                TEXT,
    tenant               TEXT,
    b_flags              INTEGER NOT NULL,
    b_chars              INTEGER NOT NULL,
    b_tokens             INTEGER NOT NULL,
    b_completion_tokens  INTEGER NOT NULL,
    b_opening            TEXT,
    b_latency_ms         REAL    NOT NULL,
    b_cost_usd           REAL    NOT NULL,
    c_flags              INTEGER NOT NULL,
    c_chars              INTEGER NOT NULL,
    c_tokens             INTEGER NOT NULL,
    c_completion_tokens  INTEGER NOT NULL,
    c_opening            TEXT,
    c_latency_ms         REAL    NOT NULL,
    c_cost_usd           REAL    NOT NULL,
    exact_match          INTEGER NOT NULL,
    normalized_match     INTEGER NOT NULL,
    similarity           REAL    NOT NULL,
    embedding_similarity REAL,
    equivalence          TEXT,
    length_ratio         REAL,
    -- judge_failed is NULL when the pair was not judged, 1 when a judge call failed.
    judge_first          TEXT,
    judge_second         TEXT,
    judge_failed         INTEGER
);
-- (rollout) alone is ordered by pair_id: reports walk it in insertion order.
CREATE INDEX pair_features_rollout ON pair_features (rollout);
