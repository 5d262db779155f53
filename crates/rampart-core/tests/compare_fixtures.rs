//! The report flags exactly the drift injected into a seeded fixture, and nothing for an
//! identical or an independently re-sampled (A/A) candidate. The flag rule is the library's
//! (Holm-adjusted p-values + minimum effect sizes), not tuned here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixtures/compare_gen.rs"]
mod compare_gen;

use compare_gen::{FORMAL, Style, pairs};
use rampart_core::compare::{
    Accumulator, CompareConfig, ComparisonReport, pair_features, shadow_gate_input,
};

const CLASSES: usize = 20;
const PER_CLASS: usize = 150;

fn report(pairs: &[rampart_core::record::Pair]) -> ComparisonReport {
    let mut acc = Accumulator::new(CompareConfig::default());
    for p in pairs {
        acc.push(&pair_features(p));
    }
    acc.finish()
}

fn drifted(refusal_class: &str) -> Style {
    let mut s = Style::baseline();
    s.openings = FORMAL.to_vec(); // tone
    s.length_factor = 1.3; // +30 % body length
    s.table_as_bullets = 1.0; // tables replaced by bullets
    s.refusal_overrides = vec![(refusal_class.to_string(), 0.20)]; // refusals rise in one class
    s.p_cached = 0.2;
    s
}

fn class_names(r: &ComparisonReport) -> Vec<String> {
    r.classes.iter().filter_map(|c| c.class.clone()).collect()
}

#[test]
fn known_drift_is_flagged_and_nothing_else() {
    let base = Style::baseline();
    let probe = report(&pairs(1, CLASSES, 4, &base, None));
    let target = class_names(&probe)[7].clone();
    let r = report(&pairs(
        42,
        CLASSES,
        PER_CLASS,
        &base,
        Some(&drifted(&target)),
    ));

    assert_eq!(r.pairs, (CLASSES * PER_CLASS) as u64);
    assert_eq!(
        r.flags,
        vec!["length", "openings", "format:table", "format:bullets"],
        "overall flags"
    );
    // Length: about +30 % of the body.
    let l = &r.metrics.length_ratio;
    assert!(l.ci_low.unwrap() > 1.1, "{l:?}");
    // Openings: the greeting at ~84 % vs ~11 % stands out.
    let o = &r.metrics.openings;
    assert!(o.drift_flagged);
    assert_eq!(o.baseline_top[0].phrase, "hi there thanks");
    assert_eq!(o.phrase.as_deref(), Some("hi there thanks"));
    assert!(
        o.baseline_top[0].share > 0.78 && o.share_delta.unwrap() < -0.6,
        "{o:?}"
    );
    let table = r
        .metrics
        .formats
        .iter()
        .find(|f| f.feature == "table")
        .unwrap();
    assert_eq!(table.direction, "less");
    let bullets = r
        .metrics
        .formats
        .iter()
        .find(|f| f.feature == "bullets")
        .unwrap();
    assert_eq!(bullets.direction, "more");
    // The overall refusal rate moves by < 1 point: significant maybe, but below the minimum.
    assert!(!r.metrics.refusal.flagged);

    // Per class: refusal flagged in the target class only; other flags are the global drifts.
    let allowed = ["length", "openings", "format:table", "format:bullets"];
    for c in &r.classes {
        let name = c.class.as_deref().unwrap();
        let has_refusal = c.flags.iter().any(|f| f == "refusal");
        assert_eq!(has_refusal, name == target, "{name}: {:?}", c.flags);
        for f in c.flags.iter().filter(|f| *f != "refusal") {
            assert!(allowed.contains(&f.as_str()), "{name}: unexpected flag {f}");
        }
    }
    // Tenants are a random split: the same global drifts, no refusal flag (diluted).
    for t in &r.tenants {
        assert!(
            t.flags.iter().all(|f| allowed.contains(&f.as_str())),
            "{t:?}"
        );
    }

    // The shadow gate sees the refusal rise.
    let gate = shadow_gate_input(&r);
    assert!(gate.refusal_increase_significant);
    assert!(!gate.passes(0.0, None));

    // JSON field names promised to callers.
    let json = serde_json::to_value(&r).unwrap();
    for path in [
        "/pairs",
        "/equivalence/rate",
        "/length_ratio/estimate",
        "/length_ratio/ci_low",
        "/length_ratio/ci_high",
        "/refusal/baseline_rate",
        "/refusal/candidate_rate",
        "/refusal/p_value",
        "/openings/baseline_top",
        "/openings/candidate_top",
        "/openings/drift_flagged",
        "/classes/0/class",
        "/classes/0/pairs",
        "/classes/0/flags",
        "/flags",
    ] {
        assert!(json.pointer(path).is_some(), "missing {path}");
    }
    let back: ComparisonReport = serde_json::from_value(json).unwrap();
    assert_eq!(back.flags, r.flags);
}

#[test]
fn identical_candidate_flags_nothing() {
    let base = Style::baseline();
    let r = report(&pairs(7, CLASSES, PER_CLASS, &base, None));
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    assert!(r.classes.iter().all(|c| c.flags.is_empty()));
    assert!(r.tenants.iter().all(|c| c.flags.is_empty()));
    assert_eq!(r.metrics.equivalence.rate, Some(1.0));
    assert_eq!(r.metrics.openings.drift, Some(0.0));
    assert_eq!(r.metrics.length_ratio.estimate, Some(1.0));
    let gate = shadow_gate_input(&r);
    assert!(!gate.refusal_increase_significant);
    assert!(gate.passes(0.70, None));
    // With a judge configured but no judgement yet, the gate holds.
    assert!(!gate.passes(0.70, Some(0.45)));
}

#[test]
fn independent_resample_of_the_same_model_flags_nothing() {
    // A/A: both sides drawn from the same style, independently (noise only).
    let base = Style::baseline();
    for seed in [3, 11] {
        let r = report(&pairs(seed, CLASSES, PER_CLASS, &base, Some(&base)));
        assert!(r.flags.is_empty(), "seed {seed}: {:?}", r.flags);
        let flagged: Vec<_> = r.classes.iter().filter(|c| !c.flags.is_empty()).collect();
        assert!(flagged.is_empty(), "seed {seed}: {flagged:?}");
        let l = &r.metrics.length_ratio;
        assert!(
            l.ci_low.unwrap() <= 1.0 && l.ci_high.unwrap() >= 1.0,
            "{l:?}"
        );
    }
}

#[test]
fn accumulator_memory_is_bounded() {
    let base = Style::baseline();
    let ps = pairs(5, 2, 50, &base, Some(&base));
    let feats: Vec<_> = ps.iter().map(pair_features).collect();
    let config = CompareConfig {
        reservoir: 500,
        group_reservoir: 100,
        most_different: 3,
        ..CompareConfig::default()
    };
    let mut acc = Accumulator::new(config);
    for _ in 0..300 {
        for f in &feats {
            acc.push(f);
        }
    }
    let r = acc.finish();
    assert_eq!(r.pairs, 30_000);
    assert_eq!(r.metrics.length_ratio.sample, 500);
    assert!(
        r.classes
            .iter()
            .all(|c| c.metrics.length_ratio.sample == 100)
    );
    assert_eq!(r.most_different.len(), 3);
    assert!(
        r.most_different
            .windows(2)
            .all(|w| w[0].similarity <= w[1].similarity)
    );
}
