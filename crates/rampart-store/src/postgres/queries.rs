//! The single-statement reads and writes behind the store traits (batches are in
//! [`super::batch`]). Every statement is parameterised and prepared once per connection.

use std::collections::{BTreeMap, BTreeSet};

use rampart_core::compare::PairFeatures;
use rampart_core::record::{Feedback, Pair, RequestEvent};
use tokio_postgres::types::ToSql;

use super::partitions::day_of;
use super::{Shared, rows};
use crate::columns::{
    AUDIT_COLUMNS, EVENT_COLUMN_COUNT, EVENT_COLUMNS, EVENT_COLUMNS_NO_TEXT,
    EVENT_FEEDBACK_COLUMNS, FEEDBACK_COLUMNS, PAIR_COLUMNS, edit_outcome_str, thumbs_str,
};
use crate::error::Result;
use crate::pair_query::{Param, page_sql};
use crate::sqlite::features::FEATURE_COLUMNS;
use crate::{AuditEntry, FlaggedPair, PairFilter, PairQuery};

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) async fn event_exists(s: &Shared, request_id: &str) -> Result<bool> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE request_id = $1)")
        .await?;
    Ok(c.query_one(&stmt, &[&request_id]).await?.try_get(0)?)
}

pub(super) async fn get_event(s: &Shared, request_id: &str) -> Result<Option<RequestEvent>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE request_id = $1 ORDER BY id LIMIT 1"
        ))
        .await?;
    c.query_opt(&stmt, &[&request_id])
        .await?
        .map(|r| rows::event(&r))
        .transpose()
}

pub(super) async fn count_events(s: &Shared) -> Result<u64> {
    let c = s.client().await?;
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM events", &[])
        .await?
        .try_get(0)?;
    Ok(count(n))
}

pub(super) async fn events_since(
    s: &Shared,
    rollout: &str,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<RequestEvent>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE rollout = $1 AND ts_ms >= $2 \
             ORDER BY ts_ms, id LIMIT $3"
        ))
        .await?;
    c.query(&stmt, &[&rollout, &since_ms, &limit_param(limit)])
        .await?
        .iter()
        .map(rows::event)
        .collect()
}

pub(super) async fn latest_events(
    s: &Shared,
    rollout: &str,
    limit: usize,
) -> Result<Vec<RequestEvent>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT * FROM (SELECT {EVENT_COLUMNS_NO_TEXT}, id FROM events WHERE rollout = $1 \
             ORDER BY ts_ms DESC, id DESC LIMIT $2) AS newest ORDER BY ts_ms, id"
        ))
        .await?;
    c.query(&stmt, &[&rollout, &limit_param(limit)])
        .await?
        .iter()
        .map(rows::event)
        .collect()
}

pub(super) async fn insert_feedback(s: &Shared, fb: &Feedback) -> Result<bool> {
    let mut c = s.client().await?;
    let day = BTreeSet::from([day_of(fb.ts_ms)]);
    s.partitions.ensure(&mut c, "feedback", &day).await?;
    // One statement: the existence check and the insert are atomic.
    let stmt = c
        .prepare_cached(
            "INSERT INTO feedback (request_id, ts_ms, thumbs, outcome, final_text) \
             SELECT $1::text, $2::bigint, $3::text, $4::text, $5::text \
             WHERE EXISTS (SELECT 1 FROM events WHERE request_id = $1::text)",
        )
        .await?;
    let n = c
        .execute(
            &stmt,
            &[
                &fb.request_id,
                &fb.ts_ms,
                &fb.thumbs.map(thumbs_str),
                &fb.outcome.map(edit_outcome_str),
                &fb.final_text,
            ],
        )
        .await?;
    Ok(n == 1)
}

pub(super) async fn feedback_for(s: &Shared, request_id: &str) -> Result<Vec<Feedback>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE request_id = $1 ORDER BY id"
        ))
        .await?;
    c.query(&stmt, &[&request_id])
        .await?
        .iter()
        .map(|r| rows::feedback(r, 0))
        .collect()
}

pub(super) async fn feedback_with_events(
    s: &Shared,
    rollout: &str,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<(RequestEvent, Feedback)>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {EVENT_FEEDBACK_COLUMNS} FROM events e \
             JOIN feedback f ON f.request_id = e.request_id \
             WHERE e.rollout = $1 AND e.ts_ms >= $2 ORDER BY e.ts_ms, e.id, f.id LIMIT $3"
        ))
        .await?;
    c.query(&stmt, &[&rollout, &since_ms, &limit_param(limit)])
        .await?
        .iter()
        .map(|r| Ok((rows::event(r)?, rows::feedback(r, EVENT_COLUMN_COUNT)?)))
        .collect()
}

/// A page of pairs ([`crate::pair_query`]), as `(id, pair)` rows newest first.
pub(super) async fn pairs_page(
    s: &Shared,
    rollout: &str,
    query: &PairQuery,
    limit: usize,
) -> Result<Vec<(i64, FlaggedPair)>> {
    let q = page_sql(rollout, query, limit, |n| format!("${n}"), true);
    let c = s.client().await?;
    let stmt = c.prepare_cached(&q.sql).await?;
    let params: Vec<&(dyn ToSql + Sync)> = q
        .params
        .iter()
        .map(|p| match p {
            Param::Int(i) => i as &(dyn ToSql + Sync),
            Param::Text(t) => t as &(dyn ToSql + Sync),
        })
        .collect();
    c.query(&stmt, &params)
        .await?
        .iter()
        .map(rows::flagged_pair)
        .collect()
}

pub(super) async fn count_pairs(s: &Shared, rollout: &str) -> Result<u64> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached("SELECT COUNT(*) FROM pairs WHERE rollout = $1")
        .await?;
    let n: i64 = c.query_one(&stmt, &[&rollout]).await?.try_get(0)?;
    Ok(count(n))
}

/// The pairs of a rollout after id `after`, in id order, at most `limit`.
pub(super) async fn pair_page(
    s: &Shared,
    rollout: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, Pair)>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT id, {PAIR_COLUMNS} FROM pairs WHERE rollout = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        ))
        .await?;
    c.query(&stmt, &[&rollout, &after, &limit_param(limit)])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, rows::pair(r, 1)?)))
        .collect()
}

pub(super) async fn get_pair(s: &Shared, rollout: &str, request_id: &str) -> Result<Option<Pair>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {PAIR_COLUMNS} FROM pairs WHERE rollout = $1 AND request_id = $2 \
             ORDER BY id LIMIT 1"
        ))
        .await?;
    c.query_opt(&stmt, &[&rollout, &request_id])
        .await?
        .map(|r| rows::pair(&r, 0))
        .transpose()
}

/// The features of a rollout's pairs after pair id `after` that `filter` keeps, in id order.
pub(super) async fn feature_page(
    s: &Shared,
    rollout: &str,
    filter: &PairFilter,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, PairFeatures)>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT pair_id, {FEATURE_COLUMNS} FROM pair_features \
             WHERE rollout = $1 AND pair_id > $2 AND ($3::text IS NULL OR stage = $3) \
             AND ts_ms >= $4 ORDER BY pair_id LIMIT $5"
        ))
        .await?;
    let since = filter.since_ms.unwrap_or(i64::MIN);
    c.query(
        &stmt,
        &[&rollout, &after, &filter.stage, &since, &limit_param(limit)],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, rows::features(r, 1)?)))
    .collect()
}

pub(super) async fn recent_pair_features(
    s: &Shared,
    rollout: &str,
    filter: &PairFilter,
    limit: usize,
) -> Result<Vec<PairFeatures>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {FEATURE_COLUMNS} FROM pair_features \
             WHERE rollout = $1 AND ($2::text IS NULL OR stage = $2) AND ts_ms >= $3 \
             ORDER BY pair_id DESC LIMIT $4"
        ))
        .await?;
    let since = filter.since_ms.unwrap_or(i64::MIN);
    c.query(
        &stmt,
        &[&rollout, &filter.stage, &since, &limit_param(limit)],
    )
    .await?
    .iter()
    .map(|r| rows::features(r, 0))
    .collect()
}

pub(super) async fn load_rollout_state(s: &Shared, rollout: &str) -> Result<Option<String>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached("SELECT state_json FROM rollout_state WHERE rollout = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&rollout])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

pub(super) async fn rollout_version(s: &Shared, rollout: &str) -> Result<Option<i64>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached("SELECT version FROM rollout_state WHERE rollout = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&rollout])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
}

pub(super) async fn save_rollout_state(
    s: &Shared,
    rollout: &str,
    state_json: &str,
    updated_ms: i64,
) -> Result<()> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO rollout_state (rollout, state_json, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (rollout) DO UPDATE SET state_json = excluded.state_json, \
             updated_ms = excluded.updated_ms, version = rollout_state.version + 1",
        )
        .await?;
    c.execute(&stmt, &[&rollout, &state_json, &updated_ms])
        .await?;
    Ok(())
}

pub(super) async fn save_tenant_cap(
    s: &Shared,
    rollout: &str,
    tenant: &str,
    max_percent: f64,
    updated_ms: i64,
) -> Result<()> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO tenant_caps (rollout, tenant, max_percent, updated_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (rollout, tenant) DO UPDATE SET \
             max_percent = excluded.max_percent, updated_ms = excluded.updated_ms",
        )
        .await?;
    c.execute(&stmt, &[&rollout, &tenant, &max_percent, &updated_ms])
        .await?;
    Ok(())
}

pub(super) async fn tenant_caps(s: &Shared, rollout: &str) -> Result<BTreeMap<String, f64>> {
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(
            "SELECT tenant, max_percent FROM tenant_caps WHERE rollout = $1 ORDER BY tenant",
        )
        .await?;
    c.query(&stmt, &[&rollout])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

pub(super) async fn append_audit(s: &Shared, entry: &AuditEntry) -> Result<()> {
    let details = serde_json::to_string(&entry.details)?;
    let c = s.client().await?;
    let stmt = c
        .prepare_cached(&format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .await?;
    c.execute(
        &stmt,
        &[
            &entry.rollout,
            &entry.ts_ms,
            &entry.actor,
            &entry.action,
            &entry.from_state,
            &entry.to_state,
            &entry.reason,
            &details,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn audit_log(s: &Shared, rollout: &str, limit: usize) -> Result<Vec<AuditEntry>> {
    let c = s.client().await?;
    // Newest first through the index, then reversed: no sort.
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE rollout = $1 ORDER BY id DESC LIMIT $2"
        ))
        .await?;
    let mut entries = c
        .query(&stmt, &[&rollout, &limit_param(limit)])
        .await?
        .iter()
        .map(rows::audit)
        .collect::<Result<Vec<_>>>()?;
    entries.reverse();
    Ok(entries)
}
