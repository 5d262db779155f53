//! Property tests: p-values stay in [0, 1], intervals contain their point estimates, the
//! quantile sketch honours its relative-error bound, and merging sketches of two halves
//! equals the sketch of the whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use rampart_stats::Alternative;
use rampart_stats::bootstrap::{BootstrapConfig, paired_bootstrap, paired_normal_interval};
use rampart_stats::ks::{KsMethod, ks_2samp};
use rampart_stats::mann_whitney::mann_whitney_u;
use rampart_stats::multiple::{benjamini_hochberg, holm};
use rampart_stats::proportion::{
    Counts, mcnemar_chi2, mcnemar_exact, two_proportion_ztest, wilson_interval,
};
use rampart_stats::sequential::{
    ConfidenceSequence, MeanSummary, MsprtLook, mean_difference_lower_bound, msprt,
    proportion_difference_lower_bound,
};
use rampart_stats::sketch::DdSketch;
use rampart_stats::srm::srm_chisquare;

fn unit(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

fn counts() -> impl Strategy<Value = Counts> {
    (1u64..2_000_000_000).prop_flat_map(|n| (0..=n).prop_map(move |x| Counts::new(x, n)))
}

/// The order statistic the sketch estimates: x_(⌊q(n−1)⌋).
fn lower_order_statistic(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

fn within(est: f64, exact: f64, alpha: f64) -> bool {
    (est - exact).abs() <= alpha * exact.abs() * (1.0 + 1e-12)
}

/// Latency-like values spanning several orders of magnitude (and some exact zeros).
fn latency() -> impl Strategy<Value = f64> {
    prop_oneof![
        9 => (-3.0f64..6.0).prop_map(|e| 10f64.powf(e)),
        1 => Just(0.0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn p_values_are_probabilities(
        t in counts(),
        c in counts(),
        b in 0u64..3_000_000_000,
        d in 0u64..3_000_000_000,
        corr in any::<bool>(),
    ) {
        for alt in [Alternative::TwoSided, Alternative::Larger, Alternative::Smaller] {
            if let Ok(r) = two_proportion_ztest(t, c, alt) {
                prop_assert!(unit(r.p_value), "{r:?}");
            }
        }
        prop_assert!(unit(mcnemar_exact(b, d).p_value));
        if let Ok(r) = mcnemar_chi2(b, d, corr) {
            prop_assert!(unit(r.p_value));
        }
        let srm = srm_chisquare(&[t.total, c.total], &[1.0, 3.0]).unwrap();
        prop_assert!(unit(srm.p_value.unwrap()));
    }

    #[test]
    fn sample_test_p_values_are_probabilities(
        x in prop::collection::vec(0.0f64..50.0, 1..60),
        y in prop::collection::vec(0.0f64..50.0, 1..60),
        ints in any::<bool>(),
    ) {
        let (x, y): (Vec<f64>, Vec<f64>) = if ints {
            (x.iter().map(|v| v.floor()).collect(), y.iter().map(|v| v.floor()).collect())
        } else {
            (x, y)
        };
        let mw = mann_whitney_u(&x, &y).unwrap();
        prop_assert!(unit(mw.p_value));
        for m in [KsMethod::Exact, KsMethod::Asymptotic] {
            if let Ok(r) = ks_2samp(&x, &y, m) {
                prop_assert!(unit(r.p_value) && unit(r.p_value_kolmogorov_limit), "{r:?}");
                prop_assert!(unit(r.statistic));
            }
        }
    }

    #[test]
    fn adjusted_and_sequential_p_values_are_probabilities(
        ps in prop::collection::vec(0.0f64..=1.0, 0..40),
        diffs in prop::collection::vec(-2.0f64..2.0, 1..20),
        tau2 in 1e-4f64..10.0,
    ) {
        for adj in [holm(&ps).unwrap(), benjamini_hochberg(&ps).unwrap()] {
            prop_assert!(adj.iter().all(|p| unit(*p)));
            prop_assert!(adj.iter().zip(&ps).all(|(a, p)| *a >= p * (1.0 - 1e-12)));
        }
        let looks: Vec<MsprtLook> = diffs
            .iter()
            .enumerate()
            .map(|(i, d)| MsprtLook { n: 10 * (i as u64 + 1), mean_diff: *d, pair_variance: 1.0 })
            .collect();
        let pts = msprt(&looks, tau2, 0.0).unwrap();
        let mut prev = 1.0;
        for p in pts {
            prop_assert!(unit(p.p_value) && unit(p.p_value_instant) && p.p_value <= prev);
            prev = p.p_value;
        }
    }

    #[test]
    fn intervals_contain_their_estimates(
        c in counts(),
        alpha in 0.0001f64..0.5,
        pairs in prop::collection::vec((0.0f64..10.0, 0.0f64..10.0), 2..40),
        seed in any::<u64>(),
    ) {
        let w = wilson_interval(c.successes, c.total, alpha).unwrap();
        let p = c.successes as f64 / c.total as f64;
        prop_assert!(w.low <= p * (1.0 + 1e-12) && p <= w.high * (1.0 + 1e-12), "{w:?} {p}");
        prop_assert!(0.0 <= w.low && w.high <= 1.0);

        let (b, cand): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        let normal = paired_normal_interval(&b, &cand, 1.0 - alpha).unwrap();
        prop_assert!(normal.ci.contains(normal.mean_diff));
        let cfg = BootstrapConfig { n_resamples: 2_000, confidence_level: 0.95, seed };
        let boot = paired_bootstrap(&b, &cand, &cfg).unwrap();
        let eps = 1e-9 * (1.0 + boot.mean_diff.abs());
        prop_assert!(boot.ci.low - eps <= boot.mean_diff && boot.mean_diff <= boot.ci.high + eps, "{boot:?}");
    }

    #[test]
    fn confidence_sequence_bounds_sit_below_estimates(
        t in counts(),
        c in counts(),
        k in 0.0f64..3.0,
        alpha in 0.001f64..0.2,
        info in 1.0f64..1e7,
        mean_t in -100.0f64..100.0,
        var_t in 0.001f64..100.0,
        n_t in 1u64..1_000_000,
    ) {
        let cs = ConfidenceSequence::tuned_for(alpha, info).unwrap();
        let r = proportion_difference_lower_bound(t, c, k, 0.0, &cs).unwrap();
        prop_assert!(r.lower_bound < r.estimate);
        prop_assert_eq!(r.exceeds, r.lower_bound > 0.0);
        let s = MeanSummary { mean: mean_t, variance: var_t, n: n_t };
        let m = mean_difference_lower_bound(s, s, k, 0.0, &cs).unwrap();
        prop_assert!(m.lower_bound < m.estimate);
    }

    #[test]
    fn sketch_quantiles_within_relative_error(
        values in prop::collection::vec(latency(), 1..3_000),
    ) {
        let mut s = DdSketch::default();
        for v in &values {
            s.add(*v).unwrap();
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let alpha = s.relative_accuracy();
        for q in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let est = s.quantile(q).unwrap();
            let exact = lower_order_statistic(&sorted, q);
            prop_assert!(within(est, exact, alpha), "q={q}: est {est} exact {exact}");
        }
        prop_assert_eq!(s.count(), values.len() as u64);
        prop_assert_eq!(s.min(), sorted.first().copied());
        prop_assert_eq!(s.max(), sorted.last().copied());
        let back = DdSketch::from_bytes(&s.to_bytes()).unwrap();
        prop_assert_eq!(back.bins(), s.bins());
        prop_assert_eq!(back.quantile(0.99), s.quantile(0.99));
    }

    #[test]
    fn merged_halves_equal_whole(
        values in prop::collection::vec(latency(), 2..3_000),
        split in 0.0f64..1.0,
    ) {
        let cut = ((values.len() as f64) * split) as usize;
        let (left, right) = values.split_at(cut);
        let mut whole = DdSketch::default();
        let mut a = DdSketch::default();
        let mut b = DdSketch::default();
        values.iter().for_each(|v| whole.add(*v).unwrap());
        left.iter().for_each(|v| a.add(*v).unwrap());
        right.iter().for_each(|v| b.add(*v).unwrap());
        let mut ab = a.clone();
        ab.merge(&b).unwrap();
        let mut ba = b.clone();
        ba.merge(&a).unwrap();
        prop_assert_eq!(ab.bins(), whole.bins());
        prop_assert_eq!(ba.bins(), whole.bins());
        prop_assert_eq!(ab.count(), whole.count());
        prop_assert_eq!(ab.zero_count(), whole.zero_count());
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.5, 0.95, 0.99] {
            prop_assert_eq!(ab.quantile(q), whole.quantile(q));
            let exact = lower_order_statistic(&sorted, q);
            prop_assert!(within(ab.quantile(q).unwrap(), exact, ab.relative_accuracy()));
        }
    }
}
