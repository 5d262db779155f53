//! The capture policy: with `store.capture_text = false` no user or model text is stored
//! anywhere (events, pairs, feedback, the pairs API); with it on, `store.redact` patterns are
//! masked in everything stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestGateway, spawn_app, wait_pairs};
use rampart_store::{EventStore, FeedbackStore, PairStore};
use serde_json::{Value, json};

/// A stand-in provider whose answers carry text and a tool call with secret arguments.
async fn upstream() -> String {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            axum::Json(json!({
                "id": "c1", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "model-secret answer for 4111-1111-1111-1111",
                    "tool_calls": [{"id": "t1", "type": "function", "function": {
                        "name": "lookup", "arguments": "{\"card\":\"4111-1111-1111-1111\",\"note\":\"model-secret\"}"}}]}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7}
            }))
        }),
    );
    spawn_app(app).await
}

fn config(base_url: &str, store_extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "10s"
[store]
flush_interval = "20ms"
{store_extra}
[providers.up]
type = "openai"
base_url = "{base_url}/v1"
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "up"
model = "old"
[routes.support.variants.v2]
provider = "up"
model = "new"
[rollouts.support-v2]
route = "support"
candidate = "v2"
stages = [ {{ name = "shadow", shadow_percent = 100, min_duration = "1h" }} ]
"#
    )
}

fn request() -> Value {
    json!({
        "model": "support",
        "messages": [{"role": "user", "content": "user-secret: my card 4111-1111-1111-1111"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "user-secret tool",
            "parameters": {"type": "object", "properties": {"card": {"type": "string"}}}}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "user-secret-schema", "schema": {"type": "object"}}}
    })
}

/// Send one shadowed request and feedback on it; the request id.
async fn serve_one(t: &TestGateway) -> String {
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/v1/chat/completions", t.url))
        .header("x-rampart-routing-key", "user-1")
        .json(&request())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-rampart-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(wait_pairs(t, 1).await, 1);
    let fb = json!({"request_id": id, "outcome": "edited", "final_text": "user-secret final 4111-1111-1111-1111"});
    let r = c
        .post(format!("{}/v1/feedback", t.url))
        .json(&fb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    id
}

/// Everything stored about request `id`, and what the pairs API serves, as one text.
async fn everything_stored(t: &TestGateway, id: &str) -> String {
    t.gw.writer.flush().await.unwrap();
    let event = t.store.get_event(id).unwrap().unwrap();
    let pairs = t.store.recent_pairs("support-v2", 10, None, None).unwrap();
    let feedback = t.store.feedback_for(id).unwrap();
    let api = reqwest::get(format!("{}/admin/rollouts/support-v2/pairs", t.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The database file itself, in case a column escapes the typed readers.
    let db = std::fs::read(t.store.path()).unwrap_or_default();
    format!(
        "{}\n{}\n{}\n{api}\n{}",
        serde_json::to_string(&event).unwrap(),
        serde_json::to_string(&pairs).unwrap(),
        serde_json::to_string(&feedback).unwrap(),
        String::from_utf8_lossy(&db)
    )
}

#[tokio::test]
async fn capture_off_stores_no_user_or_model_text_anywhere() {
    let url = upstream().await;
    let t = TestGateway::start(&config(&url, "capture_text = false")).await;
    let id = serve_one(&t).await;
    let stored = everything_stored(&t, &id).await;
    for secret in ["user-secret", "model-secret", "4111-1111"] {
        assert!(!stored.contains(secret), "`{secret}` was stored");
    }
    // What is kept without text: the pair itself, its hash, its tool-call-free measurements.
    let pairs = t.store.recent_pairs("support-v2", 10, None, None).unwrap();
    assert_eq!(pairs.len(), 1);
    assert!(!pairs[0].prompt_hash.is_empty());
    assert_eq!(pairs[0].candidate.completion_tokens, 7);
    let fb = t.store.feedback_for(&id).unwrap();
    assert_eq!(fb.len(), 1);
    assert!(fb[0].final_text.is_none());
    t.shutdown().await;
}

#[tokio::test]
async fn capture_on_masks_redaction_patterns_in_everything_stored() {
    let url = upstream().await;
    let redact = r#"redact = ["\\d{4}-\\d{4}-\\d{4}-\\d{4}", "(user|model)-secret"]"#;
    let t = TestGateway::start(&config(&url, redact)).await;
    let id = serve_one(&t).await;
    let stored = everything_stored(&t, &id).await;
    for secret in ["user-secret", "model-secret", "4111-1111"] {
        assert!(!stored.contains(secret), "`{secret}` was stored");
    }
    let pairs = t.store.recent_pairs("support-v2", 10, None, None).unwrap();
    let p = &pairs[0];
    assert!(
        p.prompt
            .as_deref()
            .unwrap()
            .contains("[REDACTED]: my card [REDACTED]")
    );
    assert!(
        p.candidate
            .text
            .as_deref()
            .unwrap()
            .contains("answer for [REDACTED]")
    );
    let args = p.candidate.tool_calls.as_ref().unwrap()[0]["function"]["arguments"].clone();
    assert!(args.as_str().unwrap().contains("[REDACTED]"), "{args}");
    assert!(
        p.tools
            .as_ref()
            .unwrap()
            .to_string()
            .contains("[REDACTED] tool")
    );
    let fb = t.store.feedback_for(&id).unwrap();
    assert_eq!(
        fb[0].final_text.as_deref(),
        Some("[REDACTED] final [REDACTED]")
    );
    t.shutdown().await;
}
