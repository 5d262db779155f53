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
//! | `rolled_back` | 0: everyone on the baseline | 0 | `rolled_back` |
//! | `completed` | 100 (baseline kept warm) | 0 | `completed` |
//! | `ready_to_decommission` | 100 | 0 | `ready_to_decommission` |
//!
//! Invariants: a stage index is always `< cfg.stages.len()` for the config the state was made
//! with (a config that lost stages clamps to its last one); the kill switch stays armed in
//! `stage`, `holding`, `paused` and `completed`.

use serde::{Deserialize, Serialize};

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
}

impl RolloutState {
    /// A rollout starting its first stage at `now_ms`.
    pub fn new(now_ms: i64) -> RolloutState {
        RolloutState {
            phase: Phase::Stage { index: 0 },
            stage_epoch_ms: now_ms,
            started_ms: now_ms,
            transitions: 0,
        }
    }

    /// The stage index the rollout is in or was frozen at (`None` when rolled back, completed).
    pub fn stage_index(&self) -> Option<usize> {
        match &self.phase {
            Phase::Stage { index } | Phase::Paused { index, .. } | Phase::Holding { index, .. } => {
                Some(*index)
            }
            _ => None,
        }
    }

    /// Start of the current stage's measurement (see the field).
    pub fn stage_epoch_ms(&self) -> i64 {
        self.stage_epoch_ms
    }

    /// Short name of the phase: `stage`, `paused`, `holding`, `rolled_back`, `completed`,
    /// `ready_to_decommission`.
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Stage { .. } => "stage",
            Phase::Paused { .. } => "paused",
            Phase::Holding { .. } => "holding",
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
