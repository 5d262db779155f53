//! The streaming aggregator: [`Accumulator::push`] one [`PairFeatures`] at a time, then
//! [`Accumulator::finish`] into a [`ComparisonReport`].
//!
//! Memory is bounded whatever the number of pairs: counts are integers; length samples live in
//! seeded reservoirs (Vitter's Algorithm R: the i-th item replaces a uniformly chosen slot with
//! probability k/i, so the reservoir is a uniform sample of everything pushed); latencies go to
//! DDSketches; opening phrases to maps capped at `max_opening_phrases` distinct phrases per
//! group (later new phrases count as "(other)", which is never tested); groups are capped at
//! `max_groups` (later new names go to `(other)`); the "most different" list keeps the N
//! lowest-similarity pairs. The one exception is the judge: two scores (16 bytes) per judged
//! pair, for its bootstrap; judging costs money per pair and is capped per day, so judged pairs
//! stay few. The same pairs in the same order and the same seed give the same report.
//!
//! Tests (sources in `rampart-stats`): Wilson interval for the equivalence rate; McNemar exact
//! for refusal, error and every format feature (paired 2×2 on the same requests); for length,
//! overall a two-sample KS test (exact up to [`KS_EXACT_MAX`] pairs, asymptotic above) and a
//! paired bootstrap, per class and tenant a paired t-test and t interval on the log ratios
//! (valid at small n, where a normal interval from two or three pairs can be arbitrarily
//! narrow); McNemar per opening phrase; Holm (or Benjamini–Hochberg) adjustment within each
//! family (overall metrics; class × metric; tenant × metric). A class or tenant with fewer than
//! `min_class_pairs` pairs is reported but not tested: it is left out of its family and never
//! flagged ("too few pairs"). See [`super::report`] for the flag rule.

use std::collections::{BTreeMap, HashMap};

use rampart_stats::bootstrap::{BootstrapConfig, paired_bootstrap};
use rampart_stats::ks::{KsMethod, ks_2samp};
use rampart_stats::proportion::{mcnemar_exact, wilson_interval};
use rampart_stats::sketch::DdSketch;
use rampart_stats::student_t::t_test;
use rampart_stats::{Interval, StatsError};

use rampart_stats::rng::fnv1a;

use super::features::{Equivalence, PairFeatures, SideFeatures};
use super::judge::JudgeTally;
mod flags;
mod sampling;

use super::report::{
    ComparisonReport, Cost, DifferentPair, EquivalenceStats, FormatDrift, GroupReport, Histogram,
    Latency, LengthStats, Metrics, OpeningShare, Openings, PairedRate, Settings,
};
use flags::{adjust_and_flag, adjust_and_flag_where};
use sampling::{OpeningCounts, Reservoir};

/// How p-values are adjusted within a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    /// Holm (1979): controls the family-wise error rate.
    Holm,
    /// Benjamini–Hochberg (1995): controls the false discovery rate.
    BenjaminiHochberg,
}

/// Settings of the comparison. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareConfig {
    /// Significance level for flags (after adjustment).
    pub alpha: f64,
    pub confidence_level: f64,
    pub adjustment: Adjustment,
    /// Reservoir size for the overall length sample (bootstrap + KS).
    pub reservoir: usize,
    /// Reservoir size per class / tenant.
    pub group_reservoir: usize,
    pub bootstrap_resamples: usize,
    pub seed: u64,
    /// Openings listed per side, overall / per group.
    pub top_openings: usize,
    pub group_top_openings: usize,
    /// Distinct opening phrases tracked per group.
    pub max_opening_phrases: usize,
    /// Top phrases per side tested for opening drift.
    pub opening_test_phrases: usize,
    /// Distinct classes / tenants tracked.
    pub max_groups: usize,
    /// Pairs kept in `most_different`.
    pub most_different: usize,
    pub histogram_bins: usize,
    /// Minimum effects for a flag (absolute rate differences, or |ratio − 1|).
    pub min_refusal_delta: f64,
    pub min_error_delta: f64,
    pub min_length_ratio_delta: f64,
    pub min_opening_share_delta: f64,
    pub min_format_delta: f64,
    /// Pairs a class or tenant needs before any of its metrics is tested or flagged
    /// (`rollouts.R.gates.min_class_pairs`).
    pub min_class_pairs: u64,
}

/// Default of [`CompareConfig::min_class_pairs`].
pub const DEFAULT_MIN_CLASS_PAIRS: u64 = 20;

/// Up to this many pairs the overall length test uses the exact KS distribution.
pub const KS_EXACT_MAX: usize = 1_000;

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            alpha: 0.05,
            confidence_level: 0.95,
            adjustment: Adjustment::Holm,
            reservoir: 10_000,
            group_reservoir: 2_000,
            bootstrap_resamples: 2_000,
            seed: 0x5eed,
            top_openings: 20,
            group_top_openings: 5,
            max_opening_phrases: 5_000,
            opening_test_phrases: 5,
            max_groups: 1_000,
            most_different: 10,
            histogram_bins: 20,
            min_refusal_delta: 0.02,
            min_error_delta: 0.02,
            min_length_ratio_delta: 0.10,
            min_opening_share_delta: 0.10,
            min_format_delta: 0.03,
            min_class_pairs: DEFAULT_MIN_CLASS_PAIRS,
        }
    }
}

/// Format features, in report order (names as in [`FormatDrift::feature`]).
pub const FORMAT_FEATURES: [&str; 10] = [
    "table",
    "bullets",
    "numbered",
    "code",
    "citation_numeric",
    "citation_author_year",
    "citation_url",
    "json",
    "tools",
    "truncated",
];

/// The value of format feature `i` on one side; `None` = not measured.
fn format_value(side: &SideFeatures, i: usize) -> Option<bool> {
    let m = &side.markdown;
    match i {
        0 => Some(m.table),
        1 => Some(m.bullets),
        2 => Some(m.numbered),
        3 => Some(m.code),
        4 => Some(m.citation_numeric),
        5 => Some(m.citation_author_year),
        6 => Some(m.citation_url),
        7 => side.json_valid,
        8 => side.tool_calls_valid,
        _ => Some(side.truncated),
    }
}

/// A paired 2×2 table of one yes/no property.
#[derive(Debug, Clone, Copy, Default)]
struct Paired {
    n: u64,
    both: u64,
    baseline_only: u64,
    candidate_only: u64,
}

impl Paired {
    fn push(&mut self, b: bool, c: bool) {
        self.n += 1;
        match (b, c) {
            (true, true) => self.both += 1,
            (true, false) => self.baseline_only += 1,
            (false, true) => self.candidate_only += 1,
            (false, false) => {}
        }
    }
    fn rates(&self) -> (Option<f64>, Option<f64>) {
        if self.n == 0 {
            return (None, None);
        }
        let n = self.n as f64;
        (
            Some((self.both + self.baseline_only) as f64 / n),
            Some((self.both + self.candidate_only) as f64 / n),
        )
    }
    fn p_value(&self) -> f64 {
        mcnemar_exact(self.baseline_only, self.candidate_only).p_value
    }
}

#[derive(Debug, Clone)]
struct GroupAcc {
    pairs: u64,
    comparable: u64,
    identical: u64,
    equivalent: u64,
    different: u64,
    similarity_sum: f64,
    refusal: Paired,
    errors: Paired,
    formats: [Paired; FORMAT_FEATURES.len()],
    openings: OpeningCounts,
    reservoir: Reservoir,
    tokens: (f64, f64),
    chars: (f64, f64),
    latency: (DdSketch, DdSketch),
    cost: (f64, f64),
    successes: (u64, u64),
}

impl GroupAcc {
    fn new(reservoir: usize, seed: u64) -> Self {
        GroupAcc {
            pairs: 0,
            comparable: 0,
            identical: 0,
            equivalent: 0,
            different: 0,
            similarity_sum: 0.0,
            refusal: Paired::default(),
            errors: Paired::default(),
            formats: [Paired::default(); FORMAT_FEATURES.len()],
            openings: OpeningCounts::default(),
            reservoir: Reservoir::new(reservoir, seed),
            tokens: (0.0, 0.0),
            chars: (0.0, 0.0),
            latency: (DdSketch::default(), DdSketch::default()),
            cost: (0.0, 0.0),
            successes: (0, 0),
        }
    }

    fn push(&mut self, f: &PairFeatures, opening_cap: usize) {
        let (b, c) = (&f.baseline, &f.candidate);
        self.pairs += 1;
        self.errors.push(!b.ok, !c.ok);
        self.cost.0 += b.cost_usd;
        self.cost.1 += c.cost_usd;
        self.successes.0 += u64::from(b.ok);
        self.successes.1 += u64::from(c.ok);
        // Latencies: cached answers did not hit the provider; invalid values are skipped (the
        // sketch rejects negatives and NaN).
        if !b.cached {
            let _ = self.latency.0.add(b.latency_ms);
        }
        if !c.cached {
            let _ = self.latency.1.add(c.latency_ms);
        }
        if !(b.ok && c.ok) {
            return;
        }
        self.comparable += 1;
        self.similarity_sum += f.similarity;
        match f.equivalence {
            Some(Equivalence::Identical) => self.identical += 1,
            Some(Equivalence::Equivalent) => self.equivalent += 1,
            Some(Equivalence::MateriallyDifferent) => self.different += 1,
            None => {}
        }
        self.refusal.push(b.refusal, c.refusal);
        for (i, p) in self.formats.iter_mut().enumerate() {
            if let (Some(x), Some(y)) = (format_value(b, i), format_value(c, i)) {
                p.push(x, y);
            }
        }
        self.openings
            .push(b.opening.as_deref(), c.opening.as_deref(), opening_cap);
        self.tokens.0 += b.tokens as f64;
        self.tokens.1 += c.tokens as f64;
        self.chars.0 += b.chars as f64;
        self.chars.1 += c.chars as f64;
        self.reservoir.push((b.tokens as f64, c.tokens as f64));
    }
}

/// The streaming aggregator (see the module doc).
#[derive(Debug, Clone)]
pub struct Accumulator {
    config: CompareConfig,
    overall: GroupAcc,
    classes: BTreeMap<String, GroupAcc>,
    tenants: BTreeMap<String, GroupAcc>,
    /// Sorted by (similarity, request_id), at most `config.most_different` long.
    most_different: Vec<DifferentPair>,
    /// Judged pairs' verdicts (one score per judged pair: judge spend bounds its size).
    judge: JudgeTally,
}

const OTHER: &str = "(other)";

impl Accumulator {
    pub fn new(config: CompareConfig) -> Self {
        Accumulator {
            overall: GroupAcc::new(config.reservoir, config.seed),
            classes: BTreeMap::new(),
            tenants: BTreeMap::new(),
            most_different: Vec::new(),
            judge: JudgeTally::new(),
            config,
        }
    }

    /// Adds one pair. O(1) amortised apart from the opening maps' hashing.
    pub fn push(&mut self, f: &PairFeatures) {
        let cfg = &self.config;
        let group_cap = cfg.max_opening_phrases.min(500);
        self.overall.push(f, cfg.max_opening_phrases);
        for (map, name, salt) in [
            (&mut self.classes, f.class.as_deref(), 1u64),
            (&mut self.tenants, f.tenant.as_deref(), 2u64),
        ] {
            let Some(name) = name else { continue };
            // The common case (a group already seen) looks the name up once, allocating nothing.
            if let Some(g) = map.get_mut(name) {
                g.push(f, group_cap);
                continue;
            }
            let key = if map.len() < cfg.max_groups {
                name
            } else {
                OTHER
            };
            let seed = cfg.seed ^ fnv1a(key.as_bytes()).wrapping_mul(salt);
            map.entry(key.to_string())
                .or_insert_with(|| GroupAcc::new(cfg.group_reservoir, seed))
                .push(f, group_cap);
        }
        match f.judge {
            Some(j) if j.failed => self.judge.push_error(),
            Some(j) => self.judge.push(j.first, j.second),
            None => {}
        }
        if f.baseline.ok && f.candidate.ok && f.equivalence.is_some() && cfg.most_different > 0 {
            let worse_than_worst = self.most_different.len() >= cfg.most_different
                && self
                    .most_different
                    .last()
                    .is_some_and(|w| f.similarity >= w.similarity);
            if !worse_than_worst {
                let item = DifferentPair {
                    request_id: f.request_id.clone(),
                    class: f.class.clone(),
                    similarity: f.similarity,
                    baseline: f.baseline_excerpt.clone(),
                    candidate: f.candidate_excerpt.clone(),
                };
                let at = self.most_different.partition_point(|d| {
                    (d.similarity, d.request_id.as_str())
                        <= (item.similarity, item.request_id.as_str())
                });
                self.most_different.insert(at, item);
                self.most_different.truncate(cfg.most_different);
            }
        }
    }

    /// Pairs pushed so far.
    pub fn pairs(&self) -> u64 {
        self.overall.pairs
    }

    /// Computes every statistic and the flags.
    pub fn finish(self) -> ComparisonReport {
        let cfg = &self.config;
        let mut overall = metrics(&self.overall, cfg, true, cfg.top_openings);
        let flags = adjust_and_flag(std::slice::from_mut(&mut overall), cfg)
            .pop()
            .unwrap_or_default();
        let groups = |map: &BTreeMap<String, GroupAcc>, is_class: bool| -> Vec<GroupReport> {
            let mut ms: Vec<Metrics> = map
                .values()
                .map(|g| metrics(g, cfg, false, cfg.group_top_openings))
                .collect();
            let testable: Vec<bool> = map
                .values()
                .map(|g| g.pairs >= cfg.min_class_pairs)
                .collect();
            let flags = adjust_and_flag_where(&mut ms, &testable, cfg);
            map.iter()
                .zip(ms)
                .zip(flags)
                .zip(testable)
                .map(|((((name, g), metrics), flags), testable)| GroupReport {
                    class: is_class.then(|| name.clone()),
                    tenant: (!is_class).then(|| name.clone()),
                    pairs: g.pairs,
                    too_few_pairs: !testable,
                    flags,
                    metrics,
                })
                .collect()
        };
        let classes = groups(&self.classes, true);
        let tenants = groups(&self.tenants, false);
        ComparisonReport {
            pairs: self.overall.pairs,
            comparable_pairs: self.overall.comparable,
            flags,
            metrics: overall,
            classes,
            tenants,
            most_different: self.most_different,
            judge: self.judge.seen().then(|| {
                self.judge.finish(&BootstrapConfig {
                    n_resamples: cfg.bootstrap_resamples,
                    confidence_level: cfg.confidence_level,
                    seed: cfg.seed,
                })
            }),
            settings: Settings {
                alpha: cfg.alpha,
                confidence_level: cfg.confidence_level,
                adjustment: match cfg.adjustment {
                    Adjustment::Holm => "holm",
                    Adjustment::BenjaminiHochberg => "benjamini_hochberg",
                }
                .to_string(),
                min_refusal_delta: cfg.min_refusal_delta,
                min_error_delta: cfg.min_error_delta,
                min_length_ratio_delta: cfg.min_length_ratio_delta,
                min_opening_share_delta: cfg.min_opening_share_delta,
                min_format_delta: cfg.min_format_delta,
                min_class_pairs: cfg.min_class_pairs,
                seed: cfg.seed,
            },
        }
    }
}

fn ratio(num: f64, den: u64) -> Option<f64> {
    (den > 0).then(|| num / den as f64)
}

fn paired_rate(p: &Paired) -> PairedRate {
    let (b, c) = p.rates();
    PairedRate {
        n: p.n,
        baseline_rate: b,
        candidate_rate: c,
        delta: b.zip(c).map(|(b, c)| c - b),
        baseline_only: p.baseline_only,
        candidate_only: p.candidate_only,
        p_value: p.p_value(),
        p_adjusted: None,
        flagged: false,
    }
}

fn top(map: &HashMap<String, u64>, n: u64, k: usize) -> Vec<OpeningShare> {
    let mut v: Vec<(&String, &u64)> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.into_iter()
        .take(k)
        .map(|(phrase, &count)| OpeningShare {
            phrase: phrase.clone(),
            count,
            share: if n > 0 { count as f64 / n as f64 } else { 0.0 },
        })
        .collect()
}

fn openings(o: &OpeningCounts, cfg: &CompareConfig, k: usize) -> Openings {
    let baseline_top = top(&o.baseline, o.n, k);
    let candidate_top = top(&o.candidate, o.n, k);
    let n = o.n as f64;
    let drift = (o.n > 0).then(|| {
        let mut keys: Vec<&String> = o.baseline.keys().chain(o.candidate.keys()).collect();
        keys.sort();
        keys.dedup();
        let get = |m: &HashMap<String, u64>, key: &String| *m.get(key).unwrap_or(&0) as f64;
        let tracked: f64 = keys
            .iter()
            .map(|key| (get(&o.baseline, key) - get(&o.candidate, key)).abs())
            .sum();
        // Untracked ("other") mass on each side, compared as one more category.
        let other_b = n - o.baseline.values().sum::<u64>() as f64;
        let other_c = n - o.candidate.values().sum::<u64>() as f64;
        0.5 * (tracked + (other_b - other_c).abs()) / n
    });
    // Phrases tested: the top `opening_test_phrases` of each side.
    let mut tested: Vec<String> = top(&o.baseline, o.n, cfg.opening_test_phrases)
        .into_iter()
        .chain(top(&o.candidate, o.n, cfg.opening_test_phrases))
        .map(|s| s.phrase)
        .collect();
    tested.sort();
    tested.dedup();
    let m = tested.len() as f64;
    let mut best: Option<(f64, String, f64)> = None;
    for phrase in tested {
        let nb = *o.baseline.get(&phrase).unwrap_or(&0);
        let nc = *o.candidate.get(&phrase).unwrap_or(&0);
        let both = *o.both.get(&phrase).unwrap_or(&0);
        let p =
            (mcnemar_exact(nb.saturating_sub(both), nc.saturating_sub(both)).p_value * m).min(1.0);
        let delta = (nc as f64 - nb as f64) / n;
        let better = match &best {
            None => true,
            Some((bp, bphrase, bdelta)) => {
                (p, -delta.abs(), &phrase) < (*bp, -bdelta.abs(), bphrase)
            }
        };
        if better {
            best = Some((p, phrase, delta));
        }
    }
    let (p_value, phrase, share_delta) = match best {
        Some((p, phrase, d)) => (p, Some(phrase), Some(d)),
        None => (1.0, None, None),
    };
    Openings {
        baseline_top,
        candidate_top,
        drift,
        phrase,
        share_delta,
        p_value,
        p_adjusted: None,
        drift_flagged: false,
    }
}

/// The interval (log scale) and the p-value of the length ratio. Overall: the paired bootstrap
/// percentile interval and the two-sample KS test. Per group: the paired t interval and t-test
/// of the mean log ratio; when every pair has the same ratio (no variation, so no t) the
/// interval is that single value and there is no p-value.
fn length_test(
    logs: &[f64],
    bs: &[f64],
    cs: &[f64],
    cfg: &CompareConfig,
    overall: bool,
) -> (Option<Interval>, Option<f64>, Option<f64>, &'static str) {
    if !overall {
        let ks = ks_2samp(bs, cs, KsMethod::Asymptotic).ok();
        let ks_statistic = ks.map(|k| k.statistic);
        return match t_test(logs, 0.0, cfg.confidence_level) {
            Ok(t) => (Some(t.interval), Some(t.p_value), ks_statistic, "paired_t"),
            Err(StatsError::NotComputable(_)) => {
                let m = logs.first().copied();
                let point = m.map(|m| Interval { low: m, high: m });
                (point, None, ks_statistic, "paired_t")
            }
            Err(StatsError::InvalidInput(_)) => (None, None, ks_statistic, "paired_t"),
        };
    }
    let zeros = vec![0.0; logs.len()];
    // Single-threaded (the report and the shadow gate share the cores with the request path;
    // `rampart-stats`'s rayon fan-out is opt-in and not used here).
    let interval = paired_bootstrap(
        &zeros,
        logs,
        &BootstrapConfig {
            n_resamples: cfg.bootstrap_resamples,
            confidence_level: cfg.confidence_level,
            seed: cfg.seed,
        },
    )
    .ok()
    .map(|i| i.ci);
    let method = if logs.len() <= KS_EXACT_MAX {
        KsMethod::Exact
    } else {
        KsMethod::Asymptotic
    };
    let ks = ks_2samp(bs, cs, method).ok();
    (
        interval,
        ks.map(|k| k.p_value),
        ks.map(|k| k.statistic),
        "ks_2samp",
    )
}

fn length(g: &GroupAcc, cfg: &CompareConfig, overall: bool) -> LengthStats {
    let items = &g.reservoir.items;
    let logs: Vec<f64> = items
        .iter()
        .map(|(b, c)| ((c + 1.0) / (b + 1.0)).ln())
        .collect();
    let mean_log = (!logs.is_empty()).then(|| logs.iter().sum::<f64>() / logs.len() as f64);
    let bs: Vec<f64> = items.iter().map(|x| x.0).collect();
    let cs: Vec<f64> = items.iter().map(|x| x.1).collect();
    let (interval, p_value, ks_statistic, test) = length_test(&logs, &bs, &cs, cfg, overall);
    LengthStats {
        estimate: mean_log.map(f64::exp),
        ci_low: interval.map(|i| i.low.exp()),
        ci_high: interval.map(|i| i.high.exp()),
        baseline_mean_tokens: ratio(g.tokens.0, g.comparable),
        candidate_mean_tokens: ratio(g.tokens.1, g.comparable),
        baseline_mean_chars: ratio(g.chars.0, g.comparable),
        candidate_mean_chars: ratio(g.chars.1, g.comparable),
        sample: items.len() as u64,
        test: test.to_string(),
        ks_statistic,
        p_value,
        p_adjusted: None,
        flagged: false,
        histogram: if overall {
            histogram(&bs, &cs, cfg.histogram_bins)
        } else {
            None
        },
    }
}

fn histogram(b: &[f64], c: &[f64], bins: usize) -> Option<Histogram> {
    if b.is_empty() || bins == 0 {
        return None;
    }
    let max = b.iter().chain(c).fold(0.0f64, |m, &x| m.max(x));
    let width = ((max + 1.0) / bins as f64).ceil().max(1.0);
    let count = |xs: &[f64]| {
        let mut h = vec![0u64; bins];
        for &x in xs {
            let i = ((x / width) as usize).min(bins - 1);
            if let Some(slot) = h.get_mut(i) {
                *slot += 1;
            }
        }
        h
    };
    Some(Histogram {
        edges: (0..=bins).map(|i| i as f64 * width).collect(),
        baseline: count(b),
        candidate: count(c),
    })
}

fn metrics(g: &GroupAcc, cfg: &CompareConfig, overall: bool, k: usize) -> Metrics {
    let classified = g.identical + g.equivalent + g.different;
    let wilson = wilson_interval(
        g.identical + g.equivalent,
        classified,
        1.0 - cfg.confidence_level,
    )
    .ok();
    let q = |s: &DdSketch, q: f64| s.quantile(q);
    let (bl, cl) = (&g.latency.0, &g.latency.1);
    let sub = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    let formats = g
        .formats
        .iter()
        .zip(FORMAT_FEATURES)
        .map(|(p, name)| {
            let (b, c) = p.rates();
            FormatDrift {
                feature: name.to_string(),
                n: p.n,
                baseline_rate: b,
                candidate_rate: c,
                changed_rate: ratio((p.baseline_only + p.candidate_only) as f64, p.n),
                direction: match p.candidate_only.cmp(&p.baseline_only) {
                    std::cmp::Ordering::Greater => "more",
                    std::cmp::Ordering::Less => "less",
                    std::cmp::Ordering::Equal => "same",
                }
                .to_string(),
                baseline_only: p.baseline_only,
                candidate_only: p.candidate_only,
                p_value: p.p_value(),
                p_adjusted: None,
                flagged: false,
            }
        })
        .collect();
    let bmean = ratio(g.cost.0, g.pairs);
    let cmean = ratio(g.cost.1, g.pairs);
    Metrics {
        equivalence: EquivalenceStats {
            rate: ratio((g.identical + g.equivalent) as f64, classified),
            ci_low: wilson.map(|i| i.low),
            ci_high: wilson.map(|i| i.high),
            identical: g.identical,
            equivalent: g.equivalent,
            materially_different: g.different,
            mean_similarity: ratio(g.similarity_sum, g.comparable),
        },
        length_ratio: length(g, cfg, overall),
        refusal: paired_rate(&g.refusal),
        errors: paired_rate(&g.errors),
        openings: openings(&g.openings, cfg, k),
        formats,
        latency: Latency {
            baseline_n: bl.count(),
            candidate_n: cl.count(),
            baseline_p50_ms: q(bl, 0.5),
            baseline_p95_ms: q(bl, 0.95),
            candidate_p50_ms: q(cl, 0.5),
            candidate_p95_ms: q(cl, 0.95),
            p50_delta_ms: sub(q(bl, 0.5), q(cl, 0.5)),
            p95_delta_ms: sub(q(bl, 0.95), q(cl, 0.95)),
        },
        cost: Cost {
            baseline_total_usd: g.cost.0,
            candidate_total_usd: g.cost.1,
            baseline_mean_usd: bmean,
            candidate_mean_usd: cmean,
            mean_delta_usd: sub(bmean, cmean),
            baseline_per_success_usd: ratio(g.cost.0, g.successes.0),
            candidate_per_success_usd: ratio(g.cost.1, g.successes.1),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_accumulator_reports_nulls_not_nans() {
        let r = Accumulator::new(CompareConfig::default()).finish();
        assert_eq!(r.pairs, 0);
        assert!(r.flags.is_empty());
        assert_eq!(r.metrics.equivalence.rate, None);
        assert_eq!(r.metrics.length_ratio.estimate, None);
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("NaN"));
    }
}
