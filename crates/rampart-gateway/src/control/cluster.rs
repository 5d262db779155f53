//! Several replicas on one PostgreSQL database: what keeps their control planes in step.
//!
//! - [`sync`]: the task that polls the rollouts' versions every `cluster.poll_interval`, hears
//!   `NOTIFY`s of control changes and the controller's lease on the replica's own connection
//!   ([`rampart_store::postgres::Link`]), and hands the controller every stored row newer than
//!   what it has ([`ClusterEvent`]); after a reconnection it reloads everything, since
//!   notifications are lost while a connection is down.
//! - [`aggregates`]: the task that writes this replica's sealed per-second window aggregates
//!   and reads the fleet's for the leader ([`super::fleet`]), off the controller's loop.
//! - [`ClusterHealth`]: whether this replica reaches the database (for `/readyz` and
//!   fail-static), and which replica leads (for status).
//!
//! Every state change itself is a compare-and-set on the rollout's version made by the
//! controller's writer ([`super::persist`]), so two replicas never both apply a change; the
//! request path never waits on any of this: it reads the routing snapshot the controller
//! publishes.

use std::sync::Mutex;

use rampart_store::{StoreError, StoredRollout};

pub mod aggregates;
pub mod sync;

/// Why a store call made by a cluster task failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking call panicked or was cancelled.
    #[error("the store call did not finish: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Run a blocking store call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, CallError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// What the cluster tells the controller.
#[derive(Debug)]
pub enum ClusterEvent {
    /// A rollout's stored row, newer than what the controller may have.
    Adopt { rollout: String, row: StoredRollout },
    /// This replica now holds (true) or has lost (false) the controller's lease.
    Leading(bool),
    /// Cut off from the database for longer than `cluster.stale_after` (true), or back (false).
    Stale(bool),
}

#[derive(Debug, Default)]
struct HealthInner {
    /// Since when the store cannot be reached, and why (None: reachable).
    down: Option<(i64, String)>,
    leader: Option<String>,
}

/// Whether this replica reaches the shared store, and who leads.
#[derive(Debug)]
pub struct ClusterHealth {
    pub replica_id: String,
    inner: Mutex<HealthInner>,
}

impl ClusterHealth {
    pub fn new(replica_id: String) -> ClusterHealth {
        ClusterHealth {
            replica_id,
            inner: Mutex::new(HealthInner::default()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HealthInner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut g| f(&mut g))
    }

    /// `Some(why)` while the store cannot be reached (for `/readyz`).
    pub fn degraded(&self, now_ms: i64) -> Option<String> {
        self.with(|h| {
            h.down.as_ref().map(|(since, why)| {
                format!(
                    "the shared store is unreachable for {}s ({why}); serving the last known \
                     rollout state, events queued",
                    (now_ms - since).max(0) / 1000
                )
            })
        })
        .flatten()
    }

    /// How long the store has been unreachable (0 when it is reachable).
    pub fn down_for_ms(&self, now_ms: i64) -> i64 {
        self.with(|h| {
            h.down
                .as_ref()
                .map_or(0, |(since, _)| (now_ms - since).max(0))
        })
        .unwrap_or(0)
    }

    pub(crate) fn reached(&self) {
        self.with(|h| h.down = None);
    }

    pub(crate) fn failed(&self, now_ms: i64, why: String) {
        self.with(|h| match &mut h.down {
            Some((_, w)) => *w = why,
            None => h.down = Some((now_ms, why)),
        });
    }

    pub fn leader(&self) -> Option<String> {
        self.with(|h| h.leader.clone()).flatten()
    }

    pub(crate) fn set_leader(&self, leader: Option<String>) {
        self.with(|h| h.leader = leader);
    }
}

/// `hostname:pid`, the default `cluster.replica_id`.
pub fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rampart".into());
    let id = format!("{host}:{}", std::process::id());
    // PostgreSQL keeps 63 bytes of an application name: keep the pid.
    match id.len().checked_sub(63) {
        Some(cut) if cut > 0 => id.get(cut..).unwrap_or(&id).to_string(),
        _ => id,
    }
}
