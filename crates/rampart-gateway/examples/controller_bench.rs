//! The controller's evaluation time against the event rate: one check (the guardrail window's
//! observations plus the pure `step`) over a full 5-minute window fed at 1,000 and at 10,000
//! events/s, side by side. The window keeps per-second buckets of counts and mergeable latency
//! sketches, so a check merges 300 buckets whatever the rate; this shows it.
//!
//! `cargo run --release --example controller_bench [-- TRIALS]`: prints one JSON line per rate
//! (median and max over TRIALS checks, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use rampart_core::config::Config;
use rampart_core::rollout::{RolloutState, step};
use rampart_core::routing::Cohort;
use rampart_gateway::control::window::Window;
use rampart_gateway::signal::Signal;

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
stages = [ { name = "canary-25", percent = 25, min_duration = "1h" }, { name = "full", percent = 100 } ]
[rollouts.r.guardrails]
window = "5m"
check_interval = "1s"
error_rate_max = 0.05
p95_latency_max_ratio = 1.5
refusal_rate_max_increase = 0.05
"#;

fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("TRIALS"))
        .unwrap_or(200);
    let config = Config::from_toml_str(CONFIG).expect("valid config");
    let cfg = config.rollouts["r"].clone();
    let window_s: i64 = 300;
    for rate in [1_000i64, 10_000] {
        let mut w = Window::default();
        w.reset_stage(0);
        for s in 0..window_s {
            for i in 0..rate {
                let sig = Signal::Request {
                    rollout: "r".into(),
                    cohort: if i % 4 == 0 {
                        Cohort::Canary
                    } else {
                        Cohort::Control
                    },
                    ts_ms: s * 1000 + i * 1000 / rate,
                    error: i % 97 == 0,
                    refusal: i % 89 == 0,
                    latency_ms: 100.0 + (i % 113) as f64,
                    ttft_ms: None,
                    prompt_tokens: Some(40),
                    completion_tokens: Some(120),
                    cost_usd: Some(0.001),
                };
                w.observe(&cfg, &sig);
            }
        }
        let state = RolloutState::new(0);
        let now = window_s * 1000;
        let mut took: Vec<f64> = (0..trials)
            .map(|_| {
                let t = Instant::now();
                let obs = w.observations(&cfg, now);
                let out = step(&cfg, &state, &obs, now);
                std::hint::black_box(out);
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        took.sort_by(f64::total_cmp);
        println!(
            "{{\"events_per_s\":{rate},\"window_events\":{},\"check_us_median\":{:.1},\"check_us_max\":{:.1},\"trials\":{trials}}}",
            rate * window_s,
            took[took.len() / 2],
            took[took.len() - 1]
        );
    }
}
