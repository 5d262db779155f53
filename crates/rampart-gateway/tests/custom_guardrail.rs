//! A user-defined guardrail end to end: a candidate whose answers are twice as long trips a
//! `completion_tokens` ratio guardrail, and the audit record names it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{TestGateway, chat, config};
use rampart_store::RolloutStore;

const CUSTOM: &str = r#"
[rollouts.support-v2.guardrails]
window = "60s"
check_interval = "100ms"
min_exposure = 40
[[rollouts.support-v2.guardrails.custom]]
name = "answer_length"
metric = "completion_tokens"
max_ratio = 1.2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longer_answers_trip_a_completion_tokens_ratio_guardrail() {
    let cfg = config(r#"{ name = "canary-50", percent = 50 }"#, CUSTOM).replacen(
        "length_factor = 1.3",
        "length_factor = 2.0",
        1,
    );
    let t = TestGateway::start(&cfg).await;
    assert_eq!(t.gw.view_of("support-v2").unwrap().stage, "canary-50");
    let client = reqwest::Client::new();

    let mut tripped = false;
    for i in 0..3_000u64 {
        let r = client
            .post(format!("{}/v1/chat/completions", t.url))
            .header("x-rampart-routing-key", format!("user-{}", i % 500))
            .json(&chat(
                "support",
                "Please explain how to reset my password and what happens to my sessions.",
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        if i % 20 == 0 && t.gw.view_of("support-v2").unwrap().stage == "rolled_back" {
            tripped = true;
            break;
        }
    }
    for _ in 0..100 {
        if tripped {
            break;
        }
        tripped = t.gw.view_of("support-v2").unwrap().stage == "rolled_back";
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tripped, "the custom guardrail did not trip");

    // The decision, from the audit log (written by the controller task).
    let mut trip = None;
    for _ in 0..100 {
        let audit = t.store.audit_log("support-v2", 10).unwrap();
        trip = audit.into_iter().find(|e| e.to_state == "rolled_back");
        if trip.is_some() {
            break;
        }
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trip = trip.expect("audit entry for the trip");
    assert_eq!(trip.actor, "controller");
    assert!(
        trip.reason.contains("answer_length"),
        "the reason names the custom guardrail: {}",
        trip.reason
    );
    let g = trip.details["guardrails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "answer_length")
        .expect("the tripped guardrail's report");
    assert_eq!(g["breached"], true);
    let (canary, control) = (
        g["value_canary"].as_f64().unwrap(),
        g["value_control"].as_f64().unwrap(),
    );
    assert!(
        canary > 1.5 * control,
        "canary {canary} vs control {control}"
    );
}
