//! The door between the planes: commands in (pause, resume, promote, rollback, reset, tenant
//! caps), status out. Every change to the routing snapshot goes through the controller, so an
//! automatic decision, an operator's command and a tenant cap never overwrite one another.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rampart_core::outcomes::OutcomeSummary;
use rampart_core::rollout::step::Evaluation;
use rampart_core::rollout::{
    CohortCounts, Command, CommandError, PairedCounts, RolloutState, SlowSignalReport,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::persist::WriteHealth;

/// What status pages, the CLI and the admin API show for a rollout.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutStatus {
    pub rollout: String,
    pub state: RolloutState,
    pub phase: &'static str,
    pub stage: String,
    pub percent: f64,
    pub shadow_percent: f64,
    pub evaluation: Option<Evaluation>,
    pub stage_control: CohortCounts,
    pub stage_canary: CohortCounts,
    pub stage_pairs: Option<PairedCounts>,
    /// The slow signals' evidence at the last check (empty without `[[slow_signals]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slow_signals: Vec<SlowSignalReport>,
    /// Business outcomes per name and cohort since the slow-signal epoch (n, mean, interval;
    /// [`rampart_core::outcomes::summarize`]); empty when none were posted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<OutcomeSummary>,
    pub updated_ms: i64,
    /// The stored version this state derives from (grows with every stored change).
    pub version: i64,
    /// Several replicas on PostgreSQL: who this replica is, who leads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterView>,
}

/// What the status says about the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// This replica (`cluster.replica_id`).
    pub replica_id: String,
    /// The replica holding the controller's lease, as the database last said.
    pub leader: Option<String>,
    /// Whether this replica evaluates gates and guardrails.
    pub leading: bool,
    /// Cut off from the database for longer than `cluster.stale_after`.
    pub stale: bool,
}

/// Latest status per rollout.
pub type Statuses = ArcSwap<BTreeMap<String, Arc<RolloutStatus>>>;

/// What an operator asks the controller to do to one rollout.
#[derive(Debug, Clone)]
pub enum Order {
    /// A state-machine command (pause, resume, promote, rollback, reset).
    Command(Command),
    /// Cap (or uncap, with 100) one tenant's canary percent.
    TenantCap { tenant: String, max_percent: f64 },
}

/// Why an order was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Refused(#[from] CommandError),
    #[error("unknown rollout `{0}`")]
    UnknownRollout(String),
    /// Applied to routing, but not stored yet; the controller keeps retrying.
    #[error("{0}")]
    NotStored(String),
    #[error("the controller is not running")]
    Stopped,
}

/// An order and where the answer goes.
pub struct CommandRequest {
    pub rollout: String,
    pub order: Order,
    pub reply: oneshot::Sender<Result<RolloutStatus, ControlError>>,
}

/// The handle the rest of the gateway uses to reach the controller.
pub struct ControlHandle {
    commands: mpsc::Sender<CommandRequest>,
    pub status: Arc<Statuses>,
    /// Whether every control change is stored.
    pub writes: Arc<WriteHealth>,
    /// Whether this replica reaches the shared store (`None` on a single node).
    pub cluster: Option<Arc<crate::control::cluster::ClusterHealth>>,
}

/// The controller's end of the command queue.
pub type CommandReceiver = mpsc::Receiver<CommandRequest>;

pub fn channel(
    status: Arc<Statuses>,
    writes: Arc<WriteHealth>,
    cluster: Option<Arc<crate::control::cluster::ClusterHealth>>,
) -> (ControlHandle, CommandReceiver) {
    let (tx, rx) = mpsc::channel(64);
    (
        ControlHandle {
            commands: tx,
            status,
            writes,
            cluster,
        },
        rx,
    )
}

impl ControlHandle {
    /// Send an order and wait for the controller's answer.
    pub async fn order(&self, rollout: &str, order: Order) -> Result<RolloutStatus, ControlError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(CommandRequest {
                rollout: rollout.to_string(),
                order,
                reply,
            })
            .await
            .map_err(|_| ControlError::Stopped)?;
        rx.await.map_err(|_| ControlError::Stopped)?
    }

    /// A state-machine command.
    pub async fn command(
        &self,
        rollout: &str,
        command: Command,
    ) -> Result<RolloutStatus, ControlError> {
        self.order(rollout, Order::Command(command)).await
    }

    /// The latest status of one rollout.
    pub fn status_of(&self, rollout: &str) -> Option<Arc<RolloutStatus>> {
        self.status.load().get(rollout).cloned()
    }
}
