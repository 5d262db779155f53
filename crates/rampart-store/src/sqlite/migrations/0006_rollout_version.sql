-- 0006: a version per rollout state row, grown by one with every change: the base of the
-- compare-and-set every control change is (RolloutStore::apply_change).
ALTER TABLE rollout_state ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
