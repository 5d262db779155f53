//! The table is complete, has no stale rows, is what the docs show, and bounds what it says.

use super::super::{Collector, load_collecting};
use super::*;

/// A config that sets every numeric key the loader reads, each inside its range.
const EVERY_KEY: &str = r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 1024
shutdown_grace = "5s"
request_timeout = "30s"
max_messages = 10
max_json_depth = 8
header_read_timeout = "5s"
body_read_timeout = "5s"
max_connections = 10

[store]
queue_capacity = 100
batch_size = 10
flush_interval = "20ms"

[shadow]
max_in_flight = 4
timeout = "5s"
max_cost_usd_per_day = 10.0
max_tokens_per_day = 1000
cache_ttl = "1m"

[alerts]
max_attempts = 3
timeout = "2s"

[outcomes]
max_age = "7d"

[telemetry]
queue_capacity = 16
export_timeout = "2s"

[providers.up]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
timeout = "10s"
connect_timeout = "1s"
first_byte_timeout = "5s"
idle_timeout = "5s"
max_idle_per_host = 4
retries = 1

[providers.sim]
type = "mock"
seed = 7
[providers.sim.models.m]
latency_ms = { median = 10, p95 = 20 }
error_rate = 0.1
refusal_rate = 0.1
length_factor = 1.5
position_bias = 0.2
hang_rate = 0.1
[[providers.sim.models.m.overrides]]
class = "c"
latency_ms = { median = 10, p95 = 20 }
error_rate = 0.1
refusal_rate = 0.1
length_factor = 1.5

[routes.r]
baseline = "a"
[routes.r.variants.a]
provider = "sim"
model = "m"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0
[routes.r.variants.b]
provider = "up"
model = "x"

[rollouts.ro]
route = "r"
candidate = "b"
keep_baseline_warm = "1h"
cooldown = "1h"
stages = [
  { name = "s", shadow_percent = 10, min_duration = "1h", max_duration = "2h", gates = { mde = 0.1, alpha = 0.05, power = 0.8, min_equivalence = 0.5, min_win_rate = 0.4, min_class_pairs = 20 } },
  { name = "c", percent = 5, min_duration = "1h" },
]
[rollouts.ro.gates]
mde = 0.05
alpha = 0.05
power = 0.8
min_equivalence = 0.5
min_win_rate = 0.4
min_class_pairs = 20
[rollouts.ro.guardrails]
window = "5m"
check_interval = "30s"
error_rate_max = 0.05
p95_latency_max_ratio = 1.5
refusal_rate_max_increase = 0.05
thumbs_down_max_ratio = 2.0
alpha = 0.05
min_exposure = 50
catastrophic_error_rate = 0.5
catastrophic_min_requests = 20
[[rollouts.ro.guardrails.custom]]
name = "tok"
metric = "completion_tokens"
max_ratio = 1.5
[[rollouts.ro.guardrails.custom]]
name = "cost"
metric = "cost_usd"
max_increase = 0.01
[rollouts.ro.tenants.t]
max_percent = 10
[rollouts.ro.judge]
variant = "a"
sample_percent = 10
max_cost_usd_per_day = 5.0
max_in_flight = 2
timeout = "30s"
[[rollouts.ro.slow_signals]]
name = "csat"
max_decrease = 0.1
sustain = "1h"
check_interval = "1h"
min_samples = 50
alpha = 0.05
[[rollouts.ro.slow_signals]]
name = "refunds"
max_relative_decrease = 0.1

[providers.pg]
type = "anthropic"
"#;

#[test]
fn every_numeric_key_has_a_row_and_every_row_is_read() {
    let mut c = Collector::new();
    let loaded = load_collecting(EVERY_KEY, &mut c);
    assert!(loaded.is_ok(), "{:?}", loaded.err());
    assert!(
        c.unlisted.is_empty(),
        "numeric keys without a row in RANGES: {:?}",
        c.unlisted
    );
    // `store.pool_size` and `store.retention` are PostgreSQL's: read from their own config.
    let mut pg = Collector::new();
    let _ = load_collecting(
        "[store]\ntype = \"postgres\"\nurl_env = \"X\"\npool_size = 4\nretention = \"7d\"\n",
        &mut pg,
    );
    assert!(pg.unlisted.is_empty(), "{:?}", pg.unlisted);
    let stale: Vec<&str> = RANGES
        .iter()
        .map(|r| r.key)
        .filter(|k| !c.used.contains(k) && !pg.used.contains(k))
        .collect();
    assert!(
        stale.is_empty(),
        "rows no key was checked against: {stale:?}"
    );
}

#[test]
fn docs_show_the_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config-ranges.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let table = markdown();
    assert!(
        doc.contains(&table),
        "docs/config-ranges.md does not hold the current table; put this between its markers:\n{table}"
    );
}

#[test]
fn each_row_rejects_just_past_its_ends_and_names_the_key() {
    for r in RANGES {
        match r.bound {
            Bound::Int { min, max } => {
                if min > 0 {
                    assert!(!r.bound.contains_u64(min - 1), "{}", r.key);
                }
                if max < u64::MAX {
                    assert!(!r.bound.contains_u64(max + 1), "{}", r.key);
                }
                assert!(r.bound.contains_u64(min) && r.bound.contains_u64(max));
            }
            Bound::Duration { min, max } => {
                assert!(max <= MAX_DURATION, "{}", r.key);
                assert!(!r.bound.contains_duration(max + Duration::from_millis(1)));
                assert!(r.bound.contains_duration(min) && r.bound.contains_duration(max));
                // What the docs and errors show parses back to the bound.
                for d in [min, max] {
                    assert_eq!(crate::config::parse_duration(&show(d)), Ok(d), "{}", r.key);
                }
            }
            Bound::Real { .. } => {
                assert!(!r.bound.contains_f64(f64::NAN), "{}", r.key);
                assert!(!r.bound.contains_f64(f64::INFINITY), "{}", r.key);
            }
        }
    }
}

#[test]
fn patterns_match_names_with_dots_and_indexes_only() {
    assert!(lookup("providers.my.openai.timeout").is_some());
    assert!(lookup("rollouts.r.stages[12].percent").is_some());
    assert!(lookup("rollouts.r.stages[x].percent").is_none());
    assert!(lookup("rollouts.r.stages.percent").is_none());
    assert!(lookup("server.max_connections_extra").is_none());
}

#[test]
fn a_name_never_swallows_a_list_index() {
    let key = |p: &str| lookup(p).map(|r| r.key);
    assert_eq!(
        key("rollouts.r.stages[0].gates.mde"),
        Some("rollouts.*.stages[].gates.mde")
    );
    assert_eq!(
        key("providers.sim.models.m.overrides[1].error_rate"),
        Some("providers.*.models.*.overrides[].error_rate")
    );
}
