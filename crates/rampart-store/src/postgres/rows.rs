//! Decoding rows into records: the column orders are the shared column lists of
//! [`crate::columns`] (the two schemas use the same names), read by position.

use rampart_core::compare::PairFeatures;
use rampart_core::compare::features::JudgeVerdicts;
use rampart_core::compare::judge::Verdict;
use rampart_core::record::{
    EditOutcome, Feedback, Outcome, Pair, PairJudgment, PairSide, RequestEvent, Thumbs,
};
use rampart_core::routing::Cohort;
use tokio_postgres::Row;

use crate::columns::{PAIR_COLUMN_COUNT, PAIR_HEAD, PAIR_SIDE};
use crate::error::{Result, StoreError};
use crate::sqlite::features::{SideNumbers, parse_equivalence, side_from_flags};
use crate::{AuditEntry, FlaggedPair, PairFlag};

fn corrupt(column: &'static str, value: impl ToString) -> StoreError {
    StoreError::Corrupt {
        column,
        value: value.to_string(),
    }
}

/// A non-negative bigint column as `u64`.
fn count(r: &Row, idx: usize, column: &'static str) -> Result<u64> {
    let v: i64 = r.try_get(idx)?;
    u64::try_from(v).map_err(|_| corrupt(column, v))
}

fn json(r: &Row, idx: usize) -> Result<Option<serde_json::Value>> {
    let text: Option<String> = r.try_get(idx)?;
    Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
}

fn verdict(r: &Row, idx: usize) -> Result<Option<Verdict>> {
    let text: Option<String> = r.try_get(idx)?;
    text.map(|t| match t.as_str() {
        "a" => Ok(Verdict::A),
        "b" => Ok(Verdict::B),
        "tie" => Ok(Verdict::Tie),
        _ => Err(corrupt("verdict", t)),
    })
    .transpose()
}

/// [`crate::columns::EVENT_COLUMNS`] from column 0.
pub(super) fn event(r: &Row) -> Result<RequestEvent> {
    let cohort: String = r.try_get(6)?;
    let outcome: String = r.try_get(11)?;
    let status: i32 = r.try_get(10)?;
    Ok(RequestEvent {
        request_id: r.try_get(0)?,
        ts_ms: r.try_get(1)?,
        route: r.try_get(2)?,
        rollout: r.try_get(3)?,
        stage: r.try_get(4)?,
        variant: r.try_get(5)?,
        cohort: Cohort::parse(&cohort).ok_or_else(|| corrupt("cohort", &cohort))?,
        key_hash: r.try_get(7)?,
        tenant: r.try_get(8)?,
        class: r.try_get(9)?,
        status: u16::try_from(status).map_err(|_| corrupt("status", status))?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
        latency_ms: r.try_get(12)?,
        ttft_ms: r.try_get(13)?,
        prompt_tokens: count(r, 14, "prompt_tokens")?,
        completion_tokens: count(r, 15, "completion_tokens")?,
        cost_usd: r.try_get(16)?,
        refusal: r.try_get(17)?,
        streamed: r.try_get(18)?,
        finish_reason: r.try_get(19)?,
        output_text: r.try_get(20)?,
    })
}

fn side(r: &Row, at: usize) -> Result<PairSide> {
    Ok(PairSide {
        variant: r.try_get(at)?,
        model: r.try_get(at + 1)?,
        prompt_version: r.try_get(at + 2)?,
        text: r.try_get(at + 3)?,
        tool_calls: json(r, at + 4)?,
        finish_reason: r.try_get(at + 5)?,
        prompt_tokens: count(r, at + 6, "prompt_tokens")?,
        completion_tokens: count(r, at + 7, "completion_tokens")?,
        latency_ms: r.try_get(at + 8)?,
        ttft_ms: r.try_get(at + 9)?,
        cost_usd: r.try_get(at + 10)?,
        refusal: r.try_get(at + 11)?,
        error: r.try_get(at + 12)?,
        cached: r.try_get(at + 13)?,
    })
}

/// The judge columns starting at `at`: `None` when the pair was not judged.
fn judgment(r: &Row, at: usize) -> Result<Option<PairJudgment>> {
    let Some(model) = r.try_get::<_, Option<String>>(at)? else {
        return Ok(None);
    };
    Ok(Some(PairJudgment {
        model,
        first: verdict(r, at + 1)?,
        second: verdict(r, at + 2)?,
        cost_usd: r.try_get(at + 3)?,
        error: r.try_get(at + 4)?,
    }))
}

/// [`crate::columns::PAIR_COLUMNS`] starting at column `at`.
pub(super) fn pair(r: &Row, at: usize) -> Result<Pair> {
    let tail = at + PAIR_HEAD + 2 * PAIR_SIDE;
    Ok(Pair {
        request_id: r.try_get(at)?,
        ts_ms: r.try_get(at + 1)?,
        route: r.try_get(at + 2)?,
        rollout: r.try_get(at + 3)?,
        stage: r.try_get(at + 4)?,
        key_hash: r.try_get(at + 5)?,
        tenant: r.try_get(at + 6)?,
        class: r.try_get(at + 7)?,
        prompt: r.try_get(at + 8)?,
        prompt_hash: r.try_get(at + 9)?,
        baseline: side(r, at + PAIR_HEAD)?,
        candidate: side(r, at + PAIR_HEAD + PAIR_SIDE)?,
        tools: json(r, tail)?,
        response_format: json(r, tail + 1)?,
        embedding_similarity: r.try_get(tail + 2)?,
        judge: judgment(r, tail + 3)?,
        features: None,
    })
}

/// A row of [`crate::pair_query::page_sql`]: the pair's id, the pair, its flags.
pub(super) fn flagged_pair(r: &Row) -> Result<(i64, FlaggedPair)> {
    let mut flags = Vec::new();
    for (i, flag) in PairFlag::ALL.into_iter().enumerate() {
        if r.try_get::<_, i32>(1 + PAIR_COLUMN_COUNT + i)? != 0 {
            flags.push(flag);
        }
    }
    Ok((
        r.try_get(0)?,
        FlaggedPair {
            pair: pair(r, 1)?,
            flags,
        },
    ))
}

/// [`crate::columns::FEEDBACK_COLUMNS`] starting at column `at`.
pub(super) fn feedback(r: &Row, at: usize) -> Result<Feedback> {
    let thumbs: Option<String> = r.try_get(at + 2)?;
    let outcome: Option<String> = r.try_get(at + 3)?;
    let thumbs = match thumbs.as_deref() {
        None => None,
        Some("up") => Some(Thumbs::Up),
        Some("down") => Some(Thumbs::Down),
        Some(other) => return Err(corrupt("thumbs", other)),
    };
    let outcome = match outcome.as_deref() {
        None => None,
        Some("sent_unchanged") => Some(EditOutcome::SentUnchanged),
        Some("edited") => Some(EditOutcome::Edited),
        Some("rejected") => Some(EditOutcome::Rejected),
        Some(other) => return Err(corrupt("outcome", other)),
    };
    Ok(Feedback {
        request_id: r.try_get(at)?,
        ts_ms: r.try_get(at + 1)?,
        thumbs,
        outcome,
        final_text: r.try_get(at + 4)?,
    })
}

/// [`crate::columns::AUDIT_COLUMNS`] from column 0.
pub(super) fn audit(r: &Row) -> Result<AuditEntry> {
    let details: String = r.try_get(7)?;
    Ok(AuditEntry {
        rollout: r.try_get(0)?,
        ts_ms: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        from_state: r.try_get(4)?,
        to_state: r.try_get(5)?,
        reason: r.try_get(6)?,
        details: serde_json::from_str(&details)?,
    })
}

fn feature_side(r: &Row, at: usize) -> Result<rampart_core::compare::SideFeatures> {
    let flags: i32 = r.try_get(at)?;
    let flags = u32::try_from(flags).map_err(|_| corrupt("flags", flags))?;
    Ok(side_from_flags(
        flags,
        SideNumbers {
            chars: count(r, at + 1, "chars")?,
            tokens: count(r, at + 2, "tokens")?,
            completion_tokens: count(r, at + 3, "completion_tokens")?,
            latency_ms: r.try_get(at + 5)?,
            cost_usd: r.try_get(at + 6)?,
        },
        r.try_get(at + 4)?,
    ))
}

/// [`crate::sqlite::features::FEATURE_COLUMNS`] starting at column `at`; excerpts left empty.
pub(super) fn features(r: &Row, at: usize) -> Result<PairFeatures> {
    const HEAD: usize = 4;
    const SIDE: usize = 7;
    let tail = at + HEAD + 2 * SIDE;
    let equivalence: Option<String> = r.try_get(tail + 4)?;
    Ok(PairFeatures {
        request_id: r.try_get(at)?,
        ts_ms: r.try_get(at + 1)?,
        class: r.try_get(at + 2)?,
        tenant: r.try_get(at + 3)?,
        baseline: feature_side(r, at + HEAD)?,
        candidate: feature_side(r, at + HEAD + SIDE)?,
        exact_match: r.try_get(tail)?,
        normalized_match: r.try_get(tail + 1)?,
        similarity: r.try_get(tail + 2)?,
        embedding_similarity: r.try_get(tail + 3)?,
        equivalence: equivalence
            .map(|e| parse_equivalence(&e).ok_or_else(|| corrupt("equivalence", &e)))
            .transpose()?,
        length_ratio: r.try_get(tail + 5)?,
        baseline_excerpt: String::new(),
        candidate_excerpt: String::new(),
        judge: match r.try_get::<_, Option<bool>>(tail + 8)? {
            None => None,
            Some(failed) => Some(JudgeVerdicts {
                first: verdict(r, tail + 6)?,
                second: verdict(r, tail + 7)?,
                failed,
            }),
        },
    })
}
