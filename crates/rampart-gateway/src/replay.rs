//! Offline replay (`rampart replay`): a dataset, or captured prompts, answered by both variants
//! of a rollout through their real providers; the answers become the pairs of an offline stage
//! in the store, and the verdict is the rollout's shadow gates over them
//! ([`rampart_core::replay`]).
//!
//! It runs on an [`offline_plane`]: the gateway's own data plane (providers, judge, embeddings,
//! capture policy, metrics) without a listener, a controller or a routing snapshot, so nothing
//! here can move a rollout.
//!
//! Invariants:
//! - Bounded: at most `concurrency` lines are in flight (each line calls both variants at once;
//!   each call is bounded by `shadow.timeout`). Completed pairs are written in batches of
//!   [`WRITE_BATCH`] directly to the store (not through the lossy request-path queue), so a pair
//!   that was answered is never dropped.
//! - Budgeted: both variants' calls count against `shadow.max_cost_usd_per_day` and
//!   `shadow.max_tokens_per_day` for the run; once either is spent no new line starts (the
//!   judge keeps its own `judge.max_cost_usd_per_day` and sampling, as live; past its
//!   `max_in_flight` a pair waits for the judge instead of going unjudged).
//! - Stoppable: when `stop` fires (Ctrl-C), calls under way are abandoned, every completed pair
//!   is stored, and the run says it was interrupted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rampart_core::compare::{CompareConfig, ComparisonReport, pair_features};
use rampart_core::config::{Config, VariantConfig};
use rampart_core::record::{Pair, PairSide};
use rampart_core::replay::ReplayItem;
use rampart_core::request;
use rampart_core::rollout::PairedCounts;
use rampart_core::routing::key_hash;
use rampart_store::{PairFilter, Store, StoreError, Writer, WriterConfig};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::plane::{DataPlane, PlaneInner, Routing};
use crate::providers::{self, Reply};
use crate::record::{is_refusal, pair_side};
use crate::shadow::ShadowDispatcher;

/// Completed pairs written to the store at once.
pub const WRITE_BATCH: usize = 64;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no rollout `{0}` in the config")]
    UnknownRollout(String),
    #[error("rollout `{rollout}`: {what}")]
    Config { rollout: String, what: String },
    #[error(transparent)]
    Providers(#[from] providers::BuildError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("a store task failed: {0}")]
    Task(String),
}

/// The data plane of an offline run over `store` (module docs). Must be called inside a Tokio
/// runtime. `stop` is its shutdown token: the judge abandons its calls when it fires.
pub fn offline_plane(
    config: Arc<Config>,
    store: Arc<dyn Store>,
    stop: CancellationToken,
) -> Result<DataPlane, ReplayError> {
    let metrics = Arc::new(Metrics::new(&config));
    let providers = providers::build_all(&config, &metrics.providers.retries)?;
    let writer = Writer::spawn(
        store.clone(),
        WriterConfig {
            capacity: config.store.queue_capacity,
            batch_size: config.store.batch_size,
            flush_interval: config.store.flush_interval,
        },
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ok(DataPlane(Arc::new(PlaneInner {
        shadow: ShadowDispatcher::new(&config.shadow),
        judges: crate::judge::Judges::new(&config),
        snapshot: Arc::new(Routing::default()),
        providers,
        metrics,
        store,
        writer,
        clock,
        tasks: TaskTracker::new(),
        shutdown: stop,
        cut: CancellationToken::new(),
        // Nobody listens: replayed pairs are not live evidence.
        signals: crate::signal::channel(1).0,
        telemetry: crate::telemetry::Telemetry::disabled(),
        config,
    })))
}

/// What to replay and where its pairs go.
pub struct ReplayPlan {
    pub rollout: String,
    /// The offline stage the pairs are stored under (`offline-<run>`).
    pub stage: String,
    /// Lines in flight at most (at least 1).
    pub concurrency: usize,
    /// `(line number or index, item)`; the request id of a pair is `<stage>-<number>`.
    pub items: Vec<(usize, ReplayItem)>,
}

/// How far a run got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub stage: String,
    /// Lines to replay.
    pub items: usize,
    /// Lines answered by both sides (or failed) and stored as pairs.
    pub completed: usize,
    /// Pairs where a side failed (included in `completed`).
    pub baseline_errors: u64,
    pub candidate_errors: u64,
    /// Stopped by Ctrl-C before every line was done.
    pub interrupted: bool,
    /// Stopped because the run's budget was spent: `budget_cost` or `budget_tokens`.
    pub budget_stop: Option<String>,
    /// Both variants' spend on the run.
    pub spent_usd: f64,
    pub tokens: u64,
    /// Counts for the `min_pairs` gate.
    #[serde(skip)]
    pub paired: PairedCounts,
}

/// Called after each completed line with the run so far (for a progress bar).
pub type OnProgress<'a> = &'a (dyn Fn(&RunSummary) + Send + Sync);

/// Replays every item (module docs); returns how far it got.
pub async fn run(
    plane: &DataPlane,
    plan: ReplayPlan,
    stop: &CancellationToken,
    on_progress: OnProgress<'_>,
) -> Result<RunSummary, ReplayError> {
    let sides = Sides::of(&plane.config, &plan.rollout)?;
    let shadow = &plane.config.shadow;
    let mut sum = RunSummary {
        stage: plan.stage.clone(),
        items: plan.items.len(),
        ..RunSummary::default()
    };
    let mut pending = plan.items.into_iter();
    let mut in_flight = FuturesUnordered::new();
    let mut done: Vec<Pair> = Vec::new();
    loop {
        while in_flight.len() < plan.concurrency.max(1) && sum.budget_stop.is_none() {
            if let Some(reason) = over_budget(&sum, shadow) {
                sum.budget_stop = Some(reason.to_string());
                break;
            }
            let Some((n, item)) = pending.next() else {
                break;
            };
            let id = format!("{}-{n}", plan.stage);
            in_flight.push(replay_one(plane, &sides, &plan.stage, id, item));
        }
        let pair = tokio::select! {
            biased;
            _ = stop.cancelled() => {
                sum.interrupted = true;
                break;
            }
            next = in_flight.next() => match next {
                Some(pair) => pair,
                None => break,
            },
        };
        count(&mut sum, &pair);
        done.push(pair);
        on_progress(&sum);
        if done.len() >= WRITE_BATCH {
            write(plane, std::mem::take(&mut done)).await?;
        }
    }
    drop(in_flight);
    write(plane, done).await?;
    Ok(sum)
}

/// The comparison report over a run's pairs (the offline stage's, from their stored features).
pub async fn report(
    store: Arc<dyn Store>,
    rollout: &str,
    stage: &str,
) -> Result<ComparisonReport, ReplayError> {
    let (rollout, filter) = (
        rollout.to_string(),
        PairFilter {
            stage: Some(stage.to_string()),
            since_ms: None,
        },
    );
    tokio::task::spawn_blocking(move || {
        crate::report::compare_pairs(&*store, &rollout, &filter, CompareConfig::default())
    })
    .await
    .map_err(|e| ReplayError::Task(e.to_string()))?
    .map_err(ReplayError::from)
}

fn over_budget(
    sum: &RunSummary,
    shadow: &rampart_core::config::ShadowConfig,
) -> Option<&'static str> {
    if shadow
        .max_cost_usd_per_day
        .is_some_and(|c| sum.spent_usd >= c)
    {
        return Some("budget_cost");
    }
    if shadow.max_tokens_per_day.is_some_and(|t| sum.tokens >= t) {
        return Some("budget_tokens");
    }
    None
}

fn count(sum: &mut RunSummary, pair: &Pair) {
    sum.completed += 1;
    let (b, c) = (&pair.baseline, &pair.candidate);
    for side in [b, c] {
        sum.spent_usd += side.cost_usd;
        sum.tokens += side.prompt_tokens + side.completion_tokens;
    }
    let p = &mut sum.paired;
    p.pairs += 1;
    p.baseline_errors += u64::from(b.error.is_some());
    p.candidate_errors += u64::from(c.error.is_some());
    p.baseline_refusals += u64::from(b.refusal);
    p.candidate_refusals += u64::from(c.refusal);
    sum.baseline_errors = p.baseline_errors;
    sum.candidate_errors = p.candidate_errors;
}

/// Stores pairs under the capture policy, on a blocking thread.
async fn write(plane: &DataPlane, mut pairs: Vec<Pair>) -> Result<(), ReplayError> {
    if pairs.is_empty() {
        return Ok(());
    }
    for p in &mut pairs {
        crate::capture::pair(&plane.config.store, p);
    }
    let store = plane.store.clone();
    tokio::task::spawn_blocking(move || store.insert_pairs(&pairs))
        .await
        .map_err(|e| ReplayError::Task(e.to_string()))??;
    Ok(())
}

/// The rollout's route and its two variants.
struct Sides {
    rollout: String,
    route: String,
    baseline: Arc<VariantConfig>,
    candidate: Arc<VariantConfig>,
}

impl Sides {
    fn of(config: &Config, rollout: &str) -> Result<Sides, ReplayError> {
        let cfg = config
            .rollouts
            .get(rollout)
            .ok_or_else(|| ReplayError::UnknownRollout(rollout.to_string()))?;
        let variant = |name: &str| {
            config
                .routes
                .get(&cfg.route)
                .and_then(|r| r.variants.get(name))
                .cloned()
                .ok_or_else(|| ReplayError::Config {
                    rollout: rollout.to_string(),
                    what: format!("route `{}` has no variant `{name}`", cfg.route),
                })
        };
        let baseline = config
            .routes
            .get(&cfg.route)
            .map(|r| r.baseline.clone())
            .unwrap_or_default();
        Ok(Sides {
            rollout: rollout.to_string(),
            route: cfg.route.clone(),
            baseline: variant(&baseline)?,
            candidate: variant(&cfg.candidate)?,
        })
    }
}

/// One line: both variants at once, then the pair with its features (and the judge's and the
/// embeddings' verdicts when configured).
async fn replay_one(
    plane: &DataPlane,
    sides: &Sides,
    stage: &str,
    request_id: String,
    item: ReplayItem,
) -> Pair {
    let class = item.class.as_deref();
    let (baseline, candidate) = tokio::join!(
        call(plane, &sides.baseline, &item, class),
        call(plane, &sides.candidate, &item, class),
    );
    let prompt = item.request.raw_messages();
    let mut pair = Pair {
        request_id,
        ts_ms: plane.clock.now_ms(),
        route: sides.route.clone(),
        rollout: sides.rollout.clone(),
        stage: stage.to_string(),
        key_hash: item.routing_key.as_deref().map(key_hash),
        tenant: item.tenant.clone(),
        class: item.class.clone(),
        prompt: plane.config.store.capture_text.then(|| prompt.to_string()),
        prompt_hash: rampart_core::hex::encode(&Sha256::digest(prompt.as_bytes())),
        baseline,
        candidate,
        tools: item.request.field_value("tools"),
        response_format: item.request.field_value("response_format"),
        embedding_similarity: None,
        judge: None,
        features: None,
    };
    pair.embedding_similarity = crate::embeddings::similarity(plane, &pair).await;
    if let Some(admitted) = plane.judges.admit_waiting(plane, &pair).await {
        let body = request::for_variant(&item.request, &sides.candidate, false);
        let question = serde_json::from_slice::<Map<String, Value>>(&body)
            .map(|m| crate::judge::question(&m))
            .unwrap_or_default();
        pair.judge = Some(admitted.judge(plane, &question, &pair).await);
    }
    pair.features = Some(Box::new(pair_features(&pair)));
    pair
}

/// One variant's answer to a line, bounded by `shadow.timeout`.
async fn call(
    plane: &DataPlane,
    variant: &Arc<VariantConfig>,
    item: &ReplayItem,
    class: Option<&str>,
) -> PairSide {
    let started = Instant::now();
    let body = request::for_variant(&item.request, variant, false);
    let timeout: Duration = plane.config.shadow.timeout;
    let (answer, error) = match plane.providers.get(&variant.provider) {
        None => (None, Some(format!("no provider `{}`", variant.provider))),
        Some(p) => match tokio::time::timeout(timeout, p.chat(&body, class, false)).await {
            Ok(Ok(Reply::Json(c))) => (Some(c.answer), None),
            Ok(Ok(Reply::Stream(_))) => {
                (None, Some("provider streamed an unrequested stream".into()))
            }
            Ok(Err(e)) => (None, Some(e.describe())),
            Err(_) => (None, Some("timeout".to_string())),
        },
    };
    let refusal = answer.as_ref().is_some_and(|a| is_refusal(plane, a));
    pair_side(
        plane,
        variant,
        answer.as_ref(),
        started.elapsed(),
        None,
        error,
        refusal,
    )
}
