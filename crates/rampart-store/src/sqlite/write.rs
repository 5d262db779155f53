//! Batch inserts of events and pairs (with their features), inside the caller's transaction.
//!
//! Invariant: rows already stored are skipped (same request id; same rollout and request id for
//! pairs), counted and logged, so a retried batch is harmless.

use std::sync::OnceLock;

use rampart_core::record::{Pair, RequestEvent};
use rusqlite::{Statement, ToSql, Transaction, params};

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

/// Events one INSERT statement writes. A statement's fixed cost (starting it, halting it,
/// opening its three cursors, rusqlite's reset) is shared by this many rows: about a fifth of
/// an event's write when each row had its own statement (`bench/callgrind.sh`).
const EVENTS_PER_STATEMENT: usize = 16;
const EVENT_PARAMS: usize = 21;

/// [`events_sql`] of [`EVENTS_PER_STATEMENT`] events and of one, each built once (the text is
/// the statement cache's key, looked up for every batch).
static GROUP_SQL: OnceLock<String> = OnceLock::new();
static ONE_SQL: OnceLock<String> = OnceLock::new();

/// `INSERT OR IGNORE` of `rows` events, their parameters numbered row after row.
fn events_sql(rows: usize) -> String {
    let values = (0..rows)
        .map(|r| {
            let row = (1..=EVENT_PARAMS)
                .map(|c| format!("?{}", r * EVENT_PARAMS + c))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT OR IGNORE INTO events ({EVENT_COLUMNS}) VALUES {values}")
}

/// Binds `e` as the `row`-th event of a statement from [`events_sql`]. `before` is the event
/// the same row held in the statement's previous execution, whose values are still bound
/// (SQLite keeps bindings across executions): the texts `e` shares with it (route, rollout,
/// stage, variant, …: mostly the same from one event to the next) are not bound again, since
/// SQLite copies every text bound, a third of an event's write (`bench/callgrind.sh`).
fn bind_event(
    stmt: &mut Statement<'_>,
    row: usize,
    e: &RequestEvent,
    before: Option<&RequestEvent>,
) -> Result<()> {
    let at = row * EVENT_PARAMS;
    let values: [&dyn ToSql; EVENT_PARAMS] = [
        &e.request_id,
        &e.ts_ms,
        &e.route,
        &e.rollout,
        &e.stage,
        &e.variant,
        &e.cohort.as_str(),
        &e.key_hash,
        &e.tenant,
        &e.class,
        &e.status,
        &e.outcome.as_str(),
        &e.latency_ms,
        &e.ttft_ms,
        &e.prompt_tokens,
        &e.completion_tokens,
        &e.cost_usd,
        &e.refusal,
        &e.streamed,
        &e.finish_reason,
        &e.output_text,
    ];
    let bound = before.map(|b| {
        [
            false,
            false,
            b.route == e.route,
            b.rollout == e.rollout,
            b.stage == e.stage,
            b.variant == e.variant,
            b.cohort == e.cohort,
            b.key_hash == e.key_hash,
            b.tenant == e.tenant,
            b.class == e.class,
            false,
            b.outcome == e.outcome,
            false,
            false,
            false,
            false,
            false,
            false,
            false,
            b.finish_reason == e.finish_reason,
            b.output_text == e.output_text,
        ]
    });
    for (i, v) in values.into_iter().enumerate() {
        if !bound.is_some_and(|b| b[i]) {
            stmt.raw_bind_parameter(at + i + 1, v)?;
        }
    }
    Ok(())
}

pub(super) fn insert_events_tx(tx: &Transaction<'_>, events: &[RequestEvent]) -> Result<()> {
    let mut skipped = 0usize;
    let mut groups = events.chunks_exact(EVENTS_PER_STATEMENT);
    if groups.len() > 0 {
        let sql = GROUP_SQL.get_or_init(|| events_sql(EVENTS_PER_STATEMENT));
        let mut stmt = tx.prepare_cached(sql)?;
        let mut before: Option<&[RequestEvent]> = None;
        for (i, group) in groups.by_ref().enumerate() {
            for (row, e) in group.iter().enumerate() {
                pace(i * EVENTS_PER_STATEMENT + row);
                bind_event(&mut stmt, row, e, before.and_then(|b| b.get(row)))?;
            }
            skipped += EVENTS_PER_STATEMENT.saturating_sub(stmt.raw_execute()?);
            before = Some(group);
        }
    }
    let rest = groups.remainder();
    if !rest.is_empty() {
        let mut stmt = tx.prepare_cached(ONE_SQL.get_or_init(|| events_sql(1)))?;
        let mut before = None;
        for e in rest {
            bind_event(&mut stmt, 0, e, before)?;
            skipped += 1usize.saturating_sub(stmt.raw_execute()?);
            before = Some(e);
        }
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
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let placeholders = (1..=PAIR_HEAD + 2 * PAIR_SIDE + 8)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("INSERT OR IGNORE INTO pairs ({PAIR_COLUMNS}) VALUES ({placeholders})")
    });
    let mut stmt = tx.prepare_cached(sql)?;
    let mut features = features::insert_statement(tx)?;
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
            features::insert(&mut features, tx.last_insert_rowid(), p)?;
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
