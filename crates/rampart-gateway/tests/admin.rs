//! The admin API (loopback, no token configured) and feedback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestGateway, chat};
use rampart_store::FeedbackStore;
use serde_json::{Value, json};

const STAGES: &str = r#"
[store]
flush_interval = "20ms"
[providers.sim]
type = "mock"
[providers.sim.models.old]
style = "casual"
latency_ms = { median = 2, p95 = 3 }
[providers.sim.models.new]
style = "formal"
latency_ms = { median = 2, p95 = 3 }
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
stages = [
  { name = "canary-5", percent = 5, min_duration = "1h" },
  { name = "canary-25", percent = 25, min_duration = "1h" },
  { name = "full", percent = 100, min_duration = "1h" },
]
"#;

async fn post(url: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{url}{path}")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn variant_for(url: &str, key: &str, tenant: Option<&str>) -> String {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .header("x-rampart-routing-key", key)
        .json(&chat("support", "hi"));
    if let Some(t) = tenant {
        req = req.header("x-rampart-tenant", t);
    }
    req.send().await.unwrap().headers()["x-rampart-variant"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn operator_actions_move_the_rollout_and_are_audited() {
    let t = TestGateway::start(STAGES).await;
    let u = &t.url;
    let base = "/admin/rollouts/support-v2";

    let (s, list) = get(u, "/admin/rollouts").await;
    assert_eq!(s, 200);
    assert_eq!(list["rollouts"][0]["name"], "support-v2");
    assert_eq!(list["rollouts"][0]["stage"], "canary-5");

    // Validation.
    assert_eq!(post(u, &format!("{base}/pause"), json!({})).await.0, 400);
    assert_eq!(
        post(u, &format!("{base}/pause"), json!({"reason": "  "}))
            .await
            .0,
        400
    );
    assert_eq!(
        post(u, &format!("{base}/explode"), json!({"reason": "x"}))
            .await
            .0,
        404
    );
    let (s, b) = post(u, "/admin/rollouts/nope/pause", json!({"reason": "x"})).await;
    assert_eq!(s, 404);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("known rollouts: support-v2")
    );
    let (s, b) = post(
        u,
        &format!("{base}/resume"),
        json!({"reason": "nothing to resume"}),
    )
    .await;
    assert_eq!(s, 409, "{b}");

    // Pause keeps the split; resume restores the stage.
    let (s, b) = post(
        u,
        &format!("{base}/pause"),
        json!({"reason": "investigating a ticket", "actor": "alice"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"]["phase"], "paused");
    assert_eq!(t.gw.view_of("support-v2").unwrap().percent, 5.0);
    assert_eq!(
        post(
            u,
            &format!("{base}/resume"),
            json!({"reason": "ticket unrelated"})
        )
        .await
        .0,
        200
    );
    assert_eq!(t.gw.view_of("support-v2").unwrap().stage, "canary-5");

    // Promote moves to the next stage at once.
    let (s, b) = post(
        u,
        &format!("{base}/promote"),
        json!({"reason": "looks good"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(t.gw.view_of("support-v2").unwrap().stage, "canary-25");
    let canary_key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| rampart_core::routing::bucket("support-v2", k) < 500)
        .unwrap();
    assert_eq!(variant_for(u, &canary_key, None).await, "v2");

    // Tenant caps apply at once, whatever the stage.
    let r = reqwest::Client::new()
        .put(format!("{u}{base}/tenants/enterprise"))
        .json(&json!({"max_percent": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(variant_for(u, &canary_key, Some("enterprise")).await, "v1");
    assert_eq!(variant_for(u, &canary_key, Some("startup")).await, "v2");
    let r = reqwest::Client::new()
        .put(format!("{u}{base}/tenants/enterprise"))
        .json(&json!({"max_percent": 150}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A cap the store cannot keep (the database locked by another process) is refused with a
    // clear error and not applied: `startup` still sees the canary. The events of the requests
    // above are stored first: a batch of them stuck on the lock would hold the store's write
    // connection for its busy timeout, and the cap's one attempt could then outlast the
    // controller's acknowledgement wait (a 503 "not stored yet" instead of this refusal).
    t.gw.writer.flush().await.unwrap();
    let lock = rusqlite::Connection::open(t.store.path()).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let r = reqwest::Client::new()
        .put(format!("{u}{base}/tenants/startup"))
        .json(&json!({"max_percent": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let err: Value = r.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot store the tenant cap")),
        "{err}"
    );
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    assert_eq!(variant_for(u, &canary_key, Some("startup")).await, "v2");

    // Rollback sends everyone to the baseline, tenant caps included.
    let (s, _) = post(
        u,
        &format!("{base}/rollback"),
        json!({"reason": "manual rollback drill", "actor": "bob"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(variant_for(u, &canary_key, None).await, "v1");
    let (_, st) = get(u, base).await;
    assert_eq!(st["stage"], "rolled_back");
    assert_eq!(st["percent"], 0.0);
    assert_eq!(st["status"]["phase"], "rolled_back");

    // The audit log has every transition, with actor and reason.
    let (s, ev) = get(u, &format!("{base}/events")).await;
    assert_eq!(s, 200);
    let events = ev["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["pause", "resume", "promote", "tenant_cap", "rollback"],
        "{ev}"
    );
    assert_eq!(events[0]["actor"], "alice");
    assert_eq!(events[0]["reason"], "investigating a ticket");
    assert_eq!(events[4]["actor"], "bob");
    assert_eq!(events[4]["to_state"], "rolled_back");

    // Tenant caps survive a restart.
    let (_, dir) = t.shutdown().await;
    let t2 = TestGateway::start_in(STAGES, None, dir).await;
    assert_eq!(
        t2.gw
            .view_of("support-v2")
            .unwrap()
            .tenant_caps
            .get("enterprise"),
        Some(&0.0)
    );
    assert_eq!(t2.gw.view_of("support-v2").unwrap().stage, "rolled_back");
}

#[tokio::test]
async fn feedback_is_stored_against_its_request() {
    let t = TestGateway::start(STAGES).await;
    let u = &t.url;
    let r = reqwest::Client::new()
        .post(format!("{u}/v1/chat/completions"))
        .header("x-rampart-routing-key", "user-1")
        .json(&chat("support", "My card is blocked"))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-rampart-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let cohort = r.headers()["x-rampart-cohort"]
        .to_str()
        .unwrap()
        .to_string();
    let variant = r.headers()["x-rampart-variant"]
        .to_str()
        .unwrap()
        .to_string();

    // Right after the answer, the feedback finds the request.
    let (s, b) = post(u, "/v1/feedback", json!({"request_id": id, "thumbs": "down", "outcome": "edited", "final_text": "Your card is unblocked."})).await;
    assert_eq!(s, 200, "{b}");
    let stored = t.store.feedback_for(&id).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].final_text.as_deref(),
        Some("Your card is unblocked.")
    );

    let m = reqwest::get(format!("{u}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!(
        "rampart_feedback_total{{route=\"support\",variant=\"{variant}\",cohort=\"{cohort}\",kind=\"thumbs_down\"}} 1"
    );
    assert!(m.contains(&line), "missing {line}");

    // Unknown id → 404; bad bodies → 400 with OpenAI-shaped errors; nothing stored.
    let (s, b) = post(
        u,
        "/v1/feedback",
        json!({"request_id": "req_nope", "thumbs": "up"}),
    )
    .await;
    assert_eq!(s, 404);
    assert!(b["error"]["message"].as_str().unwrap().contains("req_nope"));
    for bad in [
        json!({"thumbs": "up"}),
        json!({"request_id": id, "thumbs": "sideways"}),
        json!({"request_id": id, "outcome": "shredded"}),
        json!({"request_id": id}),
        json!({"request_id": id, "thumbs": "up", "stars": 5}),
        json!([1, 2]),
    ] {
        let (s, b) = post(u, "/v1/feedback", bad.clone()).await;
        assert_eq!(s, 400, "{bad} → {b}");
        assert!(b["error"]["message"].is_string());
    }
    let r = reqwest::Client::new()
        .post(format!("{u}/v1/feedback"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(t.store.feedback_for(&id).unwrap().len(), 1);
}

/// Issue 10 item 11: `server.admin_token_env` naming a variable that is not set refuses the
/// start (it used to open the admin API to every loopback client without a word).
#[tokio::test]
async fn an_unset_admin_token_variable_refuses_the_start() {
    let var = "RAMPART_TEST_ADMIN_TOKEN_NEVER_SET";
    assert!(std::env::var(var).is_err());
    let cfg = format!("[server]\nadmin_token_env = \"{var}\"\n{STAGES}");
    let config = rampart_core::config::Config::from_toml_str(&cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        std::sync::Arc::new(rampart_store::SqliteStore::open(&dir.path().join("r.db")).unwrap());
    let err = match rampart_gateway::Gateway::build(config, store, Default::default()) {
        Ok(_) => panic!("the gateway started without its admin token"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(var) && err.contains("not set"),
        "the error names the variable: {err}"
    );
}
