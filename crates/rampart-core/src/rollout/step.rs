//! The rollout state machine: [`step`] for the controller's periodic ticks, [`apply`] for
//! operators' [`Command`]s. Both are pure: `(config, state, input, now) → (state, actions)`.
//!
//! Transitions of [`step`] (evaluated in this order each tick):
//!
//! 1. `rolled_back`, `ready_to_decommission`: nothing happens (terminal until a reset).
//! 2. In `stage`, `paused`, `holding` and `completed` the kill switch is armed: any breached
//!    guardrail ([`super::guardrails`]) → `rolled_back` (alert `trip`, critical). In a shadow
//!    stage the guardrails run on the shadow pairs.
//! 3. `completed` for `keep_baseline_warm` → `ready_to_decommission`.
//! 4. `stage` only (a pause freezes the ramp, a hold waits for a human):
//!    - a conflicting signal (shadow: significant refusal increase) → `holding`;
//!    - SRM failed, looked at only when every other gate passes or `max_duration` is reached →
//!      `holding`;
//!    - every gate passed (incl. `min_duration`) → the next stage, or `completed` after the
//!      last one or on reaching a 100 % stage (alert `advance` / `completed`);
//!    - `max_duration` reached with a gate still pending → `holding` (inconclusive).
//!
//! Commands ([`apply`]): `pause` (stage, holding → paused), `resume` (paused → the same stage,
//! stage clock unchanged; holding → the same stage with a fresh stage epoch, so the held
//! evidence is not reused; pinned → the same stage with a fresh stage epoch and the slow
//! signals measured afresh from now), `promote` (stage, paused, holding → next stage; completed →
//! ready_to_decommission; honours `expected_stage` to refuse a promote decided on a view the
//! controller has since changed), `rollback` (anything not already rolled back; always
//! applies whatever stage the operator saw, because it only makes things safer), `reset`
//! (rolled_back → first stage, only once `cooldown` has passed since the rollback).
//!
//! Every transition bumps `transitions` and returns, in this order: `SetView` (apply at once:
//! it is the routing change), `PersistState`, `Audit`, and, when someone should know, `Alert`.

use serde::Serialize;
use serde_json::json;

use super::gates::{GateOutcome, GateReport, evaluate_gates, is_shadow};
use super::guardrails::{GuardrailReport, evaluate_guardrails};
use super::observations::{Observations, WindowCounts};
use super::slow_signals::SlowSignalState;
use super::state::{HoldReason, PercentChange, Phase, RolloutState, Trigger};
use crate::config::RolloutConfig;
use crate::routing::RolloutView;

/// How loud an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    /// Page someone.
    Critical,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The kill switch fired (or an operator rolled back).
    Trip,
    /// The rollout waits for a human (hold or pause).
    Hold,
    /// A hold, pause or rollback was lifted.
    Resolve,
    /// The rollout moved to the next stage.
    Advance,
    /// The candidate serves 100 %, or the warm period ended.
    Completed,
}

/// A notification for people (pager, chat, log).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub severity: Severity,
    pub kind: AlertKind,
    pub rollout: String,
    pub reason: String,
    /// Label before the transition.
    pub stage: String,
    /// Label after it.
    pub action_taken: String,
    /// Window requests of the control cohort at the time.
    pub control_samples: u64,
    /// Window requests of the canary cohort (pairs in a shadow stage).
    pub canary_samples: u64,
    pub at_ms: i64,
    /// The guardrail reports behind a trip (empty otherwise).
    pub guardrails: Vec<GuardrailReport>,
}

/// What the gateway must do after a transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Publish this view to the data plane now (ArcSwap store).
    SetView { view: RolloutView },
    /// Save the returned state (JSON) before acknowledging the transition.
    PersistState,
    /// Append to the rollout's audit log.
    Audit {
        action: String,
        actor: String,
        from: String,
        to: String,
        reason: String,
        details: serde_json::Value,
        at_ms: i64,
    },
    /// Send a notification.
    Alert(Alert),
}

/// What an operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    Pause,
    Resume,
    Promote,
    Rollback,
    Reset,
}

impl CommandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Pause => "pause",
            CommandKind::Resume => "resume",
            CommandKind::Promote => "promote",
            CommandKind::Rollback => "rollback",
            CommandKind::Reset => "reset",
        }
    }
}

/// A manual command with who asked and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Command {
    pub kind: CommandKind,
    pub actor: String,
    pub reason: String,
    /// For `promote`: the stage label the operator saw; the promote is refused if the rollout
    /// has moved since. Ignored by the other commands.
    #[serde(default)]
    pub expected_stage: Option<String>,
}

impl Command {
    pub fn new(kind: CommandKind, actor: &str, reason: &str) -> Command {
        Command {
            kind,
            actor: actor.to_string(),
            reason: reason.to_string(),
            expected_stage: None,
        }
    }
}

/// Why a command was refused (the state is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("a command needs an actor and a reason")]
    MissingReason,
    #[error("cannot {command} while {phase}")]
    NotAllowed {
        command: &'static str,
        phase: &'static str,
    },
    #[error("already paused")]
    AlreadyPaused,
    #[error("not paused, holding or pinned, nothing to resume")]
    NotPaused,
    #[error("cooldown: reset allowed in {remaining_ms} ms")]
    CooldownActive { remaining_ms: i64 },
    #[error("rollout moved on: expected stage `{expected}`, now `{actual}`")]
    StaleStage { expected: String, actual: String },
}

/// One tick's evaluation (also what status pages show).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub guardrails: Vec<GuardrailReport>,
    /// `None` outside a running stage.
    pub gates: Option<GateOutcome>,
    /// The counts the guardrails looked at (pairs as cohorts in a shadow stage).
    pub window: WindowCounts,
}

impl Evaluation {
    /// Whether any guardrail breached.
    pub fn breached(&self) -> bool {
        self.guardrails.iter().any(|g| g.breached)
    }
    /// Gate reports, empty outside a running stage.
    pub fn gate_reports(&self) -> &[GateReport] {
        self.gates.as_ref().map_or(&[], |g| g.reports.as_slice())
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Evaluates guardrails (and, in a running stage, gates) without deciding anything.
pub fn evaluate(
    cfg: &RolloutConfig,
    state: &RolloutState,
    obs: &Observations,
    now_ms: i64,
) -> Evaluation {
    let stage = state
        .stage_index()
        .and_then(|i| cfg.stages.get(i.min(cfg.stages.len().saturating_sub(1))));
    let window = match stage {
        Some(s) if is_shadow(s) => obs.paired_window.map(|p| p.as_window()).unwrap_or_default(),
        _ => obs.window.clone(),
    };
    let guardrails = if state.guardrails_armed() {
        evaluate_guardrails(&cfg.guardrails, &window)
    } else {
        Vec::new()
    };
    let breach = guardrails.iter().any(|g| g.breached);
    let gates = match (&state.phase, stage) {
        (Phase::Stage { .. }, Some(s)) => Some(evaluate_gates(
            cfg,
            s,
            obs,
            now_ms - state.stage_epoch_ms,
            obs.stage_since_ms != state.stage_epoch_ms,
            breach,
        )),
        _ => None,
    };
    Evaluation {
        guardrails,
        gates,
        window,
    }
}

pub(super) struct Transition<'a> {
    pub(super) action: &'a str,
    pub(super) trigger: &'a Trigger,
    pub(super) reason: String,
    pub(super) details: serde_json::Value,
    pub(super) alert: Option<(Severity, AlertKind)>,
    pub(super) guardrails: Vec<GuardrailReport>,
    pub(super) window: WindowCounts,
}

/// The new state and its actions (module docs); records a change of the canary percent in
/// `percent_history`.
pub(super) fn transition(
    cfg: &RolloutConfig,
    from: &RolloutState,
    phase: Phase,
    epoch_ms: i64,
    now_ms: i64,
    t: Transition<'_>,
) -> (RolloutState, Vec<Action>) {
    let mut next = RolloutState {
        phase,
        stage_epoch_ms: epoch_ms,
        started_ms: from.started_ms,
        transitions: from.transitions + 1,
        slow: from.slow.clone(),
        percent_history: from.percent_history.clone(),
    };
    let (before, after) = (from.label(cfg), next.label(cfg));
    let view = next.view(cfg);
    let old_view = from.view(cfg);
    if view.percent != old_view.percent {
        next.percent_history.push(PercentChange {
            at_ms: now_ms,
            percent: view.percent,
        });
    }
    let mut actions = Vec::with_capacity(4);
    if view != old_view {
        actions.push(Action::SetView { view });
    }
    actions.push(Action::PersistState);
    actions.push(Action::Audit {
        action: t.action.to_string(),
        actor: t.trigger.actor().to_string(),
        from: before.clone(),
        to: after.clone(),
        reason: t.reason.clone(),
        details: t.details,
        at_ms: now_ms,
    });
    if let Some((severity, kind)) = t.alert {
        actions.push(Action::Alert(Alert {
            severity,
            kind,
            rollout: cfg.name.clone(),
            reason: t.reason,
            stage: before,
            action_taken: after,
            control_samples: t.window.control.requests,
            canary_samples: t.window.canary.requests,
            at_ms: now_ms,
            guardrails: t.guardrails,
        }));
    }
    (next, actions)
}

/// The phase after stage `index` passes: the next stage, or `completed` when there is none
/// or the next one serves 100 %.
fn next_phase(cfg: &RolloutConfig, index: usize, now_ms: i64) -> Phase {
    match cfg.stages.get(index + 1) {
        Some(s) if s.percent < 100.0 => Phase::Stage { index: index + 1 },
        _ => Phase::Completed { since_ms: now_ms },
    }
}

fn last_index(cfg: &RolloutConfig) -> usize {
    cfg.stages.len().saturating_sub(1)
}

/// No transition: the state as it is, no actions.
fn unchanged(state: &RolloutState) -> (RolloutState, Vec<Action>) {
    (state.clone(), Vec::new())
}

/// A transition the controller decides from this tick's window (no guardrail reports).
fn by_controller<'a>(
    controller: &'a Trigger,
    action: &'static str,
    reason: String,
    alert: Option<(Severity, AlertKind)>,
    details: serde_json::Value,
    window: &WindowCounts,
) -> Transition<'a> {
    Transition {
        action,
        trigger: controller,
        reason,
        details,
        alert,
        guardrails: Vec::new(),
        window: window.clone(),
    }
}

/// One controller tick (module docs). Pure and deterministic.
pub fn step(
    cfg: &RolloutConfig,
    state: &RolloutState,
    obs: &Observations,
    now_ms: i64,
) -> (RolloutState, Vec<Action>) {
    if !state.guardrails_armed() {
        return unchanged(state);
    }
    let ev = evaluate(cfg, state, obs, now_ms);
    if ev.breached() {
        return trip(cfg, state, &ev, now_ms);
    }
    match &state.phase {
        Phase::Completed { since_ms } if now_ms - since_ms >= ms(cfg.keep_baseline_warm) => {
            warm_period_over(cfg, state, *since_ms, &ev, now_ms)
        }
        Phase::Stage { index } => stage_tick(cfg, state, *index, &ev, now_ms),
        _ => unchanged(state),
    }
}

/// Step 2 of the module docs: a breached guardrail rolls back (alert `trip`, critical).
fn trip(
    cfg: &RolloutConfig,
    state: &RolloutState,
    ev: &Evaluation,
    now_ms: i64,
) -> (RolloutState, Vec<Action>) {
    let controller = Trigger::Controller;
    let tripped: Vec<&GuardrailReport> = ev.guardrails.iter().filter(|g| g.breached).collect();
    let reason = format!(
        "guardrail breached: {}",
        tripped
            .iter()
            .map(|g| g.name.as_ref())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let from_index = state.stage_index().unwrap_or(last_index(cfg));
    let details = json!({ "guardrails": tripped, "window": ev.window });
    let phase = Phase::RolledBack {
        at_ms: now_ms,
        from_index,
        reason: reason.clone(),
        trigger: controller.clone(),
    };
    transition(
        cfg,
        state,
        phase,
        state.stage_epoch_ms,
        now_ms,
        Transition {
            action: "kill_switch",
            trigger: &controller,
            reason,
            details,
            alert: Some((Severity::Critical, AlertKind::Trip)),
            guardrails: ev.guardrails.clone(),
            window: ev.window.clone(),
        },
    )
}

/// Step 3 of the module docs: `completed` for `keep_baseline_warm` → `ready_to_decommission`.
fn warm_period_over(
    cfg: &RolloutConfig,
    state: &RolloutState,
    since_ms: i64,
    ev: &Evaluation,
    now_ms: i64,
) -> (RolloutState, Vec<Action>) {
    let controller = Trigger::Controller;
    transition(
        cfg,
        state,
        Phase::ReadyToDecommission { since_ms: now_ms },
        state.stage_epoch_ms,
        now_ms,
        by_controller(
            &controller,
            "warm_period_over",
            "baseline kept warm for keep_baseline_warm; ready to decommission".into(),
            Some((Severity::Info, AlertKind::Completed)),
            json!({ "completed_since_ms": since_ms }),
            &ev.window,
        ),
    )
}

/// Step 4 of the module docs: a running stage completes at 100 %, holds, advances or waits.
fn stage_tick(
    cfg: &RolloutConfig,
    state: &RolloutState,
    index: usize,
    ev: &Evaluation,
    now_ms: i64,
) -> (RolloutState, Vec<Action>) {
    let index = index.min(last_index(cfg));
    let Some(stage) = cfg.stages.get(index) else {
        return unchanged(state);
    };
    let controller = Trigger::Controller;
    if stage.percent >= 100.0 {
        return transition(
            cfg,
            state,
            Phase::Completed { since_ms: now_ms },
            now_ms,
            now_ms,
            by_controller(
                &controller,
                "complete",
                "stage serves 100%".into(),
                Some((Severity::Info, AlertKind::Completed)),
                json!({}),
                &ev.window,
            ),
        );
    }
    let Some(gates) = ev.gates.as_ref() else {
        return unchanged(state);
    };
    let elapsed = now_ms - state.stage_epoch_ms;
    let max_reached = stage.max_duration.is_some_and(|m| elapsed >= ms(m));
    if let Some(reason) = blocking_hold(gates, max_reached) {
        return hold(cfg, state, index, reason, gates, &ev.window, now_ms);
    }
    if gates.all_passed {
        let phase = next_phase(cfg, index, now_ms);
        let (kind, action) = match phase {
            Phase::Completed { .. } => (AlertKind::Completed, "complete"),
            _ => (AlertKind::Advance, "advance"),
        };
        return transition(
            cfg,
            state,
            phase,
            now_ms,
            now_ms,
            by_controller(
                &controller,
                action,
                format!("every gate of `{}` passed", stage.name),
                Some((Severity::Info, kind)),
                json!({ "gates": gates.reports }),
                &ev.window,
            ),
        );
    }
    if max_reached {
        let reason = HoldReason::Inconclusive {
            gates: gates.pending(),
        };
        return hold(cfg, state, index, reason, gates, &ev.window, now_ms);
    }
    unchanged(state)
}

/// The holds that win over passing gates: a conflicting signal, then a sample ratio mismatch
/// (looked at once every other gate passes, or at `max_duration`).
fn blocking_hold(gates: &GateOutcome, max_reached: bool) -> Option<HoldReason> {
    if let Some(detail) = &gates.conflict {
        return Some(HoldReason::ConflictingSignals {
            detail: detail.clone(),
        });
    }
    let others_pass = gates
        .reports
        .iter()
        .all(|g| g.passed || g.name == "sample_ratio");
    match gates.srm_failed {
        Some(p) if others_pass || max_reached => Some(HoldReason::SampleRatioMismatch {
            p_value: format!("{p:.2e}"),
        }),
        _ => None,
    }
}

/// Stage `index` → `holding` for `reason` (alert `hold`, warning); the stage clock is kept.
fn hold(
    cfg: &RolloutConfig,
    state: &RolloutState,
    index: usize,
    reason: HoldReason,
    gates: &GateOutcome,
    window: &WindowCounts,
    now_ms: i64,
) -> (RolloutState, Vec<Action>) {
    let controller = Trigger::Controller;
    let text = reason.summary();
    transition(
        cfg,
        state,
        Phase::Holding {
            index,
            at_ms: now_ms,
            reason,
        },
        state.stage_epoch_ms,
        now_ms,
        by_controller(
            &controller,
            "hold",
            text,
            Some((Severity::Warning, AlertKind::Hold)),
            json!({ "gates": gates.reports }),
            window,
        ),
    )
}

/// Applies an operator's command (module docs). Refused commands leave the state unchanged.
pub fn apply(
    cfg: &RolloutConfig,
    state: &RolloutState,
    cmd: &Command,
    now_ms: i64,
) -> Result<(RolloutState, Vec<Action>), CommandError> {
    if cmd.actor.trim().is_empty() || cmd.reason.trim().is_empty() {
        return Err(CommandError::MissingReason);
    }
    let op = Operator {
        cfg,
        state,
        cmd,
        trigger: Trigger::Operator {
            actor: cmd.actor.clone(),
        },
        now_ms,
    };
    match cmd.kind {
        CommandKind::Pause => op.pause(),
        CommandKind::Resume => op.resume(),
        CommandKind::Promote => op.promote(),
        CommandKind::Rollback => op.rollback(),
        CommandKind::Reset => op.reset(),
    }
}

/// One operator command being applied: one method per [`CommandKind`].
struct Operator<'a> {
    cfg: &'a RolloutConfig,
    state: &'a RolloutState,
    cmd: &'a Command,
    trigger: Trigger,
    now_ms: i64,
}

type Applied = Result<(RolloutState, Vec<Action>), CommandError>;

impl Operator<'_> {
    /// The transition to `phase` with stage epoch `epoch_ms`, audited as this command.
    fn to(
        &self,
        phase: Phase,
        epoch_ms: i64,
        alert: (Severity, AlertKind),
    ) -> (RolloutState, Vec<Action>) {
        transition(
            self.cfg,
            self.state,
            phase,
            epoch_ms,
            self.now_ms,
            Transition {
                action: self.cmd.kind.as_str(),
                trigger: &self.trigger,
                reason: self.cmd.reason.clone(),
                details: json!({ "command": self.cmd }),
                alert: Some(alert),
                guardrails: Vec::new(),
                window: WindowCounts::default(),
            },
        )
    }

    fn not_allowed(&self) -> CommandError {
        CommandError::NotAllowed {
            command: self.cmd.kind.as_str(),
            phase: self.state.phase_name(),
        }
    }

    /// stage, holding → paused (stage clock unchanged).
    fn pause(&self) -> Applied {
        match &self.state.phase {
            Phase::Stage { index } | Phase::Holding { index, .. } => {
                let phase = Phase::Paused {
                    index: *index,
                    at_ms: self.now_ms,
                    actor: self.cmd.actor.clone(),
                    reason: self.cmd.reason.clone(),
                };
                let epoch = self.state.stage_epoch_ms;
                Ok(self.to(phase, epoch, (Severity::Info, AlertKind::Hold)))
            }
            Phase::Paused { .. } => Err(CommandError::AlreadyPaused),
            _ => Err(self.not_allowed()),
        }
    }

    /// paused → the same stage, stage clock unchanged; holding → a fresh stage epoch;
    /// pinned → a fresh stage epoch and slow signals measured afresh.
    fn resume(&self) -> Applied {
        let resolve = (Severity::Info, AlertKind::Resolve);
        let now_ms = self.now_ms;
        match &self.state.phase {
            Phase::Paused { index, .. } => {
                let epoch = self.state.stage_epoch_ms;
                Ok(self.to(Phase::Stage { index: *index }, epoch, resolve))
            }
            Phase::Holding { index, .. } => {
                Ok(self.to(Phase::Stage { index: *index }, now_ms, resolve))
            }
            Phase::Pinned { index, .. } => {
                let (mut next, actions) = self.to(Phase::Stage { index: *index }, now_ms, resolve);
                next.slow = SlowSignalState::since(now_ms);
                Ok((next, actions))
            }
            _ => Err(CommandError::NotPaused),
        }
    }

    /// stage, paused, holding → the next stage; completed → ready_to_decommission. Honours
    /// `expected_stage`.
    fn promote(&self) -> Applied {
        let now_ms = self.now_ms;
        match &self.state.phase {
            Phase::Stage { index } | Phase::Paused { index, .. } | Phase::Holding { index, .. } => {
                check_expected(self.cfg, self.state, self.cmd)?;
                let phase = next_phase(self.cfg, *index, now_ms);
                let kind = match phase {
                    Phase::Completed { .. } => AlertKind::Completed,
                    _ => AlertKind::Advance,
                };
                Ok(self.to(phase, now_ms, (Severity::Warning, kind)))
            }
            Phase::Completed { .. } => {
                check_expected(self.cfg, self.state, self.cmd)?;
                let phase = Phase::ReadyToDecommission { since_ms: now_ms };
                let epoch = self.state.stage_epoch_ms;
                Ok(self.to(phase, epoch, (Severity::Info, AlertKind::Completed)))
            }
            _ => Err(self.not_allowed()),
        }
    }

    /// Anything not already rolled back → rolled_back, whatever stage the operator saw.
    fn rollback(&self) -> Applied {
        if let Phase::RolledBack { .. } = self.state.phase {
            return Err(self.not_allowed());
        }
        let phase = Phase::RolledBack {
            at_ms: self.now_ms,
            from_index: self.state.stage_index().unwrap_or(last_index(self.cfg)),
            reason: self.cmd.reason.clone(),
            trigger: self.trigger.clone(),
        };
        let epoch = self.state.stage_epoch_ms;
        Ok(self.to(phase, epoch, (Severity::Warning, AlertKind::Trip)))
    }

    /// rolled_back → the first stage, once `cooldown` has passed since the rollback.
    fn reset(&self) -> Applied {
        let Phase::RolledBack { at_ms, .. } = &self.state.phase else {
            return Err(self.not_allowed());
        };
        let now_ms = self.now_ms;
        let ready_at = at_ms.saturating_add(ms(self.cfg.cooldown));
        if now_ms < ready_at {
            return Err(CommandError::CooldownActive {
                remaining_ms: ready_at - now_ms,
            });
        }
        let resolve = (Severity::Info, AlertKind::Resolve);
        let (mut next, actions) = self.to(Phase::Stage { index: 0 }, now_ms, resolve);
        next.started_ms = now_ms;
        next.slow = SlowSignalState::since(now_ms);
        Ok((next, actions))
    }
}

fn check_expected(
    cfg: &RolloutConfig,
    state: &RolloutState,
    cmd: &Command,
) -> Result<(), CommandError> {
    // The stage the rollout is in or frozen at, else the phase name.
    let actual = match state.stage_index() {
        Some(i) => super::state::stage_name(cfg, i),
        None => state.phase_name().to_string(),
    };
    match &cmd.expected_stage {
        Some(expected) if *expected != actual => Err(CommandError::StaleStage {
            expected: expected.clone(),
            actual,
        }),
        _ => Ok(()),
    }
}
