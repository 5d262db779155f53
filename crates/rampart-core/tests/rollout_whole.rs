//! False alarms over a whole rollout, not one hour: the README's example rollout
//! (`examples/quickstart.toml`) simulated end to end through the pure `step`, every stage at its
//! `min_duration` and then the baseline's warm period (the kill switch stays armed), at 50 req/s
//! with identical arms and every guardrail on, 500 seeded runs.
//!
//! The property: at most 1 % of whole rollouts see a false trip (kill switch) or a false hold
//! (a page for a human). `guardrails.alpha` is not split across stages or guardrails for this
//! (see the README, "False alarms over a whole rollout").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use rampart_core::config::{Config, RolloutConfig};
use rampart_core::rollout::RolloutState;
use rampart_core::rollout::sim::{ArmBehaviour, Scenario, SimRun, simulate};

const RUNS: u64 = 500;

fn example_rollout() -> RolloutConfig {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.toml");
    let config = Config::from_path(&path).unwrap();
    config.rollouts.get("support-v2").unwrap().clone()
}

/// The runs for seeds `0..RUNS`, spread over the machine's cores (each run is independent and
/// seeded, so the split does not change any result).
fn runs(cfg: &RolloutConfig, scenario: &Scenario) -> Vec<SimRun> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut out: Vec<(u64, SimRun)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..RUNS)
                        .step_by(threads as usize)
                        .map(|seed| {
                            let run = simulate(cfg, &RolloutState::new(0), scenario, 90_000 + seed);
                            (seed, run)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    out.sort_by_key(|r| r.0);
    out.into_iter().map(|r| r.1).collect()
}

#[test]
fn the_example_rollout_raises_at_most_one_percent_false_alarms_end_to_end() {
    let cfg = example_rollout();
    let g = &cfg.guardrails;
    assert!(
        g.error_rate_max.is_some()
            && g.p95_latency_max_ratio.is_some()
            && g.refusal_rate_max_increase.is_some()
            && g.thumbs_down_max_ratio.is_some(),
        "the example should have every guardrail on: {g:?}"
    );
    let check_s = g.check_interval.as_secs();
    let stages: u64 = cfg.stages.iter().map(|s| s.min_duration.as_secs()).sum();
    let scenario = Scenario {
        total_rps: 50.0,
        baseline: ArmBehaviour::default(),
        candidate: ArmBehaviour::default(),
        regression_at_s: 0,
        duration_s: stages + cfg.keep_baseline_warm.as_secs() + 86_400,
    };
    let all = runs(&cfg, &scenario);

    let mut alarms: BTreeMap<String, u64> = BTreeMap::new();
    let (mut finished, mut alarmed) = (0, 0);
    for run in &all {
        let mut any = false;
        for (at, action, from, _) in &run.transitions {
            match action.as_str() {
                "kill_switch" | "hold" => {
                    println!("{action} in {from} at {at} s");
                    *alarms.entry(format!("{action} in {from}")).or_default() += 1;
                    any = true;
                }
                "advance" | "complete" | "warm_period_over" => {}
                other => panic!("unexpected transition {other}"),
            }
        }
        alarmed += u64::from(any);
        if run.final_state.phase_name() == "ready_to_decommission" {
            finished += 1;
            // End to end: each stage below 100 % advanced at the first check after its
            // min_duration (its gates had their samples by then), reaching the 100 % stage
            // completed the rollout, and the warm period ran in full with the kill switch armed.
            let ramp = cfg.stages.iter().filter(|s| s.percent < 100.0);
            let mut epoch = 0;
            for (stage, (at, ..)) in ramp.zip(&run.transitions) {
                let due = epoch + stage.min_duration.as_secs();
                assert_eq!(*at, due.div_ceil(check_s) * check_s, "{}", stage.name);
                epoch = *at;
            }
            let (at, action, ..) = run.transitions.last().unwrap();
            assert_eq!(action, "warm_period_over");
            let due = epoch + cfg.keep_baseline_warm.as_secs();
            assert_eq!(*at, due.div_ceil(check_s) * check_s);
        }
    }
    println!(
        "{RUNS} whole rollouts of the README example (identical arms, 50 req/s): {finished} \
         reached ready_to_decommission; {alarmed} ({:.1} %) had a false alarm: {alarms:?}",
        100.0 * alarmed as f64 / RUNS as f64
    );
    assert_eq!(
        finished + alarmed,
        RUNS,
        "a run neither finished nor alarmed"
    );
    assert!(
        alarmed * 100 <= RUNS,
        "false alarms in {alarmed} of {RUNS} whole rollouts: {alarms:?}"
    );
}
