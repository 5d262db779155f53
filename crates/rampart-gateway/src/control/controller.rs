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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rampart_core::config::{Config, RolloutConfig};
use rampart_core::outcomes::OutcomeSummary;
use rampart_core::rollout::step::{Evaluation, evaluate};
use rampart_core::rollout::{Action, Command, RolloutState, SlowSignalReport, apply, step};
use rampart_core::routing::RolloutView;
use rampart_store::{AuditEntry, Store};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::alerts::Alerts;
use super::handle::{
    CommandReceiver, CommandRequest, ControlError, Order, RolloutStatus, Statuses,
};
use super::persist::{self, Persister, Write, WriteHealth};
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
}

/// How long an operator's order waits for its writes to be stored before the answer says
/// they are not (the change stays applied and its writes keep being retried).
pub const ACK_WAIT: Duration = Duration::from_secs(10);

/// At most this many queued signals are taken in one turn of the loop, so orders and checks
/// are never starved by a flood of signals.
pub const MAX_DRAIN: usize = 1024;

type Reply = oneshot::Sender<Result<RolloutStatus, ControlError>>;

/// A tenant cap the store accepted, to apply now.
struct CapStored {
    rollout: String,
    tenant: String,
    max_percent: f64,
    reply: Reply,
}

/// The receiving ends the controller consumes.
pub struct Inbox {
    pub signals: SignalReceiver,
    pub commands: CommandReceiver,
}

/// One rollout's live state in the controller.
struct Runtime {
    cfg: RolloutConfig,
    state: RolloutState,
    window: Window,
    /// Tenant caps set at runtime (stored), merged over the configured ones.
    caps: BTreeMap<String, f64>,
    next_check_ms: i64,
    last_eval: Option<Evaluation>,
    /// The slow signals' evidence at the last check.
    slow_reports: Vec<SlowSignalReport>,
}

impl Runtime {
    /// The view the data plane must route by.
    fn view(&self) -> RolloutView {
        let mut view = self.state.view(&self.cfg);
        view.tenant_caps
            .extend(self.caps.iter().map(|(t, c)| (t.clone(), *c)));
        view
    }

    /// Take a new state; a new stage epoch restarts the stage's counters.
    fn enter(&mut self, state: RolloutState) {
        let epoch_changed = state.stage_epoch_ms() != self.state.stage_epoch_ms();
        self.state = state;
        if epoch_changed {
            self.window.reset_stage(self.state.stage_epoch_ms());
        }
    }

    /// The status to publish; `outcomes` are the latest outcome summaries read for it.
    fn status(&self, now_ms: i64, outcomes: Vec<OutcomeSummary>) -> RolloutStatus {
        let view = self.state.view(&self.cfg);
        let w = &self.window;
        RolloutStatus {
            rollout: self.cfg.name.clone(),
            state: self.state.clone(),
            phase: self.state.phase_name(),
            stage: view.stage,
            percent: view.percent,
            shadow_percent: view.shadow_percent,
            evaluation: self.last_eval.clone(),
            stage_control: w.stage_control,
            stage_canary: w.stage_canary,
            stage_pairs: (w.stage_pairs.pairs > 0).then_some(w.stage_pairs),
            slow_signals: self.slow_reports.clone(),
            outcomes,
            updated_ms: now_ms,
        }
    }
}

/// Rollouts as restored from the store at start-up, before serving.
pub struct Restored {
    /// Per rollout: its state, whether it was loaded (a fresh one still has to be stored), and
    /// its stored tenant caps.
    rollouts: BTreeMap<String, (RolloutState, bool, BTreeMap<String, f64>)>,
    /// The routing snapshot to serve the first request with.
    pub snapshot: Snapshot,
}

/// Why the controller cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read the tenant caps of rollout `{rollout}`: {source}")]
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
        let (state, loaded) = load_state(store, &r.name, now_ms);
        let caps = store
            .tenant_caps(&r.name)
            .map_err(|source| StartError::TenantCaps {
                rollout: r.name.clone(),
                source,
            })?;
        let mut view = state.view(r);
        view.tenant_caps
            .extend(caps.iter().map(|(t, c)| (t.clone(), *c)));
        out.snapshot
            .by_route
            .insert(r.route.clone(), Arc::new(view));
        out.rollouts.insert(r.name.clone(), (state, loaded, caps));
    }
    Ok(out)
}

/// A rollout's persisted state, or a fresh one starting now. Blocking (start-up only).
/// `bool`: whether it was loaded (a fresh state still has to be persisted).
pub fn load_state(store: &dyn Store, name: &str, now_ms: i64) -> (RolloutState, bool) {
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

struct Controller {
    ctx: Ctx,
    rollouts: BTreeMap<String, Runtime>,
    verdicts: shadow_gate::Verdicts,
    persister: Persister,
    caps_tx: mpsc::Sender<CapStored>,
    slow_inputs: slow_gate::SlowInputs,
}

/// The controller loop. Runs until the gateway shuts down.
pub async fn run(ctx: Ctx, mut inbox: Inbox, restored: Restored) {
    let (persister, writer) = persist::channel(persist::WriterDeps {
        store: ctx.store.clone(),
        metrics: ctx.metrics.clone(),
        alerts: ctx.alerts.clone(),
        clock: ctx.clock.clone(),
        health: ctx.writes.clone(),
    });
    ctx.tasks.spawn(writer.run());
    let (caps_tx, mut caps_rx) = mpsc::channel(64);
    let mut c = Controller {
        ctx,
        rollouts: BTreeMap::new(),
        verdicts: Default::default(),
        persister,
        caps_tx,
        slow_inputs: Default::default(),
    };
    c.restore(restored);
    if c.rollouts.is_empty() {
        return idle(&c.ctx, inbox).await;
    }
    c.start_shadow_gate();
    c.start_slow_gate();
    let mut interval = tokio::time::interval(c.tick());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    c.publish_status();
    loop {
        tokio::select! {
            // Orders first, then checks when due, then signals (bounded per turn): a flood of
            // signals never delays a check or an operator.
            biased;
            _ = c.ctx.shutdown.cancelled() => break,
            Some(cmd) = inbox.commands.recv() => c.on_command(cmd),
            Some(cap) = caps_rx.recv() => c.on_cap_stored(cap),
            _ = interval.tick() => c.on_tick(),
            Some(sig) = inbox.signals.recv() => c.on_signals(sig, &mut inbox.signals),
        }
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
    /// Build the runtimes from the states restored at start-up.
    fn restore(&mut self, restored: Restored) {
        let now = self.ctx.clock.now_ms();
        for (name, (state, loaded, caps)) in restored.rollouts {
            let Some(cfg) = self.ctx.config.rollouts.get(&name) else {
                continue;
            };
            let mut rt = Runtime {
                cfg: cfg.clone(),
                state,
                window: Window::default(),
                caps,
                next_check_ms: now,
                last_eval: None,
                slow_reports: Vec::new(),
            };
            rt.window.reset_stage(rt.state.stage_epoch_ms());
            self.publish_trip_metric(&rt);
            self.publish_percent(&rt.view());
            if !loaded {
                self.persist(&rt);
            }
            self.rollouts.insert(name, rt);
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
        match order {
            Order::Command(command) => match self.apply_command(&rollout, &command) {
                Ok(status) => self.reply_when_stored(reply, status),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Order::TenantCap {
                tenant,
                max_percent,
            } => self.store_tenant_cap(rollout, tenant, max_percent, reply),
        }
        self.publish_status();
    }

    /// Apply a command: routed at once, its writes queued.
    fn apply_command(
        &mut self,
        rollout: &str,
        command: &Command,
    ) -> Result<RolloutStatus, ControlError> {
        let now = self.ctx.clock.now_ms();
        let Some(rt) = self.rollouts.get_mut(rollout) else {
            return Err(ControlError::UnknownRollout(rollout.to_string()));
        };
        let (state, actions) = apply(&rt.cfg, &rt.state, command, now)?;
        rt.enter(state);
        let rt = &self.rollouts[rollout];
        let status = rt.status(now, self.outcomes_of(rollout));
        self.execute(rollout, actions);
        Ok(status)
    }

    /// Answer once every write queued so far is stored, or after [`ACK_WAIT`] that it is not
    /// (the change stays applied; its writes keep being retried).
    fn reply_when_stored(&self, reply: Reply, status: RolloutStatus) {
        let seq = self.persister.last();
        let mut stored = self.persister.stored();
        let health = self.persister.health();
        tokio::spawn(async move {
            let done = tokio::time::timeout(ACK_WAIT, stored.wait_for(|s| *s >= seq)).await;
            let answer = match done {
                Ok(Ok(_)) => Ok(status),
                _ => Err(ControlError::NotStored(format!(
                    "`{}` is applied to routing but not stored yet ({}); rampart keeps retrying \
                     (see /readyz and rampart_control_writes_pending)",
                    status.phase,
                    health
                        .degraded()
                        .unwrap_or_else(|| "the control writer is busy".into())
                ))),
            };
            let _ = reply.send(answer);
        });
    }

    /// Store a tenant cap off the loop (one attempt), then apply it
    /// ([`Controller::on_cap_stored`]). A cap that cannot be stored is not applied, and the
    /// answer says why.
    fn store_tenant_cap(&self, rollout: String, tenant: String, max_percent: f64, reply: Reply) {
        if !self.rollouts.contains_key(&rollout) {
            let _ = reply.send(Err(ControlError::UnknownRollout(rollout)));
            return;
        }
        let write = Write::TenantCap {
            rollout: rollout.clone(),
            tenant: tenant.clone(),
            max_percent,
            at_ms: self.ctx.clock.now_ms(),
        };
        let (store, tx) = (self.ctx.store.clone(), self.caps_tx.clone());
        tokio::spawn(async move {
            let res = tokio::task::spawn_blocking(move || write.store(store.as_ref())).await;
            let err = match res {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = err {
                let msg = format!("cannot store the tenant cap: {e}");
                let _ = reply.send(Err(ControlError::NotStored(msg)));
                return;
            }
            let cap = CapStored {
                rollout,
                tenant,
                max_percent,
                reply,
            };
            if let Err(e) = tx.send(cap).await {
                let _ = e.0.reply.send(Err(ControlError::Stopped));
            }
        });
    }

    /// Route by a tenant cap the store has accepted, over the rollout's current state.
    fn on_cap_stored(&mut self, cap: CapStored) {
        let now = self.ctx.clock.now_ms();
        let Some(rt) = self.rollouts.get_mut(&cap.rollout) else {
            let _ = cap
                .reply
                .send(Err(ControlError::UnknownRollout(cap.rollout)));
            return;
        };
        rt.caps.insert(cap.tenant.clone(), cap.max_percent);
        let rt = &self.rollouts[&cap.rollout];
        self.set_view(rt);
        let status = rt.status(now, self.outcomes_of(&cap.rollout));
        self.persister.queue(Write::Audit(AuditEntry {
            rollout: cap.rollout.clone(),
            ts_ms: now,
            actor: "admin-api".into(),
            action: "tenant_cap".into(),
            from_state: String::new(),
            to_state: String::new(),
            reason: format!("tenant {} capped at {}%", cap.tenant, cap.max_percent),
            details: serde_json::json!({"tenant": cap.tenant, "max_percent": cap.max_percent}),
        }));
        let _ = cap.reply.send(Ok(status));
        self.publish_status();
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

    /// Check every rollout that is due.
    fn on_tick(&mut self) {
        let now = self.ctx.clock.now_ms();
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
            let mut obs = rt.window.observations(&rt.cfg, now);
            obs.shadow_gate = shadow_gate::input_for(&rt.cfg, &rt.state, &verdicts);
            rt.last_eval = Some(evaluate(&rt.cfg, &rt.state, &obs, now));
            let (mut state, mut actions) = step(&rt.cfg, &rt.state, &obs, now);
            if actions.is_empty()
                && let Some(slow) = slow_gate::check(&rt.cfg, &rt.state, &slow_inputs, now)
            {
                (state, actions, rt.slow_reports) = (slow.state, slow.actions, slow.reports);
            }
            if actions.is_empty() {
                continue;
            }
            rt.enter(state);
            self.execute(&name, actions);
        }
        self.publish_status();
    }

    /// Carry out a transition's actions: route at once, page at once, and queue the writes
    /// (state before audit) for the control writer, which retries them until stored.
    fn execute(&mut self, rollout: &str, actions: Vec<Action>) {
        let Some(rt) = self.rollouts.get(rollout) else {
            return;
        };
        let mut writes = Vec::new();
        for action in actions {
            match action {
                Action::SetView { .. } => {
                    // The view is recomputed from the state with the runtime tenant caps.
                    self.set_view(rt);
                    self.publish_trip_metric(rt);
                }
                Action::Alert(alert) => self.ctx.alerts.send(alert),
                Action::PersistState => writes.extend(state_write(rt, self.ctx.clock.now_ms())),
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
                    writes.push(Write::Audit(AuditEntry {
                        rollout: rt.cfg.name.clone(),
                        ts_ms: at_ms,
                        actor,
                        action,
                        from_state: from,
                        to_state: to,
                        reason,
                        details,
                    }));
                }
            }
        }
        for w in writes {
            self.persister.queue(w);
        }
    }

    /// Publish a rollout's view to the data plane; every request admitted afterwards sees it.
    fn set_view(&self, rt: &Runtime) {
        let view = rt.view();
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

    fn publish_trip_metric(&self, rt: &Runtime) {
        let tripped = i64::from(rt.state.phase_name() == "rolled_back");
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

    fn persist(&mut self, rt: &Runtime) {
        if let Some(w) = state_write(rt, self.ctx.clock.now_ms()) {
            self.persister.queue(w);
        }
    }

    /// The latest outcome summaries read for a rollout.
    fn outcomes_of(&self, rollout: &str) -> Vec<OutcomeSummary> {
        self.slow_inputs
            .load()
            .get(rollout)
            .map(|i| i.summaries.clone())
            .unwrap_or_default()
    }

    fn publish_status(&self) {
        let now = self.ctx.clock.now_ms();
        let map = self
            .rollouts
            .iter()
            .map(|(k, rt)| (k.clone(), Arc::new(rt.status(now, self.outcomes_of(k)))))
            .collect();
        self.ctx.status.store(Arc::new(map));
    }
}

/// The write that stores a rollout's state.
fn state_write(rt: &Runtime, now_ms: i64) -> Option<Write> {
    match serde_json::to_string(&rt.state) {
        Ok(json) => Some(Write::State {
            rollout: rt.cfg.name.clone(),
            json,
            at_ms: now_ms,
        }),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize rollout state");
            None
        }
    }
}
