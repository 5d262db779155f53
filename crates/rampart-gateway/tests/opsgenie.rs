//! Opsgenie end to end: a kill-switch trip creates an alert (alias per rollout, priority, the
//! guardrail evidence) with the API key in `Authorization: GenieKey`; the reset after the cooldown
//! closes the alert with the same alias. The first create attempt fails and is retried.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{TestGateway, chat};
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
struct Call {
    path: String,
    query: String,
    auth: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Stand {
    calls: Arc<Mutex<Vec<Call>>>,
    failed_once: Arc<AtomicBool>,
}

/// An Opsgenie stand-in: `POST /v2/alerts` (create; the first call answers 503) and
/// `POST /v2/alerts/{id}/close`.
async fn opsgenie() -> (String, Stand) {
    let stand = Stand::default();
    async fn record(stand: &Stand, path: String, query: String, headers: &HeaderMap, body: Value) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        stand.calls.lock().await.push(Call {
            path,
            query,
            auth,
            body,
        });
    }
    let app = axum::Router::new()
        .route(
            "/v2/alerts",
            post(
                |State(s): State<Stand>,
                 headers: HeaderMap,
                 axum::Json(body): axum::Json<Value>| async move {
                    if !s.failed_once.swap(true, Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    record(&s, "/v2/alerts".into(), String::new(), &headers, body).await;
                    StatusCode::ACCEPTED
                },
            ),
        )
        .route(
            "/v2/alerts/{id}/close",
            post(
                |State(s): State<Stand>,
                 Path(id): Path<String>,
                 Query(q): Query<std::collections::HashMap<String, String>>,
                 headers: HeaderMap,
                 axum::Json(body): axum::Json<Value>| async move {
                    let query = format!(
                        "identifierType={}",
                        q.get("identifierType").cloned().unwrap_or_default()
                    );
                    record(&s, format!("/v2/alerts/{id}/close"), query, &headers, body).await;
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(stand.clone());
    (common::spawn_app(app).await, stand)
}

async fn wait_calls(stand: &Stand, n: usize) -> Vec<Call> {
    for _ in 0..400 {
        let got = stand.calls.lock().await.clone();
        if got.len() >= n {
            return got;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stand.calls.lock().await.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trip_creates_an_alert_and_reset_closes_it_by_alias() {
    let (og, stand) = opsgenie().await;
    let cfg = format!(
        r#"
[store]
flush_interval = "20ms"
[providers.sim]
type = "mock"
[providers.sim.models.old]
latency_ms = {{ median = 2, p95 = 4 }}
[providers.sim.models.new]
latency_ms = {{ median = 2, p95 = 4 }}
error_rate = 1.0
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "old"
[routes.support.variants.v2]
provider = "sim"
model = "new"
[rollouts.support-v2]
route = "support"
candidate = "v2"
cooldown = "1s"
stages = [ {{ name = "canary-50", percent = 50, min_duration = "1h" }}, {{ name = "full", percent = 100 }} ]
[rollouts.support-v2.guardrails]
window = "30s"
check_interval = "100ms"
error_rate_max = 0.05
catastrophic_error_rate = 0.5
catastrophic_min_requests = 20
[alerts]
max_attempts = 3
[[alerts.opsgenie]]
api_key = "og-test-key"
region = "eu"
url = "{og}"
"#
    );
    let t = TestGateway::start(&cfg).await;
    let client = reqwest::Client::new();

    // Keyed traffic until the candidate's errors trip the kill switch.
    for i in 0..2000 {
        if t.gw.view_of("support-v2").unwrap().stage == "rolled_back" {
            break;
        }
        let _ = client
            .post(format!("{}/v1/chat/completions", t.url))
            .header("x-rampart-routing-key", format!("user-{i}"))
            .json(&chat("support", "hello"))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(t.gw.view_of("support-v2").unwrap().stage, "rolled_back");

    let calls = wait_calls(&stand, 1).await;
    let create = calls.first().expect("a create call after the retry");
    assert_eq!(create.path, "/v2/alerts");
    assert_eq!(create.auth, "GenieKey og-test-key");
    assert_eq!(create.body["alias"], "rampart/support-v2");
    assert_eq!(create.body["priority"], "P1");
    assert_eq!(create.body["entity"], "support-v2");
    assert!(create.body["message"].as_str().unwrap().chars().count() <= 130);
    let details = &create.body["details"];
    assert_eq!(details["stage"], "canary-50");
    assert_eq!(details["action_taken"], "rolled_back");
    let samples: Value = serde_json::from_str(details["samples"].as_str().unwrap()).unwrap();
    assert!(samples["canary"].as_u64().unwrap() >= 20, "{samples}");
    let guardrails: Value = serde_json::from_str(details["guardrails"].as_str().unwrap()).unwrap();
    assert!(
        guardrails.to_string().contains("error_rate"),
        "the evidence names the guardrail: {guardrails}"
    );

    // After the cooldown, a reset closes the alert by its alias.
    let mut reset = false;
    for _ in 0..100 {
        let r = client
            .post(format!("{}/admin/rollouts/support-v2/reset", t.url))
            .json(&json!({"reason": "fixed the candidate"}))
            .send()
            .await
            .unwrap();
        if r.status().is_success() {
            reset = true;
            break;
        }
        assert_eq!(
            r.status(),
            StatusCode::CONFLICT,
            "{}",
            r.text().await.unwrap()
        );
        // Retry interval until the cooldown has passed (bounded by the loop).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reset, "the reset was refused past the cooldown");
    let calls = wait_calls(&stand, 2).await;
    let close = calls.get(1).expect("a close call");
    assert_eq!(close.path, "/v2/alerts/rampart/support-v2/close");
    assert_eq!(close.query, "identifierType=alias");
    assert_eq!(close.auth, "GenieKey og-test-key");
    assert!(
        close.body["note"]
            .as_str()
            .unwrap()
            .contains("fixed the candidate")
    );
    t.shutdown().await;
}
