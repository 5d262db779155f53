//! The controller task: feeds the pure rollout state machine and carries out its actions.
//!
//! The data plane reports each finished request, feedback and shadow pair as a [`Signal`]
//! through a bounded channel (`try_send`; overflow counted in
//! `rampart_events_dropped_total{reason="controller_queue_full"}`), so the request path never
//! waits on the controller. The task keeps, per rollout, one-second buckets of per-cohort
//! counters, latency sketches and custom guardrails' metric moments over the guardrail window, and
//! counters since the stage began.
//! Every `check_interval` it calls [`rampart_core::rollout::step`] and executes the actions in
//! order: `SetView` is swapped into the data plane at once, then the state is persisted, the
//! audit log written and alerts queued. Operator commands arrive through the same task, so an
//! automatic decision and a manual one never interleave.
//!
//! Shadow stages are also gated on the comparison engine's verdict on the stage's pairs
//! (equivalence, refusals, judge win rate), computed off the loop by [`shadow_gate`].

pub mod shadow_gate;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rampart_core::config::{RecordedMetric, RolloutConfig};
use rampart_core::record::Thumbs;
use rampart_core::rollout::step::{Evaluation, evaluate};
use rampart_core::rollout::{
    Action, CohortCounts, Command, CommandError, CustomMoments, LatencyTail, MetricMoments,
    Observations, PairedCounts, RolloutState, WindowCounts, apply, step,
};
use rampart_core::routing::Cohort;
use rampart_stats::sketch::DdSketch;
use rampart_store::AuditEntry;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::state::Gateway;

/// What the data plane tells the controller.
#[derive(Debug)]
pub enum Signal {
    Request {
        rollout: String,
        cohort: Cohort,
        ts_ms: i64,
        error: bool,
        refusal: bool,
        latency_ms: f64,
        /// Time to the first content token, for a streamed answer.
        ttft_ms: Option<f64>,
        /// Token counts and cost, `None` without an answer.
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
        cost_usd: Option<f64>,
    },
    Feedback {
        rollout: String,
        cohort: Cohort,
        ts_ms: i64,
        thumbs: Option<Thumbs>,
    },
    Pair {
        rollout: String,
        ts_ms: i64,
        baseline_error: bool,
        candidate_error: bool,
        baseline_refusal: bool,
        candidate_refusal: bool,
        baseline_latency_ms: f64,
        /// `None` for a cached candidate answer (kept out of latency statistics).
        candidate_latency_ms: Option<f64>,
    },
}

/// An operator's command and where the answer goes.
pub struct CommandRequest {
    pub rollout: String,
    pub command: Command,
    pub reply: oneshot::Sender<Result<RolloutStatus, CommandError>>,
}

/// What status pages, the CLI and the admin API show for a rollout.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutStatus {
    pub rollout: String,
    pub state: RolloutState,
    pub phase: &'static str,
    pub stage: String,
    pub percent: f64,
    pub shadow_percent: f64,
    pub evaluation: Option<Evaluation>,
    pub stage_control: CohortCounts,
    pub stage_canary: CohortCounts,
    pub stage_pairs: Option<PairedCounts>,
    pub updated_ms: i64,
}

/// Handles the rest of the gateway uses to reach the controller.
pub struct ControllerHandle {
    pub signals: mpsc::Sender<Signal>,
    pub commands: mpsc::Sender<CommandRequest>,
    pub status: ArcSwap<BTreeMap<String, Arc<RolloutStatus>>>,
}

/// The receiving ends, consumed by [`run`].
pub struct ControllerInbox {
    signals: mpsc::Receiver<Signal>,
    commands: mpsc::Receiver<CommandRequest>,
}

pub fn channel(capacity: usize) -> (ControllerHandle, ControllerInbox) {
    let (stx, srx) = mpsc::channel(capacity);
    let (ctx, crx) = mpsc::channel(64);
    (
        ControllerHandle {
            signals: stx,
            commands: ctx,
            status: ArcSwap::from_pointee(BTreeMap::new()),
        },
        ControllerInbox {
            signals: srx,
            commands: crx,
        },
    )
}

#[derive(Default)]
struct Side {
    counts: CohortCounts,
    latency: Option<DdSketch>,
    /// Moments of each custom guardrail's metric, in `guardrails.custom` order (empty when
    /// there are none).
    custom: Vec<MetricMoments>,
}

impl Side {
    fn observe_latency(&mut self, ms: f64) {
        let s = self.latency.get_or_insert_with(DdSketch::default);
        let _ = s.add(ms.max(0.001));
    }
}

#[derive(Default)]
struct Bucket {
    second: i64,
    control: Side,
    canary: Side,
    pairs: PairedCounts,
    baseline_latency: Option<DdSketch>,
    candidate_latency: Option<DdSketch>,
}

struct Runtime {
    cfg: RolloutConfig,
    state: RolloutState,
    buckets: VecDeque<Bucket>,
    stage_since_ms: i64,
    stage_control: CohortCounts,
    stage_canary: CohortCounts,
    stage_pairs: PairedCounts,
    next_check_ms: i64,
    last_eval: Option<Evaluation>,
}

fn merge(into: &mut Option<DdSketch>, from: &Option<DdSketch>) {
    if let Some(f) = from {
        match into {
            Some(i) => {
                let _ = i.merge(f);
            }
            None => *into = Some(f.clone()),
        }
    }
}

/// The value a finished request gives a custom guardrail's metric, `None` when it has none
/// (latency of a failed request, ttft of an unstreamed one, tokens and cost without an answer).
fn metric_value(metric: RecordedMetric, s: &Signal) -> Option<f64> {
    let Signal::Request {
        error,
        refusal,
        latency_ms,
        ttft_ms,
        prompt_tokens,
        completion_tokens,
        cost_usd,
        ..
    } = s
    else {
        return None;
    };
    let ok = !*error;
    match metric {
        RecordedMetric::LatencyMs => ok.then_some(*latency_ms),
        RecordedMetric::TtftMs => ttft_ms.filter(|_| ok),
        RecordedMetric::PromptTokens => prompt_tokens.filter(|_| ok).map(|t| t as f64),
        RecordedMetric::CompletionTokens => completion_tokens.filter(|_| ok).map(|t| t as f64),
        RecordedMetric::CostUsd => cost_usd.filter(|_| ok),
        RecordedMetric::Error => Some(f64::from(u8::from(*error))),
        RecordedMetric::Refusal => Some(f64::from(u8::from(*refusal))),
    }
}

impl Runtime {
    fn bucket(&mut self, ts_ms: i64) -> &mut Bucket {
        let second = ts_ms.div_euclid(1000);
        if self.buckets.back().is_none_or(|b| b.second < second) {
            self.buckets.push_back(Bucket {
                second,
                ..Bucket::default()
            });
        }
        // Late signals land in the newest bucket; they are at most a request's latency late.
        let n = self.buckets.len() - 1;
        &mut self.buckets[n]
    }

    fn reset_stage(&mut self) {
        self.stage_since_ms = self.state.stage_epoch_ms();
        self.stage_control = CohortCounts::default();
        self.stage_canary = CohortCounts::default();
        self.stage_pairs = PairedCounts::default();
    }

    fn observe(&mut self, s: &Signal) {
        match s {
            Signal::Request {
                cohort,
                ts_ms,
                error,
                refusal,
                latency_ms,
                ..
            } => {
                let values: Vec<Option<f64>> = self
                    .cfg
                    .guardrails
                    .custom
                    .iter()
                    .map(|g| metric_value(g.metric, s))
                    .collect();
                let (err, refu) = (u64::from(*error), u64::from(*refusal));
                let stage = match cohort {
                    Cohort::Control => &mut self.stage_control,
                    Cohort::Canary => &mut self.stage_canary,
                    Cohort::Unkeyed => return,
                };
                stage.requests += 1;
                stage.errors += err;
                stage.refusals += refu;
                let b = self.bucket(*ts_ms);
                let side = if *cohort == Cohort::Canary {
                    &mut b.canary
                } else {
                    &mut b.control
                };
                side.counts.requests += 1;
                side.counts.errors += err;
                side.counts.refusals += refu;
                if !*error {
                    side.observe_latency(*latency_ms);
                }
                if !values.is_empty() {
                    side.custom.resize(values.len(), MetricMoments::default());
                    for (m, v) in side.custom.iter_mut().zip(values) {
                        if let Some(v) = v {
                            m.push(v);
                        }
                    }
                }
            }
            Signal::Feedback {
                cohort,
                thumbs,
                ts_ms,
                ..
            } => {
                let up = u64::from(*thumbs == Some(Thumbs::Up));
                let down = u64::from(*thumbs == Some(Thumbs::Down));
                let stage = match cohort {
                    Cohort::Control => &mut self.stage_control,
                    Cohort::Canary => &mut self.stage_canary,
                    Cohort::Unkeyed => return,
                };
                stage.feedback += 1;
                stage.thumbs_up += up;
                stage.thumbs_down += down;
                let b = self.bucket(*ts_ms);
                let side = if *cohort == Cohort::Canary {
                    &mut b.canary
                } else {
                    &mut b.control
                };
                side.counts.feedback += 1;
                side.counts.thumbs_up += up;
                side.counts.thumbs_down += down;
            }
            Signal::Pair {
                ts_ms,
                baseline_error,
                candidate_error,
                baseline_refusal,
                candidate_refusal,
                baseline_latency_ms,
                candidate_latency_ms,
                ..
            } => {
                let p = &mut self.stage_pairs;
                p.pairs += 1;
                p.baseline_errors += u64::from(*baseline_error);
                p.candidate_errors += u64::from(*candidate_error);
                p.baseline_refusals += u64::from(*baseline_refusal);
                p.candidate_refusals += u64::from(*candidate_refusal);
                let b = self.bucket(*ts_ms);
                b.pairs.pairs += 1;
                b.pairs.baseline_errors += u64::from(*baseline_error);
                b.pairs.candidate_errors += u64::from(*candidate_error);
                b.pairs.baseline_refusals += u64::from(*baseline_refusal);
                b.pairs.candidate_refusals += u64::from(*candidate_refusal);
                if let Some(c) = candidate_latency_ms
                    && !*baseline_error
                    && !*candidate_error
                {
                    let _ = b
                        .baseline_latency
                        .get_or_insert_with(DdSketch::default)
                        .add(baseline_latency_ms.max(0.001));
                    let _ = b
                        .candidate_latency
                        .get_or_insert_with(DdSketch::default)
                        .add(c.max(0.001));
                }
            }
        }
    }

    fn observations(&mut self, now_ms: i64) -> Observations {
        let window_start =
            (now_ms - self.cfg.guardrails.window.as_millis() as i64).div_euclid(1000);
        while self
            .buckets
            .front()
            .is_some_and(|b| b.second < window_start)
        {
            self.buckets.pop_front();
        }
        let mut control = CohortCounts::default();
        let mut canary = CohortCounts::default();
        let (mut cl, mut tl) = (None, None);
        let mut pairs = PairedCounts::default();
        let (mut bl, mut cdl) = (None, None);
        let mut custom: Vec<CustomMoments> = self
            .cfg
            .guardrails
            .custom
            .iter()
            .map(|g| CustomMoments {
                name: g.name.clone(),
                ..CustomMoments::default()
            })
            .collect();
        for b in &self.buckets {
            control.add(&b.control.counts);
            canary.add(&b.canary.counts);
            for (acc, (c, t)) in custom
                .iter_mut()
                .zip(b.control.custom.iter().zip(b.canary.custom.iter()))
            {
                acc.control.merge(c);
                acc.canary.merge(t);
            }
            merge(&mut cl, &b.control.latency);
            merge(&mut tl, &b.canary.latency);
            pairs.pairs += b.pairs.pairs;
            pairs.baseline_errors += b.pairs.baseline_errors;
            pairs.candidate_errors += b.pairs.candidate_errors;
            pairs.baseline_refusals += b.pairs.baseline_refusals;
            pairs.candidate_refusals += b.pairs.candidate_refusals;
            merge(&mut bl, &b.baseline_latency);
            merge(&mut cdl, &b.candidate_latency);
        }
        let ratio = self.cfg.guardrails.p95_latency_max_ratio;
        let tail = |a: &Option<DdSketch>, b: &Option<DdSketch>| match (a, b, ratio) {
            (Some(a), Some(b), Some(r)) => LatencyTail::from_sketches(a, b, r),
            _ => None,
        };
        pairs.latency = tail(&bl, &cdl);
        let mut stage_pairs = self.stage_pairs;
        stage_pairs.latency = None;
        Observations {
            window: WindowCounts {
                control,
                canary,
                latency: tail(&cl, &tl),
                custom,
            },
            stage_since_ms: self.stage_since_ms,
            stage_control: self.stage_control,
            stage_canary: self.stage_canary,
            paired_window: Some(pairs),
            paired_stage: Some(stage_pairs),
            shadow_gate: None,
        }
    }

    fn status(&self, now_ms: i64) -> RolloutStatus {
        let view = self.state.view(&self.cfg);
        RolloutStatus {
            rollout: self.cfg.name.clone(),
            state: self.state.clone(),
            phase: self.state.phase_name(),
            stage: view.stage,
            percent: view.percent,
            shadow_percent: view.shadow_percent,
            evaluation: self.last_eval.clone(),
            stage_control: self.stage_control,
            stage_canary: self.stage_canary,
            stage_pairs: (self.stage_pairs.pairs > 0).then_some(self.stage_pairs),
            updated_ms: now_ms,
        }
    }
}

/// A rollout's persisted state, or a fresh one starting now. Blocking (start-up only).
/// `bool`: whether it was loaded (a fresh state still has to be persisted).
pub fn load_state(
    store: &dyn rampart_store::Store,
    name: &str,
    now_ms: i64,
) -> (RolloutState, bool) {
    match store.load_rollout_state(name) {
        Ok(Some(json)) => match serde_json::from_str::<RolloutState>(&json) {
            Ok(s) => {
                tracing::info!(rollout = %name, phase = s.phase_name(), "restored rollout state");
                (s, true)
            }
            Err(e) => {
                tracing::error!(rollout = %name, error = %e, "stored rollout state is unreadable; starting fresh");
                (RolloutState::new(now_ms), false)
            }
        },
        Ok(None) => (RolloutState::new(now_ms), false),
        Err(e) => {
            tracing::error!(rollout = %name, error = %e, "cannot load rollout state; starting fresh");
            (RolloutState::new(now_ms), false)
        }
    }
}

/// Build the runtimes from the states restored at start-up.
async fn restore(
    gw: &Gateway,
    restored: BTreeMap<String, (RolloutState, bool)>,
) -> BTreeMap<String, Runtime> {
    let now = gw.clock.now_ms();
    let mut out = BTreeMap::new();
    for (name, (state, loaded)) in restored {
        let Some(cfg) = gw.config.rollouts.get(&name) else {
            continue;
        };
        let mut rt = Runtime {
            cfg: cfg.clone(),
            state,
            buckets: VecDeque::new(),
            stage_since_ms: 0,
            stage_control: CohortCounts::default(),
            stage_canary: CohortCounts::default(),
            stage_pairs: PairedCounts::default(),
            next_check_ms: now,
            last_eval: None,
        };
        rt.reset_stage();
        publish_trip_metric(gw, &rt);
        if !loaded {
            persist(gw, &rt).await;
        }
        out.insert(name, rt);
    }
    out
}

fn publish_trip_metric(gw: &Gateway, rt: &Runtime) {
    let tripped = i64::from(rt.state.phase_name() == "rolled_back");
    gw.metrics
        .rollout
        .kill_switch_tripped
        .get_or_create(&crate::metrics::rollout_labels(&rt.cfg.name))
        .set(tripped);
}

async fn persist(gw: &Gateway, rt: &Runtime) {
    let json = match serde_json::to_string(&rt.state) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize rollout state");
            return;
        }
    };
    let store = gw.store.clone();
    let name = rt.cfg.name.clone();
    let now = gw.clock.now_ms();
    match tokio::task::spawn_blocking(move || store.save_rollout_state(&name, &json, now)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(rollout = %rt.cfg.name, error = %e, "cannot persist rollout state")
        }
        Err(e) => tracing::error!(error = %e, "persist task failed"),
    }
}

/// Carry out a transition's actions, in order.
async fn execute(gw: &Gateway, rt: &Runtime, actions: Vec<Action>) {
    for action in actions {
        match action {
            Action::SetView { view } => {
                gw.set_view(view);
                publish_trip_metric(gw, rt);
            }
            Action::PersistState => persist(gw, rt).await,
            Action::Audit {
                action,
                actor,
                from,
                to,
                reason,
                details,
                at_ms,
            } => {
                tracing::info!(rollout = %rt.cfg.name, %action, %actor, %from, %to, %reason, "rollout transition");
                let entry = AuditEntry {
                    rollout: rt.cfg.name.clone(),
                    ts_ms: at_ms,
                    actor,
                    action,
                    from_state: from,
                    to_state: to,
                    reason,
                    details,
                };
                let store = gw.store.clone();
                match tokio::task::spawn_blocking(move || store.append_audit(&entry)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "cannot write the audit log"),
                    Err(e) => tracing::error!(error = %e, "audit task failed"),
                }
            }
            Action::Alert(alert) => gw.alerts.send(alert),
        }
    }
}

/// The controller loop. Runs until the gateway shuts down.
pub async fn run(
    gw: Gateway,
    mut inbox: ControllerInbox,
    restored: BTreeMap<String, (RolloutState, bool)>,
) {
    let mut rollouts = restore(&gw, restored).await;
    if rollouts.is_empty() {
        // Nothing to control; still drain signals so senders never see a full queue.
        loop {
            tokio::select! {
                _ = gw.shutdown.cancelled() => return,
                s = inbox.signals.recv() => if s.is_none() { return },
                c = inbox.commands.recv() => match c {
                    None => return,
                    Some(c) => { let _ = c.reply.send(Err(CommandError::MissingReason)); }
                },
            }
        }
    }
    let tick = rollouts
        .values()
        .map(|r| r.cfg.guardrails.check_interval)
        .min()
        .unwrap_or(Duration::from_secs(1))
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let verdicts: shadow_gate::Verdicts = Default::default();
    if rollouts.values().any(|r| {
        r.cfg
            .stages
            .iter()
            .any(rampart_core::rollout::gates::is_shadow)
    }) {
        let period = rollouts
            .values()
            .map(|r| shadow_gate::period(r.cfg.guardrails.check_interval))
            .min()
            .unwrap_or(Duration::from_secs(5));
        gw.tasks
            .spawn(shadow_gate::run(gw.clone(), verdicts.clone(), period));
    }
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    publish_status(&gw, &rollouts);
    loop {
        tokio::select! {
            biased;
            _ = gw.shutdown.cancelled() => break,
            Some(cmd) = inbox.commands.recv() => {
                let now = gw.clock.now_ms();
                let Some(rt) = rollouts.get_mut(&cmd.rollout) else { continue };
                match apply(&rt.cfg, &rt.state, &cmd.command, now) {
                    Ok((state, actions)) => {
                        let epoch_changed = state.stage_epoch_ms() != rt.state.stage_epoch_ms();
                        rt.state = state;
                        if epoch_changed {
                            rt.reset_stage();
                        }
                        execute(&gw, rt, actions).await;
                        let _ = cmd.reply.send(Ok(rt.status(now)));
                    }
                    Err(e) => { let _ = cmd.reply.send(Err(e)); }
                }
                publish_status(&gw, &rollouts);
            }
            Some(sig) = inbox.signals.recv() => {
                let name = match &sig {
                    Signal::Request { rollout, .. } | Signal::Feedback { rollout, .. } | Signal::Pair { rollout, .. } => rollout,
                };
                if let Some(rt) = rollouts.get_mut(name) {
                    rt.observe(&sig);
                }
                // Drain what is already queued without yielding per signal.
                while let Ok(sig) = inbox.signals.try_recv() {
                    let name = match &sig {
                        Signal::Request { rollout, .. } | Signal::Feedback { rollout, .. } | Signal::Pair { rollout, .. } => rollout,
                    };
                    if let Some(rt) = rollouts.get_mut(name) {
                        rt.observe(&sig);
                    }
                }
            }
            _ = interval.tick() => {
                let now = gw.clock.now_ms();
                for rt in rollouts.values_mut() {
                    if now < rt.next_check_ms {
                        continue;
                    }
                    rt.next_check_ms = now + rt.cfg.guardrails.check_interval.as_millis() as i64;
                    let mut obs = rt.observations(now);
                    obs.shadow_gate = shadow_gate::input_for(&rt.cfg, &rt.state, &verdicts.load());
                    rt.last_eval = Some(evaluate(&rt.cfg, &rt.state, &obs, now));
                    let (state, actions) = step(&rt.cfg, &rt.state, &obs, now);
                    if !actions.is_empty() {
                        let epoch_changed = state.stage_epoch_ms() != rt.state.stage_epoch_ms();
                        rt.state = state;
                        if epoch_changed {
                            rt.reset_stage();
                        }
                        execute(&gw, rt, actions).await;
                    }
                }
                publish_status(&gw, &rollouts);
            }
        }
    }
}

fn publish_status(gw: &Gateway, rollouts: &BTreeMap<String, Runtime>) {
    let now = gw.clock.now_ms();
    let map = rollouts
        .iter()
        .map(|(k, rt)| (k.clone(), Arc::new(rt.status(now))))
        .collect();
    gw.controller.status.store(Arc::new(map));
}
