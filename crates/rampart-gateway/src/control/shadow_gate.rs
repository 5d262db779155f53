//! The shadow gate's evidence: the comparison engine's verdict on the pairs of every rollout
//! whose current stage is a shadow stage.
//!
//! A background task (tracked, stops on shutdown) recomputes each verdict from the store on
//! one blocking thread every [`period`] (longer when a pass is slow: it waits at least
//! [`SLOW_FACTOR`] times the last pass's duration, so verdicts never take more than a fifth of
//! one core), and publishes it through an [`ArcSwap`]. The controller loop only loads that
//! snapshot: it never waits on the store or the engine.
//!
//! A pass looks at the stage's newest [`VERDICT_PAIRS`] pairs at most, so its cost does not grow
//! with the stage's traffic (the equivalence interval from 5,000 pairs is about ±0.013 wide),
//! and it runs on a single thread so it never takes both cores from the request path.
//!
//! Invariants:
//! - A verdict covers the pairs recorded in the stage (by name) since the stage's epoch; the
//!   controller uses it only while the rollout is still in that stage and epoch.
//! - On a shadow stage the controller always passes `Some` input to the pure gates: the
//!   verdict's, or an empty one (no equivalence bound) until the first verdict for this epoch
//!   exists, which holds the stage rather than letting it advance on no evidence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rampart_core::compare::{CompareConfig, ShadowGateInput, shadow_gate_input};
use rampart_core::config::RolloutConfig;
use rampart_core::rollout::gates::is_shadow;
use rampart_core::rollout::{Phase, RolloutState, observations};

use rampart_core::config::Config;
use rampart_store::Store;
use tokio_util::sync::CancellationToken;

use super::handle::Statuses;

/// A slow pass is followed by a pause of at least this many times its duration.
pub const SLOW_FACTOR: u32 = 4;

/// The newest pairs of a stage a verdict looks at, at most.
pub const VERDICT_PAIRS: usize = 5_000;

/// The comparison report over the stage's newest pairs (their stored features), computed on
/// the calling thread.
fn stage_report(
    store: &dyn rampart_store::Store,
    rollout: &str,
    stage: &str,
    epoch_ms: i64,
    config: CompareConfig,
) -> Result<rampart_core::compare::ComparisonReport, rampart_store::StoreError> {
    let filter = rampart_store::PairFilter {
        stage: Some(stage.to_string()),
        since_ms: Some(epoch_ms),
    };
    let mut features = store.recent_pair_features(rollout, &filter, VERDICT_PAIRS)?;
    // Oldest first, as a report over the whole stage would see them.
    features.reverse();
    let mut acc = rampart_core::compare::Accumulator::new(config);
    for f in &features {
        acc.push(f);
    }
    Ok(acc.finish())
}

/// The comparison engine's verdict on one shadow stage's pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub stage: String,
    pub epoch_ms: i64,
    pub pairs: u64,
    pub input: ShadowGateInput,
}

/// Latest verdict per rollout.
pub type Verdicts = Arc<ArcSwap<BTreeMap<String, Arc<Verdict>>>>;

/// How often verdicts are recomputed: ten check intervals, between 0.5 s and 5 s.
pub fn period(check_interval: Duration) -> Duration {
    (check_interval * 10).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// The shadow stage a rollout is in, if any: (stage name, epoch).
fn shadow_stage(cfg: &RolloutConfig, state: &RolloutState) -> Option<(String, i64)> {
    let stage = cfg.stages.get(state.stage_index()?)?;
    let running = matches!(state.phase, Phase::Stage { .. } | Phase::Holding { .. });
    (is_shadow(stage) && running).then(|| (stage.name.clone(), state.stage_epoch_ms()))
}

/// What the pure gates get this tick: `None` off shadow stages; on one, the verdict for this
/// stage and epoch, or an input without evidence (which holds the stage) until there is one.
pub fn input_for(
    cfg: &RolloutConfig,
    state: &RolloutState,
    verdicts: &BTreeMap<String, Arc<Verdict>>,
) -> Option<observations::ShadowGateInput> {
    let (stage, epoch) = shadow_stage(cfg, state)?;
    Some(match verdicts.get(&cfg.name) {
        Some(v) if v.stage == stage && v.epoch_ms == epoch => v.input.into(),
        _ => observations::ShadowGateInput {
            equivalence_ci_low: None,
            refusal_increase_significant: None,
            win_rate_ci_low: None,
        },
    })
}

/// What the verdict task reads.
pub struct Gate {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub status: Arc<Statuses>,
    pub shutdown: CancellationToken,
}

/// Recompute verdicts until shutdown.
pub async fn run(gw: Gate, verdicts: Verdicts, period: Duration) {
    let mut pause = period;
    loop {
        tokio::select! {
            _ = gw.shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let started = Instant::now();
        let statuses = gw.status.load_full();
        let mut next = (**verdicts.load()).clone();
        next.retain(|name, _| statuses.contains_key(name));
        for (name, status) in statuses.iter() {
            let Some(cfg) = gw.config.rollouts.get(name) else {
                continue;
            };
            let Some((stage, epoch)) = shadow_stage(cfg, &status.state) else {
                next.remove(name);
                continue;
            };
            let store = gw.store.clone();
            let (rollout, stage_name) = (name.clone(), stage.clone());
            let gates = cfg
                .stages
                .iter()
                .find(|s| s.name == stage)
                .map_or(&cfg.gates, |s| &s.gates);
            let config = crate::report::compare_config(gates);
            let res = tokio::task::spawn_blocking(move || {
                stage_report(store.as_ref(), &rollout, &stage_name, epoch, config)
            })
            .await;
            match res {
                Ok(Ok(report)) => {
                    let v = Verdict {
                        stage,
                        epoch_ms: epoch,
                        pairs: report.pairs,
                        input: shadow_gate_input(&report),
                    };
                    tracing::debug!(rollout = %name, pairs = v.pairs, equivalence_ci_low = ?v.input.equivalence_ci_low, "shadow verdict");
                    next.insert(name.clone(), Arc::new(v));
                }
                Ok(Err(e)) => {
                    tracing::warn!(rollout = %name, error = %e, "cannot compare shadow pairs")
                }
                Err(e) => tracing::error!(rollout = %name, error = %e, "shadow comparison failed"),
            }
        }
        verdicts.store(Arc::new(next));
        pause = period.max(started.elapsed() * SLOW_FACTOR);
    }
}
