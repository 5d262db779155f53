-- 0003: runtime tenant caps (set through the admin API) get their own table.

CREATE TABLE tenant_caps (
    rollout     TEXT    NOT NULL,
    tenant      TEXT    NOT NULL,
    max_percent REAL    NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (rollout, tenant)
);

-- Before 0003 a rollout's caps were one JSON object ({"tenant": percent}) in rollout_state under
-- the key '<rollout>#tenant-caps'; move them here.
INSERT INTO tenant_caps (rollout, tenant, max_percent, updated_ms)
    SELECT substr(s.rollout, 1, length(s.rollout) - length('#tenant-caps')), j.key, j.value,
           s.updated_ms
    FROM rollout_state s, json_each(s.state_json) j
    WHERE s.rollout LIKE '%#tenant-caps' AND json_valid(s.state_json);
DELETE FROM rollout_state WHERE rollout LIKE '%#tenant-caps';
