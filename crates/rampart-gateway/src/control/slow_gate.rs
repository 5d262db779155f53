//! The slow gates' evidence: per rollout with `[[slow_signals]]`, the moments of its business
//! outcomes per name and cohort since the slow-signal epoch, read from the store off the loop.
//!
//! A background task (tracked, stops on shutdown) re-reads them every [`period`] on a blocking
//! thread (and waits at least [`SLOW_FACTOR`] times a slow pass before the next) and publishes
//! them through an [`ArcSwap`]; the controller only loads that snapshot and hands it to the
//! pure [`rampart_core::rollout::step_slow`]. Invariant: an input is used only for the epoch it
//! was read for (`SlowSignalState::epoch_ms`), so outcomes from before a resume are never used.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rampart_core::config::{Config, RolloutConfig};
use rampart_core::rollout::slow_signals::SlowSignalState;
use rampart_core::rollout::{OutcomeObservations, RolloutState, SlowStep, step_slow};
use rampart_core::routing::Cohort;
use rampart_store::Store;
use tokio_util::sync::CancellationToken;

use super::handle::Statuses;

/// A slow pass is followed by a pause of at least this many times its duration.
pub const SLOW_FACTOR: u32 = 4;

/// One rollout's outcomes since `since_ms`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlowInput {
    pub since_ms: i64,
    pub obs: OutcomeObservations,
}

/// Latest input per rollout.
pub type SlowInputs = Arc<ArcSwap<BTreeMap<String, Arc<SlowInput>>>>;

/// How often outcomes are re-read: a tenth of the shortest slow `check_interval`, between
/// 0.5 s and 10 s.
pub fn period(config: &Config) -> Option<Duration> {
    config
        .rollouts
        .values()
        .flat_map(|r| r.slow_signals.iter().map(|s| s.check_interval / 10))
        .min()
        .map(|d| d.clamp(Duration::from_millis(500), Duration::from_secs(10)))
}

/// The slow gates' step for this tick: `None` when the rollout has no slow signals or no
/// input for its current epoch yet.
pub fn check(
    cfg: &RolloutConfig,
    state: &RolloutState,
    inputs: &BTreeMap<String, Arc<SlowInput>>,
    now_ms: i64,
) -> Option<SlowStep> {
    if cfg.slow_signals.is_empty() {
        return None;
    }
    let input = inputs
        .get(&cfg.name)
        .filter(|i| i.since_ms == SlowSignalState::epoch_ms(state))?;
    Some(step_slow(cfg, state, &input.obs, now_ms))
}

/// What the task reads from.
pub struct Source {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub status: Arc<Statuses>,
    pub shutdown: CancellationToken,
}

fn read(store: &dyn Store, rollout: &str, since_ms: i64) -> Option<OutcomeObservations> {
    let rows = match store.outcomes()?.outcome_moments(rollout, since_ms) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(%rollout, error = %e, "cannot read outcomes");
            return None;
        }
    };
    let mut obs = OutcomeObservations::new();
    for r in rows {
        let entry = obs.entry(r.name).or_default();
        let m = match r.cohort {
            Cohort::Control => &mut entry.control,
            Cohort::Canary => &mut entry.canary,
            Cohort::Unkeyed => continue,
        };
        m.n = r.n;
        m.sum = r.sum;
        m.sum_sq = r.sum_sq;
    }
    Some(obs)
}

/// Re-read outcomes until shutdown.
pub async fn run(src: Source, inputs: SlowInputs, period: Duration) {
    let mut pause = Duration::ZERO;
    loop {
        tokio::select! {
            _ = src.shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let started = Instant::now();
        let statuses = src.status.load_full();
        let mut next = BTreeMap::new();
        for (name, status) in statuses.iter() {
            let Some(cfg) = src.config.rollouts.get(name) else {
                continue;
            };
            if cfg.slow_signals.is_empty() {
                continue;
            }
            let since_ms = SlowSignalState::epoch_ms(&status.state);
            let (store, rollout) = (src.store.clone(), name.clone());
            match tokio::task::spawn_blocking(move || read(store.as_ref(), &rollout, since_ms))
                .await
            {
                Ok(Some(obs)) => {
                    next.insert(name.clone(), Arc::new(SlowInput { since_ms, obs }));
                }
                Ok(None) => {}
                Err(e) => tracing::error!(rollout = %name, error = %e, "outcome read failed"),
            }
        }
        inputs.store(Arc::new(next));
        pause = period.max(started.elapsed() * SLOW_FACTOR);
    }
}
