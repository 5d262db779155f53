//! The controller task: feeds the pure rollout state machine and carries out its actions.
//!
//! The data plane reports each finished request, feedback and shadow pair as a
//! [`Signal`](crate::signal::Signal) through a bounded channel, so the request path never waits
//! on the controller. The task keeps, per rollout, a [`Window`] of what it measured. Every
//! `check_interval` it calls [`rampart_core::rollout::step`] and executes the actions in order:
//! `SetView` is swapped into the data plane at once, then the state is persisted, the audit log
//! written and alerts queued. Operator orders arrive through the same task (the
//! [`ControlHandle`](super::handle::ControlHandle)), so an automatic decision, a manual one and
//! a tenant cap never interleave, and nothing else writes the routing snapshot.
//!
//! Shadow stages are also gated on the comparison engine's verdict on the stage's pairs
//! (equivalence, refusals, judge win rate), computed off the loop by [`shadow_gate`].
//!
//! With several replicas ([`super::cluster`]) every replica runs this loop: each applies the
//! operator orders it receives (as compare-and-set writes, see [`super::changes`]) and adopts
//! the changes other replicas stored; only the replica holding the controller's lease
//! evaluates gates and guardrails, and the others apply nothing of their own but a kill-switch
//! trip over their own traffic.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rampart_core::config::Config;
use rampart_core::outcomes::OutcomeSummary;
use rampart_core::rollout::step::evaluate;
use rampart_core::rollout::{Action, RolloutState, step};
use rampart_core::routing::RolloutView;
use rampart_store::{AuditEntry, Store, StoredRollout};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::alerts::Alerts;
use super::cluster::aggregates::{self, Answer};
use super::cluster::{ClusterEvent, ClusterHealth};
use super::fleet::{Fleet, FleetLink};
use super::handle::{
    ClusterView, CommandReceiver, CommandRequest, ControlError, Order, RolloutStatus, Statuses,
};
use super::persist::{self, Persister, Write, WriteHealth};
use super::runtime::{Done, Intent, Pending, Runtime};
use super::window::Window;
use super::{shadow_gate, slow_gate};
use crate::clock::Clock;
use crate::metrics::{Metrics, rollout_labels};
use crate::plane::{Routing, Snapshot};
use crate::signal::{Signal, SignalReceiver};

/// What the controller works with: the store, the clock, the routing snapshot it alone
/// publishes, and where it reports.
pub struct Ctx {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub alerts: Alerts,
    pub routing: Arc<Routing>,
    pub status: Arc<Statuses>,
    pub shutdown: CancellationToken,
    /// Side tasks of the controller (the shadow gate, the control writer), waited for at
    /// shutdown.
    pub tasks: TaskTracker,
    /// Whether every control change is stored (shared with `/readyz`).
    pub writes: Arc<WriteHealth>,
    /// Several replicas: this replica's link to the others (`None` on a single node, which
    /// always leads).
    pub cluster: Option<ClusterCtx>,
}

/// What the controller knows of the cluster.
pub struct ClusterCtx {
    pub health: Arc<ClusterHealth>,
    pub on_stale: rampart_core::config::cluster::OnStale,
}

/// How long an operator's order waits for its writes to be stored before the answer says
/// they are not (the change stays applied and its writes keep being retried).
pub const ACK_WAIT: Duration = Duration::from_secs(10);

/// At most this many queued signals are taken in one turn of the loop, so orders and checks
/// are never starved by a flood of signals.
pub const MAX_DRAIN: usize = 1024;

type Reply = oneshot::Sender<Result<RolloutStatus, ControlError>>;

/// The receiving ends the controller consumes.
pub struct Inbox {
    pub signals: SignalReceiver,
    pub commands: CommandReceiver,
    /// Stored changes of other replicas, the lease, staleness (several replicas only).
    pub cluster: Option<mpsc::Receiver<ClusterEvent>>,
}

/// One rollout as restored: its state, the stored version it came from (0: fresh, still to
/// be stored), and its stored tenant caps.
type RestoredRollout = (RolloutState, i64, BTreeMap<String, f64>);

/// Rollouts as restored from the store at start-up, before serving.
pub struct Restored {
    rollouts: BTreeMap<String, RestoredRollout>,
    /// The routing snapshot to serve the first request with.
    pub snapshot: Snapshot,
}

/// Why the controller cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read the state of rollout `{rollout}`: {source}")]
    TenantCaps {
        rollout: String,
        source: rampart_store::StoreError,
    },
}

/// Restore every rollout from the store (blocking; start-up only), so a gateway restarted after
/// a trip comes back rolled back rather than at the old percent, even for its first request.
pub fn restore(config: &Config, store: &dyn Store, now_ms: i64) -> Result<Restored, StartError> {
    let mut out = Restored {
        rollouts: BTreeMap::new(),
        snapshot: Snapshot::default(),
    };
    for r in config.rollouts.values() {
        let row = store
            .load_rollout(&r.name)
            .map_err(|source| StartError::TenantCaps {
                rollout: r.name.clone(),
                source,
            })?;
        let (state, version, caps) = match row {
            Some(row) => {
                let state = parse_state(&r.name, &row.state_json).unwrap_or_else(|| {
                    tracing::error!(rollout = %r.name, "stored rollout state is unreadable; starting fresh");
                    RolloutState::new(now_ms)
                });
                (state, row.version, row.tenant_caps)
            }
            None => (RolloutState::new(now_ms), 0, BTreeMap::new()),
        };
        let mut view = state.view(r);
        view.tenant_caps
            .extend(caps.iter().map(|(t, c)| (t.clone(), *c)));
        out.snapshot
            .by_route
            .insert(r.route.clone(), Arc::new(view));
        out.rollouts.insert(r.name.clone(), (state, version, caps));
    }
    Ok(out)
}

/// A stored state, or `None` (logged) when it cannot be read.
pub(super) fn parse_state(rollout: &str, json: &str) -> Option<RolloutState> {
    match serde_json::from_str::<RolloutState>(json) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(%rollout, error = %e, "stored rollout state is unreadable");
            None
        }
    }
}

pub(super) struct Controller {
    pub(super) ctx: Ctx,
    pub(super) rollouts: BTreeMap<String, Runtime>,
    verdicts: shadow_gate::Verdicts,
    pub(super) persister: Persister,
    slow_inputs: slow_gate::SlowInputs,
    /// Whether this replica evaluates gates and guardrails (always on a single node).
    pub(super) leading: bool,
    /// Cut off from the store for longer than `cluster.stale_after`.
    pub(super) stale: bool,
    /// Several replicas: the aggregates task this replica flushes its window to and the leader
    /// reads the fleet's from ([`super::fleet`]).
    pub(super) fleet: Option<FleetLink>,
}

/// The controller loop. Runs until the gateway shuts down.
pub async fn run(ctx: Ctx, mut inbox: Inbox, restored: Restored) {
    let (persister, writer, mut reports) = persist::channel(persist::WriterDeps {
        store: ctx.store.clone(),
        metrics: ctx.metrics.clone(),
        alerts: ctx.alerts.clone(),
        clock: ctx.clock.clone(),
        health: ctx.writes.clone(),
    });
    ctx.tasks.spawn(writer.run());
    let leading = ctx.cluster.is_none();
    let mut c = Controller {
        ctx,
        rollouts: BTreeMap::new(),
        verdicts: Default::default(),
        persister,
        slow_inputs: Default::default(),
        leading,
        stale: false,
        fleet: None,
    };
    c.restore(restored);
    if c.rollouts.is_empty() {
        return idle(&c.ctx, inbox).await;
    }
    let mut fleet_rows = c.start_fleet();
    c.start_shadow_gate();
    c.start_slow_gate();
    let mut interval = tokio::time::interval(c.tick());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    c.publish_status();
    let mut cluster = inbox.cluster.take();
    loop {
        tokio::select! {
            // Orders first, then what became of the writes and what the cluster says, then
            // checks when due, then signals (bounded per turn): a flood of signals never
            // delays a check or an operator.
            biased;
            _ = c.ctx.shutdown.cancelled() => break,
            Some(cmd) = inbox.commands.recv() => c.on_command(cmd),
            Some(report) = reports.recv() => c.on_report(report),
            Some(ev) = next_event(&mut cluster) => c.on_cluster(ev),
            Some(rows) = next_event(&mut fleet_rows) => c.on_fleet_rows(rows),
            _ = interval.tick() => c.on_tick(),
            Some(sig) = inbox.signals.recv() => c.on_signals(sig, &mut inbox.signals),
        }
    }
}

async fn next_event<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Nothing to control: still drain signals so senders never see a full queue.
async fn idle(ctx: &Ctx, mut inbox: Inbox) {
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            s = inbox.signals.recv() => if s.is_none() { return },
            c = inbox.commands.recv() => match c {
                None => return,
                Some(c) => {
                    let _ = c.reply.send(Err(ControlError::UnknownRollout(c.rollout)));
                }
            },
        }
    }
}

impl Controller {
    /// Build the runtimes from the states restored at start-up; a fresh one is stored.
    fn restore(&mut self, restored: Restored) {
        let now = self.ctx.clock.now_ms();
        for (name, (state, version, caps)) in restored.rollouts {
            let Some(cfg) = self.ctx.config.rollouts.get(&name) else {
                continue;
            };
            let mut rt = Runtime {
                cfg: cfg.clone(),
                state,
                window: Window::default(),
                fleet: (self.ctx.cluster.is_some() && self.ctx.store.aggregates().is_some())
                    .then(Fleet::default),
                caps,
                next_check_ms: now,
                last_eval: None,
                slow_reports: Vec::new(),
                stored_version: version,
                lineage: 0,
                lineage_base: version,
                pending: VecDeque::new(),
            };
            rt.window.reset_stage(rt.state.stage_epoch_ms());
            if let Some(f) = rt.fleet.as_mut() {
                f.window.reset_stage(rt.state.stage_epoch_ms());
            }
            self.publish_trip_metric(&rt);
            self.publish_percent(&rt.view());
            self.rollouts.insert(name.clone(), rt);
            if version == 0 {
                self.queue_state(&name, Vec::new(), Intent::Init, None);
            }
        }
    }

    /// The loop's tick: the shortest check interval, between 50 ms and 1 s.
    fn tick(&self) -> Duration {
        self.rollouts
            .values()
            .map(|r| r.cfg.guardrails.check_interval)
            .min()
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// Several replicas on a store that keeps window aggregates: start the aggregates task;
    /// its answers (the fleet's rows, for the leader) come back on the returned queue.
    fn start_fleet(&mut self) -> Option<mpsc::Receiver<Answer>> {
        let replica = self.ctx.cluster.as_ref()?.health.replica_id.clone();
        self.ctx.store.aggregates()?;
        let (work, work_rx) = mpsc::channel(4);
        let (answers, answers_rx) = mpsc::channel(4);
        self.ctx.tasks.spawn(aggregates::run(aggregates::Task {
            store: self.ctx.store.clone(),
            replica,
            clock: self.ctx.clock.clone(),
            work: work_rx,
            answers,
            shutdown: self.ctx.shutdown.clone(),
        }));
        self.fleet = Some(FleetLink::new(work));
        Some(answers_rx)
    }

    fn start_shadow_gate(&self) {
        let cfgs = || self.rollouts.values().map(|r| &r.cfg);
        if !cfgs().any(|c| c.stages.iter().any(rampart_core::rollout::gates::is_shadow)) {
            return;
        }
        let period = cfgs()
            .map(|c| shadow_gate::period(c.guardrails.check_interval))
            .min()
            .unwrap_or(Duration::from_secs(5));
        let gate = shadow_gate::Gate {
            config: self.ctx.config.clone(),
            store: self.ctx.store.clone(),
            status: self.ctx.status.clone(),
            shutdown: self.ctx.shutdown.clone(),
        };
        self.ctx
            .tasks
            .spawn(shadow_gate::run(gate, self.verdicts.clone(), period));
    }

    fn start_slow_gate(&self) {
        let Some(period) = slow_gate::period(&self.ctx.config) else {
            return;
        };
        let src = slow_gate::Source {
            config: self.ctx.config.clone(),
            store: self.ctx.store.clone(),
            status: self.ctx.status.clone(),
            shutdown: self.ctx.shutdown.clone(),
        };
        self.ctx
            .tasks
            .spawn(slow_gate::run(src, self.slow_inputs.clone(), period));
    }

    fn on_command(&mut self, cmd: CommandRequest) {
        let CommandRequest {
            rollout,
            order,
            reply,
        } = cmd;
        if !self.rollouts.contains_key(&rollout) {
            let _ = reply.send(Err(ControlError::UnknownRollout(rollout)));
            return;
        }
        let done = self.acknowledge(reply);
        let intent = match order {
            Order::Command(command) => Intent::Command(command),
            Order::TenantCap {
                tenant,
                max_percent,
            } => Intent::Cap {
                tenant,
                max_percent,
            },
        };
        self.apply_intent(&rollout, intent, Some(done));
        self.publish_status();
    }

    /// The answer to an operator: sent once the change is stored (or refused), or after
    /// [`ACK_WAIT`] that it is not stored yet (the change stays applied; its writes keep being
    /// retried).
    fn acknowledge(&self, reply: Reply) -> Done {
        let (tx, rx) = oneshot::channel();
        let health = self.persister.health();
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(ACK_WAIT, rx).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(ControlError::Stopped),
                Err(_) => Err(ControlError::NotStored(format!(
                    "the change is applied to routing but not stored yet ({}); rampart keeps \
                     retrying (see /readyz and rampart_control_writes_pending)",
                    health
                        .degraded()
                        .unwrap_or_else(|| "the control writer is busy".into())
                ))),
            };
            let _ = reply.send(answer);
        });
        tx
    }

    /// Take in a signal and whatever else is already queued.
    fn on_signals(&mut self, first: Signal, rx: &mut SignalReceiver) {
        self.observe(&first);
        for _ in 1..MAX_DRAIN {
            let Ok(sig) = rx.try_recv() else { break };
            self.observe(&sig);
        }
    }

    fn observe(&mut self, sig: &Signal) {
        if let Some(rt) = self.rollouts.get_mut(sig.rollout()) {
            rt.window.observe(&rt.cfg, sig);
        }
    }

    /// Check every rollout that is due. A replica that does not lead applies only a
    /// kill-switch trip over its own traffic; the leader of several replicas judges the
    /// fleet's window ([`super::fleet`]), and only a trip on its own until it has it.
    fn on_tick(&mut self) {
        let now = self.ctx.clock.now_ms();
        self.fleet_tick(now);
        let verdicts = self.verdicts.load_full();
        let slow_inputs = self.slow_inputs.load_full();
        let names: Vec<String> = self.rollouts.keys().cloned().collect();
        for name in names {
            let Some(rt) = self.rollouts.get_mut(&name) else {
                continue;
            };
            if now < rt.next_check_ms {
                continue;
            }
            rt.next_check_ms = now + rt.cfg.guardrails.check_interval.as_millis() as i64;
            let local = rt.window.observations(&rt.cfg, now);
            let fleet = match rt.fleet.as_mut() {
                Some(f) if self.leading => Some(f.observations(&rt.cfg, now)),
                _ => None,
            };
            let (mut obs, decides) = match fleet {
                None => (local, self.leading),
                Some(Some(obs)) => (obs, true),
                Some(None) => (local, false),
            };
            obs.shadow_gate = shadow_gate::input_for(&rt.cfg, &rt.state, &verdicts);
            let (mut state, mut actions) = step(&rt.cfg, &rt.state, &obs, now);
            if !decides {
                let trip = state.is_rolled_back() && !rt.state.is_rolled_back();
                if trip {
                    tracing::error!(rollout = %name, "kill switch over this replica's own traffic");
                    rt.enter(state);
                    self.execute(&name, actions, Intent::Auto, None);
                }
                continue;
            }
            rt.last_eval = Some(evaluate(&rt.cfg, &rt.state, &obs, now));
            if actions.is_empty()
                && let Some(slow) = slow_gate::check(&rt.cfg, &rt.state, &slow_inputs, now)
            {
                (state, actions, rt.slow_reports) = (slow.state, slow.actions, slow.reports);
            }
            if actions.is_empty() {
                continue;
            }
            rt.enter(state);
            self.execute(&name, actions, Intent::Auto, None);
        }
        self.publish_status();
    }

    /// Carry out a transition's actions: route at once, page at once, and queue its state and
    /// audit rows as one change for the control writer, which retries it until stored.
    pub(super) fn execute(
        &mut self,
        rollout: &str,
        actions: Vec<Action>,
        intent: Intent,
        done: Option<Done>,
    ) {
        let Some(rt) = self.rollouts.get(rollout) else {
            return;
        };
        let mut audit = Vec::new();
        for action in actions {
            match action {
                Action::SetView { .. } => {
                    // The view is recomputed from the state with the runtime tenant caps.
                    self.set_view(rt);
                    self.publish_trip_metric(rt);
                }
                Action::Alert(alert) => self.ctx.alerts.send(alert),
                // Every change stores the state with its audit rows (one compare-and-set).
                Action::PersistState => {}
                Action::Audit {
                    action,
                    actor,
                    from,
                    to,
                    reason,
                    mut details,
                    at_ms,
                } => {
                    tracing::info!(rollout = %rt.cfg.name, %action, %actor, %from, %to, %reason, "rollout transition");
                    if let (Some(c), Some(obj)) = (&self.ctx.cluster, details.as_object_mut()) {
                        obj.insert("replica".into(), c.health.replica_id.clone().into());
                    }
                    audit.push(AuditEntry {
                        rollout: rt.cfg.name.clone(),
                        ts_ms: at_ms,
                        actor,
                        action,
                        from_state: from,
                        to_state: to,
                        reason,
                        details,
                    });
                }
            }
        }
        self.queue_state(rollout, audit, intent, done);
    }

    /// Queue the rollout's current state with `audit` as one change.
    pub(super) fn queue_state(
        &mut self,
        rollout: &str,
        audit: Vec<AuditEntry>,
        intent: Intent,
        done: Option<Done>,
    ) {
        let Some(rt) = self.rollouts.get(rollout) else {
            return;
        };
        let json = match serde_json::to_string(&rt.state) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize rollout state");
                return;
            }
        };
        let write = write_for(rt, self.ctx.clock.now_ms(), Some(json), None, audit, false);
        self.queue(rollout, write, intent, done);
    }

    pub(super) fn queue(&mut self, rollout: &str, w: Write, intent: Intent, done: Option<Done>) {
        let seq = self.persister.queue(w);
        if let Some(rt) = self.rollouts.get_mut(rollout) {
            rt.pending.push_back(Pending { seq, intent, done });
        }
    }

    /// Publish a rollout's view to the data plane; every request admitted afterwards sees it.
    pub(super) fn set_view(&self, rt: &Runtime) {
        let fall_back =
            self.stale
                && self.ctx.cluster.as_ref().is_some_and(|c| {
                    c.on_stale == rampart_core::config::cluster::OnStale::Baseline
                });
        let view = if fall_back {
            rt.stale_view()
        } else {
            rt.view()
        };
        self.publish_percent(&view);
        self.ctx.routing.publish(&rt.cfg.route, view);
    }

    fn publish_percent(&self, view: &RolloutView) {
        self.ctx
            .metrics
            .rollout
            .percent
            .get_or_create(&rollout_labels(&view.rollout))
            .set(view.percent);
    }

    pub(super) fn publish_trip_metric(&self, rt: &Runtime) {
        let tripped = i64::from(rt.state.is_rolled_back());
        self.ctx
            .metrics
            .rollout
            .kill_switch_tripped
            .get_or_create(&rollout_labels(&rt.cfg.name))
            .set(tripped);
        self.ctx
            .metrics
            .rollout
            .set_state(&rt.cfg.name, rt.state.phase_name());
    }

    pub(super) fn cluster_view(&self) -> Option<ClusterView> {
        self.ctx.cluster.as_ref().map(|c| ClusterView {
            replica_id: c.health.replica_id.clone(),
            leader: c.health.leader(),
            leading: self.leading,
            stale: self.stale,
        })
    }

    pub(super) fn status_of(&self, rt: &Runtime) -> RolloutStatus {
        let outcomes = self.outcomes_of(&rt.cfg.name);
        rt.status(self.ctx.clock.now_ms(), outcomes, self.cluster_view())
    }

    /// The latest outcome summaries read for a rollout.
    fn outcomes_of(&self, rollout: &str) -> Vec<OutcomeSummary> {
        self.slow_inputs
            .load()
            .get(rollout)
            .map(|i| i.summaries.clone())
            .unwrap_or_default()
    }

    pub(super) fn publish_status(&self) {
        let now = self.ctx.clock.now_ms();
        let cluster = self.cluster_view();
        let map = self
            .rollouts
            .iter()
            .map(|(k, rt)| {
                let status = rt.status(now, self.outcomes_of(k), cluster.clone());
                (k.clone(), Arc::new(status))
            })
            .collect();
        self.ctx.status.store(Arc::new(map));
    }
}

/// The write of a change to `rt`, in its current lineage.
pub(super) fn write_for(
    rt: &Runtime,
    at_ms: i64,
    state_json: Option<String>,
    tenant_cap: Option<(String, f64)>,
    audit: Vec<AuditEntry>,
    once: bool,
) -> Write {
    Write {
        rollout: rt.cfg.name.clone(),
        lineage: rt.lineage,
        base: rt.lineage_base,
        state_json,
        tenant_cap,
        audit,
        at_ms,
        once,
    }
}

/// A stored row as the controller's state, or `None` when it cannot be read.
pub(super) fn stored_state(rollout: &str, row: &StoredRollout) -> Option<RolloutState> {
    parse_state(rollout, &row.state_json)
}
