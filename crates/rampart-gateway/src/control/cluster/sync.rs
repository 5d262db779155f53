//! The sync task: keeps this replica's controller in step with the stored rollout rows.
//!
//! Every `cluster.poll_interval` it reads every rollout's version (one query) and loads those
//! that moved; a `NOTIFY` loads one at once; a reconnection of the replica's own connection
//! reloads all. Each stored row goes to the controller as [`ClusterEvent::Adopt`]; the
//! controller keeps it only when it is newer than its own and it has no change of its own
//! in flight for that rollout (that change will either be stored on top, or conflict and be
//! re-applied on the stored row). Store calls run on the blocking pool, one at a time.
//!
//! The task also reports whether the store is reachable ([`ClusterHealth`]), says when the
//! replica has been cut off for longer than `cluster.stale_after` ([`ClusterEvent::Stale`]),
//! and forwards the controller's lease ([`ClusterEvent::Leading`]). Dropping the link at
//! shutdown frees the lease at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rampart_store::postgres::{Link, LinkEvent};
use rampart_store::{PgStore, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ClusterEvent, ClusterHealth, blocking};
use crate::clock::Clock;

/// What the sync task works with.
pub struct Sync {
    pub store: Arc<dyn Store>,
    pub pg: Arc<PgStore>,
    pub rollouts: Vec<String>,
    pub poll_interval: Duration,
    pub stale_after: Duration,
    pub health: Arc<ClusterHealth>,
    pub clock: Arc<dyn Clock>,
    pub events: mpsc::Sender<ClusterEvent>,
    pub shutdown: CancellationToken,
}

async fn next(link: &mut Link) -> Option<LinkEvent> {
    link.events.recv().await
}

pub async fn run(s: Sync) {
    let mut link = s.pg.link(&s.health.replica_id, s.poll_interval);
    let mut every = tokio::time::interval(s.poll_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The version of each rollout last handed to the controller.
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    let mut stale = false;
    loop {
        let open = tokio::select! {
            _ = s.shutdown.cancelled() => break,
            ev = next(&mut link) => match ev {
                None => break,
                Some(LinkEvent::Up) => {
                    tracing::info!("connected to the shared store: reloading every rollout");
                    seen.clear();
                    s.poll(&mut seen).await
                }
                Some(LinkEvent::Down(why)) => {
                    tracing::warn!(%why, "the replica's own connection to the store is down");
                    true
                }
                Some(LinkEvent::Changed(rollout)) => s.reload(&rollout, &mut seen).await,
                Some(LinkEvent::Leading(b)) => s.events.send(ClusterEvent::Leading(b)).await.is_ok(),
            },
            _ = every.tick() => s.poll(&mut seen).await,
        };
        if !open {
            break;
        }
        let cut_off = s.health.down_for_ms(s.clock.now_ms()) as u128 >= s.stale_after.as_millis();
        if cut_off != stale {
            stale = cut_off;
            if stale {
                tracing::error!(after = ?s.stale_after, "cut off from the shared store: rollout state is stale");
            }
            if s.events.send(ClusterEvent::Stale(stale)).await.is_err() {
                break;
            }
        }
    }
    // Dropping the link closes its connection: the lease is free for another replica now.
    drop(link);
}

impl Sync {
    /// Read every version, load the rollouts that moved. `false` when the controller is gone.
    async fn poll(&self, seen: &mut BTreeMap<String, i64>) -> bool {
        let store = self.store.clone();
        let versions = match blocking(move || store.rollout_versions()).await {
            Ok(v) => v,
            Err(e) => {
                self.health.failed(self.clock.now_ms(), e.to_string());
                return true;
            }
        };
        self.health.reached();
        let pg = self.pg.clone();
        match blocking(move || pg.leader()).await {
            Ok(leader) => self.health.set_leader(leader),
            Err(e) => tracing::debug!(error = %e, "cannot read the lease holder"),
        }
        for name in &self.rollouts {
            let Some(v) = versions.get(name) else {
                continue;
            };
            if seen.get(name) != Some(v) && !self.reload(name, seen).await {
                return false;
            }
        }
        true
    }

    /// Load one rollout's row and hand it over. `false` when the controller is gone.
    async fn reload(&self, rollout: &str, seen: &mut BTreeMap<String, i64>) -> bool {
        if !self.rollouts.iter().any(|r| r == rollout) {
            return true;
        }
        let (store, name) = (self.store.clone(), rollout.to_string());
        match blocking(move || store.load_rollout(&name)).await {
            Ok(Some(row)) => {
                seen.insert(rollout.to_string(), row.version);
                let ev = ClusterEvent::Adopt {
                    rollout: rollout.to_string(),
                    row,
                };
                self.events.send(ev).await.is_ok()
            }
            Ok(None) => true,
            Err(e) => {
                self.health.failed(self.clock.now_ms(), e.to_string());
                true
            }
        }
    }
}
