//! One rollout's live state in the controller: its state machine state, what it measured, and
//! the changes it made that are not stored yet.
//!
//! Invariants: `stored_version` is the newest stored version this replica knows its state
//! derives from; every change in `pending` was applied to `state` in order and is queued for
//! the control writer in the current `lineage`, which started from `lineage_base`.

use std::collections::{BTreeMap, VecDeque};

use rampart_core::config::RolloutConfig;
use rampart_core::outcomes::OutcomeSummary;
use rampart_core::rollout::step::Evaluation;
use rampart_core::rollout::{Command, RolloutState, SlowSignalReport};
use rampart_core::routing::RolloutView;
use rampart_store::AuditEntry;
use tokio::sync::oneshot;

use super::fleet::Fleet;
use super::handle::{ClusterView, ControlError, RolloutStatus};
use super::window::Window;

/// Where an operator's answer goes once the change is stored (or refused).
pub type Done = oneshot::Sender<Result<RolloutStatus, ControlError>>;

/// Why a change was made: what to do with it when another change was stored first.
#[derive(Debug, Clone)]
pub enum Intent {
    /// An operator's command: applied again on the stored state (or refused).
    Command(Command),
    /// An operator's tenant cap: applied on whatever state is stored.
    Cap { tenant: String, max_percent: f64 },
    /// An audit note that changes no state (a new leader): written again as is.
    Note(AuditEntry),
    /// The controller's own decision: dropped, and the rollout checked again at once on the
    /// stored state.
    Auto,
    /// The first save of a fresh rollout: dropped when a row exists.
    Init,
}

/// A change applied locally and queued, not yet known to be stored.
pub struct Pending {
    pub seq: u64,
    pub intent: Intent,
    pub done: Option<Done>,
}

pub struct Runtime {
    pub cfg: RolloutConfig,
    pub state: RolloutState,
    /// What this replica measured itself.
    pub window: Window,
    /// Several replicas: the fleet's window merged from every replica's aggregate rows (used
    /// while this replica leads; `None` on a single node).
    pub fleet: Option<Fleet>,
    /// Tenant caps set at runtime (stored), merged over the configured ones.
    pub caps: BTreeMap<String, f64>,
    pub next_check_ms: i64,
    pub last_eval: Option<Evaluation>,
    /// The slow signals' evidence at the last check.
    pub slow_reports: Vec<SlowSignalReport>,
    pub stored_version: i64,
    pub lineage: u64,
    pub lineage_base: i64,
    pub pending: VecDeque<Pending>,
}

impl Runtime {
    /// The view the data plane must route by.
    pub fn view(&self) -> RolloutView {
        let mut view = self.state.view(&self.cfg);
        view.tenant_caps
            .extend(self.caps.iter().map(|(t, c)| (t.clone(), *c)));
        view
    }

    /// The view while the replica is cut off from the store and told to fall back
    /// (`cluster.on_stale = "baseline"`): everyone on the baseline unless the rollout is
    /// complete (then the candidate is the baseline's replacement already).
    pub fn stale_view(&self) -> RolloutView {
        let mut view = self.view();
        if !matches!(
            self.state.phase_name(),
            "completed" | "ready_to_decommission"
        ) {
            view.percent = 0.0;
            view.shadow_percent = 0.0;
            view.stage = "stale".into();
        }
        view
    }

    /// Take a new state; a new stage epoch restarts the stage's counters.
    pub fn enter(&mut self, state: RolloutState) {
        let epoch_changed = state.stage_epoch_ms() != self.state.stage_epoch_ms();
        self.state = state;
        if epoch_changed {
            let epoch = self.state.stage_epoch_ms();
            self.window.reset_stage(epoch);
            if let Some(f) = self.fleet.as_mut() {
                f.restage(epoch);
            }
        }
    }

    /// The status to publish; `outcomes` are the latest outcome summaries read for it.
    pub fn status(
        &self,
        now_ms: i64,
        outcomes: Vec<OutcomeSummary>,
        cluster: Option<ClusterView>,
    ) -> RolloutStatus {
        let view = self.state.view(&self.cfg);
        // The leader's counters are the fleet's once it has them.
        let w = match &self.fleet {
            Some(f) if f.complete => &f.window,
            _ => &self.window,
        };
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
            version: self.stored_version,
            cluster,
        }
    }
}
