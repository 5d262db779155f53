//! Merging: the fleet window absorbed from the replicas' rows equals one window fed every
//! signal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_core::config::{Config, RolloutConfig};
use rampart_core::record::Thumbs;
use rampart_core::routing::Cohort;
use rampart_stats::sketch::DdSketch;
use rampart_store::AggregateRow;

use super::super::Window;
use crate::signal::Signal;

const CONFIG: &str = r#"
[providers.sim]
type = "mock"
[providers.sim.models.a]
[providers.sim.models.b]
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "a"
[routes.support.variants.v2]
provider = "sim"
model = "b"
[rollouts.r]
route = "support"
candidate = "v2"
stages = [ { name = "canary-25", percent = 25 }, { name = "full", percent = 100 } ]
[rollouts.r.guardrails]
window = "20s"
p95_latency_max_ratio = 1.5
[[rollouts.r.guardrails.custom]]
name = "tokens"
metric = "completion_tokens"
max_ratio = 1.2
[[rollouts.r.guardrails.custom]]
name = "errors"
metric = "error"
max_increase = 0.1
"#;

fn cfg() -> RolloutConfig {
    Config::from_toml_str(CONFIG)
        .expect("valid config")
        .rollouts["r"]
        .clone()
}

/// A varied stream over seconds 990..1030: both cohorts, errors, refusals, feedback, pairs
/// (some with a cached candidate), integer-valued metrics (so float sums are exact in any
/// order).
fn signals() -> Vec<Signal> {
    let mut out = Vec::new();
    for i in 0..2000i64 {
        let ts_ms = 990_000 + i * 20;
        let cohort = match i % 5 {
            0 => Cohort::Canary,
            4 => Cohort::Unkeyed,
            _ => Cohort::Control,
        };
        out.push(Signal::Request {
            rollout: "r".into(),
            cohort,
            ts_ms,
            error: i % 13 == 0,
            refusal: i % 17 == 0,
            latency_ms: (50 + (i * 37) % 400) as f64,
            ttft_ms: None,
            prompt_tokens: Some(10),
            completion_tokens: Some(100 + (i % 7) as u64),
            cost_usd: None,
        });
        if i % 9 == 0 {
            out.push(Signal::Feedback {
                rollout: "r".into(),
                cohort,
                ts_ms,
                thumbs: [Some(Thumbs::Up), Some(Thumbs::Down), None][(i % 3) as usize],
            });
        }
        if i % 11 == 0 {
            out.push(Signal::Pair {
                rollout: "r".into(),
                ts_ms,
                baseline_error: i % 4 == 0,
                candidate_error: i % 6 == 0,
                baseline_refusal: i % 5 == 0,
                candidate_refusal: i % 3 == 0,
                baseline_latency_ms: (60 + i % 90) as f64,
                candidate_latency_ms: (i % 2 == 0).then_some((70 + i % 120) as f64),
            });
        }
    }
    out
}

fn ts(s: &Signal) -> i64 {
    match s {
        Signal::Request { ts_ms, .. }
        | Signal::Feedback { ts_ms, .. }
        | Signal::Pair { ts_ms, .. } => *ts_ms,
    }
}

fn absorb_all(fleet: &mut Window, rows: &[AggregateRow], window_start: i64) {
    for r in rows {
        let sketch = r.latency.as_ref().map(|b| DdSketch::from_bytes(b).unwrap());
        fleet.absorb(r, sketch.as_ref(), window_start);
    }
}

#[test]
fn the_fleet_window_from_rows_equals_one_window_fed_every_signal() {
    let cfg = cfg();
    let epoch = 1_000_000; // a second boundary: the stage counters compare exactly
    let now = 1_030_500;
    let window_start = (now - 20_000) / 1000;
    let mut local = Window::default();
    local.reset_stage(epoch);
    // Three replicas, each served a third of the signals, before and after the stage began.
    let mut replicas: Vec<Window> = (0..3).map(|_| Window::default()).collect();
    for r in &mut replicas {
        r.reset_stage(0);
    }
    for (i, s) in signals().iter().enumerate() {
        if ts(s) >= epoch {
            local.observe(&cfg, s);
        }
        replicas[i % 3].observe(&cfg, s);
    }
    let mut rows = Vec::new();
    for (n, r) in replicas.iter_mut().enumerate() {
        // Sealed twice, as the controller does every tick: every second flushed exactly once.
        rows.extend(r.seal("r", &format!("r{n}"), now - 15_000));
        rows.extend(r.seal("r", &format!("r{n}"), now));
    }
    assert!(rows.iter().all(|r| r.second < now / 1000));
    let mut fleet = Window::default();
    fleet.reset_stage(epoch);
    // Rows arrive in any order.
    rows.reverse();
    absorb_all(&mut fleet, &rows, window_start);
    // The local window only counts the stage since the epoch; the replicas counted all along.
    let want = local.observations(&cfg, now);
    let got = fleet.observations(&cfg, now);
    assert_eq!(got, want);
    assert!(got.window.canary.requests > 0 && got.stage_canary.requests > 0);
    assert!(got.window.latency.is_some());
    assert!(got.paired_window.unwrap().latency.is_some());
    assert_eq!(got.window.custom.len(), 2);
}

#[test]
fn restaging_from_buckets_or_totals_counts_whole_seconds_since_the_epoch() {
    let cfg = cfg();
    let mut one = Window::default();
    one.reset_stage(0);
    for s in signals() {
        one.observe(&cfg, &s);
    }
    let rows = one.seal("r", "a", 1_031_000);
    let mut fleet = Window::default();
    fleet.reset_stage(0);
    absorb_all(&mut fleet, &rows, 0);
    fleet.restage_from_buckets(1_010_000);
    let mut want = Window::default();
    want.reset_stage(1_010_000);
    for s in signals().iter().filter(|s| ts(s) >= 1_010_000) {
        want.observe(&cfg, s);
    }
    assert_eq!(fleet.stage_canary, want.stage_canary);
    assert_eq!(fleet.stage_control, want.stage_control);
    assert_eq!(fleet.stage_pairs, want.stage_pairs);
    // A late signal never lands in a sealed second.
    let late = Signal::Feedback {
        rollout: "r".into(),
        cohort: Cohort::Canary,
        ts_ms: 995_000,
        thumbs: None,
    };
    one.observe(&cfg, &late);
    let again = one.seal("r", "a", 1_032_000);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].second, 1031);
    assert_eq!(again[0].counts.feedback, 1);
}
