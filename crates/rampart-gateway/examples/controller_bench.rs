//! The leader's evaluation time against the event rate, side by side at 1,000 and at 10,000
//! aggregated events/s. Three replicas share the traffic; each keeps its own window and seals
//! its seconds into aggregate rows (what it flushes). The leader's fleet window holds a full
//! 5-minute window of those rows; one check is what the leader does per check interval:
//! decode and absorb the newest second's rows of the three replicas (its incremental read's
//! new rows), then the window's observations and the pure `step`. A row has a size bounded by
//! the number of latency buckets, not by the traffic, and a check merges one bucket per second
//! of the window, so the time should not depend on the rate; this shows it.
//!
//! `cargo run --release --example controller_bench [-- TRIALS]`: prints one JSON line per rate
//! (median and max over TRIALS checks, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use rampart_core::config::{Config, RolloutConfig};
use rampart_core::rollout::{RolloutState, step};
use rampart_core::routing::Cohort;
use rampart_gateway::control::window::Window;
use rampart_gateway::signal::Signal;
use rampart_stats::sketch::DdSketch;
use rampart_store::AggregateRow;

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

const REPLICAS: usize = 3;
const WINDOW_S: i64 = 300;

/// The rows the replicas flush for seconds `0..seconds` at `rate` events/s in all.
fn replica_rows(cfg: &RolloutConfig, rate: i64, seconds: i64) -> Vec<Vec<AggregateRow>> {
    let mut windows: Vec<Window> = (0..REPLICAS).map(|_| Window::default()).collect();
    let mut by_second = vec![Vec::new(); seconds as usize];
    for s in 0..seconds {
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
            windows[i as usize % REPLICAS].observe(cfg, &sig);
        }
        for (n, w) in windows.iter_mut().enumerate() {
            by_second[s as usize].extend(w.seal("r", &format!("r{n}"), (s + 1) * 1000));
            // Keep the replicas' own windows small: only their rows matter here.
            let _ = w.observations(cfg, (s + 1) * 1000);
        }
    }
    by_second
}

fn absorb(fleet: &mut Window, rows: &[AggregateRow], window_start: i64) {
    for r in rows {
        let sketch = r.latency.as_ref().map(|b| DdSketch::from_bytes(b).unwrap());
        fleet.absorb(r, sketch.as_ref(), window_start);
    }
}

fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("TRIALS"))
        .unwrap_or(200);
    let config = Config::from_toml_str(CONFIG).expect("valid config");
    let cfg = config.rollouts["r"].clone();
    for rate in [1_000i64, 10_000] {
        let rows = replica_rows(&cfg, rate, WINDOW_S + trials as i64);
        let mut fleet = Window::default();
        fleet.reset_stage(0);
        for second in rows.iter().take(WINDOW_S as usize) {
            absorb(&mut fleet, second, 0);
        }
        let state = RolloutState::new(0);
        let mut took = Vec::with_capacity(trials);
        let mut row_bytes = 0usize;
        for t in 0..trials {
            let second = WINDOW_S + t as i64;
            let now = (second + 1) * 1000;
            let new = &rows[second as usize];
            row_bytes = new
                .iter()
                .map(|r| r.latency.as_ref().map_or(0, Vec::len))
                .sum();
            let start = Instant::now();
            absorb(&mut fleet, new, second + 1 - WINDOW_S);
            let obs = fleet.observations(&cfg, now);
            let out = step(&cfg, &state, &obs, now);
            std::hint::black_box(out);
            took.push(start.elapsed().as_secs_f64() * 1e6);
        }
        took.sort_by(f64::total_cmp);
        println!(
            "{{\"events_per_s\":{rate},\"window_events\":{},\"replicas\":{REPLICAS},\"new_rows_per_check\":{},\"sketch_bytes_per_check\":{row_bytes},\"check_us_median\":{:.1},\"check_us_max\":{:.1},\"trials\":{trials}}}",
            rate * WINDOW_S,
            rows[WINDOW_S as usize].len(),
            took[took.len() / 2],
            took[took.len() - 1]
        );
    }
}
