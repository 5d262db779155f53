//! The slow gates' evidence: per rollout, the moments of its business outcomes per name and
//! cohort since the slow-signal epoch, read from the store off the loop, and their summaries
//! ([`rampart_core::outcomes::summarize`]) for the status pages.
//!
//! A background task (tracked, stops on shutdown; only when the store keeps outcomes)
//! re-reads them every [`period`] on a blocking
//! thread (and waits at least [`SLOW_FACTOR`] times a slow pass before the next) and publishes
//! them through an [`ArcSwap`]; the controller only loads that snapshot and hands it to the
//! pure [`rampart_core::rollout::step_slow`]. Invariant: an input is used only for the epoch it
//! was read for (`SlowSignalState::epoch_ms`), so outcomes from before a resume are never used.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rampart_core::config::{Config, RolloutConfig};
use rampart_core::outcomes::{OutcomeSummary, summarize};
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
    /// Per name × cohort, for `rampart status` and the dashboard.
    pub summaries: Vec<OutcomeSummary>,
}

/// Latest input per rollout.
pub type SlowInputs = Arc<ArcSwap<BTreeMap<String, Arc<SlowInput>>>>;

/// Longest pause between two reads (also the period without slow signals).
pub const MAX_PERIOD: Duration = Duration::from_secs(10);

/// How often outcomes are re-read: a tenth of the shortest slow `check_interval`, between
/// 0.5 s and [`MAX_PERIOD`]; [`MAX_PERIOD`] when no rollout has slow signals (the summaries
/// still show on status pages); `None` without rollouts.
pub fn period(config: &Config) -> Option<Duration> {
    if config.rollouts.is_empty() {
        return None;
    }
    let fastest = config
        .rollouts
        .values()
        .flat_map(|r| r.slow_signals.iter().map(|s| s.check_interval / 10))
        .min()
        .unwrap_or(MAX_PERIOD);
    Some(fastest.clamp(Duration::from_millis(500), MAX_PERIOD))
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

fn read(store: &dyn Store, cfg: &RolloutConfig, since_ms: i64) -> Option<SlowInput> {
    let rollout = &cfg.name;
    let rows = match store.outcomes()?.outcome_moments(rollout, since_ms) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(%rollout, error = %e, "cannot read outcomes");
            return None;
        }
    };
    let summaries = summarize(&rows, &cfg.slow_signals);
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
    Some(SlowInput {
        since_ms,
        obs,
        summaries,
    })
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
            let since_ms = SlowSignalState::epoch_ms(&status.state);
            let (store, cfg) = (src.store.clone(), cfg.clone());
            match tokio::task::spawn_blocking(move || read(store.as_ref(), &cfg, since_ms)).await {
                Ok(Some(input)) => {
                    next.insert(name.clone(), Arc::new(input));
                }
                Ok(None) => {}
                Err(e) => tracing::error!(rollout = %name, error = %e, "outcome read failed"),
            }
        }
        inputs.store(Arc::new(next));
        pause = period.max(started.elapsed() * SLOW_FACTOR);
    }
}
