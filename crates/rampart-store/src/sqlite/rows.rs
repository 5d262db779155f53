//! Row mapping for the SQLite store: the column lists every statement selects or inserts, and
//! the functions that read a row into a record (by column position, from the list's order; the
//! tests below count each list against its constants and the schema, so a column added in one
//! place and not the other fails a test rather than shifting every read).

use rampart_core::compare::judge::Verdict;
use rampart_core::record::{
    EditOutcome, Feedback, Outcome, Pair, PairJudgment, PairSide, RequestEvent, Thumbs,
};
use rampart_core::routing::Cohort;
use rusqlite::Row;
use rusqlite::types::Type;

use crate::AuditEntry;
use crate::error::{Result, StoreError};

pub(super) const EVENT_COLUMNS: &str = "request_id, ts_ms, route, rollout, stage, variant, cohort, key_hash, \
     tenant, class, status, outcome, latency_ms, ttft_ms, prompt_tokens, completion_tokens, \
     cost_usd, refusal, streamed, finish_reason, output_text";

pub(super) const PAIR_COLUMNS: &str = "request_id, ts_ms, route, rollout, stage, key_hash, tenant, class, \
     prompt, prompt_hash, \
     b_variant, b_model, b_prompt_version, b_text, b_tool_calls, b_finish_reason, \
     b_prompt_tokens, b_completion_tokens, b_latency_ms, b_ttft_ms, b_cost_usd, b_refusal, \
     b_error, b_cached, \
     c_variant, c_model, c_prompt_version, c_text, c_tool_calls, c_finish_reason, \
     c_prompt_tokens, c_completion_tokens, c_latency_ms, c_ttft_ms, c_cost_usd, c_refusal, \
     c_error, c_cached, tools, response_format, embedding_similarity, \
     judge_model, judge_first, judge_second, judge_cost_usd, judge_error";
/// Columns before the first side in [`PAIR_COLUMNS`], columns per side, and columns after
/// the two sides (a test checks them against the list and the schema).
pub(super) const PAIR_HEAD: usize = 10;
pub(super) const PAIR_SIDE: usize = 14;
pub(super) const PAIR_TAIL: usize = 8;
/// Every column of [`PAIR_COLUMNS`] (the insert's parameter count).
pub(super) const PAIR_COLUMN_COUNT: usize = PAIR_HEAD + 2 * PAIR_SIDE + PAIR_TAIL;

pub(super) const FEEDBACK_COLUMNS: &str = "request_id, ts_ms, thumbs, outcome, final_text";
/// [`EVENT_COLUMNS`] of `e` then [`FEEDBACK_COLUMNS`] of `f`, for the events–feedback join.
pub(super) const EVENT_FEEDBACK_COLUMNS: &str = "e.request_id, e.ts_ms, e.route, e.rollout, e.stage, \
     e.variant, e.cohort, e.key_hash, e.tenant, e.class, e.status, e.outcome, e.latency_ms, \
     e.ttft_ms, e.prompt_tokens, e.completion_tokens, e.cost_usd, e.refusal, e.streamed, \
     e.finish_reason, e.output_text, \
     f.request_id, f.ts_ms, f.thumbs, f.outcome, f.final_text";
/// Columns of an event in [`EVENT_FEEDBACK_COLUMNS`].
pub(super) const EVENT_COLUMN_COUNT: usize = 21;

pub(super) const AUDIT_COLUMNS: &str =
    "rollout, ts_ms, actor, action, from_state, to_state, reason, details";

pub(super) fn thumbs_str(t: Thumbs) -> &'static str {
    match t {
        Thumbs::Up => "up",
        Thumbs::Down => "down",
    }
}

pub(super) fn edit_outcome_str(o: EditOutcome) -> &'static str {
    match o {
        EditOutcome::SentUnchanged => "sent_unchanged",
        EditOutcome::Edited => "edited",
        EditOutcome::Rejected => "rejected",
    }
}

/// A decoding failure inside a row-mapping closure (which must return `rusqlite::Error`).
pub(super) fn bad_value(idx: usize, column: &'static str, value: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        Type::Text,
        Box::new(StoreError::Corrupt { column, value }),
    )
}

pub(super) fn json_text(v: &Option<serde_json::Value>) -> Result<Option<String>> {
    Ok(match v {
        Some(v) => Some(serde_json::to_string(v)?),
        None => None,
    })
}

pub(super) fn parse_json(idx: usize, text: &str) -> rusqlite::Result<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

pub(super) fn event_from_row(r: &Row<'_>) -> rusqlite::Result<RequestEvent> {
    let cohort: String = r.get(6)?;
    let outcome: String = r.get(11)?;
    Ok(RequestEvent {
        request_id: r.get(0)?,
        ts_ms: r.get(1)?,
        route: r.get(2)?,
        rollout: r.get(3)?,
        stage: r.get(4)?,
        variant: r.get(5)?,
        cohort: Cohort::parse(&cohort).ok_or_else(|| bad_value(6, "cohort", cohort.clone()))?,
        key_hash: r.get(7)?,
        tenant: r.get(8)?,
        class: r.get(9)?,
        status: r.get(10)?,
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| bad_value(11, "outcome", outcome.clone()))?,
        latency_ms: r.get(12)?,
        ttft_ms: r.get(13)?,
        prompt_tokens: r.get(14)?,
        completion_tokens: r.get(15)?,
        cost_usd: r.get(16)?,
        refusal: r.get(17)?,
        streamed: r.get(18)?,
        finish_reason: r.get(19)?,
        output_text: r.get(20)?,
    })
}

/// The judge columns starting at `at`: `None` when the pair was not judged.
pub(super) fn judgment_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<PairJudgment>> {
    let Some(model) = r.get::<_, Option<String>>(at)? else {
        return Ok(None);
    };
    Ok(Some(PairJudgment {
        model,
        first: verdict_column(r, at + 1)?,
        second: verdict_column(r, at + 2)?,
        cost_usd: r.get(at + 3)?,
        error: r.get(at + 4)?,
    }))
}

pub(super) fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::A => "a",
        Verdict::B => "b",
        Verdict::Tie => "tie",
    }
}

/// A nullable verdict column (`a`, `b`, `tie`).
pub(super) fn verdict_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Verdict>> {
    let Some(text) = r.get::<_, Option<String>>(idx)? else {
        return Ok(None);
    };
    Ok(Some(match text.as_str() {
        "a" => Verdict::A,
        "b" => Verdict::B,
        "tie" => Verdict::Tie,
        _ => return Err(bad_value(idx, "verdict", text)),
    }))
}

/// A nullable JSON text column.
pub(super) fn json_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = r.get(idx)?;
    text.map(|t| parse_json(idx, &t)).transpose()
}

pub(super) fn side_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<PairSide> {
    Ok(PairSide {
        variant: r.get(at)?,
        model: r.get(at + 1)?,
        prompt_version: r.get(at + 2)?,
        text: r.get(at + 3)?,
        tool_calls: json_column(r, at + 4)?,
        finish_reason: r.get(at + 5)?,
        prompt_tokens: r.get(at + 6)?,
        completion_tokens: r.get(at + 7)?,
        latency_ms: r.get(at + 8)?,
        ttft_ms: r.get(at + 9)?,
        cost_usd: r.get(at + 10)?,
        refusal: r.get(at + 11)?,
        error: r.get(at + 12)?,
        cached: r.get(at + 13)?,
    })
}

/// Reads [`PAIR_COLUMNS`] starting at column `at`.
pub(super) fn pair_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Pair> {
    let tail = at + PAIR_HEAD + 2 * PAIR_SIDE;
    Ok(Pair {
        request_id: r.get(at)?,
        ts_ms: r.get(at + 1)?,
        route: r.get(at + 2)?,
        rollout: r.get(at + 3)?,
        stage: r.get(at + 4)?,
        key_hash: r.get(at + 5)?,
        tenant: r.get(at + 6)?,
        class: r.get(at + 7)?,
        prompt: r.get(at + 8)?,
        prompt_hash: r.get(at + 9)?,
        baseline: side_from_row(r, at + PAIR_HEAD)?,
        candidate: side_from_row(r, at + PAIR_HEAD + PAIR_SIDE)?,
        tools: json_column(r, tail)?,
        response_format: json_column(r, tail + 1)?,
        embedding_similarity: r.get(tail + 2)?,
        judge: judgment_from_row(r, tail + 3)?,
        features: None,
    })
}

/// Reads [`FEEDBACK_COLUMNS`] starting at column `at`.
pub(super) fn feedback_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Feedback> {
    let thumbs: Option<String> = r.get(at + 2)?;
    let outcome: Option<String> = r.get(at + 3)?;
    let thumbs = match thumbs.as_deref() {
        None => None,
        Some("up") => Some(Thumbs::Up),
        Some("down") => Some(Thumbs::Down),
        Some(other) => return Err(bad_value(at + 2, "thumbs", other.to_owned())),
    };
    let outcome = match outcome.as_deref() {
        None => None,
        Some("sent_unchanged") => Some(EditOutcome::SentUnchanged),
        Some("edited") => Some(EditOutcome::Edited),
        Some("rejected") => Some(EditOutcome::Rejected),
        Some(other) => return Err(bad_value(at + 3, "outcome", other.to_owned())),
    };
    Ok(Feedback {
        request_id: r.get(at)?,
        ts_ms: r.get(at + 1)?,
        thumbs,
        outcome,
        final_text: r.get(at + 4)?,
    })
}

pub(super) fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let details: String = r.get(7)?;
    Ok(AuditEntry {
        rollout: r.get(0)?,
        ts_ms: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        from_state: r.get(4)?,
        to_state: r.get(5)?,
        reason: r.get(6)?,
        details: parse_json(7, &details)?,
    })
}

pub(super) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

// ---- writes, inside a transaction ----------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn count(list: &str) -> usize {
        list.split(',').filter(|c| !c.trim().is_empty()).count()
    }

    #[test]
    fn column_lists_match_their_constants() {
        assert_eq!(count(PAIR_COLUMNS), PAIR_COLUMN_COUNT);
        let names: Vec<&str> = PAIR_COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(names[PAIR_HEAD], "b_variant");
        assert_eq!(names[PAIR_HEAD + PAIR_SIDE], "c_variant");
        assert_eq!(
            names.iter().filter(|n| n.starts_with("b_")).count(),
            PAIR_SIDE
        );
        assert_eq!(
            names.iter().filter(|n| n.starts_with("c_")).count(),
            PAIR_SIDE
        );
        assert_eq!(count(EVENT_COLUMNS), EVENT_COLUMN_COUNT);
        // The join lists the event's columns, then the feedback's, in the same order.
        let joined: Vec<String> = EVENT_COLUMNS
            .split(',')
            .map(|c| format!("e.{}", c.trim()))
            .chain(
                FEEDBACK_COLUMNS
                    .split(',')
                    .map(|c| format!("f.{}", c.trim())),
            )
            .collect();
        let listed: Vec<&str> = EVENT_FEEDBACK_COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(listed, joined);
    }

    /// Every column list names real columns of the migrated schema, as many as its constant
    /// says (with `column_lists_match_their_constants` above: a column added to the table
    /// and the list but not to the reader, or the other way round, fails here).
    #[test]
    fn column_lists_match_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(&dir.path().join("c.db")).unwrap();
        let conn = store.write_conn();
        let columns = |sql: &str| conn.prepare(sql).unwrap().column_count();
        assert_eq!(
            columns(&format!("SELECT {PAIR_COLUMNS} FROM pairs")),
            PAIR_COLUMN_COUNT
        );
        assert_eq!(
            columns(&format!("SELECT {EVENT_COLUMNS} FROM events")),
            EVENT_COLUMN_COUNT
        );
        let insert = conn
            .prepare(&format!(
                "INSERT INTO pairs ({PAIR_COLUMNS}) VALUES ({})",
                (1..=PAIR_COLUMN_COUNT)
                    .map(|i| format!("?{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .unwrap();
        assert_eq!(insert.parameter_count(), PAIR_COLUMN_COUNT);
    }
}
