//! Simulations of whole rollouts through the pure `step`: false trips under A/A traffic and
//! detection time of a refusal regression, sequential vs threshold guardrails.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

#[path = "rollout_common.rs"]
mod common;

use rampart_core::config::{GuardrailMode, RolloutConfig};
use rampart_core::rollout::RolloutState;
use rampart_core::rollout::sim::{ArmBehaviour, Scenario, simulate};

const RUNS: u64 = 500;

/// One canary stage held for the whole run (min_duration longer than the run).
fn single_stage(percent: f64, mode: GuardrailMode) -> RolloutConfig {
    common::rollout(
        vec![common::stage("canary", percent, 0.0, 10 * 3600, None)],
        mode,
    )
}

fn false_trip_rate(percent: f64, mode: GuardrailMode, duration_s: u64) -> f64 {
    let cfg = single_stage(percent, mode);
    let scenario = Scenario {
        total_rps: 50.0,
        baseline: ArmBehaviour::default(),
        candidate: ArmBehaviour::default(),
        regression_at_s: 0,
        duration_s,
    };
    let trips = (0..RUNS)
        .filter(|seed| {
            simulate(&cfg, &RolloutState::new(0), &scenario, 1000 + seed)
                .tripped_at_s
                .is_some()
        })
        .count();
    trips as f64 / RUNS as f64
}

/// Detection times (s) of a +5 point refusal regression present from the stage's start.
fn detection(mode: GuardrailMode) -> (Vec<u64>, usize) {
    let cfg = single_stage(5.0, mode);
    let baseline = ArmBehaviour::default();
    let candidate = ArmBehaviour {
        refusal_rate: baseline.refusal_rate + 0.05,
        ..baseline
    };
    let scenario = Scenario {
        total_rps: 50.0,
        baseline,
        candidate,
        regression_at_s: 0,
        duration_s: 1800,
    };
    let mut times = Vec::new();
    let mut missed = 0;
    for seed in 0..RUNS {
        match simulate(&cfg, &RolloutState::new(0), &scenario, 7000 + seed).tripped_at_s {
            Some(t) => times.push(t),
            None => missed += 1,
        }
    }
    times.sort_unstable();
    (times, missed)
}

fn median(v: &[u64]) -> Option<u64> {
    v.get(v.len() / 2).copied()
}

#[test]
fn aa_false_trips_at_1_percent() {
    aa(1.0);
}

#[test]
fn aa_false_trips_at_5_percent() {
    aa(5.0);
}

fn aa(percent: f64) {
    {
        let seq = false_trip_rate(percent, GuardrailMode::Sequential, 3600);
        let thr = false_trip_rate(percent, GuardrailMode::Threshold, 3600);
        println!(
            "A/A {percent}% canary, 50 req/s, 1 h, {RUNS} runs: sequential false trips {:.1}%, threshold {:.1}%",
            seq * 100.0,
            thr * 100.0
        );
        assert!(
            seq <= 0.01,
            "sequential false-trip rate {seq} at {percent}%"
        );
    }
}

#[test]
fn refusal_regression_is_caught_within_a_minute() {
    let (seq, seq_missed) = detection(GuardrailMode::Sequential);
    let (thr, thr_missed) = detection(GuardrailMode::Threshold);
    println!(
        "+5 pt refusals at 5% canary, 50 req/s: sequential median {:?} s (p90 {:?}, missed {seq_missed}); threshold median {:?} s (missed {thr_missed})",
        median(&seq),
        seq.get(seq.len() * 9 / 10),
        median(&thr),
    );
    assert_eq!(seq_missed, 0);
    assert!(
        median(&seq).is_some_and(|m| m <= 60),
        "median {:?}",
        median(&seq)
    );
}
