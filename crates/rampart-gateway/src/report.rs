//! The comparison report over what the store holds: a rollout's shadow pairs through the pure
//! comparison engine ([`rampart_core::compare`]), and the canary-cohort view from its request
//! events. Used by `GET /admin/rollouts/{name}/report` and by the controller's shadow gate.
//!
//! Everything here is blocking (store reads); call it from `tokio::task::spawn_blocking`.
//!
//! Invariants:
//! - The report reads each pair's features, computed once when the pair was stored
//!   ([`PairStore::for_each_pair_features`]), never the texts: a report is an aggregation over
//!   short rows, which keeps a million pairs within seconds. Only the few pairs the report shows
//!   side by side are read whole ([`PairStore::get_pair`]), for their excerpts.
//! - Memory is bounded whatever the number of pairs: features are streamed page by page into
//!   the engine's [`Accumulator`], never collected.
//! - The cohort view reads the rollout's newest [`COHORT_EVENT_LIMIT`] request events, without
//!   their texts ([`EventStore::latest_events`]), so on a long rollout it describes the recent
//!   traffic, and the feedback on those events, joined with them in one query
//!   ([`FeedbackStore::feedback_with_events`] from the first of them, at most
//!   [`COHORT_EVENT_LIMIT`] rows).

use rampart_core::compare::features::excerpt;
use rampart_core::compare::{
    Accumulator, CohortAccumulator, CohortReport, CompareConfig, ComparisonReport, GuardrailPoint,
};
use rampart_core::config::SlowSignalConfig;
use rampart_core::outcomes::{OutcomeSummary, summarize};
use rampart_core::record::{Outcome, RequestEvent};
use rampart_core::routing::Cohort;
use rampart_store::{EventStore, FeedbackStore, PairFilter, PairStore, Store, StoreError};
use serde::Serialize;

/// Request events read for the canary-cohort view and the guardrail series.
pub const COHORT_EVENT_LIMIT: usize = 200_000;
/// Points per guardrail series at most.
const SERIES_POINTS: i64 = 60;

/// Streams the features of a rollout's pairs (those `filter` keeps) through the comparison
/// engine, then reads the texts of the pairs it lists as most different.
pub fn compare_pairs<S: PairStore + ?Sized>(
    store: &S,
    rollout: &str,
    filter: &PairFilter,
    config: CompareConfig,
) -> Result<ComparisonReport, StoreError> {
    let mut acc = Accumulator::new(config);
    store.for_each_pair_features(rollout, filter, &mut |f| acc.push(&f))?;
    let mut report = acc.finish();
    for d in &mut report.most_different {
        if let Some(p) = store.get_pair(rollout, &d.request_id)? {
            d.baseline = excerpt(p.baseline.text.as_deref());
            d.candidate = excerpt(p.candidate.text.as_deref());
        }
    }
    Ok(report)
}

/// The canary-vs-control view from the rollout's newest [`COHORT_EVENT_LIMIT`] request events
/// and the feedback on them (`None` when it has no events), and the guardrail series of the
/// same events.
pub fn cohort_view<S: EventStore + FeedbackStore + ?Sized>(
    store: &S,
    rollout: &str,
    seed: u64,
) -> Result<(Option<CohortReport>, Vec<GuardrailPoint>), StoreError> {
    cohort_view_of_latest(store, rollout, seed, COHORT_EVENT_LIMIT)
}

/// [`cohort_view`] over the newest `limit` events.
pub fn cohort_view_of_latest<S: EventStore + FeedbackStore + ?Sized>(
    store: &S,
    rollout: &str,
    seed: u64,
    limit: usize,
) -> Result<(Option<CohortReport>, Vec<GuardrailPoint>), StoreError> {
    let events = store.latest_events(rollout, limit)?;
    if events.is_empty() {
        return Ok((None, Vec::new()));
    }
    let mut acc = CohortAccumulator::new(seed);
    for e in &events {
        acc.push_event(e);
    }
    // Only feedback on the events read above (same rollout, within their span).
    let first = events.first().map_or(0, |e| e.ts_ms);
    let last = events.last().map_or(i64::MAX, |e| e.ts_ms);
    for (event, feedback) in store.feedback_with_events(rollout, first, limit)? {
        if event.ts_ms <= last {
            acc.push_feedback(&event, &feedback);
        }
    }
    Ok((Some(acc.finish()), guardrail_series(&events)))
}

/// Per time bucket (at most [`SERIES_POINTS`] of them, at least one second wide) and per
/// cohort with traffic in it: `{cohort} error rate` and `{cohort} refusal rate` (over answered
/// requests), as the guardrails see them. Events must be oldest first.
pub fn guardrail_series(events: &[RequestEvent]) -> Vec<GuardrailPoint> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Vec::new();
    };
    let width = ((last.ts_ms - first.ts_ms) / SERIES_POINTS + 1).max(1_000);
    #[derive(Default, Clone, Copy)]
    struct B {
        n: u64,
        errors: u64,
        ok: u64,
        refusals: u64,
    }
    let mut out = Vec::new();
    let mut flush = |start: i64, buckets: &[B; 2]| {
        for (name, b) in ["control", "canary"].iter().zip(buckets) {
            if b.n == 0 {
                continue;
            }
            out.push((
                start,
                format!("{name} error rate"),
                b.errors as f64 / b.n as f64,
            ));
            if b.ok > 0 {
                out.push((
                    start,
                    format!("{name} refusal rate"),
                    b.refusals as f64 / b.ok as f64,
                ));
            }
        }
    };
    let mut start = first.ts_ms;
    let mut buckets = [B::default(); 2];
    for e in events {
        let i = match e.cohort {
            Cohort::Control => 0,
            Cohort::Canary => 1,
            Cohort::Unkeyed => continue,
        };
        if e.ts_ms >= start + width {
            flush(start, &buckets);
            buckets = [B::default(); 2];
            start += (e.ts_ms - start) / width * width;
        }
        let b = &mut buckets[i];
        b.n += 1;
        if e.outcome == Outcome::Ok {
            b.ok += 1;
            b.refusals += u64::from(e.refusal);
        } else {
            b.errors += 1;
        }
    }
    flush(start, &buckets);
    out
}

/// The admin API's JSON report: every field of [`ComparisonReport`] at the top level (stable
/// names, see `rampart_core::compare::report`), plus `rollout`, `cohorts` (the canary-cohort
/// view, `null` without request events), `cohort_events_limit` and `outcomes` (business
/// outcomes per name and cohort over the whole rollout, `[]` without any).
#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub rollout: String,
    #[serde(flatten)]
    pub report: ComparisonReport,
    pub cohorts: Option<CohortReport>,
    pub cohort_events_limit: usize,
    pub outcomes: Vec<OutcomeSummary>,
    #[serde(skip)]
    pub guardrails: Vec<GuardrailPoint>,
}

/// The comparison settings of a rollout's reports: the defaults, with the rollout's
/// `gates.min_class_pairs`.
pub fn compare_config(gates: &rampart_core::config::GatesConfig) -> CompareConfig {
    CompareConfig {
        min_class_pairs: gates.min_class_pairs,
        ..CompareConfig::default()
    }
}

/// The whole report of a rollout: every stored pair, and the cohort view.
pub fn rollout_report<S: PairStore + EventStore + FeedbackStore + ?Sized>(
    store: &S,
    rollout: &str,
    config: CompareConfig,
) -> Result<RolloutReport, StoreError> {
    let seed = config.seed;
    let report = compare_pairs(store, rollout, &PairFilter::default(), config)?;
    let (cohorts, guardrails) = cohort_view(store, rollout, seed)?;
    Ok(RolloutReport {
        rollout: rollout.to_string(),
        report,
        cohorts,
        cohort_events_limit: COHORT_EVENT_LIMIT,
        outcomes: Vec::new(),
        guardrails,
    })
}

/// A rollout's business outcomes over its whole life, per name and cohort (empty when the
/// store keeps no outcomes). `signals` are the rollout's slow signals (their level and tuning
/// apply to their names).
pub fn outcome_summaries(
    store: &dyn Store,
    rollout: &str,
    signals: &[SlowSignalConfig],
) -> Result<Vec<OutcomeSummary>, StoreError> {
    match store.outcomes() {
        Some(o) => Ok(summarize(&o.outcome_moments(rollout, 0)?, signals)),
        None => Ok(Vec::new()),
    }
}

/// The outcomes as text lines (appended to the text report; nothing without outcomes).
pub fn outcomes_text(summaries: &[OutcomeSummary], width: usize) -> String {
    if summaries.is_empty() {
        return String::new();
    }
    let mut lines = vec![String::new(), "Outcomes (business signals)".to_string()];
    lines.extend(
        rampart_core::outcomes::summary::render_lines(summaries)
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    fit_lines(lines, width)
}

fn fit_lines(lines: Vec<String>, width: usize) -> String {
    let width = width.max(20);
    let mut out = String::new();
    for l in lines {
        if l.chars().count() > width {
            out.extend(l.chars().take(width - 1));
            out.push('…');
        } else {
            out.push_str(&l);
        }
        out.push('\n');
    }
    out
}

/// The canary-cohort view as text lines (appended to the text report), each at most `width`
/// characters.
pub fn cohort_text(cohorts: Option<&CohortReport>, width: usize) -> String {
    let Some(c) = cohorts else {
        return "\nCanary cohort: no request events\n".to_string();
    };
    let pct = |x: Option<f64>| x.map_or_else(|| "–".into(), |v| format!("{:.1}%", v * 100.0));
    let ms = |x: Option<f64>| x.map_or_else(|| "–".into(), |v| format!("{v:.0} ms"));
    let mut lines = vec![
        String::new(),
        "Canary cohort (live traffic, unpaired)".to_string(),
    ];
    for (name, s) in [("control", &c.control), ("canary", &c.canary)] {
        lines.push(format!(
            "  {name:<8} {:>7} requests  errors {}  refusals {}  p50 {}  p95 {}",
            s.requests,
            pct(s.error_rate),
            pct(s.refusal_rate),
            ms(s.latency_p50_ms),
            ms(s.latency_p95_ms),
        ));
        if s.feedback_thumbs > 0 || s.feedback_outcomes > 0 {
            lines.push(format!(
                "  {:<8} feedback: up {}  down {}  unchanged {}  edited {}  rejected {}  edit similarity {}",
                "",
                pct(s.thumbs_up_rate),
                pct(s.thumbs_down_rate),
                pct(s.sent_unchanged_rate),
                pct(s.edited_rate),
                pct(s.rejected_rate),
                s.mean_edit_similarity
                    .map_or_else(|| "–".into(), |v| format!("{v:.2}")),
            ));
        }
    }
    lines.push(format!(
        "  flags: {}",
        if c.flags.is_empty() {
            "none".to_string()
        } else {
            c.flags.join(", ")
        }
    ));
    fit_lines(lines, width)
}
