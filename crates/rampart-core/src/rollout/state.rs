//! The rollout's persisted state and the data plane's view of it.
//!
//! [`RolloutState`] is what the gateway saves as JSON after every transition and reloads after
//! a restart; [`RolloutState::view`] turns it into the [`RolloutView`] the request path reads.
//!
//! What each phase serves (documented contract):
//!
//! | phase | canary `percent` | `shadow_percent` | `stage` label |
//! |---|---|---|---|
//! | `stage` | the stage's | the stage's | stage name |
//! | `holding` | the stage's (evidence keeps accruing for the reviewer) | the stage's | stage name |
//! | `paused` | the stage's: pausing freezes the ramp but keeps the split | 0 | `paused` |
//! | `pinned` | 0: a slow signal pinned the canary (a human resumes) | the stage's | `pinned` |
//! | `rolled_back` | 0: everyone on the baseline | 0 | `rolled_back` |
//! | `completed` | 100 (baseline kept warm) | 0 | `completed` |
//! | `ready_to_decommission` | 100 | 0 | `ready_to_decommission` |
//!
//! Invariants: a stage index is always `< cfg.stages.len()` for the config the state was made
//! with (a config that lost stages clamps to its last one); the kill switch stays armed in
//! `stage`, `holding`, `paused`, `pinned` and `completed`. `percent_history` holds every change
//! of the canary percent since the rollout was created or reset, so an outcome known only by
//! its routing key can be attributed to the cohort its user was in at the time.

use serde::{Deserialize, Serialize};

use super::slow_signals::SlowSignalState;
use crate::config::RolloutConfig;
use crate::routing::RolloutView;

/// Who caused a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Trigger {
    /// The controller, from observations.
    Controller,
    /// A person, through the admin API or CLI.
    Operator { actor: String },
}

impl Trigger {
    /// `controller` or the operator's name, for audit records.
    pub fn actor(&self) -> &str {
        match self {
            Trigger::Controller => "controller",
            Trigger::Operator { actor } => actor,
        }
    }
}

/// Why a stage is held for human review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HoldReason {
    /// `max_duration` passed and some gate could neither pass nor fail.
    Inconclusive { gates: Vec<String> },
    /// The cohorts' sizes do not match the planned split (assignment is broken).
    SampleRatioMismatch { p_value: String },
    /// Signals disagree (e.g. the comparison engine sees a significant refusal increase that
    /// the guardrails have not confirmed).
    ConflictingSignals { detail: String },
}

impl HoldReason {
    /// One-line explanation.
    pub fn summary(&self) -> String {
        match self {
            HoldReason::Inconclusive { gates } => {
                format!("inconclusive at max_duration: {}", gates.join(", "))
            }
            HoldReason::SampleRatioMismatch { p_value } => {
                format!("sample ratio mismatch (p = {p_value})")
            }
            HoldReason::ConflictingSignals { detail } => format!("conflicting signals: {detail}"),
        }
    }
}

/// Where a rollout is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Running stage `index` (shadow or canary), gates evaluated each tick.
    Stage { index: usize },
    /// Frozen at stage `index` by an operator; guardrails still armed.
    Paused {
        index: usize,
        at_ms: i64,
        actor: String,
        reason: String,
    },
    /// A slow signal (business outcome) held its breach for `sustain`: the canary is at 0 %,
    /// shadow continues, guardrails stay armed; only an operator's `resume` (back to stage
    /// `index`, fresh stage epoch) or `rollback` leaves it.
    Pinned {
        index: usize,
        at_ms: i64,
        signals: Vec<String>,
        reason: String,
    },
    /// Waiting for a human at stage `index`; guardrails still armed.
    Holding {
        index: usize,
        at_ms: i64,
        reason: HoldReason,
    },
    /// Everyone back on the baseline. `from_index` is the stage it was in.
    RolledBack {
        at_ms: i64,
        from_index: usize,
        reason: String,
        trigger: Trigger,
    },
    /// 100 % on the candidate, baseline kept warm until `since_ms + keep_baseline_warm`.
    Completed { since_ms: i64 },
    /// The warm period is over: the baseline may be removed from the route.
    ReadyToDecommission { since_ms: i64 },
}

/// The persisted state of one rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    pub phase: Phase,
    /// When the current stage's measurement started: set on entering a stage, on a resume
    /// from a hold and on a reset; unchanged by pause/resume. Stage counters and
    /// `min_duration`/`max_duration` are measured from here.
    pub stage_epoch_ms: i64,
    /// When the rollout was created or last reset.
    pub started_ms: i64,
    /// Number of transitions so far (audit sequence; increases by one per transition).
    pub transitions: u64,
    /// The slow signals' running checks (breach start per signal) and their epoch.
    #[serde(default, skip_serializing_if = "SlowSignalState::is_empty")]
    pub slow: SlowSignalState,
    /// Every change of the canary percent, oldest first (see the module docs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percent_history: Vec<PercentChange>,
}

/// The canary percent became `percent` at `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PercentChange {
    pub at_ms: i64,
    pub percent: f64,
}

impl RolloutState {
    /// A rollout starting its first stage at `now_ms`.
    pub fn new(now_ms: i64) -> RolloutState {
        RolloutState {
            phase: Phase::Stage { index: 0 },
            stage_epoch_ms: now_ms,
            started_ms: now_ms,
            transitions: 0,
            slow: SlowSignalState::default(),
            percent_history: Vec::new(),
        }
    }

    /// The canary percent in force at `at_ms`: the latest recorded change at or before it;
    /// before any change, the first stage's percent from `started_ms` on, and 0 before that.
    pub fn percent_at(&self, cfg: &RolloutConfig, at_ms: i64) -> f64 {
        match self.percent_history.iter().rev().find(|c| c.at_ms <= at_ms) {
            Some(c) => c.percent,
            None if at_ms >= self.started_ms => cfg.stages.first().map_or(0.0, |s| s.percent),
            None => 0.0,
        }
    }

    /// The stage index the rollout is in or was frozen at (`None` when rolled back, completed).
    pub fn stage_index(&self) -> Option<usize> {
        match &self.phase {
            Phase::Stage { index }
            | Phase::Paused { index, .. }
            | Phase::Holding { index, .. }
            | Phase::Pinned { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// Start of the current stage's measurement (see the field).
    pub fn stage_epoch_ms(&self) -> i64 {
        self.stage_epoch_ms
    }

    /// Short name of the phase: `stage`, `paused`, `holding`, `pinned`, `rolled_back`, `completed`,
    /// `ready_to_decommission`.
    /// Whether the kill switch (or an operator) has rolled the rollout back.
    pub fn is_rolled_back(&self) -> bool {
        matches!(self.phase, Phase::RolledBack { .. })
    }

    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Stage { .. } => "stage",
            Phase::Paused { .. } => "paused",
            Phase::Holding { .. } => "holding",
            Phase::Pinned { .. } => "pinned",
            Phase::RolledBack { .. } => "rolled_back",
            Phase::Completed { .. } => "completed",
            Phase::ReadyToDecommission { .. } => "ready_to_decommission",
        }
    }

    /// Human label: the stage name when in a stage (also while holding), else the phase name.
    pub fn label(&self, cfg: &RolloutConfig) -> String {
        match &self.phase {
            Phase::Stage { index } | Phase::Holding { index, .. } => stage_name(cfg, *index),
            _ => self.phase_name().to_string(),
        }
    }

    /// Whether the kill switch is armed (the candidate serves or shadows some traffic).
    pub fn guardrails_armed(&self) -> bool {
        !matches!(
            self.phase,
            Phase::RolledBack { .. } | Phase::ReadyToDecommission { .. }
        )
    }

    /// The data plane's view (see the module table).
    pub fn view(&self, cfg: &RolloutConfig) -> RolloutView {
        let stage_split = |index: usize| {
            cfg.stages
                .get(index.min(cfg.stages.len().saturating_sub(1)))
                .map(|s| (s.percent, s.shadow_percent))
                .unwrap_or((0.0, 0.0))
        };
        let (percent, shadow_percent) = match &self.phase {
            Phase::Stage { index } | Phase::Holding { index, .. } => stage_split(*index),
            Phase::Paused { index, .. } => (stage_split(*index).0, 0.0),
            Phase::Pinned { index, .. } => (0.0, stage_split(*index).1),
            Phase::RolledBack { .. } => (0.0, 0.0),
            Phase::Completed { .. } | Phase::ReadyToDecommission { .. } => (100.0, 0.0),
        };
        RolloutView {
            rollout: cfg.name.clone(),
            salt: cfg.salt.clone(),
            candidate: cfg.candidate.clone(),
            stage: self.label(cfg),
            percent,
            shadow_percent,
            tenant_caps: cfg.tenants.clone(),
        }
    }
}

/// The configured name of stage `index` (clamped to the last stage).
pub(crate) fn stage_name(cfg: &RolloutConfig, index: usize) -> String {
    cfg.stages
        .get(index.min(cfg.stages.len().saturating_sub(1)))
        .map(|s| s.name.clone())
        .unwrap_or_default()
}
