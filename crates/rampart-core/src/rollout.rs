//! The rollout controller's decisions: stages, gates, guardrails (the kill switch). Pure.
//!
//! Map of the module:
//!
//! - [`state`]: [`RolloutState`] (persisted as JSON) and the data plane's [`RolloutView`] of it.
//! - [`observations`]: what the gateway's controller task measures each check, per cohort, over
//!   the rolling window and since the stage started.
//! - [`guardrails`]: the kill switch: canary vs control in the same window, anytime-valid.
//! - [`gates`]: what a stage must show before it advances (power-sized samples, SRM, shadow).
//! - [`step`]: the state machine: [`step()`] for the controller's ticks, [`apply()`] for manual
//!   [`Command`]s, both returning the new state and the [`Action`]s the gateway carries out.
//! - [`plan`]: stage sizing for `rampart plan`.
//! - [`sim`]: a pure, seeded traffic simulator that drives [`step()`] (tests, `rampart demo`).
//!
//! Invariants: nothing here reads the clock, performs I/O or draws randomness except the
//! simulator's own seeded generator; the same inputs give the same outputs, so a state reloaded
//! from JSON continues exactly as the one that was saved.
//!
//! [`RolloutView`]: crate::routing::RolloutView

pub mod gates;
pub mod guardrails;
pub mod observations;
pub mod plan;
pub mod sim;
pub mod state;
pub mod step;

pub use gates::{GateReport, evaluate_gates};
pub use guardrails::{GuardrailReport, evaluate_guardrails};
pub use observations::{
    CohortCounts, LatencyTail, Observations, PairedCounts, ShadowGateInput, WindowCounts,
};
pub use plan::{StagePlan, plan};
pub use state::{HoldReason, Phase, RolloutState, Trigger};
pub use step::{
    Action, Alert, AlertKind, Command, CommandError, CommandKind, Severity, apply, step,
};
