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
use rampart_core::rollout::step::{Evaluation, evaluate};
use rampart_core::rollout::{Action, Command, RolloutState, SlowSignalReport, apply, step};
use rampart_core::routing::RolloutView;
use rampart_store::{AuditEntry, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::alerts::Alerts;
use super::handle::{
    CommandReceiver, CommandRequest, ControlError, Order, RolloutStatus, Statuses,
};
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
    /// Side tasks of the controller (the shadow gate), waited for at shutdown.
    pub tasks: TaskTracker,
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

    fn status(&self, now_ms: i64) -> RolloutStatus {
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
    slow_inputs: slow_gate::SlowInputs,
}

/// The controller loop. Runs until the gateway shuts down.
pub async fn run(ctx: Ctx, mut inbox: Inbox, restored: Restored) {
    let mut c = Controller {
        ctx,
        rollouts: BTreeMap::new(),
        verdicts: Default::default(),
        slow_inputs: Default::default(),
    };
    c.restore(restored).await;
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
            biased;
            _ = c.ctx.shutdown.cancelled() => break,
            Some(cmd) = inbox.commands.recv() => c.on_command(cmd).await,
            Some(sig) = inbox.signals.recv() => c.on_signals(sig, &mut inbox.signals),
            _ = interval.tick() => c.on_tick().await,
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
    async fn restore(&mut self, restored: Restored) {
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
                self.persist(&rt).await;
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

    async fn on_command(&mut self, cmd: CommandRequest) {
        let CommandRequest {
            rollout,
            order,
            reply,
        } = cmd;
        let result = match order {
            Order::Command(command) => self.apply_command(&rollout, &command).await,
            Order::TenantCap {
                tenant,
                max_percent,
            } => self.set_tenant_cap(&rollout, &tenant, max_percent).await,
        };
        let _ = reply.send(result);
        self.publish_status();
    }

    async fn apply_command(
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
        self.execute(rt, actions).await;
        Ok(rt.status(now))
    }

    /// Store a tenant cap, then route by it. A cap that cannot be stored is not applied.
    async fn set_tenant_cap(
        &mut self,
        rollout: &str,
        tenant: &str,
        max_percent: f64,
    ) -> Result<RolloutStatus, ControlError> {
        let now = self.ctx.clock.now_ms();
        if !self.rollouts.contains_key(rollout) {
            return Err(ControlError::UnknownRollout(rollout.to_string()));
        }
        let store = self.ctx.store.clone();
        let (r, t) = (rollout.to_string(), tenant.to_string());
        let saved =
            tokio::task::spawn_blocking(move || store.save_tenant_cap(&r, &t, max_percent, now))
                .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(ControlError::NotStored(format!(
                    "cannot store the tenant cap: {e}"
                )));
            }
            Err(e) => {
                return Err(ControlError::NotStored(format!(
                    "cannot store the tenant cap: {e}"
                )));
            }
        }
        let Some(rt) = self.rollouts.get_mut(rollout) else {
            return Err(ControlError::UnknownRollout(rollout.to_string()));
        };
        rt.caps.insert(tenant.to_string(), max_percent);
        let rt = &self.rollouts[rollout];
        self.set_view(rt);
        self.audit(AuditEntry {
            rollout: rollout.to_string(),
            ts_ms: now,
            actor: "admin-api".into(),
            action: "tenant_cap".into(),
            from_state: String::new(),
            to_state: String::new(),
            reason: format!("tenant {tenant} capped at {max_percent}%"),
            details: serde_json::json!({"tenant": tenant, "max_percent": max_percent}),
        })
        .await;
        Ok(rt.status(now))
    }

    /// Take in a signal and whatever else is already queued.
    fn on_signals(&mut self, first: Signal, rx: &mut SignalReceiver) {
        self.observe(&first);
        while let Ok(sig) = rx.try_recv() {
            self.observe(&sig);
        }
    }

    fn observe(&mut self, sig: &Signal) {
        if let Some(rt) = self.rollouts.get_mut(sig.rollout()) {
            rt.window.observe(&rt.cfg, sig);
        }
    }

    /// Check every rollout that is due.
    async fn on_tick(&mut self) {
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
            let rt = &self.rollouts[&name];
            self.execute(rt, actions).await;
        }
        self.publish_status();
    }

    /// Carry out a transition's actions, in order.
    async fn execute(&self, rt: &Runtime, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::SetView { .. } => {
                    // The view is recomputed from the state with the runtime tenant caps.
                    self.set_view(rt);
                    self.publish_trip_metric(rt);
                }
                Action::PersistState => self.persist(rt).await,
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
                    self.audit(AuditEntry {
                        rollout: rt.cfg.name.clone(),
                        ts_ms: at_ms,
                        actor,
                        action,
                        from_state: from,
                        to_state: to,
                        reason,
                        details,
                    })
                    .await;
                }
                Action::Alert(alert) => self.ctx.alerts.send(alert),
            }
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

    async fn persist(&self, rt: &Runtime) {
        let json = match serde_json::to_string(&rt.state) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize rollout state");
                return;
            }
        };
        let store = self.ctx.store.clone();
        let name = rt.cfg.name.clone();
        let now = self.ctx.clock.now_ms();
        match tokio::task::spawn_blocking(move || store.save_rollout_state(&name, &json, now)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(rollout = %rt.cfg.name, error = %e, "cannot persist rollout state")
            }
            Err(e) => tracing::error!(error = %e, "persist task failed"),
        }
    }

    async fn audit(&self, entry: AuditEntry) {
        let store = self.ctx.store.clone();
        match tokio::task::spawn_blocking(move || store.append_audit(&entry)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot write the audit log"),
            Err(e) => tracing::error!(error = %e, "audit task failed"),
        }
    }

    fn publish_status(&self) {
        let now = self.ctx.clock.now_ms();
        let map = self
            .rollouts
            .iter()
            .map(|(k, rt)| (k.clone(), Arc::new(rt.status(now))))
            .collect();
        self.ctx.status.store(Arc::new(map));
    }
}
