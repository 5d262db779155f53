//! [`Simulator`]: the in-process simulated provider. It parses a request, asks [`plan`] what to
//! do, waits the planned time on the tokio clock and shapes the answer as OpenAI would.
//!
//! Timing contract:
//! - `complete`: 400/404 are returned at once; an injected 500 after the time to first token
//!   (30% of the sampled latency); an answer after the whole sampled latency.
//! - `stream`: 400/404 at once; otherwise it waits the time to first token, then returns either
//!   the injected error or a stream whose first chunk is ready immediately and whose other
//!   chunks are spread evenly (on absolute deadlines, so timer granularity does not accumulate)
//!   until the sampled latency; the usage chunk, if asked for, follows the last content chunk.
//!
//! Shared state is a relaxed atomic call counter; nothing is locked on the request path. The
//! bounded `received` log (a mutex and a copy of every request body) is a test switch, off
//! unless [`Simulator::record_received`] turns it on: the gateway's embedded `type = "mock"`
//! provider never records; `rampart mock-llm` (a test server) and the test suites do.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use rampart_core::config::{LatencySpec, MockBehaviour, MockModel, MockProvider, Style};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::embeddings;
use crate::error::SimError;
use crate::plan::{self, ChatRequest, Completion, Plan};
use crate::rng::fnv1a;

/// How many received chat requests [`Simulator::received`] keeps.
pub const RECEIVED_CAPACITY: usize = 10_000;

/// The `created` timestamp of every response (fixed, so bodies are reproducible).
pub const CREATED: u64 = 1_735_689_600;

/// One chat request as the simulator received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Received {
    pub body: Value,
    /// The `x-rampart-class` header (or the `class` argument in process).
    pub class: Option<String>,
}

struct Model {
    config: MockModel,
    fingerprint: String,
}

/// A simulated OpenAI-compatible provider serving the models it was built with.
/// `Send + Sync`; share it in an `Arc`.
pub struct Simulator {
    models: BTreeMap<String, Model>,
    seed: u64,
    calls: AtomicU64,
    /// The test switch of the `received` log.
    recording: AtomicBool,
    received: Mutex<VecDeque<Received>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("models", &self.models.keys().collect::<Vec<_>>())
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

fn behaviour(
    style: Style,
    median_ms: f64,
    p95_ms: f64,
    refusal_rate: f64,
    length_factor: f64,
) -> MockBehaviour {
    MockBehaviour {
        style,
        latency: LatencySpec { median_ms, p95_ms },
        error_rate: 0.0,
        refusal_rate,
        length_factor,
    }
}

impl Simulator {
    /// A simulator serving `models`; `seed` drives every draw of requests that carry no `seed`.
    pub fn new(models: BTreeMap<String, MockModel>, seed: u64) -> Simulator {
        let models = models
            .into_iter()
            .map(|(name, config)| {
                let fingerprint = format!("fp_mock_{:010x}", fnv1a(name.as_bytes()) >> 24);
                (
                    name,
                    Model {
                        config,
                        fingerprint,
                    },
                )
            })
            .collect();
        Simulator {
            models,
            seed,
            calls: AtomicU64::new(0),
            recording: AtomicBool::new(false),
            received: Mutex::new(VecDeque::new()),
        }
    }

    /// A simulator for a validated `type = "mock"` provider.
    pub fn from_config(provider: &MockProvider) -> Simulator {
        Simulator::new(provider.models.clone(), provider.seed)
    }

    /// The models `rampart mock-llm` serves without `--config`:
    /// - `casual`: casual register, latency median 400 ms / p95 900 ms, 1% refusals;
    /// - `formal`: formal register, 350 / 800 ms, 1% refusals, 1.3× longer;
    /// - `terse`: terse register, 200 / 450 ms, 1% refusals;
    /// - `flaky`: like `casual` but 20% of calls fail with a 500.
    pub fn with_default_models() -> Simulator {
        let plain = |base: MockBehaviour| MockModel {
            base,
            overrides: BTreeMap::new(),
            position_bias: 0.0,
            hang_rate: 0.0,
        };
        let mut flaky = behaviour(Style::Casual, 400.0, 900.0, 0.01, 1.0);
        flaky.error_rate = 0.2;
        let models = BTreeMap::from([
            (
                "casual".to_string(),
                plain(behaviour(Style::Casual, 400.0, 900.0, 0.01, 1.0)),
            ),
            (
                "formal".to_string(),
                plain(behaviour(Style::Formal, 350.0, 800.0, 0.01, 1.3)),
            ),
            (
                "terse".to_string(),
                plain(behaviour(Style::Terse, 200.0, 450.0, 0.01, 1.0)),
            ),
            ("flaky".to_string(), plain(flaky)),
        ]);
        Simulator::new(models, 0)
    }

    /// Names of the served models, in order.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// Test switch: keep (or stop keeping) a copy of every chat request for
    /// [`received`](Self::received). Off by default, so serving takes no lock and copies no
    /// body; turn it on in tests and test servers only.
    pub fn record_received(&self, on: bool) {
        self.recording.store(on, Ordering::Relaxed);
    }

    /// Every chat request received (in process or over HTTP) while
    /// [`record_received`](Self::record_received) was on, oldest first, at most
    /// [`RECEIVED_CAPACITY`] of them.
    pub fn received(&self) -> Vec<Received> {
        self.log().iter().cloned().collect()
    }

    /// Forgets the received requests.
    pub fn clear_received(&self) {
        self.log().clear();
    }

    fn log(&self) -> std::sync::MutexGuard<'_, VecDeque<Received>> {
        // A panic while holding this lock cannot leave the deque inconsistent; keep going.
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, body: &Value, class: Option<&str>) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let entry = Received {
            body: body.clone(),
            class: class.map(str::to_string),
        };
        let mut log = self.log();
        if log.len() >= RECEIVED_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// Records the request and decides the call without waiting: parse (400), model lookup
    /// (404), then [`plan::plan`]. Exposed so callers (benchmarks, the demo) can use the
    /// simulator in compressed time.
    pub fn plan(
        &self,
        body: &Value,
        class: Option<&str>,
    ) -> Result<(ChatRequest, Plan, &str), SimError> {
        self.record(body, class);
        let req = plan::parse_chat(body)?;
        let model = self
            .models
            .get(&req.model)
            .ok_or_else(|| SimError::model_not_found(&req.model))?;
        let nonce = self.calls.fetch_add(1, Ordering::Relaxed);
        let p = plan::plan(&req, &model.config, class, self.seed, nonce);
        Ok((req, p, model.fingerprint.as_str()))
    }

    /// The behaviour a call to `model` with prompt class `class` gets, if the model exists.
    pub fn behaviour(&self, model: &str, class: Option<&str>) -> Option<&MockBehaviour> {
        self.models.get(model).map(|m| m.config.behaviour(class))
    }

    fn next_id(&self) -> String {
        format!(
            "chatcmpl-mock{:012x}",
            self.calls.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A non-streaming chat completion: waits the sampled latency on the tokio clock and returns
    /// the OpenAI `chat.completion` body.
    pub async fn complete(&self, body: &Value, class: Option<&str>) -> Result<Value, SimError> {
        let start = Instant::now();
        let (req, plan, fingerprint) = self.plan(body, class)?;
        if plan.hang {
            return Err(hang().await);
        }
        let completion = match plan.outcome {
            Err(e) => {
                tokio::time::sleep_until(start + plan.ttft).await;
                return Err(e);
            }
            Ok(c) => c,
        };
        let response = completion_body(&self.next_id(), &req.model, fingerprint, &completion);
        tokio::time::sleep_until(start + plan.latency).await;
        Ok(response)
    }

    /// A streaming chat completion: OpenAI `chat.completion.chunk` objects (see the module doc
    /// for timing). The first chunk carries `delta.role`, the last content chunk the
    /// `finish_reason`; with `stream_options.include_usage` a final chunk has empty `choices`
    /// and the `usage`.
    pub async fn stream(
        &self,
        body: &Value,
        class: Option<&str>,
    ) -> Result<BoxStream<'static, Value>, SimError> {
        let start = Instant::now();
        let (req, plan, fingerprint) = self.plan(body, class)?;
        if plan.hang {
            return Err(hang().await);
        }
        tokio::time::sleep_until(start + plan.ttft).await;
        let completion = plan.outcome?;
        let id = self.next_id();
        let chunks = stream_chunks(&id, &req.model, fingerprint, &completion, req.include_usage);
        let first_at = start + plan.ttft;
        let rest = plan.latency.saturating_sub(plan.ttft);
        let content_chunks = chunks.len() - usize::from(req.include_usage);
        let step = if content_chunks > 1 {
            rest.div_f64((content_chunks - 1) as f64)
        } else {
            Duration::ZERO
        };
        let timed: Vec<(Instant, Value)> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let i = i.min(content_chunks.saturating_sub(1));
                (first_at + step.mul_f64(i as f64), c)
            })
            .collect();
        Ok(futures_util::stream::iter(timed)
            .then(|(at, chunk)| async move {
                if at > Instant::now() {
                    tokio::time::sleep_until(at).await;
                }
                chunk
            })
            .boxed())
    }

    /// Deterministic bag-of-words embeddings (see [`embeddings`]); any model name is accepted.
    pub fn embeddings(&self, body: &Value) -> Result<Value, SimError> {
        embeddings::respond(body)
    }

    /// The `GET /v1/models` body.
    pub fn models_body(&self) -> Value {
        let data: Vec<Value> = self
            .models()
            .map(|m| json!({"id": m, "object": "model", "created": CREATED, "owned_by": "rampart-mock"}))
            .collect();
        json!({"object": "list", "data": data})
    }
}

/// A hanging call: silent for [`MockModel::HANG_FOR`] (the caller normally gives up first, which
/// drops this future), then a 504.
async fn hang() -> SimError {
    tokio::time::sleep(MockModel::HANG_FOR).await;
    SimError::hung()
}

fn usage(c: &Completion) -> Value {
    json!({
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "total_tokens": c.prompt_tokens + c.completion_tokens,
    })
}

/// The OpenAI `chat.completion` body of a completion.
pub fn completion_body(id: &str, model: &str, fingerprint: &str, c: &Completion) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": c.content, "refusal": null},
            "logprobs": null,
            "finish_reason": c.finish_reason.as_str(),
        }],
        "usage": usage(c),
        "system_fingerprint": fingerprint,
    })
}

/// Splits `s` into word pieces, each but the first keeping its leading whitespace, so that the
/// pieces concatenate back to `s` exactly. An empty `s` gives one empty piece.
pub fn word_pieces(s: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev_ws = true;
    for (i, ch) in s.char_indices() {
        let ws = ch.is_whitespace();
        if ws && !prev_ws && i > start {
            pieces.push(&s[start..i]);
            start = i;
        }
        prev_ws = ws;
    }
    pieces.push(&s[start..]);
    pieces
}

/// The chunks of a streamed completion, in order (see [`Simulator::stream`]).
pub fn stream_chunks(
    id: &str,
    model: &str,
    fingerprint: &str,
    c: &Completion,
    include_usage: bool,
) -> Vec<Value> {
    let pieces = word_pieces(&c.content);
    let last = pieces.len().saturating_sub(1);
    let usage_field = if include_usage {
        Some(Value::Null)
    } else {
        None
    };
    let mut out: Vec<Value> = pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let delta = if i == 0 {
                json!({"role": "assistant", "content": piece})
            } else {
                json!({"content": piece})
            };
            let finish = (i == last).then(|| c.finish_reason.as_str());
            let mut chunk = json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "system_fingerprint": fingerprint,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            });
            if let (Some(u), Some(obj)) = (&usage_field, chunk.as_object_mut()) {
                obj.insert("usage".to_string(), u.clone());
            }
            chunk
        })
        .collect();
    if include_usage {
        out.push(json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": fingerprint,
            "choices": [],
            "usage": usage(c),
        }));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_back() {
        for s in ["", "one", "Hey there,  friend!\nBye", " leading"] {
            let p = word_pieces(s);
            assert_eq!(p.concat(), s);
            assert!(!p.is_empty());
        }
        assert_eq!(word_pieces("a b c"), vec!["a", " b", " c"]);
    }
}
