-- 0005: per-second window aggregates (src/aggregates.rs): each replica's counters, latency
-- sketch and custom moments per rollout, second and side, merged by the leading controller into
-- the fleet's guardrail window. Not partitioned: a row per replica, rollout and side per second
-- of traffic, and rows older than a day are deleted by the replicas every ten minutes (a range
-- delete on the `second` index, a few thousand rows at a time).

CREATE TABLE window_aggregates (
    rollout     text   NOT NULL,
    second      bigint NOT NULL,
    replica     text   NOT NULL,
    side        text   NOT NULL,
    requests    bigint NOT NULL,
    errors      bigint NOT NULL,
    refusals    bigint NOT NULL,
    feedback    bigint NOT NULL,
    thumbs_up   bigint NOT NULL,
    thumbs_down bigint NOT NULL,
    latency     bytea,
    custom      bytea  NOT NULL,
    PRIMARY KEY (rollout, second, replica, side)
);
CREATE INDEX window_aggregates_second ON window_aggregates (second);
