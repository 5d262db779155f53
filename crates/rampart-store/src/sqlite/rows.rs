//! Decoding SQLite rows into records, by column position ([`crate::columns`] orders).

use rampart_core::compare::judge::Verdict;
use rampart_core::record::{
    EditOutcome, Feedback, Outcome, Pair, PairJudgment, PairSide, RequestEvent, Thumbs,
};
use rampart_core::routing::Cohort;
use rusqlite::Row;
use rusqlite::types::Type;

use crate::columns::{PAIR_COLUMN_COUNT, PAIR_HEAD, PAIR_SIDE};
use crate::error::StoreError;
use crate::{AuditEntry, FlaggedPair, PairFlag};

/// A decoding failure inside a row-mapping closure (which must return `rusqlite::Error`).
pub(super) fn bad_value(idx: usize, column: &'static str, value: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        Type::Text,
        Box::new(StoreError::Corrupt { column, value }),
    )
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

/// A row of [`crate::pair_query::page_sql`]: the pair's id, the pair, its flags.
pub(super) fn flagged_pair_from_row(r: &Row<'_>) -> rusqlite::Result<(i64, FlaggedPair)> {
    let mut flags = Vec::new();
    for (i, flag) in PairFlag::ALL.into_iter().enumerate() {
        if r.get::<_, i64>(1 + PAIR_COLUMN_COUNT + i)? != 0 {
            flags.push(flag);
        }
    }
    Ok((
        r.get(0)?,
        FlaggedPair {
            pair: pair_from_row(r, 1)?,
            flags,
        },
    ))
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
