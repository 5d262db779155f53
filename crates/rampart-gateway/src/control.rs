//! The control plane: evaluate, decide, persist, page.
//!
//! - [`handle`]: the door: commands in (pause, resume, promote, rollback, reset, tenant caps),
//!   status out. Nothing else changes the routing snapshot.
//! - [`controller`]: the task that feeds the pure rollout state machine with what the data
//!   plane measured and carries out its decisions.
//! - [`persist`]: the control writer: every change a compare-and-set on the rollout's version
//!   with its audit rows, in order, retried until stored; orders are acknowledged only once
//!   stored. [`changes`]: what the controller does when another change was stored first.
//! - [`cluster`]: several replicas on PostgreSQL: version polling, notifications, the
//!   controller's lease, staleness, the per-second window aggregates' task.
//! - [`fleet`]: the leader's guardrail window merged from every replica's aggregate rows.
//! - [`shadow_gate`]: the comparison engine's verdict on shadow stages, computed off the loop.
//! - [`slow_gate`]: business outcomes per cohort for the slow gates, read off the loop.
//! - [`alerts`]: Slack, PagerDuty and webhook delivery with retries.
//!
//! The data plane never imports this module: it sends [`crate::signal::Signal`]s and reads the
//! routing snapshot ([`crate::plane::Routing`]).

pub mod alerts;
mod changes;
pub mod cluster;
pub mod controller;
pub mod fleet;
pub mod handle;
pub mod persist;
mod runtime;
pub mod shadow_gate;
pub mod slow_gate;
pub mod window;

pub use controller::{ClusterCtx, Ctx, Inbox, Restored, StartError, restore};
pub use handle::{ClusterView, ControlError, ControlHandle, Order, RolloutStatus};
