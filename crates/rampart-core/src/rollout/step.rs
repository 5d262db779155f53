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

/// One controller tick (module docs). Pure and deterministic.
pub fn step(
    cfg: &RolloutConfig,
    state: &RolloutState,
    obs: &Observations,
    now_ms: i64,
) -> (RolloutState, Vec<Action>) {
    if !state.guardrails_armed() {
        return (state.clone(), Vec::new());
    }
    let ev = evaluate(cfg, state, obs, now_ms);
    let controller = Trigger::Controller;

    if ev.breached() {
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
        return transition(
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
                window: ev.window,
            },
        );
    }

    let simple = |action: &'static str, reason: String, alert, details| Transition {
        action,
        trigger: &controller,
        reason,
        details,
        alert,
        guardrails: Vec::new(),
        window: ev.window.clone(),
    };

    match &state.phase {
        Phase::Completed { since_ms } if now_ms - since_ms >= ms(cfg.keep_baseline_warm) => {
            transition(
                cfg,
                state,
                Phase::ReadyToDecommission { since_ms: now_ms },
                state.stage_epoch_ms,
                now_ms,
                simple(
                    "warm_period_over",
                    "baseline kept warm for keep_baseline_warm; ready to decommission".into(),
                    Some((Severity::Info, AlertKind::Completed)),
                    json!({ "completed_since_ms": since_ms }),
                ),
            )
        }
        Phase::Stage { index } => {
            let index = (*index).min(last_index(cfg));
            let Some(stage) = cfg.stages.get(index) else {
                return (state.clone(), Vec::new());
            };
            if stage.percent >= 100.0 {
                return transition(
                    cfg,
                    state,
                    Phase::Completed { since_ms: now_ms },
                    now_ms,
                    now_ms,
                    simple(
                        "complete",
                        "stage serves 100%".into(),
                        Some((Severity::Info, AlertKind::Completed)),
                        json!({}),
                    ),
                );
            }
            let Some(gates) = ev.gates.as_ref() else {
                return (state.clone(), Vec::new());
            };
            let elapsed = now_ms - state.stage_epoch_ms;
            let max_reached = stage.max_duration.is_some_and(|m| elapsed >= ms(m));
            let hold = |reason: HoldReason| {
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
                    simple(
                        "hold",
                        text,
                        Some((Severity::Warning, AlertKind::Hold)),
                        json!({ "gates": gates.reports }),
                    ),
                )
            };
            if let Some(detail) = &gates.conflict {
                return hold(HoldReason::ConflictingSignals {
                    detail: detail.clone(),
                });
            }
            let others_pass = gates
                .reports
                .iter()
                .all(|g| g.passed || g.name == "sample_ratio");
            if let Some(p) = gates.srm_failed
                && (others_pass || max_reached)
            {
                return hold(HoldReason::SampleRatioMismatch {
                    p_value: format!("{p:.2e}"),
                });
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
                    simple(
                        action,
                        format!("every gate of `{}` passed", stage.name),
                        Some((Severity::Info, kind)),
                        json!({ "gates": gates.reports }),
                    ),
                );
            }
            if max_reached {
                return hold(HoldReason::Inconclusive {
                    gates: gates.pending(),
                });
            }
            (state.clone(), Vec::new())
        }
        _ => (state.clone(), Vec::new()),
    }
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
    let trigger = Trigger::Operator {
        actor: cmd.actor.clone(),
    };
    let not_allowed = || CommandError::NotAllowed {
        command: cmd.kind.as_str(),
        phase: state.phase_name(),
    };
    let t = |alert: Option<(Severity, AlertKind)>| Transition {
        action: cmd.kind.as_str(),
        trigger: &trigger,
        reason: cmd.reason.clone(),
        details: json!({ "command": cmd }),
        alert,
        guardrails: Vec::new(),
        window: WindowCounts::default(),
    };
    let epoch = state.stage_epoch_ms;
    let out = match (cmd.kind, &state.phase) {
        (CommandKind::Pause, Phase::Stage { index } | Phase::Holding { index, .. }) => transition(
            cfg,
            state,
            Phase::Paused {
                index: *index,
                at_ms: now_ms,
                actor: cmd.actor.clone(),
                reason: cmd.reason.clone(),
            },
            epoch,
            now_ms,
            t(Some((Severity::Info, AlertKind::Hold))),
        ),
        (CommandKind::Pause, Phase::Paused { .. }) => return Err(CommandError::AlreadyPaused),
        (CommandKind::Resume, Phase::Paused { index, .. }) => transition(
            cfg,
            state,
            Phase::Stage { index: *index },
            epoch,
            now_ms,
            t(Some((Severity::Info, AlertKind::Resolve))),
        ),
        (CommandKind::Resume, Phase::Holding { index, .. }) => transition(
            cfg,
            state,
            Phase::Stage { index: *index },
            now_ms,
            now_ms,
            t(Some((Severity::Info, AlertKind::Resolve))),
        ),
        (CommandKind::Resume, Phase::Pinned { index, .. }) => {
            let (mut next, actions) = transition(
                cfg,
                state,
                Phase::Stage { index: *index },
                now_ms,
                now_ms,
                t(Some((Severity::Info, AlertKind::Resolve))),
            );
            next.slow = SlowSignalState::since(now_ms);
            (next, actions)
        }
        (CommandKind::Resume, _) => return Err(CommandError::NotPaused),
        (
            CommandKind::Promote,
            Phase::Stage { index } | Phase::Paused { index, .. } | Phase::Holding { index, .. },
        ) => {
            check_expected(cfg, state, cmd)?;
            let phase = next_phase(cfg, *index, now_ms);
            let kind = match phase {
                Phase::Completed { .. } => AlertKind::Completed,
                _ => AlertKind::Advance,
            };
            transition(
                cfg,
                state,
                phase,
                now_ms,
                now_ms,
                t(Some((Severity::Warning, kind))),
            )
        }
        (CommandKind::Promote, Phase::Completed { .. }) => {
            check_expected(cfg, state, cmd)?;
            transition(
                cfg,
                state,
                Phase::ReadyToDecommission { since_ms: now_ms },
                epoch,
                now_ms,
                t(Some((Severity::Info, AlertKind::Completed))),
            )
        }
        (CommandKind::Rollback, Phase::RolledBack { .. }) => return Err(not_allowed()),
        (CommandKind::Rollback, _) => transition(
            cfg,
            state,
            Phase::RolledBack {
                at_ms: now_ms,
                from_index: state.stage_index().unwrap_or(last_index(cfg)),
                reason: cmd.reason.clone(),
                trigger: trigger.clone(),
            },
            epoch,
            now_ms,
            t(Some((Severity::Warning, AlertKind::Trip))),
        ),
        (CommandKind::Reset, Phase::RolledBack { at_ms, .. }) => {
            let ready_at = at_ms.saturating_add(ms(cfg.cooldown));
            if now_ms < ready_at {
                return Err(CommandError::CooldownActive {
                    remaining_ms: ready_at - now_ms,
                });
            }
            let (mut next, actions) = transition(
                cfg,
                state,
                Phase::Stage { index: 0 },
                now_ms,
                now_ms,
                t(Some((Severity::Info, AlertKind::Resolve))),
            );
            next.started_ms = now_ms;
            next.slow = SlowSignalState::since(now_ms);
            (next, actions)
        }
        _ => return Err(not_allowed()),
    };
    Ok(out)
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
