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
//! - [`slow_signals`]: slow gates on business outcomes (`pin` / `rollback`), anytime-valid.
//! - [`plan`]: stage sizing for `rampart plan`.
//! - [`sim`]: a pure, seeded traffic simulator that drives [`step()`] (tests, `rampart demo`).
//!
//! Invariants: nothing here reads the clock, performs I/O or draws randomness except the
//! simulator's own seeded generator; the same inputs give the same outputs, so a state reloaded
//! from JSON continues exactly as the one that was saved.
//!
//! Defaults and measured behaviour (`tests/rollout_sim.rs`, 500 seeded runs each; 50 keyed
//! req/s, window 5 m, checks every 5 s, all four guardrails configured with
//! `error_rate_max = 0.02`, `p95_latency_max_ratio = 1.5`, `refusal_rate_max_increase = 0.01`,
//! `thumbs_down_max_ratio = 2`, and the config defaults `alpha = 0.05` (per guardrail),
//! `min_exposure = 100`, `catastrophic_error_rate = 0.5` on ≥ 20 requests):
//!
//! | scenario | sequential (default) | threshold |
//! |---|---|---|
//! | A/A, 1 % canary, 1 simulated hour | 0.6 % of runs trip | 98.2 % |
//! | A/A, 5 % canary, 1 simulated hour | 0.2 % | 91.4 % |
//! | refusals 1 % → 6 % on a 5 % canary | median 50 s, p90 125 s, none missed | median 40 s |
//!
//! Gates: `rate floor = 0.01` for the power calculation (765 samples per cohort at
//! `mde = 0.02`, `alpha = 0.05`, `power = 0.8`), SRM at `p < 0.001`.
//!
//! [`RolloutView`]: crate::routing::RolloutView

pub mod gates;
pub mod guardrails;
pub mod observations;
pub mod plan;
pub mod sim;
pub mod slow_signals;
pub mod state;
pub mod step;

pub use gates::{GateReport, evaluate_gates};
pub use guardrails::{GuardrailReport, evaluate_guardrails};
pub use observations::{
    CohortCounts, CustomMoments, LatencyTail, MetricMoments, Observations, PairedCounts,
    ShadowGateInput, WindowCounts,
};
pub use plan::{StagePlan, plan};
pub use slow_signals::{
    OutcomeObservations, SignalOutcomes, SlowSignalReport, SlowStatus, SlowStep, step_slow,
};
pub use state::{HoldReason, PercentChange, Phase, RolloutState, Trigger};
pub use step::{
    Action, Alert, AlertKind, Command, CommandError, CommandKind, Severity, apply, step,
};
