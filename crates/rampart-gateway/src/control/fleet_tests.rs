//! The leader's fleet window: rebuilt from rows and totals, fed incrementally without counting
//! a row twice, restaged from its buckets, stale rebuild answers ignored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_core::config::{Config, RolloutConfig};
use rampart_core::rollout::CohortCounts;
use rampart_core::routing::Cohort;
use rampart_store::{AggregateRow, AggregateSide, AggregateTotal};

use super::super::cluster::aggregates::Rebuilt;
use super::Fleet;
use crate::control::window::Window;
use crate::signal::Signal;

fn cfg() -> RolloutConfig {
    let toml = r#"
[providers.sim]
type = "mock"
[providers.sim.models.a]
[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "a"
[routes.support.variants.v2]
provider = "sim"
model = "a"
[rollouts.r]
route = "support"
candidate = "v2"
stages = [ { name = "canary-50", percent = 50 }, { name = "full", percent = 100 } ]
[rollouts.r.guardrails]
window = "30s"
"#;
    Config::from_toml_str(toml).unwrap().rollouts["r"].clone()
}

/// One replica's rows: `n` canary requests (every other one an error) in each second of
/// `seconds`.
fn rows(replica: &str, seconds: std::ops::Range<i64>, n: i64) -> Vec<AggregateRow> {
    let cfg = cfg();
    let mut w = Window::default();
    for s in seconds.clone() {
        for i in 0..n {
            w.observe(
                &cfg,
                &Signal::Request {
                    rollout: "r".into(),
                    cohort: Cohort::Canary,
                    ts_ms: s * 1000 + i,
                    error: i % 2 == 0,
                    refusal: false,
                    latency_ms: 20.0,
                    ttft_ms: None,
                    prompt_tokens: None,
                    completion_tokens: None,
                    cost_usd: None,
                },
            );
        }
    }
    w.seal("r", replica, seconds.end * 1000)
}

fn rebuilt(f: &mut Fleet, cfg: &RolloutConfig, now: i64, rows: Vec<AggregateRow>, totals: u64) {
    let ask = f.rebuild("r", cfg, now).expect("a rebuild is due");
    let totals = (totals > 0)
        .then(|| AggregateTotal {
            side: AggregateSide::Canary,
            counts: CohortCounts {
                requests: totals,
                ..CohortCounts::default()
            },
        })
        .into_iter()
        .collect();
    f.rebuilt(
        cfg,
        Rebuilt {
            ask,
            data: Some((rows, totals)),
        },
        now,
    );
}

#[test]
fn rebuilt_then_fed_incrementally_each_row_counts_once() {
    let cfg = cfg();
    let now = 1_000_500;
    let mut f = Fleet::default();
    // A stage that began long before the window: its early part comes as totals.
    f.restage(900_000);
    assert!(f.observations(&cfg, now).is_none(), "not complete yet");
    let ask = f.rebuild("r", &cfg, now).unwrap();
    assert_eq!((ask.window_start, ask.stage_from), (970, Some(900)));
    assert!(f.rebuild("r", &cfg, now).is_none(), "one rebuild at a time");
    f.invalidate();
    f.window.reset_stage(900_000);
    let mut all = rows("a", 975..990, 3);
    all.extend(rows("b", 980..990, 2));
    rebuilt(&mut f, &cfg, now, all.clone(), 100);
    let obs = f.observations(&cfg, now).unwrap();
    assert_eq!(obs.window.canary.requests, 15 * 3 + 10 * 2);
    assert_eq!(obs.stage_canary.requests, 100 + 65);
    // The same rows read again, and new ones.
    for r in all.iter().chain(&rows("b", 990..1000, 2)) {
        f.absorb(&cfg, r, now);
    }
    let obs = f.observations(&cfg, now).unwrap();
    assert_eq!(obs.window.canary.requests, 65 + 20);
    assert_eq!(obs.window.canary.errors, 15 * 2 + 10 + 10);
    assert_eq!(obs.stage_canary.requests, 185);
    assert_eq!(obs.stage_since_ms, 900_000);

    // A new stage inside the buckets: counted from them at once.
    f.restage(995_000);
    let obs = f.observations(&cfg, now).unwrap();
    assert_eq!(obs.stage_canary.requests, 10);
    // One older than what they cover: rebuilt, and a stale answer is ignored.
    let stale = f.rebuild("r", &cfg, now);
    assert!(stale.is_none(), "complete: nothing to rebuild");
    f.restage(10_000);
    assert!(!f.complete);
    let old = f.rebuild("r", &cfg, now).unwrap();
    f.invalidate();
    f.window.reset_stage(10_000);
    f.rebuilt(
        &cfg,
        Rebuilt {
            ask: old,
            data: Some((Vec::new(), Vec::new())),
        },
        now,
    );
    assert!(!f.complete, "an answer to an older generation is ignored");
}
