//! Property tests through the real server: whatever an upstream answers (OpenAI or Anthropic,
//! JSON or a stream of any bytes, split anywhere) and whatever a client posts as feedback or
//! outcomes, the gateway answers: a 200 whose stream ends in `[DONE]` or in one OpenAI-shaped
//! error event, or an OpenAI-shaped error. No panic (a panicking handler drops the connection,
//! which fails the property), and the gateway keeps serving. Bounded case counts, run in CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use common::{TestGateway, spawn_app};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use serde_json::{Value, json};

/// What the stand-in upstream answers next.
#[derive(Debug, Clone)]
struct Script {
    status: u16,
    content_type: &'static str,
    /// The body, sent as these parts one after another.
    parts: Vec<Vec<u8>>,
}

type Shared = Arc<Mutex<Script>>;

async fn answer(State(s): State<Shared>) -> Response {
    let script = s.lock().unwrap().clone();
    let parts = futures_util::stream::iter(
        script
            .parts
            .into_iter()
            .map(|p| Ok::<_, std::convert::Infallible>(Bytes::from(p))),
    );
    let mut r = Response::new(Body::from_stream(parts));
    *r.status_mut() = StatusCode::from_u16(script.status).unwrap();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, script.content_type.parse().unwrap());
    r
}

fn gateway_config(upstream: &str) -> String {
    format!(
        r#"
[server]
shutdown_grace = "2s"
[store]
flush_interval = "20ms"
[providers.up]
type = "openai"
base_url = "{upstream}/v1"
retries = 0
timeout = "5s"
idle_timeout = "2s"
[providers.anth]
type = "anthropic"
base_url = "{upstream}"
retries = 0
timeout = "5s"
idle_timeout = "2s"
[routes.o]
baseline = "a"
[routes.o.variants.a]
provider = "up"
model = "m"
[routes.a]
baseline = "a"
[routes.a.variants.a]
provider = "anth"
model = "claude-x"
"#
    )
}

/// A gateway in front of a scripted upstream, on a runtime of its own (the property runner is
/// synchronous).
struct Rig {
    rt: tokio::runtime::Runtime,
    gw: TestGateway,
    script: Shared,
    client: reqwest::Client,
}

impl Rig {
    fn new() -> Rig {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let script: Shared = Arc::new(Mutex::new(Script {
            status: 200,
            content_type: "application/json",
            parts: vec![],
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .route("/v1/messages", post(answer))
            .with_state(script.clone());
        let gw = rt.block_on(async {
            let upstream = spawn_app(app).await;
            TestGateway::start(&gateway_config(&upstream)).await
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Rig {
            rt,
            gw,
            script,
            client,
        }
    }

    /// Post `body` to `path`; the status, content type and body text.
    fn post(&self, path: &str, body: Vec<u8>) -> (u16, String, String) {
        self.rt.block_on(async {
            let r = self
                .client
                .post(format!("{}{path}", self.gw.url))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("the gateway answered");
            let status = r.status().as_u16();
            let ctype = r
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (status, ctype, r.text().await.expect("the whole body"))
        })
    }

    fn chat(&self, route: &str, stream: bool, script: Script) -> (u16, String, String) {
        *self.script.lock().unwrap() = script;
        let body = json!({"model": route, "stream": stream,
                          "messages": [{"role": "user", "content": "hi"}]});
        self.post("/v1/chat/completions", serde_json::to_vec(&body).unwrap())
    }
}

fn is_openai_error(v: &Value) -> bool {
    v.pointer("/error/message").is_some_and(Value::is_string)
        && v.pointer("/error/type").is_some_and(Value::is_string)
}

/// A non-200 answer is an OpenAI-shaped JSON error.
fn check_error(status: u16, body: &str) -> Result<(), TestCaseError> {
    prop_assert!(status >= 400, "status {status}");
    let v: Value = serde_json::from_str(body)
        .map_err(|e| TestCaseError::fail(format!("error body is not JSON ({e}): {body}")))?;
    prop_assert!(is_openai_error(&v), "not OpenAI's error shape: {body}");
    Ok(())
}

/// A streamed answer: every `data:` is JSON until it ends, and it ends in `[DONE]` or in one
/// error event; nothing follows either.
fn check_stream(status: u16, ctype: &str, body: &str) -> Result<(), TestCaseError> {
    if status != 200 {
        return check_error(status, body);
    }
    prop_assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let datas: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .collect();
    let Some((last, rest)) = datas.split_last() else {
        return Err(TestCaseError::fail(format!("empty stream: {body:?}")));
    };
    for d in rest {
        let v: Value = serde_json::from_str(d)
            .map_err(|e| TestCaseError::fail(format!("a relayed event is not JSON ({e}): {d}")))?;
        // `"error": null` is no error: the relay reads it as absent, as OpenAI's SDK does.
        prop_assert!(
            v.get("error").is_none_or(Value::is_null),
            "an error event before the end: {d}"
        );
    }
    if *last != "[DONE]" {
        let v: Value = serde_json::from_str(last).map_err(|e| {
            TestCaseError::fail(format!("the last event is not JSON ({e}): {last}"))
        })?;
        prop_assert!(
            is_openai_error(&v),
            "the stream ends without [DONE] or an error: {last}"
        );
    }
    Ok(())
}

fn check_json(status: u16, body: &str) -> Result<(), TestCaseError> {
    if status != 200 {
        return check_error(status, body);
    }
    let v: Value = serde_json::from_str(body)
        .map_err(|e| TestCaseError::fail(format!("a 200 that is not JSON ({e}): {body}")))?;
    prop_assert!(v.get("choices").is_some_and(Value::is_array), "{body}");
    Ok(())
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("choices".to_string()),
                    Just("delta".to_string()),
                    Just("message".to_string()),
                    Just("content".to_string()),
                    Just("tool_calls".to_string()),
                    Just("index".to_string()),
                    Just("type".to_string()),
                    Just("text".to_string()),
                    Just("usage".to_string()),
                    Just("error".to_string()),
                    "[a-z_]{1,6}",
                ],
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One piece of an OpenAI event stream, well-formed or not.
fn openai_fragment() -> impl Strategy<Value = Vec<u8>> {
    let ev = |v: Value| format!("data: {v}\n\n").into_bytes();
    prop_oneof![
        4 => ".{0,10}".prop_map(move |t| ev(json!({"choices": [{"index": 0, "delta": {"content": t}}]}))),
        1 => prop_oneof![0u64..3, any::<u64>()].prop_map(move |i| ev(json!({"choices": [{"delta": {"tool_calls": [{"index": i, "function": {"name": "f", "arguments": "{"}}]}}]}))),
        1 => Just(b"data: [DONE]\n\n".to_vec()),
        1 => Just(b"data: {\"error\": {\"message\": \"overloaded\"}}\n\n".to_vec()),
        1 => any_json().prop_map(ev),
        1 => "[^\n]{0,12}".prop_map(|g| format!("data: {g}\n\n").into_bytes()),
        1 => Just(b": keep-alive\n\n".to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..24),
    ]
}

/// One piece of an Anthropic event stream.
fn anthropic_fragment() -> impl Strategy<Value = Vec<u8>> {
    let ev = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n").into_bytes();
    prop_oneof![
        Just(ev("message_start", json!({"type": "message_start", "message": {"id": "m", "model": "claude-x", "usage": {"input_tokens": 3}}}))),
        (0u64..3).prop_map(move |i| ev("content_block_start", json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}))),
        (prop_oneof![0u64..3, any::<u64>()], ".{0,8}").prop_map(move |(i, t)| ev("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": t}}))),
        (0u64..3).prop_map(move |i| ev("content_block_stop", json!({"type": "content_block_stop", "index": i}))),
        Just(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}))),
        Just(ev("message_stop", json!({"type": "message_stop"}))),
        Just(ev("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}))),
        any_json().prop_map(move |v| ev("content_block_delta", v)),
        prop::collection::vec(any::<u8>(), 0..24),
    ]
}

/// The body of `fragments`, split into parts at `cuts`.
fn split(fragments: Vec<Vec<u8>>, cuts: Vec<usize>) -> Vec<Vec<u8>> {
    let body: Vec<u8> = fragments.concat();
    let mut at: Vec<usize> = cuts.into_iter().map(|c| c % (body.len() + 1)).collect();
    at.sort_unstable();
    let mut parts = Vec::new();
    let mut start = 0;
    for c in at.into_iter().chain(std::iter::once(body.len())) {
        if c > start {
            parts.push(body[start..c].to_vec());
            start = c;
        }
    }
    parts
}

fn stream_script(fragment: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Script> {
    (
        prop::collection::vec(fragment, 0..10),
        prop::collection::vec(any::<usize>(), 0..6),
        prop_oneof![
            8 => Just("text/event-stream"),
            1 => Just("text/html"),
            1 => Just("application/json"),
        ],
        prop_oneof![8 => Just(200u16), 1 => Just(500u16), 1 => Just(429u16)],
    )
        .prop_map(|(fragments, cuts, content_type, status)| Script {
            status,
            content_type,
            parts: split(fragments, cuts),
        })
}

fn json_script() -> impl Strategy<Value = Script> {
    (
        prop_oneof![
            any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            prop::collection::vec(any::<u8>(), 0..64),
            ".{0,20}".prop_map(|t| serde_json::to_vec(&json!({
                "choices": [{"index": 0, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}],
                "content": [{"type": "text", "text": t}], "stop_reason": "end_turn",
            })).unwrap()),
        ],
        prop_oneof![6 => Just(200u16), 1 => Just(400u16), 1 => Just(500u16), 1 => Just(503u16)],
    )
        .prop_map(|(body, status)| Script {
            status,
            content_type: "application/json",
            parts: vec![body],
        })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(PropConfig {
        cases,
        failure_persistence: None,
        ..PropConfig::default()
    })
}

#[test]
fn the_sse_relay_and_the_answer_readers_take_anything_an_upstream_sends() {
    let rig = Rig::new();
    let openai_stream = stream_script(openai_fragment().boxed());
    runner(96)
        .run(&openai_stream, |s| {
            let (status, ctype, body) = rig.chat("o", true, s);
            check_stream(status, &ctype, &body)
        })
        .unwrap();
    let anthropic_stream = stream_script(anthropic_fragment().boxed());
    runner(96)
        .run(&anthropic_stream, |s| {
            let (status, ctype, body) = rig.chat("a", true, s);
            check_stream(status, &ctype, &body)
        })
        .unwrap();
    for route in ["o", "a"] {
        runner(64)
            .run(&json_script(), |s| {
                let (status, _, body) = rig.chat(route, false, s);
                check_json(status, &body)
            })
            .unwrap();
    }
}

#[test]
fn feedback_and_outcome_bodies_get_an_answer_or_a_clear_error() {
    let rig = Rig::new();
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (
            ".{0,12}",
            prop_oneof![Just(json!("up")), Just(json!("down")), any_json()],
            any_json()
        )
            .prop_map(|(id, thumbs, text)| serde_json::to_vec(&json!({
                "request_id": id, "thumbs": thumbs, "final_text": text,
                "name": "csat", "value": text, "routing_key": id, "rollout": "r",
            }))
            .unwrap()),
        prop::collection::vec(any_json(), 0..5).prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ];
    for path in ["/v1/feedback", "/v1/outcomes"] {
        runner(96)
            .run(&body, |b| {
                let (status, _, text) = rig.post(path, b);
                prop_assert!(status < 500 || status == 503, "{path}: {status} {text}");
                if status >= 400 {
                    check_error(status, &text)?;
                }
                Ok(())
            })
            .unwrap();
    }
}
