//! `[cluster]`: defaults, ranges, and every mistake reported with its key path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use rampart_core::config::Config;
use rampart_core::config::cluster::OnStale;

fn config(cluster: &str) -> String {
    format!(
        r#"
[store]
type = "postgres"
url_env = "RAMPART_DATABASE_URL"
{cluster}

[providers.sim]
type = "mock"
[providers.sim.models.old]

[routes.support]
baseline = "v1"
[routes.support.variants.v1]
provider = "sim"
model = "old"
"#
    )
}

fn errors(cluster: &str) -> Vec<String> {
    match Config::from_toml_str(&config(cluster)) {
        Ok(_) => panic!("config should be invalid"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn defaults_without_a_cluster_table() {
    let c = Config::from_toml_str(&config("")).unwrap().cluster;
    assert_eq!(c.replica_id, None);
    assert_eq!(c.poll_interval, Duration::from_secs(1));
    assert_eq!(c.stale_after, Duration::from_secs(60));
    assert_eq!(c.on_stale, OnStale::Keep);
}

#[test]
fn every_key_is_read() {
    let c = Config::from_toml_str(&config(
        "[cluster]\nreplica_id = \"gw-1\"\npoll_interval = \"250ms\"\nstale_after = \"10s\"\non_stale = \"baseline\"",
    ))
    .unwrap()
    .cluster;
    assert_eq!(c.replica_id.as_deref(), Some("gw-1"));
    assert_eq!(c.poll_interval, Duration::from_millis(250));
    assert_eq!(c.stale_after, Duration::from_secs(10));
    assert_eq!(c.on_stale, OnStale::Baseline);
}

#[test]
fn every_mistake_is_listed_with_its_path() {
    let errs = errors(
        "[cluster]\nreplica_id = \"has space\"\npoll_interval = \"10ms\"\nstale_after = \"3d\"\non_stale = \"panic\"",
    );
    let has = |path: &str, what: &str| {
        errs.iter()
            .any(|e| e.starts_with(&format!("{path}:")) && e.contains(what))
    };
    assert!(has("cluster.replica_id", "printable ASCII"), "{errs:?}");
    assert!(
        has("cluster.poll_interval", "between 100ms and 1m"),
        "{errs:?}"
    );
    assert!(has("cluster.stale_after", "between 1s and 1d"), "{errs:?}");
    assert!(
        has("cluster.on_stale", "\"keep\" or \"baseline\""),
        "{errs:?}"
    );
    let errs = errors("[cluster]\npoll_interval = \"5s\"\nstale_after = \"2s\"");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("cluster.stale_after:") && e.contains("longer than")),
        "{errs:?}"
    );
    let errs = errors("[cluster]\nleader = true");
    assert!(errs.iter().any(|e| e.contains("leader")), "{errs:?}");
}
