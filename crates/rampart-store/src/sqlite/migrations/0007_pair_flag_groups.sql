-- 0007: a flag's pages within one tenant or one class walk only that tenant's (class's) pairs
-- with the flag: without these, "low similarity for a tenant with few pairs" walked every pair
-- with the flag (most pairs, when the candidate writes in another register: 0.3 s over 100,000
-- pairs). Same conditions as 0005 (src/pair_query.rs, `flag_sql`).

CREATE INDEX pair_features_refusal_tenant ON pair_features (rollout, tenant, ts_ms)
    WHERE ((b_flags | c_flags) & 2) <> 0;
CREATE INDEX pair_features_refusal_class ON pair_features (rollout, class, ts_ms)
    WHERE ((b_flags | c_flags) & 2) <> 0;
CREATE INDEX pair_features_format_change_tenant ON pair_features (rollout, tenant, ts_ms)
    WHERE (b_flags & c_flags & 1) <> 0
    AND (((b_flags | c_flags) - (b_flags & c_flags)) & 65268) <> 0;
CREATE INDEX pair_features_format_change_class ON pair_features (rollout, class, ts_ms)
    WHERE (b_flags & c_flags & 1) <> 0
    AND (((b_flags | c_flags) - (b_flags & c_flags)) & 65268) <> 0;
CREATE INDEX pair_features_low_similarity_tenant ON pair_features (rollout, tenant, ts_ms)
    WHERE equivalence IS NOT NULL AND similarity < 0.4
    AND (embedding_similarity IS NULL OR embedding_similarity < 0.9);
CREATE INDEX pair_features_low_similarity_class ON pair_features (rollout, class, ts_ms)
    WHERE equivalence IS NOT NULL AND similarity < 0.4
    AND (embedding_similarity IS NULL OR embedding_similarity < 0.9);
