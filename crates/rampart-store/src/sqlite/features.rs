//! The `pair_features` table: each pair's [`PairFeatures`], computed once when the pair is
//! stored, so a report over a million pairs reads short rows of numbers and never the texts.
//!
//! Invariants:
//! - Every row of `pairs` has exactly one row here (`pair_id = pairs.id`), written in the same
//!   transaction as the pair; migration 0002 computed the rows of pairs stored before it.
//! - The features are the pair's own (`Pair::features`, which the gateway computes in the
//!   shadow task so the work is spread over time instead of bunched in the writer's batches)
//!   or, when it carries none, computed here.
//! - A row holds everything [`PairFeatures`] holds except the excerpts, which come from the
//!   texts when a report shows a pair (see `PairStore::get_pair`).
//! - The flag bit layout ([`side_flags`]) is part of the schema: change it only with a migration
//!   that rebuilds the table.

use rampart_core::compare::features::JudgeVerdicts;
use rampart_core::compare::format::Markdown;
use rampart_core::compare::{Equivalence, PairFeatures, SideFeatures, pair_features};
use rampart_core::record::Pair;
use rusqlite::{CachedStatement, Row, Statement, Transaction, params};

use super::rows::{bad_value, pair_from_row, verdict_column};
use crate::columns::{PAIR_COLUMNS, verdict_str};
use crate::error::Result;

/// Columns read into a [`PairFeatures`], in [`features_from_row`]'s order.
pub(crate) const FEATURE_COLUMNS: &str = "request_id, ts_ms, class, tenant, \
     b_flags, b_chars, b_tokens, b_completion_tokens, b_opening, b_latency_ms, b_cost_usd, \
     c_flags, c_chars, c_tokens, c_completion_tokens, c_opening, c_latency_ms, c_cost_usd, \
     exact_match, normalized_match, similarity, embedding_similarity, equivalence, length_ratio, \
     judge_first, judge_second, judge_failed";
/// Columns per side in [`FEATURE_COLUMNS`], and where the first side starts.
const SIDE_COLUMNS: usize = 7;
const HEAD_COLUMNS: usize = 4;

// Bits of a side's flags.
const OK: u32 = 1;
const REFUSAL: u32 = 1 << 1;
pub(crate) const OK_BIT: u32 = OK;
pub(crate) const REFUSAL_BIT: u32 = REFUSAL;
const TRUNCATED: u32 = 1 << 2;
const CACHED: u32 = 1 << 3;
const TABLE: u32 = 1 << 4;
const BULLETS: u32 = 1 << 5;
const NUMBERED: u32 = 1 << 6;
const CODE: u32 = 1 << 7;
const FENCE_UNTERMINATED: u32 = 1 << 8;
const CITATION_NUMERIC: u32 = 1 << 9;
const CITATION_AUTHOR_YEAR: u32 = 1 << 10;
const CITATION_URL: u32 = 1 << 11;
/// `json_valid` is `Some` (measured), and its value.
const JSON_MEASURED: u32 = 1 << 12;
const JSON_VALID: u32 = 1 << 13;
/// `tool_calls_valid` is `Some`, and its value.
const TOOLS_MEASURED: u32 = 1 << 14;
const TOOLS_VALID: u32 = 1 << 15;
/// The bits of the format features the report tracks
/// ([`rampart_core::compare::aggregate::FORMAT_FEATURES`]): where two sides' flags differ in
/// one of these, the pair changed format (see [`crate::PairFlag::FormatChange`]).
pub(crate) const FORMAT_BITS: u32 = TABLE
    | BULLETS
    | NUMBERED
    | CODE
    | CITATION_NUMERIC
    | CITATION_AUTHOR_YEAR
    | CITATION_URL
    | JSON_MEASURED
    | JSON_VALID
    | TOOLS_MEASURED
    | TOOLS_VALID
    | TRUNCATED;

/// A side's yes/no features as one integer.
pub(crate) fn side_flags(s: &SideFeatures) -> u32 {
    let m = &s.markdown;
    let bit = |on: bool, b: u32| if on { b } else { 0 };
    let opt = |v: Option<bool>, measured: u32, valid: u32| match v {
        Some(v) => measured | bit(v, valid),
        None => 0,
    };
    bit(s.ok, OK)
        | bit(s.refusal, REFUSAL)
        | bit(s.truncated, TRUNCATED)
        | bit(s.cached, CACHED)
        | bit(m.table, TABLE)
        | bit(m.bullets, BULLETS)
        | bit(m.numbered, NUMBERED)
        | bit(m.code, CODE)
        | bit(m.code_fence_unterminated, FENCE_UNTERMINATED)
        | bit(m.citation_numeric, CITATION_NUMERIC)
        | bit(m.citation_author_year, CITATION_AUTHOR_YEAR)
        | bit(m.citation_url, CITATION_URL)
        | opt(s.json_valid, JSON_MEASURED, JSON_VALID)
        | opt(s.tool_calls_valid, TOOLS_MEASURED, TOOLS_VALID)
}

pub(crate) fn equivalence_str(e: Equivalence) -> &'static str {
    match e {
        Equivalence::Identical => "identical",
        Equivalence::Equivalent => "equivalent",
        Equivalence::MateriallyDifferent => "materially_different",
    }
}

pub(crate) fn parse_equivalence(s: &str) -> Option<Equivalence> {
    Some(match s {
        "identical" => Equivalence::Identical,
        "equivalent" => Equivalence::Equivalent,
        "materially_different" => Equivalence::MateriallyDifferent,
        _ => return None,
    })
}

/// Stores the features of the pair just stored as row `pair_id`: those it carries, or computed
/// here.
/// The statement [`insert`] runs, prepared once per batch (the statement cache hashes and
/// compares the whole SQL text on every look-up).
pub(super) fn insert_statement<'t>(tx: &'t Transaction<'_>) -> Result<CachedStatement<'t>> {
    Ok(tx.prepare_cached(
        "INSERT INTO pair_features (pair_id, rollout, stage, request_id, ts_ms, class, tenant, \
         b_flags, b_chars, b_tokens, b_completion_tokens, b_opening, b_latency_ms, b_cost_usd, \
         c_flags, c_chars, c_tokens, c_completion_tokens, c_opening, c_latency_ms, c_cost_usd, \
         exact_match, normalized_match, similarity, embedding_similarity, equivalence, \
         length_ratio, judge_first, judge_second, judge_failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
         ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, \
         ?25, ?26, ?27, ?28, ?29, ?30)",
    )?)
}

pub(super) fn insert(stmt: &mut Statement<'_>, pair_id: i64, pair: &Pair) -> Result<()> {
    let computed;
    let f = match &pair.features {
        Some(f) => f.as_ref(),
        None => {
            computed = pair_features(pair);
            &computed
        }
    };
    let (b, c) = (&f.baseline, &f.candidate);
    stmt.execute(params![
        pair_id,
        pair.rollout,
        pair.stage,
        f.request_id,
        f.ts_ms,
        f.class,
        f.tenant,
        side_flags(b),
        b.chars,
        b.tokens,
        b.completion_tokens,
        b.opening,
        b.latency_ms,
        b.cost_usd,
        side_flags(c),
        c.chars,
        c.tokens,
        c.completion_tokens,
        c.opening,
        c.latency_ms,
        c.cost_usd,
        f.exact_match,
        f.normalized_match,
        f.similarity,
        f.embedding_similarity,
        f.equivalence.map(equivalence_str),
        f.length_ratio,
        f.judge.and_then(|j| j.first).map(verdict_str),
        f.judge.and_then(|j| j.second).map(verdict_str),
        f.judge.map(|j| j.failed),
    ])?;
    Ok(())
}

fn side_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<SideFeatures> {
    Ok(side_from_flags(
        r.get(at)?,
        SideNumbers {
            chars: r.get(at + 1)?,
            tokens: r.get(at + 2)?,
            completion_tokens: r.get(at + 3)?,
            latency_ms: r.get(at + 5)?,
            cost_usd: r.get(at + 6)?,
        },
        r.get(at + 4)?,
    ))
}

/// A side's stored numbers, beside its flags.
pub(crate) struct SideNumbers {
    pub chars: u64,
    pub tokens: u64,
    pub completion_tokens: u64,
    pub latency_ms: f64,
    pub cost_usd: f64,
}

/// A side's features from its flags (see [`side_flags`]), numbers and opening.
pub(crate) fn side_from_flags(flags: u32, n: SideNumbers, opening: Option<String>) -> SideFeatures {
    let on = |b: u32| flags & b != 0;
    let opt = |measured: u32, valid: u32| on(measured).then(|| on(valid));
    SideFeatures {
        ok: on(OK),
        chars: n.chars,
        tokens: n.tokens,
        completion_tokens: n.completion_tokens,
        refusal: on(REFUSAL),
        opening,
        markdown: Markdown {
            table: on(TABLE),
            bullets: on(BULLETS),
            numbered: on(NUMBERED),
            code: on(CODE),
            code_fence_unterminated: on(FENCE_UNTERMINATED),
            citation_numeric: on(CITATION_NUMERIC),
            citation_author_year: on(CITATION_AUTHOR_YEAR),
            citation_url: on(CITATION_URL),
        },
        json_valid: opt(JSON_MEASURED, JSON_VALID),
        tool_calls_valid: opt(TOOLS_MEASURED, TOOLS_VALID),
        truncated: on(TRUNCATED),
        latency_ms: n.latency_ms,
        cached: on(CACHED),
        cost_usd: n.cost_usd,
    }
}

/// Reads [`FEATURE_COLUMNS`] starting at column `at`; the excerpts are left empty.
pub(super) fn features_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<PairFeatures> {
    let tail = at + HEAD_COLUMNS + 2 * SIDE_COLUMNS;
    let equivalence: Option<String> = r.get(tail + 4)?;
    Ok(PairFeatures {
        request_id: r.get(at)?,
        ts_ms: r.get(at + 1)?,
        class: r.get(at + 2)?,
        tenant: r.get(at + 3)?,
        baseline: side_from_row(r, at + HEAD_COLUMNS)?,
        candidate: side_from_row(r, at + HEAD_COLUMNS + SIDE_COLUMNS)?,
        exact_match: r.get(tail)?,
        normalized_match: r.get(tail + 1)?,
        similarity: r.get(tail + 2)?,
        embedding_similarity: r.get(tail + 3)?,
        equivalence: match equivalence {
            Some(e) => {
                Some(parse_equivalence(&e).ok_or_else(|| bad_value(tail + 4, "equivalence", e))?)
            }
            None => None,
        },
        length_ratio: r.get(tail + 5)?,
        baseline_excerpt: String::new(),
        candidate_excerpt: String::new(),
        judge: match r.get::<_, Option<bool>>(tail + 8)? {
            None => None,
            Some(failed) => Some(JudgeVerdicts {
                first: verdict_column(r, tail + 6)?,
                second: verdict_column(r, tail + 7)?,
                failed,
            }),
        },
    })
}

/// Migration 0002's data step: the features of every pair stored before it, page by page.
pub(super) fn backfill(tx: &Transaction<'_>) -> Result<()> {
    let mut after = i64::MIN;
    let mut done = 0u64;
    loop {
        let page: Vec<(i64, Pair)> = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT id, {} FROM pairs WHERE id > ?1 ORDER BY id LIMIT 1000",
                PAIR_COLUMNS
            ))?;
            stmt.query_map([after], |r| Ok((r.get(0)?, pair_from_row(r, 1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let Some((last, _)) = page.last() else { break };
        after = *last;
        let mut stmt = insert_statement(tx)?;
        for (id, pair) in &page {
            insert(&mut stmt, *id, pair)?;
        }
        done += page.len() as u64;
    }
    if done > 0 {
        tracing::info!(
            pairs = done,
            "computed the features of already stored pairs"
        );
    }
    Ok(())
}
