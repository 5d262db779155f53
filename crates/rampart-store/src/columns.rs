//! What both backends' schemas share: the column lists of each record, in the order the row
//! decoders read them, and the stored spellings of enum values.
//!
//! Invariant: a list here names the same columns, with the same meaning, in SQLite's and in
//! PostgreSQL's schema; a column added to one backend's table is added to the other's too.

use rampart_core::compare::judge::Verdict;
use rampart_core::record::{EditOutcome, Thumbs};

pub(crate) const EVENT_COLUMNS: &str = "request_id, ts_ms, route, rollout, stage, variant, cohort, key_hash, \
     tenant, class, status, outcome, latency_ms, ttft_ms, prompt_tokens, completion_tokens, \
     cost_usd, refusal, streamed, finish_reason, output_text";

/// [`EVENT_COLUMNS`] with the output text read as NULL (for aggregate reads of many events).
pub(crate) const EVENT_COLUMNS_NO_TEXT: &str = "request_id, ts_ms, route, rollout, stage, variant, cohort, \
     key_hash, tenant, class, status, outcome, latency_ms, ttft_ms, prompt_tokens, \
     completion_tokens, cost_usd, refusal, streamed, finish_reason, CAST(NULL AS TEXT)";

pub(crate) const PAIR_COLUMNS: &str = "request_id, ts_ms, route, rollout, stage, key_hash, tenant, class, \
     prompt, prompt_hash, \
     b_variant, b_model, b_prompt_version, b_text, b_tool_calls, b_finish_reason, \
     b_prompt_tokens, b_completion_tokens, b_latency_ms, b_ttft_ms, b_cost_usd, b_refusal, \
     b_error, b_cached, \
     c_variant, c_model, c_prompt_version, c_text, c_tool_calls, c_finish_reason, \
     c_prompt_tokens, c_completion_tokens, c_latency_ms, c_ttft_ms, c_cost_usd, c_refusal, \
     c_error, c_cached, tools, response_format, embedding_similarity, \
     judge_model, judge_first, judge_second, judge_cost_usd, judge_error";
/// Columns before the first side in [`PAIR_COLUMNS`], and columns per side.
pub(crate) const PAIR_HEAD: usize = 10;
pub(crate) const PAIR_SIDE: usize = 14;
/// Columns in [`PAIR_COLUMNS`].
pub(crate) const PAIR_COLUMN_COUNT: usize = PAIR_HEAD + 2 * PAIR_SIDE + 8;

pub(crate) const FEEDBACK_COLUMNS: &str = "request_id, ts_ms, thumbs, outcome, final_text";
/// [`EVENT_COLUMNS`] of `e` then [`FEEDBACK_COLUMNS`] of `f`, for the events–feedback join.
pub(crate) const EVENT_FEEDBACK_COLUMNS: &str = "e.request_id, e.ts_ms, e.route, e.rollout, e.stage, \
     e.variant, e.cohort, e.key_hash, e.tenant, e.class, e.status, e.outcome, e.latency_ms, \
     e.ttft_ms, e.prompt_tokens, e.completion_tokens, e.cost_usd, e.refusal, e.streamed, \
     e.finish_reason, e.output_text, \
     f.request_id, f.ts_ms, f.thumbs, f.outcome, f.final_text";
/// Columns of an event in [`EVENT_FEEDBACK_COLUMNS`].
pub(crate) const EVENT_COLUMN_COUNT: usize = 21;

pub(crate) const AUDIT_COLUMNS: &str =
    "rollout, ts_ms, actor, action, from_state, to_state, reason, details";

pub(crate) fn thumbs_str(t: Thumbs) -> &'static str {
    match t {
        Thumbs::Up => "up",
        Thumbs::Down => "down",
    }
}

pub(crate) fn edit_outcome_str(o: EditOutcome) -> &'static str {
    match o {
        EditOutcome::SentUnchanged => "sent_unchanged",
        EditOutcome::Edited => "edited",
        EditOutcome::Rejected => "rejected",
    }
}

pub(crate) fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::A => "a",
        Verdict::B => "b",
        Verdict::Tie => "tie",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pair_column_count_is_the_lists_length() {
        assert_eq!(
            super::PAIR_COLUMNS.split(',').count(),
            super::PAIR_COLUMN_COUNT
        );
    }
}
