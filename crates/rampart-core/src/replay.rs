//! Offline replay (`rampart replay`): what a dataset line is, how a captured pair becomes a
//! request again, and the verdict over the replayed pairs. Pure; the gateway's
//! `rampart_gateway::replay` makes the calls and stores the pairs.
//!
//! A dataset line is one OpenAI chat-completions request as a JSON object, optionally with
//! three more keys that are taken out before the request is sent: `class` (the prompt class of
//! per-class breakdowns, as the `x-rampart-class` header), `tenant` and `routing_key`. `model`
//! may be left out (it is the rollout's route). A line is checked exactly as the gateway checks
//! a client's body ([`ChatRequest::parse`] with the configured [`Limits`]).
//!
//! The verdict ([`verdict`]) is the rollout's shadow gates that need neither a clock nor live
//! traffic: `min_pairs` and the comparison engine's gates (`shadow_equivalence`,
//! `shadow_refusals`, `shadow_win_rate` when configured), with the thresholds of the rollout's
//! first shadow stage ([`gate_stage`]). `min_duration` and the live guardrails do not apply
//! offline.

use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::compare::report::{ComparisonReport, shadow_gate_input};
use crate::config::{RolloutConfig, StageConfig};
use crate::record::Pair;
use crate::request::{ChatRequest, Limits};
use crate::rollout::gates::{GateOutcome, evidence_gates, is_shadow};
use crate::rollout::observations::PairedCounts;

/// Keys of a dataset line that are rampart's, not the request's.
pub const META_KEYS: [&str; 3] = ["class", "tenant", "routing_key"];

/// Stage names of replayed pairs start with this (`offline-<run>`).
pub const OFFLINE_STAGE_PREFIX: &str = "offline-";

/// One request to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayItem {
    pub request: ChatRequest,
    pub class: Option<String>,
    pub tenant: Option<String>,
    pub routing_key: Option<String>,
}

/// Why a dataset line cannot be replayed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("must be a JSON object (one chat-completions request)")]
    NotObject,
    #[error("`{0}` must be a non-empty string")]
    Meta(&'static str),
    #[error("{0}")]
    Request(#[from] crate::request::RequestError),
}

fn take_meta(obj: &mut Map<String, Value>, key: &'static str) -> Result<Option<String>, LineError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s)),
        Some(_) => Err(LineError::Meta(key)),
    }
}

/// Parses one dataset line for `route` (module docs).
pub fn parse_line(line: &str, route: &str, limits: Limits) -> Result<ReplayItem, LineError> {
    let v: Value = serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    let Value::Object(mut obj) = v else {
        return Err(LineError::NotObject);
    };
    let class = take_meta(&mut obj, "class")?;
    let tenant = take_meta(&mut obj, "tenant")?;
    let routing_key = take_meta(&mut obj, "routing_key")?;
    obj.entry("model")
        .or_insert_with(|| Value::String(route.to_string()));
    let bytes = serde_json::to_vec(&obj).map_err(|e| LineError::Json(e.to_string()))?;
    Ok(ReplayItem {
        request: ChatRequest::parse(Bytes::from(bytes), limits)?,
        class,
        tenant,
        routing_key,
    })
}

/// The request a stored pair was made from, when its prompt was captured
/// (`store.capture_text`): its messages, `tools` and `response_format`, for `route`. The
/// routing key is not known (only its hash is stored).
pub fn item_from_pair(pair: &Pair, route: &str) -> Option<ReplayItem> {
    // The messages go out byte for byte as captured (same prompt hash as the live pair).
    let messages: &RawValue = serde_json::from_str(pair.prompt.as_deref()?).ok()?;
    let mut body = format!(
        "{{\"model\":{},\"messages\":{}",
        Value::String(route.to_string()),
        messages.get()
    );
    for (key, v) in [
        ("tools", &pair.tools),
        ("response_format", &pair.response_format),
    ] {
        if let Some(v) = v {
            body.push_str(&format!(",\"{key}\":{v}"));
        }
    }
    body.push('}');
    Some(ReplayItem {
        request: ChatRequest::parse(Bytes::from(body), Limits::default()).ok()?,
        class: pair.class.clone(),
        tenant: pair.tenant.clone(),
        routing_key: None,
    })
}

/// The stage whose gates judge a replay: the rollout's first shadow stage, or (a rollout with
/// none) a stage named `offline` with the rollout's `[gates]`.
pub fn gate_stage(cfg: &RolloutConfig) -> StageConfig {
    cfg.stages
        .iter()
        .find(|s| is_shadow(s))
        .cloned()
        .unwrap_or_else(|| StageConfig {
            name: "offline".into(),
            percent: 0.0,
            shadow_percent: 100.0,
            min_duration: std::time::Duration::ZERO,
            max_duration: None,
            gates: cfg.gates.clone(),
        })
}

/// The replay's verdict (module docs): `paired` counts the replayed pairs (errors and refusals
/// per side), `report` is the comparison report over them.
pub fn verdict(
    cfg: &RolloutConfig,
    paired: PairedCounts,
    report: &ComparisonReport,
) -> GateOutcome {
    evidence_gates(&gate_stage(cfg), paired, shadow_gate_input(report).into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::PairSide;

    #[test]
    fn meta_keys_are_taken_out_and_model_defaults_to_the_route() {
        let item = parse_line(
            r#"{"messages":[{"role":"user","content":"where is my card?"}],"class":"card_arrival","routing_key":"u1","temperature":0.3}"#,
            "support",
            Limits::default(),
        )
        .unwrap();
        assert_eq!(item.class.as_deref(), Some("card_arrival"));
        assert_eq!(item.routing_key.as_deref(), Some("u1"));
        assert_eq!(item.tenant, None);
        assert_eq!(item.request.model, "support");
        assert_eq!(item.request.raw_field("temperature"), Some("0.3"));
        assert_eq!(item.request.raw_field("class"), None);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let l = Limits::default();
        assert!(matches!(parse_line("{", "r", l), Err(LineError::Json(_))));
        assert_eq!(parse_line("[1]", "r", l), Err(LineError::NotObject));
        assert_eq!(
            parse_line(
                r#"{"messages":[{"role":"user","content":"x"}],"class":3}"#,
                "r",
                l
            ),
            Err(LineError::Meta("class"))
        );
        let e = parse_line(r#"{"model":"r"}"#, "r", l).unwrap_err();
        assert!(e.to_string().contains("messages"), "{e}");
        let tight = Limits {
            max_messages: 1,
            max_depth: 64,
        };
        let two = r#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}"#;
        assert!(
            parse_line(two, "r", tight)
                .unwrap_err()
                .to_string()
                .contains("server.max_messages")
        );
    }

    #[test]
    fn a_captured_pair_becomes_its_request_again() {
        let mut pair = Pair {
            request_id: "r1".into(),
            ts_ms: 0,
            route: "support".into(),
            rollout: "ro".into(),
            stage: "shadow".into(),
            key_hash: None,
            tenant: Some("acme".into()),
            class: Some("refunds".into()),
            prompt: Some(r#"[{"role":"user","content":"refund please"}]"#.into()),
            prompt_hash: String::new(),
            baseline: PairSide::default(),
            candidate: PairSide::default(),
            tools: None,
            response_format: Some(serde_json::json!({"type": "json_object"})),
            embedding_similarity: None,
            judge: None,
            features: None,
        };
        let item = item_from_pair(&pair, "support").unwrap();
        assert_eq!(item.request.model, "support");
        assert_eq!(
            item.request.raw_messages(),
            r#"[{"role":"user","content":"refund please"}]"#
        );
        assert_eq!(
            item.request.field_value("response_format"),
            pair.response_format
        );
        assert_eq!(
            (item.class.as_deref(), item.tenant.as_deref()),
            (Some("refunds"), Some("acme"))
        );
        pair.prompt = None;
        assert!(item_from_pair(&pair, "support").is_none());
    }
}
