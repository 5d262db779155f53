//! Batch inserts of events and pairs (with their features), inside the caller's transaction.
//!
//! Invariant: rows already stored are skipped (same request id; same rollout and request id for
//! pairs), counted and logged, so a retried batch is harmless.

use rampart_core::record::{Pair, RequestEvent};
use rusqlite::{Transaction, params};

use super::features;
use crate::columns::{EVENT_COLUMNS, PAIR_COLUMNS, PAIR_HEAD, PAIR_SIDE, verdict_str};
use crate::error::Result;

fn json_text(v: &Option<serde_json::Value>) -> Result<Option<String>> {
    Ok(match v {
        Some(v) => Some(serde_json::to_string(v)?),
        None => None,
    })
}

/// Rows a batch insert writes between offers of the CPU to other threads.
const ROWS_PER_YIELD: usize = 32;

/// Called once per row of a batch: every [`ROWS_PER_YIELD`] rows the writing thread yields,
/// so a large batch never holds a core for the whole of its transaction while the request path
/// waits to run on it (readers are unaffected by the open transaction: WAL).
fn pace(row: usize) {
    if row % ROWS_PER_YIELD == ROWS_PER_YIELD - 1 {
        std::thread::yield_now();
    }
}

pub(super) fn insert_events_tx(tx: &Transaction<'_>, events: &[RequestEvent]) -> Result<()> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
    ))?;
    let mut skipped = 0usize;
    for (i, e) in events.iter().enumerate() {
        pace(i);
        let n = stmt.execute(params![
            e.request_id,
            e.ts_ms,
            e.route,
            e.rollout,
            e.stage,
            e.variant,
            e.cohort.as_str(),
            e.key_hash,
            e.tenant,
            e.class,
            e.status,
            e.outcome.as_str(),
            e.latency_ms,
            e.ttft_ms,
            e.prompt_tokens,
            e.completion_tokens,
            e.cost_usd,
            e.refusal,
            e.streamed,
            e.finish_reason,
            e.output_text,
        ])?;
        skipped += usize::from(n == 0);
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "events with an already stored request id were skipped"
        );
    }
    Ok(())
}

/// Inserts the pairs not stored yet, each with its features (see [`features`]).
pub(super) fn insert_pairs_tx(tx: &Transaction<'_>, pairs: &[Pair]) -> Result<()> {
    let placeholders = (1..=PAIR_HEAD + 2 * PAIR_SIDE + 8)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO pairs ({PAIR_COLUMNS}) VALUES ({placeholders})"
    ))?;
    let mut skipped = 0usize;
    for (i, p) in pairs.iter().enumerate() {
        pace(i);
        let (b, c) = (&p.baseline, &p.candidate);
        let (b_tools, c_tools) = (json_text(&b.tool_calls)?, json_text(&c.tool_calls)?);
        let (tools, response_format) = (json_text(&p.tools)?, json_text(&p.response_format)?);
        let judge = p.judge.as_ref();
        let n = stmt.execute(params![
            p.request_id,
            p.ts_ms,
            p.route,
            p.rollout,
            p.stage,
            p.key_hash,
            p.tenant,
            p.class,
            p.prompt,
            p.prompt_hash,
            b.variant,
            b.model,
            b.prompt_version,
            b.text,
            b_tools,
            b.finish_reason,
            b.prompt_tokens,
            b.completion_tokens,
            b.latency_ms,
            b.ttft_ms,
            b.cost_usd,
            b.refusal,
            b.error,
            b.cached,
            c.variant,
            c.model,
            c.prompt_version,
            c.text,
            c_tools,
            c.finish_reason,
            c.prompt_tokens,
            c.completion_tokens,
            c.latency_ms,
            c.ttft_ms,
            c.cost_usd,
            c.refusal,
            c.error,
            c.cached,
            tools,
            response_format,
            p.embedding_similarity,
            judge.map(|j| &j.model),
            judge.and_then(|j| j.first).map(verdict_str),
            judge.and_then(|j| j.second).map(verdict_str),
            judge.map(|j| j.cost_usd),
            judge.and_then(|j| j.error.as_ref()),
        ])?;
        if n == 0 {
            skipped += 1;
        } else {
            features::insert(tx, tx.last_insert_rowid(), p)?;
        }
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "pairs already stored for their rollout were skipped"
        );
    }
    Ok(())
}
