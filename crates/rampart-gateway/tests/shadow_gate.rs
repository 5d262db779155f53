//! The shadow gate: a shadow stage advances only when the comparison engine finds the
//! candidate's answers equivalent to the baseline's, however many pairs and however long.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{TestGateway, chat, config, wait_until};
use rampart_store::PairStore;
use serde_json::Value;

const STAGES: &str = r#"{ name = "shadow", shadow_percent = 100, min_duration = "0s", gates = { mde = 0.2 } },
  { name = "canary", percent = 10, min_duration = "1h" }"#;
const EXTRA: &str = r#"[rollouts.support-v2.guardrails]
check_interval = "100ms""#;
const FORMAL_CANDIDATE: &str = "[providers.sim.models.new]\nstyle = \"formal\"\nlatency_ms = { median = 5, p95 = 8 }\nlength_factor = 1.3";
const SAME_AS_BASELINE: &str =
    "[providers.sim.models.new]\nstyle = \"casual\"\nlatency_ms = { median = 5, p95 = 8 }";
const PAIRS: u64 = 150;
/// Pairs that must be stored before judging (a shadow call may be dropped under load; the
/// stage needs about 35 at `mde = 0.2`).
const STORED: u64 = 100;

async fn start(candidate: &str) -> TestGateway {
    let cfg = config(STAGES, EXTRA);
    assert!(cfg.contains(FORMAL_CANDIDATE), "the harness config changed");
    TestGateway::start(&cfg.replace(FORMAL_CANDIDATE, candidate)).await
}

/// Send `PAIRS` shadowed requests and wait (bounded) until at least `STORED` pairs are stored
/// or the rollout has left the shadow stage.
async fn shadow_traffic(t: &TestGateway) {
    let client = reqwest::Client::new();
    for i in 0..PAIRS {
        let r = client
            .post(format!("{}/v1/chat/completions", t.url))
            .header("x-rampart-routing-key", format!("user-{i}"))
            .header("x-rampart-class", "card_arrival")
            .json(&chat(
                "support",
                &format!("My card number {i} has not arrived, when will it be delivered?"),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    // An equivalent candidate may leave the shadow stage (and stop being mirrored) first.
    while t.store.count_pairs("support-v2").unwrap() < STORED
        && t.gw.view_of("support-v2").unwrap().stage == "shadow"
    {
        assert!(Instant::now() < deadline, "pairs were not stored in time");
        t.gw.writer.flush().await.unwrap();
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status(t: &TestGateway) -> Value {
    reqwest::get(format!("{}/admin/rollouts/support-v2", t.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn gate<'a>(s: &'a Value, name: &str) -> Option<&'a Value> {
    s.pointer("/status/evaluation/gates/reports")?
        .as_array()?
        .iter()
        .find(|g| g["name"] == name)
}

#[tokio::test]
async fn a_candidate_in_another_style_stays_in_shadow() {
    let t = start(FORMAL_CANDIDATE).await;
    shadow_traffic(&t).await;
    // Wait (bounded) until the engine's verdict on the stored pairs reaches the gates.
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = status(&t).await;
        assert_eq!(
            s["stage"], "shadow",
            "advanced on a different answer style: {s}"
        );
        let judged = gate(&s, "shadow_equivalence")
            .is_some_and(|g| g["value"].is_number() && g["samples"].as_u64() >= Some(STORED));
        if judged {
            break s;
        }
        assert!(Instant::now() < deadline, "no equivalence verdict: {s}");
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let eq = gate(&s, "shadow_equivalence").unwrap();
    assert_eq!(eq["passed"], false, "{eq}");
    assert!(eq["value"].as_f64().unwrap() < 0.7, "{eq}");
    // Every other gate is satisfied: only the comparison holds the stage.
    let pairs = gate(&s, "min_pairs").unwrap();
    assert_eq!(pairs["passed"], true, "{pairs}");
    // And it keeps holding over several more checks (each publishes a newer status).
    let mut seen = s["status"]["updated_ms"].as_i64();
    for check in 1..=10 {
        let s = wait_until(&format!("check {check} after the verdict"), || async {
            let s = status(&t).await;
            (s["status"]["updated_ms"].as_i64() > seen).then_some(s)
        })
        .await;
        assert_eq!(s["stage"], "shadow", "{s}");
        seen = s["status"]["updated_ms"].as_i64();
    }
    t.shutdown().await;
}

#[tokio::test]
async fn an_equivalent_candidate_advances() {
    let t = start(SAME_AS_BASELINE).await;
    shadow_traffic(&t).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(&t).await;
        if s["stage"] == "canary" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "an equivalent candidate did not leave shadow: {s}"
        );
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audit: Value = reqwest::get(format!("{}/admin/rollouts/support-v2/events", t.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let advance = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to_state"] == "canary")
        .unwrap_or_else(|| panic!("no advance in the audit log: {audit}"));
    let gates = advance["details"]["gates"].as_array().unwrap();
    let eq = gates
        .iter()
        .find(|g| g["name"] == "shadow_equivalence")
        .unwrap_or_else(|| panic!("advanced without the equivalence gate: {advance}"));
    assert_eq!(eq["passed"], true);
    assert!(eq["value"].as_f64().unwrap() >= 0.7, "{eq}");
    t.shutdown().await;
}
