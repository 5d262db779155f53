//! The live judge: the simulated provider, configured with a position bias, judges shadow pairs
//! through the gateway, each twice with the answers swapped; the verdicts are stored with the
//! pairs, reach the report, and feed the shadow gate's `min_win_rate`.
//!
//! The setup: the candidate answers exactly like the baseline, except that the baseline refuses
//! about 20 % of the prompts (the simulated provider decides refusals by prompt, so the candidate
//! never refuses those). An unbiased judge therefore prefers the candidate on the refused
//! prompts and ties elsewhere: the candidate is never worse. The judge picks the first-shown
//! answer half of the time whatever the answers, so the first ordering alone (baseline shown
//! first) makes the candidate look worse than the baseline (expected rate about 0.30), while
//! the swap-corrected rate does not (expected about 0.55; see `rampart_core::compare::judge`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{TestGateway, chat, config, metric, metrics, wait_pairs};
use rampart_store::PairStore;
use serde_json::Value;

const REQUESTS: u64 = 200;
const FORMAL_CANDIDATE: &str = "[providers.sim.models.new]\nstyle = \"formal\"\nlatency_ms = { median = 5, p95 = 8 }\nlength_factor = 1.3";
const SAME_AS_BASELINE: &str =
    "[providers.sim.models.new]\nstyle = \"casual\"\nlatency_ms = { median = 5, p95 = 8 }";
const BASELINE: &str = "[providers.sim.models.old]\nstyle = \"casual\"";

fn judge_config(min_win_rate: f64) -> String {
    let stages = format!(
        r#"{{ name = "shadow", shadow_percent = 100, min_duration = "0s", gates = {{ mde = 0.2, min_equivalence = 0.0, min_win_rate = {min_win_rate} }} }},
  {{ name = "canary", percent = 10, min_duration = "1h" }}"#
    );
    let extra = r#"[providers.sim.models.judge]
latency_ms = { median = 2, p95 = 4 }
position_bias = 0.5
[routes.support.variants.judge]
provider = "sim"
model = "judge"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
[rollouts.support-v2.judge]
variant = "judge"
sample_percent = 100
max_in_flight = 256
[rollouts.support-v2.guardrails]
check_interval = "100ms""#;
    let cfg = config(&stages, extra);
    assert!(
        cfg.contains(FORMAL_CANDIDATE) && cfg.contains(BASELINE),
        "the harness config changed"
    );
    cfg.replace(FORMAL_CANDIDATE, SAME_AS_BASELINE)
        .replace(BASELINE, &format!("{BASELINE}\nrefusal_rate = 0.2"))
}

/// One keyed request (with an optional prompt class); the user's answer must be a 200.
async fn send(t: &TestGateway, i: u64, class: Option<&str>, text: &str) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", t.url))
        .header("x-rampart-routing-key", format!("user-{i}"));
    if let Some(class) = class {
        req = req.header("x-rampart-class", class);
    }
    let r = req.json(&chat("support", text)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Sends `REQUESTS` shadowed requests with distinct prompts.
async fn traffic(t: &TestGateway) {
    for i in 0..REQUESTS {
        let text = format!("I was charged twice for order {i}, can you refund one of them?");
        send(t, i, None, &text).await;
    }
}

async fn get(t: &TestGateway, path: &str) -> Value {
    reqwest::get(format!("{}{path}", t.url))
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
async fn a_biased_judge_is_swap_corrected_and_its_win_rate_holds_the_stage() {
    // A bar no interval can clear: the stage must hold on the win rate alone.
    let t = TestGateway::start(&judge_config(0.99)).await;
    traffic(&t).await;
    assert_eq!(
        wait_pairs(&t, REQUESTS).await,
        REQUESTS,
        "pairs were not stored in time"
    );

    // Every pair was judged twice and stored with both verdicts and the judge's cost.
    let pairs = t
        .store
        .recent_pairs("support-v2", REQUESTS as usize, None, None)
        .unwrap();
    let refused = pairs.iter().filter(|p| p.baseline.refusal).count();
    assert!(
        (20..=60).contains(&refused) && pairs.iter().all(|p| !p.candidate.refusal),
        "the setup needs baseline refusals only: {refused}"
    );
    for p in &pairs {
        let j = p
            .judge
            .as_ref()
            .unwrap_or_else(|| panic!("not judged: {p:?}"));
        assert!(j.error.is_none() && j.first.is_some() && j.second.is_some() && j.cost_usd > 0.0);
        assert_eq!(j.model, "judge");
    }

    let report = get(&t, "/admin/rollouts/support-v2/report").await;
    let j = &report["judge"];
    assert_eq!(j["judged_pairs"], REQUESTS, "{j}");
    assert_eq!(
        (j["errors"].as_u64(), j["unparsed"].as_u64()),
        (Some(0), Some(0))
    );
    // The bias showed up as orderings that disagree, which count as ties.
    assert!(j["inconsistent"].as_u64().unwrap() > 0, "{j}");
    let f = |k: &str| j[k].as_f64().unwrap_or_else(|| panic!("{k} in {j}"));
    // First position only: the baseline (always shown first) looks better, wrongly.
    assert!(f("uncorrected_ci_high") < 0.5, "{j}");
    // Swap-corrected: the candidate is at least as good, which is the truth here.
    assert!(f("ci_low") > 0.5, "{j}");
    assert!(f("ci_low") <= f("win_rate") && f("win_rate") <= f("ci_high"));
    // The metric counts every judged pair.
    let m = metrics(&t.url).await;
    assert_eq!(
        metric(
            &m,
            "rampart_judge_pairs_total{rollout=\"support-v2\",outcome=\"judged\"}"
        ),
        REQUESTS as f64,
        "{m}"
    );

    // The shadow gate sees the win rate's lower bound and holds the stage on it alone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = get(&t, "/admin/rollouts/support-v2").await;
        assert_eq!(s["stage"], "shadow", "advanced below min_win_rate: {s}");
        if gate(&s, "shadow_win_rate").is_some_and(|g| g["value"].is_number()) {
            break s;
        }
        assert!(Instant::now() < deadline, "no win-rate verdict: {s}");
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let win = gate(&s, "shadow_win_rate").unwrap();
    assert_eq!(win["passed"], false, "{win}");
    for other in ["min_pairs", "shadow_equivalence", "shadow_refusals"] {
        let g = gate(&s, other).unwrap_or_else(|| panic!("no {other} gate: {s}"));
        assert_eq!(g["passed"], true, "{g}");
    }
    t.shutdown().await;
}

#[tokio::test]
async fn a_candidate_the_judge_prefers_advances_on_the_win_rate() {
    let t = TestGateway::start(&judge_config(0.5)).await;
    traffic(&t).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = get(&t, "/admin/rollouts/support-v2").await;
        if s["stage"] == "canary" {
            break;
        }
        assert!(Instant::now() < deadline, "did not leave shadow: {s}");
        // Poll interval of the bounded wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audit = get(&t, "/admin/rollouts/support-v2/events").await;
    let advance = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to_state"] == "canary")
        .unwrap_or_else(|| panic!("no advance in the audit log: {audit}"));
    let win = advance["details"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "shadow_win_rate")
        .unwrap_or_else(|| panic!("advanced without the win-rate gate: {advance}"));
    assert_eq!(win["passed"], true);
    assert!(win["value"].as_f64().unwrap() >= 0.5, "{win}");
    t.shutdown().await;
}

/// The daily cap: once today's judge spend reached it, pairs are stored unjudged (and counted)
/// until the next UTC day of the gateway's clock.
#[tokio::test]
async fn judge_spend_is_capped_per_day() {
    use std::sync::Arc;

    use rampart_gateway::clock::ManualClock;
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let cfg = judge_config(0.99).replace(
        "max_in_flight = 256",
        "max_in_flight = 256\nmax_cost_usd_per_day = 0.000001",
    );
    let t = TestGateway::start_with(&cfg, Some(clock.clone())).await;
    // One request at a time, each pair stored before the next is sent.
    let mut judged = Vec::new();
    for i in 0..4u64 {
        if i == 3 {
            clock.advance_ms(86_400_000);
        }
        send(&t, i, None, &format!("Where is my refund for order {i}?")).await;
        assert_eq!(
            wait_pairs(&t, i + 1).await,
            i + 1,
            "pair {i} was not stored"
        );
        let p = t.store.recent_pairs("support-v2", 1, None, None).unwrap();
        judged.push(p[0].judge.is_some());
    }
    // The first call spends more than the cap; the next two find it spent; a new day resets it.
    assert_eq!(judged, [true, false, false, true]);
    let m = metrics(&t.url).await;
    assert_eq!(
        metric(
            &m,
            "rampart_judge_pairs_total{rollout=\"support-v2\",outcome=\"skipped_budget\"}"
        ),
        2.0,
        "{m}"
    );
    t.shutdown().await;
}

/// The done-means of the swap: with every pair decisive (in one class the baseline refuses and
/// the candidate answers, in the other the reverse), the true preference is the share of the
/// first class. The simulated judge, biased towards the first-shown answer 30 % of the time,
/// judges them live; the swap-corrected interval contains the true preference and the
/// first-ordering interval does not. (Expected: corrected `q/2 + P(1 − q)`, 0.514 for
/// P = 0.52, q = 0.3; first ordering `(1 − q)·P`, 0.364; see `rampart_core::compare::judge`.)
#[tokio::test]
async fn the_swap_corrected_interval_contains_the_true_preference() {
    const PAIRS: u64 = 300;
    const CANDIDATE_BETTER: u64 = 156; // P = 0.52
    // The stage holds (min_duration), so every pair is shadowed.
    let cfg = judge_config(0.99)
        .replace("min_duration = \"0s\"", "min_duration = \"1h\"")
        .replace("position_bias = 0.5", "position_bias = 0.3")
        .replace("refusal_rate = 0.2", "")
        + "\n[[providers.sim.models.old.overrides]]\nclass = \"baseline_refuses\"\nrefusal_rate = 1.0\n\
           [[providers.sim.models.new.overrides]]\nclass = \"candidate_refuses\"\nrefusal_rate = 1.0\n";
    let t = TestGateway::start(&cfg).await;
    for i in 0..PAIRS {
        let class = if i < CANDIDATE_BETTER {
            "baseline_refuses"
        } else {
            "candidate_refuses"
        };
        send(
            &t,
            i,
            Some(class),
            &format!("Why was my transfer {i} declined?"),
        )
        .await;
    }
    assert_eq!(
        wait_pairs(&t, PAIRS).await,
        PAIRS,
        "pairs were not stored in time"
    );
    // Every pair is decisive, so the truth is the share where the candidate answered.
    let pairs = t
        .store
        .recent_pairs("support-v2", PAIRS as usize, None, None)
        .unwrap();
    let candidate_better = pairs
        .iter()
        .filter(|p| p.baseline.refusal && !p.candidate.refusal)
        .count() as u64;
    let baseline_better = pairs
        .iter()
        .filter(|p| !p.baseline.refusal && p.candidate.refusal)
        .count() as u64;
    assert_eq!(
        (candidate_better, baseline_better),
        (CANDIDATE_BETTER, PAIRS - CANDIDATE_BETTER)
    );
    let truth = candidate_better as f64 / PAIRS as f64;

    let report = get(&t, "/admin/rollouts/support-v2/report").await;
    let j = &report["judge"];
    assert_eq!(j["judged_pairs"], PAIRS, "{j}");
    let f = |k: &str| j[k].as_f64().unwrap_or_else(|| panic!("{k} in {j}"));
    assert!(
        f("ci_low") <= truth && truth <= f("ci_high"),
        "swap-corrected [{}, {}] misses {truth}: {j}",
        f("ci_low"),
        f("ci_high")
    );
    assert!(
        f("uncorrected_ci_high") < truth,
        "first-ordering [{}, {}] contains {truth}: {j}",
        f("uncorrected_ci_low"),
        f("uncorrected_ci_high")
    );
    t.shutdown().await;
}

/// Without the answers' text (`store.capture_text = false`) there is nothing to judge: sampled
/// pairs are stored unjudged and counted, never sent to the judge.
#[tokio::test]
async fn pairs_without_text_are_counted_not_judged() {
    let cfg = judge_config(0.99).replace(
        "[store]\nflush_interval = \"20ms\"",
        "[store]\nflush_interval = \"20ms\"\ncapture_text = false",
    );
    assert!(
        cfg.contains("capture_text = false"),
        "the harness config changed"
    );
    let t = TestGateway::start(&cfg).await;
    for i in 0..5 {
        send(&t, i, None, &format!("Where is my refund for order {i}?")).await;
    }
    assert_eq!(wait_pairs(&t, 5).await, 5);
    let pairs = t.store.recent_pairs("support-v2", 5, None, None).unwrap();
    assert!(
        pairs
            .iter()
            .all(|p| p.judge.is_none() && p.baseline.text.is_none())
    );
    let judge_calls = t
        .sim("sim")
        .received()
        .iter()
        .filter(|r| r.body["model"] == "judge")
        .count();
    assert_eq!(judge_calls, 0);
    let m = metrics(&t.url).await;
    assert_eq!(
        metric(
            &m,
            "rampart_judge_pairs_total{rollout=\"support-v2\",outcome=\"skipped_no_text\"}"
        ),
        5.0,
        "{m}"
    );
    t.shutdown().await;
}
