//! Metrics of the side work beside the request path: the judge, embeddings, alert delivery,
//! business outcomes, provider retries and trace export. Each domain registers itself.

use super::*;

/// The LLM judge: `rampart_judge_pairs`, `rampart_judge_cost_usd`.
pub struct JudgeMetrics {
    /// `rampart_judge_pairs_total{rollout, outcome}`: sampled pairs by what became of them.
    pub pairs: Family<RolloutOutcomeLabels, Counter>,
    pub cost: Family<RolloutLabels, CostCounter>,
}

impl JudgeMetrics {
    pub(super) fn register(reg: &mut Registry) -> JudgeMetrics {
        JudgeMetrics {
            pairs: add(
                reg,
                "judge_pairs",
                "Shadow pairs sampled for the judge, by outcome (judged, failed, or skipped: \
                 skipped_max_in_flight, skipped_budget, skipped_no_text)",
                Family::default(),
            ),
            cost: add(
                reg,
                "judge_cost_usd",
                "Spend on judge calls",
                Family::default(),
            ),
        }
    }
}

/// Embeddings for shadow pairs: `rampart_embeddings`.
pub struct EmbeddingsMetrics {
    /// `rampart_embeddings_total{rollout, outcome}`: embeddings calls for shadow pairs.
    pub calls: Family<RolloutOutcomeLabels, Counter>,
}

impl EmbeddingsMetrics {
    pub(super) fn register(reg: &mut Registry) -> EmbeddingsMetrics {
        EmbeddingsMetrics {
            calls: add(
                reg,
                "embeddings",
                "Embeddings calls for shadow pairs, by outcome (ok, error)",
                Family::default(),
            ),
        }
    }
}

// ---------------------------------------------------------------- alerts

/// Alert deliveries: `rampart_alerts`.
pub struct AlertMetrics {
    pub deliveries: Family<AlertLabels, Counter>,
}

impl AlertMetrics {
    pub(super) fn register(reg: &mut Registry) -> AlertMetrics {
        AlertMetrics {
            deliveries: add(
                reg,
                "alerts",
                "Alert deliveries, by sink and outcome",
                Family::default(),
            ),
        }
    }
}

// ---------------------------------------------------------------- business outcomes

/// Slow business outcomes accepted by `POST /v1/outcomes`: `rampart_outcomes`.
pub struct OutcomeMetrics {
    /// `rampart_outcomes_total{rollout, name, cohort}`.
    pub total: Family<BusinessOutcomeLabels, Counter>,
}

impl OutcomeMetrics {
    pub(super) fn register(reg: &mut Registry) -> OutcomeMetrics {
        OutcomeMetrics {
            total: add(
                reg,
                "outcomes",
                "Business outcomes accepted, by rollout, name (a configured slow signal, else \
                 `other`) and the cohort they were attributed to",
                Family::default(),
            ),
        }
    }
}

// ---------------------------------------------------------------- providers

pub struct ProviderMetrics {
    /// `rampart_provider_retries_total{provider, reason}`.
    pub retries: crate::providers::retry::RetryCounter,
}

impl ProviderMetrics {
    pub(super) fn register(reg: &mut Registry) -> ProviderMetrics {
        ProviderMetrics {
            retries: add(
                reg,
                "provider_retries",
                "Provider calls retried, by provider and reason (connect, 429, 500, 502, 503, \
                 529)",
                Default::default(),
            ),
        }
    }
}

// ---------------------------------------------------------------- traces

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpanOutcomeLabels {
    pub outcome: String,
}

/// OpenTelemetry spans: `rampart_trace_spans{outcome=exported|export_failed|dropped}` (all
/// three series from the start).
pub struct TraceMetrics {
    pub spans: Family<SpanOutcomeLabels, Counter>,
}

impl TraceMetrics {
    pub(super) fn register(reg: &mut Registry) -> TraceMetrics {
        TraceMetrics {
            spans: add(
                reg,
                "trace_spans",
                "Finished trace spans, by outcome: exported, export_failed (the collector refused or was unreachable), dropped (export queue full)",
                Family::default(),
            ),
        }
    }
}
