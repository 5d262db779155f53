//! The pure decision step: from a parsed request and a model's behaviour to a [`Plan`] (error or
//! answer, its text, token usage, latency and time to first token). No clock, no I/O.
//!
//! Where the randomness comes from (all derived with [`crate::rng`]):
//! - **Text and refusal** depend only on `(style, length_factor, last user message, seed)` and
//!   `(last user message, seed)` respectively, where `seed` is the request body's `seed` if
//!   present, else the simulator's seed. No per-call counter is involved, so repeated calls give
//!   the same answer. The refusal draw ignores the model, so with the same seed a model with a
//!   higher refusal rate refuses a superset of the prompts a lower-rate model refuses.
//! - **Latency and injected errors** are drawn per call: from `(simulator seed, call nonce)`
//!   normally, so repeated identical calls vary; from `(body seed, model, prompt)` when the body
//!   carries `seed`, so such a call is fully reproducible.

use std::time::Duration;

use rampart_core::config::{LatencySpec, MockModel};
use serde_json::{Map, Value, json};

use crate::error::SimError;
use crate::generate;
use crate::judge;
use crate::rng::{Rng, combine, fnv1a};

/// z-score of the 95th percentile of the standard normal.
pub const Z95: f64 = 1.644_853_626_951_472_2;

/// Share of the total latency spent before the first streamed chunk.
pub const TTFT_FRACTION: f64 = 0.3;

/// Latency draws are capped at this many times the configured p95 (a lognormal tail is
/// unbounded; a simulated provider that hangs for minutes helps nobody).
const LATENCY_CAP_P95S: f64 = 20.0;

/// The requested output format.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Text,
    /// `response_format.type == "json_object"`.
    JsonObject,
    /// `response_format.type == "json_schema"`, with the schema when one was given.
    JsonSchema(Option<Value>),
}

/// The parts of a chat-completions body the simulator looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    /// Concatenated text of every message (for prompt token counting).
    pub prompt_tokens: u64,
    /// Text of the last `user` message (empty when there is none).
    pub last_user: String,
    pub seed: Option<u64>,
    pub max_tokens: Option<u64>,
    pub stream: bool,
    pub include_usage: bool,
    pub format: Format,
}

/// Text of a message `content`: a string, or an array of parts whose `text` fields are joined.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Reads an OpenAI chat-completions body. 400 when `model` or a non-empty `messages` array is
/// missing, or when `max_tokens` is not a positive integer.
pub fn parse_chat(body: &Value) -> Result<ChatRequest, SimError> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| SimError::invalid_request("you must provide a model parameter", "model"))?
        .to_string();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            SimError::invalid_request(
                "'messages' must be a non-empty array of messages",
                "messages",
            )
        })?;
    let mut prompt_tokens = 0;
    let mut last_user = None;
    for m in messages {
        let text = m.get("content").map(content_text).unwrap_or_default();
        // Roughly OpenAI's per-message framing overhead.
        prompt_tokens += generate::approx_tokens(&text) + 3;
        if m.get("role").and_then(Value::as_str) == Some("user") {
            last_user = Some(text);
        }
    }
    let seed = body.get("seed").and_then(|s| {
        s.as_u64()
            .or_else(|| s.as_i64().map(|i| i as u64))
            .or_else(|| s.as_f64().map(|f| f as u64))
    });
    let max_tokens = match body
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| body.get("max_tokens").filter(|v| !v.is_null()))
    {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                return Err(SimError::invalid_request(
                    format!("max_tokens must be a positive integer (got {v})"),
                    "max_tokens",
                ));
            }
        },
    };
    let format = match body
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_object") => Format::JsonObject,
        Some("json_schema") => {
            Format::JsonSchema(body.pointer("/response_format/json_schema/schema").cloned())
        }
        _ => Format::Text,
    };
    Ok(ChatRequest {
        model,
        prompt_tokens,
        last_user: last_user.unwrap_or_default(),
        seed,
        max_tokens,
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true),
        format,
    })
}

/// Why a completion stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// A successful simulated completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The assistant message content (a JSON object string when a JSON format was requested).
    pub content: String,
    pub finish_reason: FinishReason,
    pub refused: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What one call will do, decided up front.
#[derive(Debug, Clone)]
pub struct Plan {
    pub outcome: Result<Completion, SimError>,
    /// Total time the call takes.
    pub latency: Duration,
    /// Time until the first streamed chunk (and until an injected error is returned).
    pub ttft: Duration,
    /// The call hangs: nothing is sent until the caller gives up (at the model's `hang_rate`).
    pub hang: bool,
}

/// Lognormal parameters `(mu, sigma)` of a latency spec, in log-milliseconds:
/// `mu = ln(median)`, `sigma = (ln p95 − ln median) / z0.95`.
pub fn lognormal_params(spec: &LatencySpec) -> (f64, f64) {
    let median = spec.median_ms.max(f64::MIN_POSITIVE);
    let p95 = spec.p95_ms.max(median);
    let mu = median.ln();
    (mu, (p95.ln() - mu) / Z95)
}

/// One latency draw from `spec`.
pub fn sample_latency(spec: &LatencySpec, rng: &mut Rng) -> Duration {
    let (mu, sigma) = lognormal_params(spec);
    let ms = (mu + sigma * rng.standard_normal())
        .exp()
        .min(spec.p95_ms.max(spec.median_ms) * LATENCY_CAP_P95S);
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

/// Whether `(prompt, seed)` is refused at `refusal_rate`: a uniform draw from the pair alone.
pub fn refuses(prompt: &str, seed: u64, refusal_rate: f64) -> bool {
    let u = Rng::new(combine(&[
        fnv1a(b"refusal"),
        fnv1a(prompt.trim().as_bytes()),
        seed,
    ]))
    .uniform();
    u < refusal_rate
}

/// The per-call generator for latency and errors (see the module doc).
pub fn call_rng(req: &ChatRequest, sim_seed: u64, nonce: u64) -> Rng {
    match req.seed {
        Some(seed) => Rng::new(combine(&[
            fnv1a(b"call"),
            seed,
            fnv1a(req.model.as_bytes()),
            fnv1a(req.last_user.trim().as_bytes()),
        ])),
        None => Rng::new(combine(&[fnv1a(b"call"), sim_seed, nonce])),
    }
}

/// Decides everything about one call to `model` for prompt class `class`. `nonce` is a
/// per-call counter; it only affects latency and errors, and only when the body carries no
/// `seed`. A judge prompt ([`judge`]) gets a verdict instead of an answer and is never refused.
pub fn plan(
    req: &ChatRequest,
    model: &MockModel,
    class: Option<&str>,
    sim_seed: u64,
    nonce: u64,
) -> Plan {
    let behaviour = model.behaviour(class);
    let mut rng = call_rng(req, sim_seed, nonce);
    let latency = sample_latency(&behaviour.latency, &mut rng);
    let ttft = latency.mul_f64(TTFT_FRACTION);
    // Drawn only when hangs are on, so the draws of a model without them stay as they were.
    let hang = model.hang_rate > 0.0 && rng.uniform() < model.hang_rate;
    if rng.uniform() < behaviour.error_rate {
        return Plan {
            outcome: Err(SimError::injected()),
            latency,
            ttft,
            hang,
        };
    }
    let seed = req.seed.unwrap_or(sim_seed);
    let (text, refused) = if let Some(j) = judge::parse(&req.last_user) {
        (
            judge::reply(judge::verdict(&j, model.position_bias, seed)),
            false,
        )
    } else if refuses(&req.last_user, seed, behaviour.refusal_rate) {
        (generate::refusal(behaviour.style).to_string(), true)
    } else {
        let text = generate::answer(
            behaviour.style,
            behaviour.length_factor,
            &req.last_user,
            seed,
        );
        (text, false)
    };
    let (text, truncated) = match req.max_tokens {
        Some(max) => {
            let (t, cut) = generate::truncate_to_tokens(&text, max);
            (t.to_string(), cut)
        }
        None => (text, false),
    };
    let content = match &req.format {
        Format::Text => text,
        Format::JsonObject => json!({ "answer": text }).to_string(),
        Format::JsonSchema(schema) => match schema {
            Some(s) if s.get("type").and_then(Value::as_str) == Some("object") => {
                let mut first_string = true;
                fill_schema(s, &text, &mut first_string, 0).to_string()
            }
            _ => json!({ "answer": text }).to_string(),
        },
    };
    let completion_tokens = generate::approx_tokens(&content);
    Plan {
        outcome: Ok(Completion {
            content,
            finish_reason: if truncated {
                FinishReason::Length
            } else {
                FinishReason::Stop
            },
            refused,
            prompt_tokens: req.prompt_tokens,
            completion_tokens,
        }),
        latency,
        ttft,
        hang,
    }
}

/// A value matching a JSON schema (the common subset: object, array, string, number, integer,
/// boolean, enum, const). The first string field receives the answer text; other strings get
/// an empty string.
fn fill_schema(schema: &Value, text: &str, first_string: &mut bool, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // A type union such as ["string", "null"]: the first non-null one.
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(
                        name.clone(),
                        fill_schema(sub, text, first_string, depth + 1),
                    );
                }
            }
            Value::Object(out)
        }
        "array" => match schema.get("items") {
            Some(items) => Value::Array(vec![fill_schema(items, text, first_string, depth + 1)]),
            None => Value::Array(Vec::new()),
        },
        "integer" => json!(0),
        "number" => json!(0.0),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => {
            if std::mem::replace(first_string, false) {
                Value::String(text.to_string())
            } else {
                Value::String(String::new())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rampart_core::config::{MockBehaviour, Style};

    fn behaviour(style: Style) -> MockModel {
        MockModel {
            base: MockBehaviour {
                style,
                latency: LatencySpec {
                    median_ms: 400.0,
                    p95_ms: 900.0,
                },
                error_rate: 0.0,
                refusal_rate: 0.0,
                length_factor: 1.0,
            },
            overrides: Default::default(),
            position_bias: 0.0,
            hang_rate: 0.0,
        }
    }

    fn req(body: Value) -> ChatRequest {
        match parse_chat(&body) {
            Ok(r) => r,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    fn completion(p: Plan) -> Completion {
        match p.outcome {
            Ok(c) => c,
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn parse_rejects_malformed_bodies() {
        for body in [
            json!({"model": "m"}),
            json!({"model": "m", "messages": []}),
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}),
        ] {
            let e = parse_chat(&body).err().map(|e| e.status);
            assert_eq!(e, Some(400), "{body}");
        }
    }

    #[test]
    fn parse_reads_content_parts_and_options() {
        let r = req(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be nice."},
                {"role": "user", "content": [{"type": "text", "text": "card"}, {"type": "text", "text": "arrival"}]},
            ],
            "seed": 5, "max_completion_tokens": 7, "stream": true,
            "stream_options": {"include_usage": true},
            "response_format": {"type": "json_object"},
        }));
        assert_eq!(r.last_user, "card arrival");
        assert_eq!(r.seed, Some(5));
        assert_eq!(r.max_tokens, Some(7));
        assert!(r.stream && r.include_usage);
        assert_eq!(r.format, Format::JsonObject);
        assert_eq!(r.prompt_tokens, 2 + 3 + 3 + 3);
    }

    #[test]
    fn latency_quantiles_match_config() {
        for (median, p95) in [(400.0, 900.0), (50.0, 60.0), (1200.0, 5000.0)] {
            let spec = LatencySpec {
                median_ms: median,
                p95_ms: p95,
            };
            let mut rng = Rng::new(11);
            let mut draws: Vec<f64> = (0..4000)
                .map(|_| sample_latency(&spec, &mut rng).as_secs_f64() * 1000.0)
                .collect();
            draws.sort_by(f64::total_cmp);
            let m = draws[2000];
            let q95 = draws[3800];
            assert!((m / median - 1.0).abs() < 0.05, "median {m} vs {median}");
            assert!((q95 / p95 - 1.0).abs() < 0.08, "p95 {q95} vs {p95}");
        }
    }

    #[test]
    fn max_tokens_truncates_and_sets_length() {
        let r = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "Where is my card?"}], "max_tokens": 5}),
        );
        let c = completion(plan(&r, &behaviour(Style::Formal), None, 1, 0));
        assert_eq!(c.finish_reason, FinishReason::Length);
        assert!(c.completion_tokens <= 5, "{c:?}");
        let r = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "Where is my card?"}], "max_tokens": 5000}),
        );
        let c = completion(plan(&r, &behaviour(Style::Formal), None, 1, 0));
        assert_eq!(c.finish_reason, FinishReason::Stop);
    }

    #[test]
    fn json_formats_give_valid_objects() {
        let r = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "card"}],
            "response_format": {"type": "json_object"}}),
        );
        let c = completion(plan(&r, &behaviour(Style::Casual), None, 1, 0));
        let v: Value = serde_json::from_str(&c.content).unwrap_or(Value::Null);
        assert!(
            v["answer"].as_str().is_some_and(|a| a.contains("card")),
            "{v}"
        );

        let schema = json!({"type": "object", "properties": {
            "reply": {"type": "string"}, "confidence": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "kind": {"type": "string", "enum": ["refund", "other"]},
            "meta": {"type": "object", "properties": {"urgent": {"type": "boolean"}}}
        }, "required": ["reply"]});
        let r = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "card"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}),
        );
        let c = completion(plan(&r, &behaviour(Style::Casual), None, 1, 0));
        let v: Value = serde_json::from_str(&c.content).unwrap_or(Value::Null);
        assert!(v["confidence"].is_number());
        assert_eq!(v["kind"], "refund");
        assert_eq!(v["meta"]["urgent"], false);
        assert!(
            v["reply"].as_str().is_some_and(|a| a.contains("card"))
                || v["tags"][0].as_str().is_some_and(|a| a.contains("card")),
            "{v}"
        );
    }

    #[test]
    fn seeded_calls_are_fully_deterministic_unseeded_vary() {
        let mut b = behaviour(Style::Casual);
        b.base.error_rate = 0.5;
        let seeded = req(
            json!({"model": "m", "seed": 9, "messages": [{"role": "user", "content": "card"}]}),
        );
        let first = plan(&seeded, &b, None, 1, 0);
        for nonce in 1..50 {
            let p = plan(&seeded, &b, None, 1, nonce);
            assert_eq!(p.latency, first.latency);
            assert_eq!(p.outcome.is_ok(), first.outcome.is_ok());
        }
        let unseeded =
            req(json!({"model": "m", "messages": [{"role": "user", "content": "card"}]}));
        b.base.error_rate = 0.0;
        let plans: Vec<Plan> = (0..50).map(|n| plan(&unseeded, &b, None, 1, n)).collect();
        assert!(plans.iter().any(|p| p.latency != plans[0].latency));
        // The text does not depend on the per-call nonce.
        let texts: Vec<String> = plans.into_iter().map(|p| completion(p).content).collect();
        assert!(texts.iter().all(|t| t == &texts[0]));
    }
}
