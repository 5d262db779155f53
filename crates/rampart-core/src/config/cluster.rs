//! `[cluster]`: how replicas sharing one PostgreSQL database stay in step (used only with
//! `store.type = "postgres"`; a single SQLite node ignores it).
//!
//! - `replica_id`: this replica's name in status and the audit log (default: `hostname:pid`,
//!   resolved at start-up by the gateway, since validation reads no environment).
//! - `poll_interval` (default `"1s"`, 100ms..1m): how often a replica polls the rollouts'
//!   versions and campaigns for the controller's lease.
//! - `stale_after` (default `"60s"`, 1s..1d, more than `poll_interval`): how long without the
//!   database before the replica's rollout state counts as stale.
//! - `on_stale` (`"keep"` default, or `"baseline"`): what a stale replica serves.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub replica_id: Option<String>,
    pub poll_interval: Option<String>,
    pub stale_after: Option<String>,
    pub on_stale: Option<String>,
}

/// What a replica cut off from the database for `stale_after` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnStale {
    /// The last known state: rollouts go on as they were (a rollback decided elsewhere
    /// meanwhile is not seen until the database is back).
    #[default]
    Keep,
    /// Every rollout that is not complete is served by its baseline until the database is
    /// back: no candidate traffic without a controller watching it.
    Baseline,
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `None`: `hostname:pid`, resolved at start-up.
    pub replica_id: Option<String>,
    pub poll_interval: Duration,
    pub stale_after: Duration,
    pub on_stale: OnStale,
}

impl ClusterConfig {
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
    pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60);
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            replica_id: None,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            stale_after: Self::DEFAULT_STALE_AFTER,
            on_stale: OnStale::Keep,
        }
    }
}
