//! Fallback for canary users: a candidate that fails every request still leaves canary users
//! with 200s from the baseline, and the kill switch still trips on the candidate's errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use common::{TestGateway, metric, metrics, spawn_app};
use serde_json::{Value, json};

/// `candidate` always answers 503; anything else answers 200.
async fn upstream() -> String {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(|axum::Json(body): axum::Json<Value>| async move {
            if body["model"] == "candidate" {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({"error": {"message": "down", "type": "server_error", "code": null}})),
                );
            }
            (
                StatusCode::OK,
                axum::Json(json!({
                    "id": "x", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "from the baseline"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
                })),
            )
        }),
    );
    format!("{}/v1", spawn_app(app).await)
}

fn config(up: &str, fallback: bool) -> String {
    format!(
        r#"
[store]
flush_interval = "20ms"
[providers.up]
type = "openai"
base_url = "{up}"
retries = 1
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "up"
model = "baseline"
[routes.support.variants.v2]
provider = "up"
model = "candidate"
[rollouts.support-v2]
route = "support"
candidate = "v2"
fallback_to_baseline = {fallback}
stages = [ {{ name = "canary-25", percent = 25, min_duration = "1h" }} ]
[rollouts.support-v2.guardrails]
window = "30s"
check_interval = "50ms"
error_rate_max = 0.05
"#
    )
}

async fn send(t: &TestGateway, key: &str, stream: bool) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", t.url))
        .header("x-rampart-routing-key", key)
        .json(&json!({"model": "support", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn canary_users_get_the_baseline_and_the_kill_switch_still_trips() {
    let up = upstream().await;
    let t = TestGateway::start(&config(&up, true)).await;
    let mut canary = 0;
    let mut tripped = false;
    for i in 0..2000 {
        if t.gw.view_of("support-v2").unwrap().stage == "rolled_back" {
            tripped = true;
            break;
        }
        let r = send(&t, &format!("user-{i}"), false).await;
        assert_eq!(r.status(), 200, "user-{i}");
        let cohort = r.headers()["x-rampart-cohort"]
            .to_str()
            .unwrap()
            .to_string();
        if cohort == "canary" {
            canary += 1;
            assert_eq!(r.headers()["x-rampart-fallback"], "candidate-error");
            assert_eq!(r.headers()["x-rampart-variant"], "v1");
        } else {
            assert!(r.headers().get("x-rampart-fallback").is_none());
        }
        let body = r.text().await.unwrap();
        assert!(body.contains("from the baseline"), "{body}");
    }
    assert!(canary > 0);
    // The trip happens off the request path; wait for it (bounded) if the loop ended first.
    for _ in 0..200 {
        if tripped || t.gw.view_of("support-v2").unwrap().stage == "rolled_back" {
            tripped = true;
            break;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tripped,
        "the kill switch did not trip on the candidate's errors"
    );
    // Every canary request was counted as the candidate's error.
    let m = metrics(&t.url).await;
    let errors = metric(
        &m,
        "rampart_requests_total{route=\"support\",variant=\"v2\",cohort=\"canary\",outcome=\"error\"}",
    );
    assert_eq!(errors, f64::from(canary), "{m}");
    let ok = metric(
        &m,
        "rampart_requests_total{route=\"support\",variant=\"v2\",cohort=\"canary\",outcome=\"ok\"}",
    );
    assert_eq!(ok, 0.0);
}

#[tokio::test]
async fn without_fallback_canary_users_see_the_candidates_error() {
    let up = upstream().await;
    let t = TestGateway::start(&config(&up, false)).await;
    for i in 0..40 {
        let r = send(&t, &format!("user-{i}"), false).await;
        if r.headers()["x-rampart-cohort"] == "canary" {
            assert_eq!(r.status(), 503);
            assert!(r.headers().get("x-rampart-fallback").is_none());
            return;
        }
    }
    panic!("no canary user among 40");
}
