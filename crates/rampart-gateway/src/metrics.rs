//! Every metric rampart exports, in one place, one struct per domain.
//!
//! Names follow DESIGN.md: prefix `rampart_`, base units, bounded label sets. Each domain
//! ([`RequestFamilies`], [`ShadowFamilies`], [`StoreMetrics`], [`RolloutMetrics`],
//! [`JudgeMetrics`], [`EmbeddingsMetrics`], [`AlertMetrics`]) is a struct whose `register`
//! names its metrics in the registry and keeps the handles; [`Metrics`] holds one of each.
//! Request and shadow metrics carry `route`, `variant` (and `cohort`); their handles are created
//! once at start-up (one set per route × variant × cohort) so the request path never looks a
//! metric up by name.
//!
//! To add a metric: add a field to its domain's struct and one `add(...)` line in its
//! `register`. To add a domain: a struct with `fn register(&mut Registry) -> Self`, and a field
//! on [`Metrics`] (reached as `gw.metrics.<domain>.<metric>`).

pub mod connections;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use rampart_core::config::Config;
use rampart_core::record::Outcome;
use rampart_core::routing::Cohort;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub variant: String,
    pub cohort: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub route: String,
    pub variant: String,
    pub cohort: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedbackLabels {
    pub route: String,
    pub variant: String,
    pub cohort: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabels {
    pub route: String,
    pub variant: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteVariantLabels {
    pub route: String,
    pub variant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub sink: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    pub rollout: String,
}

/// `rampart_outcomes_total`: `name` is a configured slow signal's name or `other`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BusinessOutcomeLabels {
    pub rollout: String,
    pub name: String,
    pub cohort: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutStateLabels {
    pub rollout: String,
    pub state: String,
}

/// Every value of `rampart_rollout_state`'s `state` label (the rollout phases).
pub const ROLLOUT_STATES: [&str; 7] = [
    "stage",
    "paused",
    "holding",
    "pinned",
    "rolled_back",
    "completed",
    "ready_to_decommission",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutOutcomeLabels {
    pub rollout: String,
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn token_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

type CostCounter = Counter<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Register `metric` under `rampart_<name>` and hand back its handle (handles are cheap clones
/// sharing one value).
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn latency_family<L>() -> HistogramFamily<L>
where
    L: Clone + std::hash::Hash + Eq,
{
    Family::new_with_constructor(latency_histogram as fn() -> Histogram)
}

fn inc_reason(family: &Family<ReasonLabels, Counter>, reason: &str) {
    family
        .get_or_create(&ReasonLabels {
            reason: reason.to_string(),
        })
        .inc();
}

/// Every metric, by domain.
pub struct Metrics {
    registry: Registry,
    pub requests: RequestFamilies,
    pub shadow: ShadowFamilies,
    pub store: StoreMetrics,
    pub rollout: RolloutMetrics,
    pub judge: JudgeMetrics,
    pub embeddings: EmbeddingsMetrics,
    pub connections: connections::ConnectionMetrics,
    pub alerts: AlertMetrics,
    pub traces: TraceMetrics,
    pub outcomes: OutcomeMetrics,
    pub providers: ProviderMetrics,
}

impl Metrics {
    pub fn new(config: &Config) -> Metrics {
        let mut registry = Registry::with_prefix("rampart");
        let reg = &mut registry;
        Metrics {
            embeddings: EmbeddingsMetrics::register(reg),
            connections: connections::ConnectionMetrics::register(reg),
            judge: JudgeMetrics::register(reg),
            alerts: AlertMetrics::register(reg),
            outcomes: OutcomeMetrics::register(reg),
            requests: RequestFamilies::register(reg, config),
            shadow: ShadowFamilies::register(reg, config),
            rollout: RolloutMetrics::register(reg, config),
            store: StoreMetrics::register(reg),
            traces: TraceMetrics::register(reg),
            providers: ProviderMetrics::register(reg),
            registry,
        }
    }

    /// The handles for one route × variant × cohort (created at start-up).
    pub fn request(
        &self,
        route: &str,
        variant: &str,
        cohort: Cohort,
    ) -> Option<&Arc<RequestMetrics>> {
        self.requests.handles(route, variant, cohort)
    }

    /// The shadow handles for one route × candidate variant (created at start-up).
    pub fn shadow(&self, route: &str, variant: &str) -> Option<&Arc<ShadowMetrics>> {
        self.shadow.handles(route, variant)
    }

    pub fn feedback(&self, route: &str, variant: &str, cohort: &str, kind: &str) {
        self.requests.feedback(route, variant, cohort, kind);
    }

    pub fn shadow_dropped(&self, reason: &str) {
        inc_reason(&self.shadow.dropped, reason);
    }

    pub fn event_dropped(&self, reason: &str) {
        inc_reason(&self.store.events_dropped, reason);
    }

    pub fn rejected(&self, reason: &'static str) {
        inc_reason(&self.requests.rejected, reason);
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

// ---------------------------------------------------------------- requests (the data plane)

/// The handles one request touches, resolved once per route × variant × cohort.
#[derive(Clone)]
pub struct RequestMetrics {
    by_outcome: [Counter; 4],
    pub duration: Histogram,
    pub ttft: Histogram,
    pub completion_tokens: Histogram,
    pub refusals: Counter,
    pub cost: CostCounter,
}

impl RequestMetrics {
    pub fn requests(&self, outcome: Outcome) -> &Counter {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        &self.by_outcome[i]
    }
}

/// Served requests: `rampart_requests`, `_request_duration_seconds`,
/// `_time_to_first_token_seconds`, `_completion_tokens`, `_refusals`, `_cost_usd`, `_feedback`,
/// `_rejected_requests`.
pub struct RequestFamilies {
    pub requests: Family<OutcomeLabels, Counter>,
    pub duration: HistogramFamily<RequestLabels>,
    pub ttft: HistogramFamily<RequestLabels>,
    pub completion_tokens: HistogramFamily<RequestLabels>,
    pub refusals: Family<RequestLabels, Counter>,
    pub cost: Family<RequestLabels, CostCounter>,
    pub feedback: Family<FeedbackLabels, Counter>,
    pub rejected: Family<ReasonLabels, Counter>,
    /// route → variant → [control, canary, unkeyed].
    handles: HashMap<String, HashMap<String, [Arc<RequestMetrics>; 3]>>,
}

impl RequestFamilies {
    fn register(reg: &mut Registry, config: &Config) -> RequestFamilies {
        let mut this = RequestFamilies {
            requests: add(
                reg,
                "requests",
                "Requests served, by outcome",
                Family::default(),
            ),
            duration: add(
                reg,
                "request_duration_seconds",
                "Time from request to the end of the answer",
                latency_family(),
            ),
            ttft: add(
                reg,
                "time_to_first_token_seconds",
                "Time from request to the first content token",
                latency_family(),
            ),
            completion_tokens: add(
                reg,
                "completion_tokens",
                "Completion tokens per answer",
                Family::new_with_constructor(token_histogram as fn() -> Histogram),
            ),
            refusals: add(
                reg,
                "refusals",
                "Answers detected as refusals",
                Family::default(),
            ),
            cost: add(
                reg,
                "cost_usd",
                "Provider cost of served requests, in USD",
                Family::default(),
            ),
            feedback: add(
                reg,
                "feedback",
                "User feedback received, by kind",
                Family::default(),
            ),
            rejected: add(
                reg,
                "rejected_requests",
                "Requests rejected before reaching a provider, by reason",
                Family::default(),
            ),
            handles: HashMap::new(),
        };
        for (route, rc) in &config.routes {
            let mut variants = HashMap::new();
            for variant in rc.variants.keys() {
                let make = |cohort| Arc::new(this.resolve(route, variant, cohort));
                let set = [
                    make(Cohort::Control),
                    make(Cohort::Canary),
                    make(Cohort::Unkeyed),
                ];
                variants.insert(variant.clone(), set);
            }
            this.handles.insert(route.clone(), variants);
        }
        this
    }

    fn resolve(&self, route: &str, variant: &str, cohort: Cohort) -> RequestMetrics {
        let l = RequestLabels {
            route: route.to_string(),
            variant: variant.to_string(),
            cohort: cohort.as_str().to_string(),
        };
        let by_outcome = Outcome::ALL.map(|o| {
            self.requests
                .get_or_create(&OutcomeLabels {
                    route: l.route.clone(),
                    variant: l.variant.clone(),
                    cohort: l.cohort.clone(),
                    outcome: o.as_str().to_string(),
                })
                .clone()
        });
        RequestMetrics {
            by_outcome,
            duration: self.duration.get_or_create(&l).clone(),
            ttft: self.ttft.get_or_create(&l).clone(),
            completion_tokens: self.completion_tokens.get_or_create(&l).clone(),
            refusals: self.refusals.get_or_create(&l).clone(),
            cost: self.cost.get_or_create(&l).clone(),
        }
    }

    fn handles(&self, route: &str, variant: &str, cohort: Cohort) -> Option<&Arc<RequestMetrics>> {
        let i = match cohort {
            Cohort::Control => 0,
            Cohort::Canary => 1,
            Cohort::Unkeyed => 2,
        };
        self.handles.get(route)?.get(variant).map(|a| &a[i])
    }

    fn feedback(&self, route: &str, variant: &str, cohort: &str, kind: &str) {
        self.feedback
            .get_or_create(&FeedbackLabels {
                route: route.to_string(),
                variant: variant.to_string(),
                cohort: cohort.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }
}

// ---------------------------------------------------------------- shadow calls

/// Shadow-call handles for one route × candidate variant.
#[derive(Clone)]
pub struct ShadowMetrics {
    pub ok: Counter,
    pub error: Counter,
    pub timeout: Counter,
    pub dropped: Counter,
    pub duration: Histogram,
    pub cost: CostCounter,
}

/// Shadow calls: `rampart_shadow_requests`, `_shadow_dropped`, `_shadow_duration_seconds`,
/// `_shadow_cost_usd`.
pub struct ShadowFamilies {
    pub requests: Family<ShadowLabels, Counter>,
    pub dropped: Family<ReasonLabels, Counter>,
    pub duration: HistogramFamily<RouteVariantLabels>,
    pub cost: Family<RouteVariantLabels, CostCounter>,
    /// route → candidate variant.
    handles: HashMap<String, HashMap<String, Arc<ShadowMetrics>>>,
}

impl ShadowFamilies {
    fn register(reg: &mut Registry, config: &Config) -> ShadowFamilies {
        let mut this = ShadowFamilies {
            requests: add(
                reg,
                "shadow_requests",
                "Shadow calls to the candidate, by outcome",
                Family::default(),
            ),
            dropped: add(
                reg,
                "shadow_dropped",
                "Shadow calls skipped, by reason",
                Family::default(),
            ),
            duration: add(
                reg,
                "shadow_duration_seconds",
                "Latency of shadow calls to the candidate",
                latency_family(),
            ),
            cost: add(
                reg,
                "shadow_cost_usd",
                "Provider cost of shadow calls, in USD",
                Family::default(),
            ),
            handles: HashMap::new(),
        };
        for (route, rc) in &config.routes {
            let shadows = rc
                .variants
                .keys()
                .map(|v| (v.clone(), Arc::new(this.resolve(route, v))))
                .collect();
            this.handles.insert(route.clone(), shadows);
        }
        this
    }

    fn resolve(&self, route: &str, variant: &str) -> ShadowMetrics {
        let by = |outcome: &str| {
            self.requests
                .get_or_create(&ShadowLabels {
                    route: route.to_string(),
                    variant: variant.to_string(),
                    outcome: outcome.to_string(),
                })
                .clone()
        };
        let rv = RouteVariantLabels {
            route: route.to_string(),
            variant: variant.to_string(),
        };
        ShadowMetrics {
            ok: by("ok"),
            error: by("error"),
            timeout: by("timeout"),
            dropped: by("dropped"),
            duration: self.duration.get_or_create(&rv).clone(),
            cost: self.cost.get_or_create(&rv).clone(),
        }
    }

    fn handles(&self, route: &str, variant: &str) -> Option<&Arc<ShadowMetrics>> {
        self.handles.get(route)?.get(variant)
    }
}

// ---------------------------------------------------------------- store and its queues

/// The store writer (gauges set from the writer's stats at scrape time) and dropped events:
/// `rampart_store_*`, `rampart_events_dropped`.
pub struct StoreMetrics {
    pub write_errors: Gauge,
    pub written: Gauge,
    pub lost: Gauge,
    pub queued: Gauge,
    pub events_dropped: Family<ReasonLabels, Counter>,
}

impl StoreMetrics {
    fn register(reg: &mut Registry) -> StoreMetrics {
        StoreMetrics {
            events_dropped: add(
                reg,
                "events_dropped",
                "Request events and pairs not stored because the writer queue was full or closed",
                Family::default(),
            ),
            write_errors: add(
                reg,
                "store_write_errors",
                "Failed store write attempts (each is retried)",
                Gauge::default(),
            ),
            written: add(
                reg,
                "store_written_records",
                "Records written to the store",
                Gauge::default(),
            ),
            lost: add(
                reg,
                "store_lost_records",
                "Records the writer accepted but could not store, after retries (each is logged)",
                Gauge::default(),
            ),
            queued: add(
                reg,
                "store_queued_records",
                "Records waiting in the writer queue",
                Gauge::default(),
            ),
        }
    }
}

// ---------------------------------------------------------------- rollouts

/// Rollout state: `rampart_rollout_percent`, `rampart_kill_switch_tripped` and
/// `rampart_rollout_state{rollout,state}` (1 for the current phase, 0 for the others; one series
/// per configured rollout and phase from the start), and the durability of control changes:
/// `rampart_control_writes_pending` (state, audit and tenant-cap writes applied but not yet
/// stored) and `rampart_control_write_failures_total` (failed attempts, each retried).
pub struct RolloutMetrics {
    pub percent: Family<RolloutLabels, Gauge<f64, AtomicU64>>,
    pub kill_switch_tripped: Family<RolloutLabels, Gauge>,
    pub state: Family<RolloutStateLabels, Gauge>,
    pub writes_pending: Gauge,
    pub write_failures: Counter,
}

impl RolloutMetrics {
    fn register(reg: &mut Registry, config: &Config) -> RolloutMetrics {
        let this = RolloutMetrics {
            percent: add(
                reg,
                "rollout_percent",
                "Current canary percent of each rollout",
                Family::default(),
            ),
            kill_switch_tripped: add(
                reg,
                "kill_switch_tripped",
                "1 when the rollout's kill switch has tripped",
                Family::default(),
            ),
            state: add(
                reg,
                "rollout_state",
                "1 for the rollout's current phase (stage, paused, holding, rolled_back, completed, ready_to_decommission)",
                Family::default(),
            ),
            writes_pending: add(
                reg,
                "control_writes_pending",
                "Rollout state, audit and tenant-cap writes applied but not yet stored",
                Gauge::default(),
            ),
            write_failures: add(
                reg,
                "control_write_failures",
                "Failed attempts to store a control change (each is retried until stored)",
                Counter::default(),
            ),
        };
        for name in config.rollouts.keys() {
            let l = rollout_labels(name);
            drop(this.percent.get_or_create(&l));
            drop(this.kill_switch_tripped.get_or_create(&l));
            this.set_state(name, "stage");
        }
        this
    }

    /// Mark `phase` as the rollout's current one.
    pub fn set_state(&self, rollout: &str, phase: &str) {
        for s in ROLLOUT_STATES {
            self.state
                .get_or_create(&RolloutStateLabels {
                    rollout: rollout.to_string(),
                    state: s.to_string(),
                })
                .set(i64::from(s == phase));
        }
    }
}

/// The label set of a per-rollout metric.
pub fn rollout_labels(rollout: &str) -> RolloutLabels {
    RolloutLabels {
        rollout: rollout.to_string(),
    }
}

/// The label set of a per-rollout metric with an outcome.
pub fn rollout_outcome_labels(rollout: &str, outcome: &str) -> RolloutOutcomeLabels {
    RolloutOutcomeLabels {
        rollout: rollout.to_string(),
        outcome: outcome.to_string(),
    }
}

// ---------------------------------------------------------------- judge and embeddings

mod side_work;
pub use side_work::*;

#[cfg(test)]
#[expect(clippy::expect_used, reason = "a test")]
mod tests {
    use super::*;

    /// The exported names are DESIGN.md's contract: splitting by domain must not rename,
    /// drop or duplicate any of them. (A new metric need not be added here; a renamed one
    /// fails.)
    #[test]
    fn every_domain_registers_its_names_once() {
        let text = include_str!("../../../examples/quickstart.toml");
        let config = Config::from_toml_str(text).expect("quickstart parses");
        let out = Metrics::new(&config).encode();
        let mut names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        names.sort_unstable();
        let expected = [
            "rampart_alerts",
            "rampart_completion_tokens",
            "rampart_control_write_failures",
            "rampart_control_writes_pending",
            "rampart_cost_usd",
            "rampart_embeddings",
            "rampart_events_dropped",
            "rampart_feedback",
            "rampart_judge_cost_usd",
            "rampart_judge_pairs",
            "rampart_kill_switch_tripped",
            "rampart_outcomes",
            "rampart_provider_retries",
            "rampart_refusals",
            "rampart_rejected_requests",
            "rampart_request_duration_seconds",
            "rampart_requests",
            "rampart_rollout_percent",
            "rampart_shadow_cost_usd",
            "rampart_shadow_dropped",
            "rampart_shadow_duration_seconds",
            "rampart_shadow_requests",
            "rampart_store_lost_records",
            "rampart_store_queued_records",
            "rampart_store_written_records",
            "rampart_store_write_errors",
            "rampart_time_to_first_token_seconds",
        ];
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a name is registered twice: {names:?}");
        for name in expected {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        // Handles exist for every configured route × variant × cohort from the start.
        let metrics = Metrics::new(&config);
        for (route, rc) in &config.routes {
            for variant in rc.variants.keys() {
                for cohort in [Cohort::Control, Cohort::Canary, Cohort::Unkeyed] {
                    assert!(metrics.request(route, variant, cohort).is_some());
                }
                assert!(metrics.shadow(route, variant).is_some());
            }
        }
    }
}
