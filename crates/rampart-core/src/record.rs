//! The records rampart stores: one per request, per feedback, per shadow pair.
//!
//! These are plain data shared by the gateway (which produces them) and the store (which
//! persists them). Timestamps are Unix milliseconds, supplied by the caller.

use serde::{Deserialize, Serialize};

use crate::compare::PairFeatures;
use crate::compare::judge::Verdict;
use crate::routing::Cohort;

/// How a request ended, as counted in `rampart_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The provider answered 2xx.
    Ok,
    /// The provider answered with an error status, or its answer could not be read.
    Error,
    /// The provider did not answer in time.
    Timeout,
    /// The client went away before the answer was complete.
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Metadata of one served request. The routing key itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEvent {
    pub request_id: String,
    /// When the request arrived (Unix ms).
    pub ts_ms: i64,
    pub route: String,
    pub rollout: Option<String>,
    pub stage: Option<String>,
    pub variant: String,
    pub cohort: Cohort,
    pub key_hash: Option<String>,
    pub tenant: Option<String>,
    pub class: Option<String>,
    /// HTTP status returned to the client.
    pub status: u16,
    pub outcome: Outcome,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub refusal: bool,
    pub streamed: bool,
    pub finish_reason: Option<String>,
    /// The text served to the user, kept only when `store.capture_text` is on.
    pub output_text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Thumbs {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditOutcome {
    SentUnchanged,
    Edited,
    Rejected,
}

/// A user's verdict on one served answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub request_id: String,
    pub ts_ms: i64,
    pub thumbs: Option<Thumbs>,
    pub outcome: Option<EditOutcome>,
    pub final_text: Option<String>,
}

/// One side (baseline or candidate) of a shadow pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairSide {
    pub variant: String,
    pub model: String,
    pub prompt_version: Option<String>,
    /// The answer's text; `None` when text capture is off or the call failed.
    pub text: Option<String>,
    /// Tool calls as the provider returned them (OpenAI shape), if any.
    pub tool_calls: Option<serde_json::Value>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub cost_usd: f64,
    pub refusal: bool,
    /// `None` when the call succeeded; otherwise what went wrong (`timeout`, `status 500: …`).
    pub error: Option<String>,
    /// The answer came from the shadow response cache; leave it out of latency statistics.
    pub cached: bool,
}

impl PairSide {
    /// The answer's text, when the call succeeded and its text was captured.
    pub fn answered_text(&self) -> Option<&str> {
        self.text.as_deref().filter(|_| self.error.is_none())
    }
}

/// The baseline's and the candidate's answers to the same request, stored side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// The user request's id.
    pub request_id: String,
    pub ts_ms: i64,
    pub route: String,
    pub rollout: String,
    pub stage: String,
    pub key_hash: Option<String>,
    pub tenant: Option<String>,
    pub class: Option<String>,
    /// The prompt's messages as JSON text, or `None` when text capture is off.
    pub prompt: Option<String>,
    /// sha256 of the prompt's messages, always kept.
    pub prompt_hash: String,
    pub baseline: PairSide,
    pub candidate: PairSide,
    /// The request's `tools` and `response_format`, kept so the comparison can check tool calls
    /// against their schemas and JSON answers when JSON was asked for; `None` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<serde_json::Value>,
    /// Cosine similarity of the two answers' embeddings, when the rollout names an embeddings
    /// model (`rollouts.R.compare.embeddings`) and both sides answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_similarity: Option<f64>,
    /// The judge's verdicts, when the rollout has a judge and sampled this pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<PairJudgment>,
    /// The pair's features, when whoever built the pair already computed them
    /// ([`crate::compare::pair_features`]); a store computes them when this is `None`. Never
    /// serialized: stores keep features apart, and reading a pair back leaves this `None`.
    #[serde(skip)]
    pub features: Option<Box<PairFeatures>>,
}

/// What the judge (`rollouts.R.judge`) said about a pair: one verdict per ordering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairJudgment {
    /// The judging variant's model.
    pub model: String,
    /// With the baseline shown as A; `None` when the reply could not be parsed.
    pub first: Option<Verdict>,
    /// With the candidate shown as A.
    pub second: Option<Verdict>,
    /// Both calls together.
    pub cost_usd: f64,
    /// Why a call failed (timeout, provider error); the verdicts are then not used.
    pub error: Option<String>,
}
