//! Per-class flags on small classes. A report over 400 shadow pairs spread across BANKING77's
//! 77 classes (about five pairs a class) must not flag classes on two or three pairs: 500 seeded
//! reports of identical and of A/A candidates (both sides drawn independently from the same
//! style) flag nothing beyond the nominal rate, with the default minimum of pairs per class and
//! also with the minimum lowered to 2 (so the small-sample interval itself is what is tested).
//! A real regression in a class with enough pairs is still flagged. The flag rule is the
//! library's; nothing here is tuned to these runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixtures/compare_gen.rs"]
mod compare_gen;

use compare_gen::{Rng, Style, class_count, pairs_sized};
use rampart_core::compare::{
    Accumulator, CompareConfig, ComparisonReport, PairFeatures, pair_features,
};

const RUNS: u64 = 500;
const PAIRS: usize = 400;

fn report(features: &[PairFeatures], config: CompareConfig) -> ComparisonReport {
    let mut acc = Accumulator::new(config);
    for f in features {
        acc.push(f);
    }
    acc.finish()
}

/// Class sizes of `PAIRS` pairs whose classes are drawn uniformly.
fn sizes(seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let classes = class_count();
    let mut sizes = vec![0; classes];
    for _ in 0..PAIRS {
        sizes[rng.below(classes)] += 1;
    }
    sizes
}

/// Reports flagging at least one class, and at least one tenant.
#[derive(Debug, Default)]
struct Tally {
    class_runs: u64,
    tenant_runs: u64,
    /// Classes with fewer than 10 pairs that were flagged (any run).
    tiny_class_flags: u64,
    /// Classes that were tested at all (not "too few pairs").
    tested_classes: u64,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.class_runs += o.class_runs;
        self.tenant_runs += o.tenant_runs;
        self.tiny_class_flags += o.tiny_class_flags;
        self.tested_classes += o.tested_classes;
    }

    fn add(&mut self, r: &ComparisonReport) {
        let class_flagged = r.classes.iter().any(|c| !c.flags.is_empty());
        self.class_runs += u64::from(class_flagged);
        self.tenant_runs += u64::from(r.tenants.iter().any(|t| !t.flags.is_empty()));
        self.tiny_class_flags += r
            .classes
            .iter()
            .filter(|c| c.pairs < 10 && !c.flags.is_empty())
            .count() as u64;
        self.tested_classes += r.classes.iter().filter(|c| !c.too_few_pairs).count() as u64;
        for c in &r.classes {
            // "Too few pairs" means not tested: no adjusted p-value, no flag.
            if c.too_few_pairs {
                assert!(c.flags.is_empty() && c.metrics.refusal.p_adjusted.is_none());
                assert!(c.pairs < r.settings.min_class_pairs);
            }
            assert_eq!(c.metrics.length_ratio.test, "paired_t");
        }
    }
}

/// Upper end of what `RUNS` reports at a per-report error rate `alpha` can show by chance:
/// mean plus 3.3 standard deviations of Binomial(RUNS, alpha) (about the 99.95th percentile).
fn nominal_limit(alpha: f64) -> u64 {
    let n = RUNS as f64;
    (n * alpha + 3.3 * (n * alpha * (1.0 - alpha)).sqrt()).floor() as u64
}

#[test]
fn identical_and_aa_candidates_over_many_small_classes_flag_nothing_beyond_the_nominal_rate() {
    let base = Style::baseline();
    let lowered = CompareConfig {
        min_class_pairs: 2,
        ..CompareConfig::default()
    };
    // Seeds spread over the machine's cores; each seed's reports depend only on the seed.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tallies: Vec<[Tally; 4]> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (base, lowered) = (&base, &lowered);
                s.spawn(move || {
                    let mut out: [Tally; 4] = Default::default();
                    for seed in (t as u64..RUNS).step_by(threads) {
                        let sizes = sizes(50_000 + seed);
                        let aa: Vec<PairFeatures> = pairs_sized(seed, &sizes, base, Some(base))
                            .iter()
                            .map(pair_features)
                            .collect();
                        let same: Vec<PairFeatures> = pairs_sized(seed, &sizes, base, None)
                            .iter()
                            .map(pair_features)
                            .collect();
                        out[0].add(&report(&aa, CompareConfig::default()));
                        out[1].add(&report(&aa, lowered.clone()));
                        out[2].add(&report(&same, CompareConfig::default()));
                        out[3].add(&report(&same, lowered.clone()));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let [aa_default, aa_lowered, same_default, same_lowered] =
        tallies
            .into_iter()
            .fold(<[Tally; 4]>::default(), |mut acc, t| {
                for (a, b) in acc.iter_mut().zip(t) {
                    a.merge(b);
                }
                acc
            });
    println!(
        "{RUNS} reports of {PAIRS} pairs over {} classes: A/A default {aa_default:?}, \
         A/A min_class_pairs=2 {aa_lowered:?}, identical {same_default:?} / {same_lowered:?}",
        class_count()
    );
    // An identical candidate never differs: nothing to flag, ever.
    for t in [&same_default, &same_lowered] {
        assert_eq!((t.class_runs, t.tenant_runs), (0, 0), "{t:?}");
    }
    // With the default minimum (20), classes of about five pairs are never tested.
    assert_eq!(aa_default.class_runs, 0, "{aa_default:?}");
    assert_eq!(aa_default.tiny_class_flags, 0);
    // With every class tested, the class family (Holm at alpha = 0.05) flags at most at the
    // nominal rate, and the tenants' family too (classes of a few pairs may then flag, at that
    // rate: the t interval is valid at small n, not silent).
    let alpha = CompareConfig::default().alpha;
    assert!(aa_lowered.tested_classes > RUNS * 60, "{aa_lowered:?}");
    for t in [&aa_default, &aa_lowered] {
        assert!(t.class_runs <= nominal_limit(alpha), "{t:?}");
        assert!(t.tenant_runs <= nominal_limit(alpha), "{t:?}");
    }
}

#[test]
fn a_real_regression_in_a_class_with_enough_pairs_is_still_flagged() {
    let base = Style::baseline();
    let probe = class_count();
    // Classes 5 and 6 get 60 pairs each. The candidate answers 60 % longer everywhere and, in
    // class 5, refuses 40 % of the time; every other class keeps about five pairs.
    let names: Vec<String> = pairs_sized(1, &[0, 0, 0, 0, 0, 1, 1], &base, None)
        .iter()
        .map(|p| p.class.clone().unwrap())
        .collect();
    let (refusing, longer) = (names[0].clone(), names[1].clone());
    let mut drifted = base.clone();
    drifted.refusal_overrides = vec![(refusing.clone(), 0.40)];
    drifted.length_factor = 1.6;
    let mut sizes = sizes(7);
    sizes[5] = 60;
    sizes[6] = 60;
    assert_eq!(sizes.len(), probe);
    let features: Vec<PairFeatures> = pairs_sized(3, &sizes, &base, Some(&drifted))
        .iter()
        .map(pair_features)
        .collect();
    let r = report(&features, CompareConfig::default());
    let class = |name: &str| {
        r.classes
            .iter()
            .find(|c| c.class.as_deref() == Some(name))
            .unwrap()
    };
    let c = class(&refusing);
    assert!(!c.too_few_pairs);
    assert!(c.flags.iter().any(|f| f == "refusal"), "{:?}", c.flags);
    let c = class(&longer);
    assert!(c.flags.iter().any(|f| f == "length"), "{:?}", c.flags);
    assert!(!c.flags.iter().any(|f| f == "refusal"), "{:?}", c.flags);
    let l = &c.metrics.length_ratio;
    assert!(
        l.ci_low.unwrap() > 1.0 && l.estimate.unwrap() > 1.2,
        "{l:?}"
    );
    // Small classes drift just the same (every answer is longer) but are not tested.
    let small: Vec<_> = r.classes.iter().filter(|c| c.pairs < 20).collect();
    assert!(!small.is_empty());
    assert!(small.iter().all(|c| c.too_few_pairs && c.flags.is_empty()));
    assert_eq!(r.settings.min_class_pairs, 20);
    // The text and HTML reports say so.
    let text = rampart_core::compare::render_text(&r, 200);
    assert!(text.contains("too few pairs (< 20), not tested"), "{text}");
    let html = rampart_core::compare::render_html(&r);
    assert!(html.contains("too few pairs (&lt; 20)"));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json.pointer("/settings/min_class_pairs"), Some(&20.into()));
    let small_json = json["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["pairs"].as_u64().unwrap() < 20)
        .unwrap();
    assert_eq!(small_json["too_few_pairs"], true);
}
