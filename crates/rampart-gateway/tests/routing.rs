//! Sticky routing through the real HTTP path: shares, stickiness across requests and stages,
//! and the bucket function against values computed independently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestGateway, chat, config};
use rampart_core::rollout::{Command, CommandKind};
use rampart_core::routing::{bucket, shadow_bucket};

/// Expected buckets computed outside rampart, with Python's hashlib, from DESIGN.md's formula:
/// `int.from_bytes(sha256(f"{salt}.{key}".encode()).digest()[:8], "big") % 10000`.
#[test]
fn bucket_matches_independently_computed_values() {
    let cases = [
        ("support-v2", "user-1", 2052),
        ("support-v2", "user-42", 3458),
        ("rollout-x", "alice@example.com", 7132),
        ("s", "Ünïcödé-ключ", 4037),
    ];
    for (salt, key, expected) in cases {
        assert_eq!(bucket(salt, key), expected, "bucket({salt:?}, {key:?})");
    }
    assert_eq!(shadow_bucket("support-v2", "user-1"), 1501);
}

async fn cohort_of(client: &reqwest::Client, url: &str, key: &str) -> String {
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .header("x-rampart-routing-key", key)
        .json(&chat("support", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["x-rampart-cohort"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn canary_share_stickiness_and_ramp_monotonicity() {
    let mut cfg = config(
        r#"{ name = "c1", percent = 1, min_duration = "1h" },
  { name = "c5", percent = 5, min_duration = "1h" },
  { name = "c25", percent = 25, min_duration = "1h" }"#,
        "",
    );
    // Fast simulated provider so 10k keys stay quick.
    cfg = cfg.replace("median = 5, p95 = 8", "median = 0.05, p95 = 0.1");
    let t = TestGateway::start(&cfg).await;
    let client = reqwest::Client::new();
    let keys: Vec<String> = (0..10_000).map(|i| format!("synthetic-user-{i}")).collect();

    let mut at = std::collections::BTreeMap::new();
    for (i, stage) in ["c1", "c5", "c25"].into_iter().enumerate() {
        if i > 0 {
            // Every change of the routing view goes through the controller.
            let promote = Command::new(CommandKind::Promote, "test", "next stage");
            t.gw.command("support-v2", promote).await.unwrap();
        }
        assert_eq!(t.gw.view_of("support-v2").unwrap().stage, stage);
        // Query through HTTP in parallel batches.
        let mut canary = std::collections::BTreeSet::new();
        for chunk in keys.chunks(200) {
            let futs = chunk.iter().map(|k| {
                let client = client.clone();
                let url = t.url.clone();
                let k = k.clone();
                async move { (k.clone(), cohort_of(&client, &url, &k).await) }
            });
            for (k, c) in futures_util::future::join_all(futs).await {
                assert!(c == "canary" || c == "control", "{c}");
                if c == "canary" {
                    canary.insert(k);
                }
            }
        }
        at.insert(stage, canary);
    }

    let share5 = at["c5"].len() as f64 / keys.len() as f64;
    assert!(
        (0.045..=0.055).contains(&share5),
        "5% stage share was {share5}"
    );
    let share1 = at["c1"].len() as f64 / keys.len() as f64;
    assert!(
        (0.005..=0.015).contains(&share1),
        "1% stage share was {share1}"
    );
    // Everyone in the canary at 1% stays in it at 5% and 25%.
    assert!(at["c1"].is_subset(&at["c5"]));
    assert!(at["c5"].is_subset(&at["c25"]));

    // Repeated requests keep each key in its cohort (at the last stage, 25%).
    for k in keys.iter().step_by(50) {
        let expected = if at["c25"].contains(k) {
            "canary"
        } else {
            "control"
        };
        for _ in 0..3 {
            assert_eq!(cohort_of(&client, &t.url, k).await, expected, "key {k}");
        }
    }
}
