//! `[cluster]`: replica id, poll interval, staleness (see [`crate::config::cluster`]).

use std::time::Duration;

use super::Collector;
use crate::config::cluster::{ClusterConfig, OnStale, RawCluster};

/// Longest replica id: PostgreSQL keeps 63 bytes of a connection's application name, which is
/// how the lease holder is found.
pub const MAX_REPLICA_ID: usize = 63;

pub(super) fn validate_cluster(c: &mut Collector, raw: RawCluster) -> ClusterConfig {
    let d = ClusterConfig::default();
    let ranged = |c: &mut Collector, key: &str, v: Option<&str>, def, lo, hi, says: &str| {
        let path = format!("cluster.{key}");
        let got = c.duration(&path, v, def);
        if got < lo || got > hi {
            c.push(
                path,
                format!("must be between {says}"),
                v.map(str::to_string),
            );
            return def;
        }
        got
    };
    let poll_interval = ranged(
        c,
        "poll_interval",
        raw.poll_interval.as_deref(),
        d.poll_interval,
        Duration::from_millis(100),
        Duration::from_secs(60),
        "100ms and 1m",
    );
    let stale_after = ranged(
        c,
        "stale_after",
        raw.stale_after.as_deref(),
        d.stale_after,
        Duration::from_secs(1),
        Duration::from_secs(86_400),
        "1s and 1d",
    );
    if stale_after <= poll_interval {
        c.push(
            "cluster.stale_after",
            "must be longer than cluster.poll_interval",
            raw.stale_after.clone(),
        );
    }
    let on_stale = match raw.on_stale.as_deref() {
        None | Some("keep") => OnStale::Keep,
        Some("baseline") => OnStale::Baseline,
        Some(other) => {
            c.push(
                "cluster.on_stale",
                "must be \"keep\" or \"baseline\"",
                Some(other.to_string()),
            );
            OnStale::Keep
        }
    };
    let replica_id = raw.replica_id.map(|s| s.trim().to_string());
    if let Some(id) = &replica_id {
        let ok = !id.is_empty()
            && id.len() <= MAX_REPLICA_ID
            && id.chars().all(|ch| ch.is_ascii_graphic());
        if !ok {
            c.push(
                "cluster.replica_id",
                format!("must be 1 to {MAX_REPLICA_ID} printable ASCII characters, no spaces"),
                Some(id.clone()),
            );
        }
    }
    ClusterConfig {
        replica_id,
        poll_interval,
        stale_after,
        on_stale,
    }
}
