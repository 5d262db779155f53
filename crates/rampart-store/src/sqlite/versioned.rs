//! Versioned rollout state on SQLite: every control change is a compare-and-set on the row's
//! version, written with its tenant cap and audit rows in one transaction on the single write
//! connection ([`crate::RolloutStore::apply_change`]).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::columns::AUDIT_COLUMNS;
use crate::error::Result;
use crate::{CasOutcome, RolloutChange, StoredRollout};

/// The row, its version and its caps, as seen by `c` (inside a transaction: one snapshot).
pub(super) fn load(c: &Connection, rollout: &str) -> Result<Option<StoredRollout>> {
    let row: Option<(String, i64)> = c
        .prepare_cached("SELECT state_json, version FROM rollout_state WHERE rollout = ?1")?
        .query_row([rollout], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((state_json, version)) = row else {
        return Ok(None);
    };
    let mut stmt = c.prepare_cached(
        "SELECT tenant, max_percent FROM tenant_caps WHERE rollout = ?1 ORDER BY tenant",
    )?;
    let caps = stmt
        .query_map([rollout], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<BTreeMap<String, f64>>>()?;
    Ok(Some(StoredRollout {
        state_json,
        version,
        tenant_caps: caps,
    }))
}

pub(super) fn versions(c: &Connection) -> Result<BTreeMap<String, i64>> {
    let mut stmt = c.prepare_cached("SELECT rollout, version FROM rollout_state")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The compare-and-set, in `tx` (committed by the caller when applied).
pub(super) fn apply(tx: &Transaction<'_>, ch: &RolloutChange) -> Result<CasOutcome> {
    let version = if ch.expected_version == 0 {
        match &ch.state_json {
            None => None,
            Some(json) => tx
                .prepare_cached(
                    "INSERT INTO rollout_state (rollout, state_json, updated_ms, version) \
                     VALUES (?1, ?2, ?3, 1) ON CONFLICT (rollout) DO NOTHING RETURNING version",
                )?
                .query_row(params![ch.rollout, json, ch.at_ms], |r| r.get(0))
                .optional()?,
        }
    } else {
        tx.prepare_cached(
            "UPDATE rollout_state SET state_json = COALESCE(?2, state_json), updated_ms = ?3, \
             version = version + 1 WHERE rollout = ?1 AND version = ?4 RETURNING version",
        )?
        .query_row(
            params![ch.rollout, ch.state_json, ch.at_ms, ch.expected_version],
            |r| r.get(0),
        )
        .optional()?
    };
    let Some(version) = version else {
        return Ok(CasOutcome::Conflict {
            current: load(tx, &ch.rollout)?,
        });
    };
    if let Some((tenant, max_percent)) = &ch.tenant_cap {
        tx.prepare_cached(
            "INSERT INTO tenant_caps (rollout, tenant, max_percent, updated_ms) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (rollout, tenant) DO UPDATE SET \
             max_percent = excluded.max_percent, updated_ms = excluded.updated_ms",
        )?
        .execute(params![ch.rollout, tenant, max_percent, ch.at_ms])?;
    }
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?;
    for e in &ch.audit {
        stmt.execute(params![
            e.rollout,
            e.ts_ms,
            e.actor,
            e.action,
            e.from_state,
            e.to_state,
            e.reason,
            serde_json::to_string(&e.details)?,
        ])?;
    }
    Ok(CasOutcome::Applied { version })
}
