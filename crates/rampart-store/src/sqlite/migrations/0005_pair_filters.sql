-- 0005: what the dashboard's pairs page filters by, as indexes, so a filtered page is a bounded
-- read whatever the number of pairs: by tenant, and by flag. The flag conditions are those of
-- src/pair_query.rs (`flag_sql`, bits as in src/sqlite/features.rs: 1 ok, 2 refusal, 65268 the
-- format features); a page with a flag walks only the pairs that have it.

CREATE INDEX pairs_rollout_tenant_ts ON pairs (rollout, tenant, ts_ms);

CREATE INDEX pair_features_refusal ON pair_features (rollout, ts_ms)
    WHERE ((b_flags | c_flags) & 2) <> 0;
CREATE INDEX pair_features_format_change ON pair_features (rollout, ts_ms)
    WHERE (b_flags & c_flags & 1) <> 0
    AND (((b_flags | c_flags) - (b_flags & c_flags)) & 65268) <> 0;
CREATE INDEX pair_features_low_similarity ON pair_features (rollout, ts_ms)
    WHERE equivalence IS NOT NULL AND similarity < 0.4
    AND (embedding_similarity IS NULL OR embedding_similarity < 0.9);
