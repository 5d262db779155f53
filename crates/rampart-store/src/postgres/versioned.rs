//! Versioned rollout state on PostgreSQL: every control change is a compare-and-set on
//! `rollout_state.version`, written with its tenant cap and audit rows in one transaction that
//! also sends `NOTIFY rampart_rollouts, '<rollout>'` (delivered at commit, so a replica that
//! hears it reads the change).

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;

use super::Shared;
use crate::columns::AUDIT_COLUMNS;
use crate::error::Result;
use crate::{CasOutcome, NOTIFY_CHANNEL, RolloutChange, StoredRollout};

async fn load_in<C: GenericClient>(c: &C, rollout: &str) -> Result<Option<StoredRollout>> {
    let row = c
        .query_opt(
            "SELECT state_json, version FROM rollout_state WHERE rollout = $1",
            &[&rollout],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let caps = c
        .query(
            "SELECT tenant, max_percent FROM tenant_caps WHERE rollout = $1 ORDER BY tenant",
            &[&rollout],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<BTreeMap<String, f64>>>()?;
    Ok(Some(StoredRollout {
        state_json: row.try_get(0)?,
        version: row.try_get(1)?,
        tenant_caps: caps,
    }))
}

/// The row and its caps in one repeatable-read snapshot.
pub(super) async fn load(s: &Shared, rollout: &str) -> Result<Option<StoredRollout>> {
    let mut c = s.client().await?;
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let out = load_in(&tx, rollout).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn versions(s: &Shared) -> Result<BTreeMap<String, i64>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached("SELECT rollout, version FROM rollout_state")
        .await?;
    c.query(&stmt, &[])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

pub(super) async fn apply(s: &Shared, ch: &RolloutChange) -> Result<CasOutcome> {
    let mut c = s.client().await?;
    let tx = c.transaction().await?;
    let version: Option<i64> = if ch.expected_version == 0 {
        match &ch.state_json {
            None => None,
            Some(json) => tx
                .query_opt(
                    "INSERT INTO rollout_state (rollout, state_json, updated_ms, version) \
                     VALUES ($1, $2, $3, 1) ON CONFLICT (rollout) DO NOTHING RETURNING version",
                    &[&ch.rollout, json, &ch.at_ms],
                )
                .await?
                .map(|r| r.try_get(0))
                .transpose()?,
        }
    } else {
        tx.query_opt(
            "UPDATE rollout_state SET state_json = COALESCE($2, state_json), updated_ms = $3, \
             version = version + 1 WHERE rollout = $1 AND version = $4 RETURNING version",
            &[&ch.rollout, &ch.state_json, &ch.at_ms, &ch.expected_version],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
    };
    let Some(version) = version else {
        let current = load_in(&tx, &ch.rollout).await?;
        tx.rollback().await?;
        return Ok(CasOutcome::Conflict { current });
    };
    if let Some((tenant, max_percent)) = &ch.tenant_cap {
        tx.execute(
            "INSERT INTO tenant_caps (rollout, tenant, max_percent, updated_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (rollout, tenant) DO UPDATE SET \
             max_percent = excluded.max_percent, updated_ms = excluded.updated_ms",
            &[&ch.rollout, tenant, max_percent, &ch.at_ms],
        )
        .await?;
    }
    let insert =
        format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    for e in &ch.audit {
        let details = serde_json::to_string(&e.details)?;
        tx.execute(
            &insert,
            &[
                &e.rollout,
                &e.ts_ms,
                &e.actor,
                &e.action,
                &e.from_state,
                &e.to_state,
                &e.reason,
                &details,
            ],
        )
        .await?;
    }
    tx.execute("SELECT pg_notify($1, $2)", &[&NOTIFY_CHANNEL, &ch.rollout])
        .await?;
    tx.commit().await?;
    Ok(CasOutcome::Applied { version })
}
