//! Every metric rampart exports, in one place.
//!
//! Names follow DESIGN.md: prefix `rampart_`, base units, bounded label sets. Request metrics
//! carry `route`, `variant`, `cohort`; their handles are created once at start-up (one set per
//! route × variant × cohort) so the request path never looks a metric up by name.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
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

pub struct Metrics {
    registry: Registry,
    feedback: Family<FeedbackLabels, Counter>,
    shadow_dropped: Family<ReasonLabels, Counter>,
    events_dropped: Family<ReasonLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    pub rollout_percent: Family<RolloutLabels, Gauge<f64, AtomicU64>>,
    pub kill_switch_tripped: Family<RolloutLabels, Gauge>,
    pub store_write_errors: Gauge,
    pub store_written: Gauge,
    pub store_lost: Gauge,
    pub alerts: Family<AlertLabels, Counter>,
    pub store_queued: Gauge,
    /// `rampart_judge_pairs_total{rollout, outcome}`: sampled pairs by what became of them.
    pub judge_pairs: Family<RolloutOutcomeLabels, Counter>,
    pub judge_cost: Family<RolloutLabels, CostCounter>,
    /// `rampart_embeddings_total{rollout, outcome}`: embeddings calls for shadow pairs.
    pub embeddings: Family<RolloutOutcomeLabels, Counter>,
    /// `rampart_provider_retries_total{provider, reason}`.
    pub provider_retries: crate::providers::retry::RetryCounter,
    per_request: HashMap<String, HashMap<String, [Arc<RequestMetrics>; 3]>>,
    per_shadow: HashMap<String, HashMap<String, Arc<ShadowMetrics>>>,
}

impl Metrics {
    pub fn new(config: &Config) -> Metrics {
        let mut registry = Registry::with_prefix("rampart");
        let requests = Family::<OutcomeLabels, Counter>::default();
        let duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let ttft = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let completion_tokens = Family::<RequestLabels, Histogram>::new_with_constructor(
            token_histogram as fn() -> Histogram,
        );
        let refusals = Family::<RequestLabels, Counter>::default();
        let cost = Family::<RequestLabels, CostCounter>::default();
        let feedback = Family::<FeedbackLabels, Counter>::default();
        let shadow_requests = Family::<ShadowLabels, Counter>::default();
        let shadow_dropped = Family::<ReasonLabels, Counter>::default();
        let shadow_duration = Family::<RouteVariantLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let shadow_cost = Family::<RouteVariantLabels, CostCounter>::default();
        let events_dropped = Family::<ReasonLabels, Counter>::default();
        let rejected = Family::<ReasonLabels, Counter>::default();
        let rollout_percent = Family::<RolloutLabels, Gauge<f64, AtomicU64>>::default();
        let kill_switch_tripped = Family::<RolloutLabels, Gauge>::default();
        let store_write_errors = Gauge::default();
        let store_written = Gauge::default();
        let store_lost = Gauge::default();
        let alerts = Family::<AlertLabels, Counter>::default();
        let judge_pairs = Family::<RolloutOutcomeLabels, Counter>::default();
        let judge_cost = Family::<RolloutLabels, CostCounter>::default();
        let embeddings = Family::<RolloutOutcomeLabels, Counter>::default();
        let provider_retries = crate::providers::retry::RetryCounter::default();
        registry.register(
            "provider_retries",
            "Provider calls retried, by provider and reason (connect, 429, 500, 502, 503, 529)",
            provider_retries.clone(),
        );
        registry.register(
            "embeddings",
            "Embeddings calls for shadow pairs, by outcome (ok, error)",
            embeddings.clone(),
        );
        registry.register(
            "judge_pairs",
            "Shadow pairs sampled for the judge, by outcome (judged, failed, or skipped: \
             skipped_max_in_flight, skipped_budget, skipped_no_text)",
            judge_pairs.clone(),
        );
        registry.register("judge_cost_usd", "Spend on judge calls", judge_cost.clone());
        registry.register(
            "alerts",
            "Alert deliveries, by sink and outcome",
            alerts.clone(),
        );
        let store_queued = Gauge::default();

        registry.register("requests", "Requests served, by outcome", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of the answer",
            duration.clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Time from request to the first content token",
            ttft.clone(),
        );
        registry.register(
            "completion_tokens",
            "Completion tokens per answer",
            completion_tokens.clone(),
        );
        registry.register("refusals", "Answers detected as refusals", refusals.clone());
        registry.register(
            "cost_usd",
            "Provider cost of served requests, in USD",
            cost.clone(),
        );
        registry.register(
            "feedback",
            "User feedback received, by kind",
            feedback.clone(),
        );
        registry.register(
            "shadow_requests",
            "Shadow calls to the candidate, by outcome",
            shadow_requests.clone(),
        );
        registry.register(
            "shadow_dropped",
            "Shadow calls skipped, by reason",
            shadow_dropped.clone(),
        );
        registry.register(
            "shadow_duration_seconds",
            "Latency of shadow calls to the candidate",
            shadow_duration.clone(),
        );
        registry.register(
            "shadow_cost_usd",
            "Provider cost of shadow calls, in USD",
            shadow_cost.clone(),
        );
        registry.register(
            "events_dropped",
            "Request events and pairs not stored because the writer queue was full or closed",
            events_dropped.clone(),
        );
        registry.register(
            "rejected_requests",
            "Requests rejected before reaching a provider, by reason",
            rejected.clone(),
        );
        registry.register(
            "rollout_percent",
            "Current canary percent of each rollout",
            rollout_percent.clone(),
        );
        registry.register(
            "kill_switch_tripped",
            "1 when the rollout's kill switch has tripped",
            kill_switch_tripped.clone(),
        );
        registry.register(
            "store_write_errors",
            "Failed store write attempts (each is retried)",
            store_write_errors.clone(),
        );
        registry.register(
            "store_written_records",
            "Records written to the store",
            store_written.clone(),
        );

        registry.register(
            "store_lost_records",
            "Records the writer accepted but could not store, after retries (each is logged)",
            store_lost.clone(),
        );
        registry.register(
            "store_queued_records",
            "Records waiting in the writer queue",
            store_queued.clone(),
        );

        let mut per_request = HashMap::new();
        let mut per_shadow = HashMap::new();
        for (route, rc) in &config.routes {
            let mut variants = HashMap::new();
            let mut shadows = HashMap::new();
            for variant in rc.variants.keys() {
                let make = |cohort: Cohort| {
                    let l = RequestLabels {
                        route: route.clone(),
                        variant: variant.clone(),
                        cohort: cohort.as_str().to_string(),
                    };
                    let by_outcome = Outcome::ALL.map(|o| {
                        requests
                            .get_or_create(&OutcomeLabels {
                                route: route.clone(),
                                variant: variant.clone(),
                                cohort: cohort.as_str().to_string(),
                                outcome: o.as_str().to_string(),
                            })
                            .clone()
                    });
                    Arc::new(RequestMetrics {
                        by_outcome,
                        duration: duration.get_or_create(&l).clone(),
                        ttft: ttft.get_or_create(&l).clone(),
                        completion_tokens: completion_tokens.get_or_create(&l).clone(),
                        refusals: refusals.get_or_create(&l).clone(),
                        cost: cost.get_or_create(&l).clone(),
                    })
                };
                variants.insert(
                    variant.clone(),
                    [
                        make(Cohort::Control),
                        make(Cohort::Canary),
                        make(Cohort::Unkeyed),
                    ],
                );
                let sl = |outcome: &str| {
                    shadow_requests
                        .get_or_create(&ShadowLabels {
                            route: route.clone(),
                            variant: variant.clone(),
                            outcome: outcome.to_string(),
                        })
                        .clone()
                };
                let rv = RouteVariantLabels {
                    route: route.clone(),
                    variant: variant.clone(),
                };
                shadows.insert(
                    variant.clone(),
                    Arc::new(ShadowMetrics {
                        ok: sl("ok"),
                        error: sl("error"),
                        timeout: sl("timeout"),
                        dropped: sl("dropped"),
                        duration: shadow_duration.get_or_create(&rv).clone(),
                        cost: shadow_cost.get_or_create(&rv).clone(),
                    }),
                );
            }
            per_request.insert(route.clone(), variants);
            per_shadow.insert(route.clone(), shadows);
        }
        for name in config.rollouts.keys() {
            let l = RolloutLabels {
                rollout: name.clone(),
            };
            drop(rollout_percent.get_or_create(&l));
            drop(kill_switch_tripped.get_or_create(&l));
        }

        Metrics {
            registry,
            provider_retries,
            feedback,
            shadow_dropped,
            events_dropped,
            rejected,
            rollout_percent,
            kill_switch_tripped,
            store_write_errors,
            store_written,
            store_lost,
            alerts,
            store_queued,
            judge_pairs,
            judge_cost,
            embeddings,
            per_request,
            per_shadow,
        }
    }

    /// The handles for one route × variant × cohort (created at start-up).
    pub fn request(
        &self,
        route: &str,
        variant: &str,
        cohort: Cohort,
    ) -> Option<&Arc<RequestMetrics>> {
        let i = match cohort {
            Cohort::Control => 0,
            Cohort::Canary => 1,
            Cohort::Unkeyed => 2,
        };
        self.per_request.get(route)?.get(variant).map(|a| &a[i])
    }

    pub fn shadow(&self, route: &str, variant: &str) -> Option<&Arc<ShadowMetrics>> {
        self.per_shadow.get(route)?.get(variant)
    }

    pub fn feedback(&self, route: &str, variant: &str, cohort: &str, kind: &str) {
        self.feedback
            .get_or_create(&FeedbackLabels {
                route: route.to_string(),
                variant: variant.to_string(),
                cohort: cohort.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    pub fn shadow_dropped(&self, reason: &str) {
        self.shadow_dropped
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn event_dropped(&self, reason: &str) {
        self.events_dropped
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn rejected(&self, reason: &'static str) {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
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
