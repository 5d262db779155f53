//! Conformance against the shared statistics reference vectors.
//!
//! Reads the JSON file named by `STATS_VECTORS` (default: `../shared/stats-vectors/public.json`
//! next to the workspace), evaluates every case of every kind, compares each expected field
//! with its stated tolerance (`|actual − expected| ≤ abs + rel·|expected|`; `null` = must be
//! not computable), and fails once at the end listing every mismatch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_stats::Alternative;
use rampart_stats::bootstrap::{BootstrapConfig, paired_bootstrap, paired_normal_interval};
use rampart_stats::edit::{levenshtein, similarity};
use rampart_stats::ks::{KsMethod, ks_2samp};
use rampart_stats::mann_whitney::mann_whitney_u;
use rampart_stats::percentile::{percentile_linear, percentile_nearest_rank};
use rampart_stats::power::{Sides, sample_size_cohens_h, sample_size_simple};
use rampart_stats::proportion::{
    Counts, mcnemar_chi2, mcnemar_exact, two_proportion_ztest, wilson_interval,
};
use rampart_stats::sequential::{MsprtLook, msprt};
use rampart_stats::srm::srm_chisquare;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// An actual value: a number, "not computable", or an array of those.
#[derive(Debug, Clone)]
enum Actual {
    Num(Option<f64>),
    Arr(Vec<Option<f64>>),
}

type Fields = BTreeMap<&'static str, Actual>;

fn num(v: Option<f64>) -> Actual {
    Actual::Num(v)
}

/// `STATS_VECTORS`, else `../shared/stats-vectors/public.json` beside the repository (DESIGN.md),
/// else the copy of the public set kept in `tests/data/` for a clone that has no `../shared`.
fn vectors_path() -> PathBuf {
    match std::env::var("STATS_VECTORS") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let shared = dir.join("../../../shared/stats-vectors/public.json");
            if shared.exists() {
                shared
            } else {
                dir.join("tests/data/public.json")
            }
        }
    }
}

fn u(inputs: &Value, key: &str) -> u64 {
    inputs[key]
        .as_u64()
        .unwrap_or_else(|| panic!("input {key} is not a u64"))
}

fn f(inputs: &Value, key: &str) -> f64 {
    inputs[key]
        .as_f64()
        .unwrap_or_else(|| panic!("input {key} is not a number"))
}

fn s<'a>(inputs: &'a Value, key: &str) -> &'a str {
    inputs[key]
        .as_str()
        .unwrap_or_else(|| panic!("input {key} is not a string"))
}

fn fvec(inputs: &Value, key: &str) -> Vec<f64> {
    inputs[key]
        .as_array()
        .unwrap_or_else(|| panic!("input {key} is not an array"))
        .iter()
        .map(|x| x.as_f64().expect("array element is not a number"))
        .collect()
}

fn evaluate(kind: &str, i: &Value) -> Result<Fields, String> {
    let mut out = Fields::new();
    match kind {
        "mcnemar_exact" => {
            let r = mcnemar_exact(u(i, "b"), u(i, "c"));
            out.insert("statistic", num(Some(r.statistic as f64)));
            out.insert("p_value", num(Some(r.p_value)));
        }
        "mcnemar_chi2" => {
            let r = mcnemar_chi2(
                u(i, "b"),
                u(i, "c"),
                i["correction"].as_bool().expect("correction"),
            )
            .ok();
            out.insert("statistic", num(r.map(|r| r.statistic)));
            out.insert("p_value", num(r.map(|r| r.p_value)));
        }
        "two_proportion_ztest" => {
            let alt = match s(i, "alternative") {
                "two-sided" => Alternative::TwoSided,
                "larger" => Alternative::Larger,
                "smaller" => Alternative::Smaller,
                other => return Err(format!("unknown alternative {other}")),
            };
            let r = two_proportion_ztest(
                Counts::new(u(i, "treatment_successes"), u(i, "treatment_total")),
                Counts::new(u(i, "control_successes"), u(i, "control_total")),
                alt,
            )
            .ok();
            out.insert("z", num(r.map(|r| r.statistic)));
            out.insert("p_value", num(r.map(|r| r.p_value)));
        }
        "wilson_interval" => {
            let r = wilson_interval(u(i, "successes"), u(i, "n"), f(i, "alpha")).ok();
            out.insert("low", num(r.map(|r| r.low)));
            out.insert("high", num(r.map(|r| r.high)));
        }
        "sample_size_two_proportions" => {
            let sides = match s(i, "alternative") {
                "two-sided" => Sides::TwoSided,
                "one-sided" => Sides::OneSided,
                other => return Err(format!("unknown alternative {other}")),
            };
            let (p1, mde, alpha, power, ratio) = (
                f(i, "baseline_rate"),
                f(i, "mde_abs"),
                f(i, "alpha"),
                f(i, "power"),
                f(i, "ratio"),
            );
            let simple = sample_size_simple(p1, mde, alpha, power, sides, ratio).ok();
            let cohen = sample_size_cohens_h(p1, mde, alpha, power, sides, ratio).ok();
            out.insert("cohens_h", num(cohen.map(|c| c.0)));
            out.insert(
                "n_control_raw_cohens_h",
                num(cohen.map(|c| c.1.n_control_raw)),
            );
            out.insert(
                "n_control_cohens_h",
                num(cohen.map(|c| c.1.n_control as f64)),
            );
            out.insert(
                "n_treatment_cohens_h",
                num(cohen.map(|c| c.1.n_treatment as f64)),
            );
            out.insert("n_control_raw_simple", num(simple.map(|c| c.n_control_raw)));
            out.insert("n_control_simple", num(simple.map(|c| c.n_control as f64)));
            out.insert(
                "n_treatment_simple",
                num(simple.map(|c| c.n_treatment as f64)),
            );
        }
        "srm_chisquare" => {
            let observed: Vec<u64> = i["observed"]
                .as_array()
                .expect("observed")
                .iter()
                .map(|x| x.as_u64().expect("observed count"))
                .collect();
            let r = srm_chisquare(&observed, &fvec(i, "weights")).map_err(|e| e.to_string())?;
            out.insert("statistic", num(r.statistic));
            out.insert("p_value", num(r.p_value));
            out.insert("df", num(Some(r.df as f64)));
        }
        "ks_2samp" => {
            let method = match s(i, "method") {
                "exact" => KsMethod::Exact,
                "asymp" => KsMethod::Asymptotic,
                other => return Err(format!("unknown method {other}")),
            };
            let r = ks_2samp(&fvec(i, "x"), &fvec(i, "y"), method).ok();
            out.insert("statistic", num(r.map(|r| r.statistic)));
            out.insert("p_value", num(r.map(|r| r.p_value)));
            out.insert(
                "p_value_kolmogorov_limit",
                num(r.map(|r| r.p_value_kolmogorov_limit)),
            );
        }
        "mannwhitneyu" => {
            let r = mann_whitney_u(&fvec(i, "x"), &fvec(i, "y")).ok();
            out.insert("u", num(r.map(|r| r.statistic)));
            out.insert("p_value", num(r.map(|r| r.p_value)));
        }
        "percentile" => {
            let (sample, q) = (fvec(i, "sample"), f(i, "q"));
            out.insert("linear", num(percentile_linear(&sample, q).ok()));
            out.insert(
                "nearest_rank",
                num(percentile_nearest_rank(&sample, q).ok()),
            );
        }
        "paired_bootstrap" => {
            let (b, c) = (fvec(i, "baseline"), fvec(i, "candidate"));
            let cfg = BootstrapConfig {
                n_resamples: u(i, "n_resamples") as usize,
                confidence_level: f(i, "confidence_level"),
                seed: u(i, "seed"),
            };
            let boot = paired_bootstrap(&b, &c, &cfg).ok();
            let normal = paired_normal_interval(&b, &c, cfg.confidence_level).ok();
            out.insert("mean_diff", num(normal.map(|r| r.mean_diff)));
            out.insert("ci_low", num(boot.map(|r| r.ci.low)));
            out.insert("ci_high", num(boot.map(|r| r.ci.high)));
            out.insert("normal_ci_low", num(normal.map(|r| r.ci.low)));
            out.insert("normal_ci_high", num(normal.map(|r| r.ci.high)));
        }
        "msprt" => {
            let looks: Vec<MsprtLook> = i["looks"]
                .as_array()
                .expect("looks")
                .iter()
                .map(|l| MsprtLook {
                    n: u(l, "n"),
                    mean_diff: f(l, "mean_diff"),
                    pair_variance: f(l, "pair_variance"),
                })
                .collect();
            let pts = msprt(&looks, f(i, "tau2"), f(i, "theta0")).map_err(|e| e.to_string())?;
            out.insert(
                "log_lambda",
                Actual::Arr(pts.iter().map(|p| Some(p.log_lambda)).collect()),
            );
            out.insert(
                "lambda",
                Actual::Arr(pts.iter().map(|p| p.lambda()).collect()),
            );
            out.insert(
                "p_value_instant",
                Actual::Arr(pts.iter().map(|p| Some(p.p_value_instant)).collect()),
            );
            out.insert(
                "p_value",
                Actual::Arr(pts.iter().map(|p| Some(p.p_value)).collect()),
            );
        }
        "edit_distance" => {
            let (a, b) = (s(i, "a"), s(i, "b"));
            out.insert("distance", num(Some(levenshtein(a, b) as f64)));
            out.insert("similarity", num(Some(similarity(a, b))));
            out.insert("len_a", num(Some(a.chars().count() as f64)));
            out.insert("len_b", num(Some(b.chars().count() as f64)));
        }
        other => return Err(format!("unknown kind {other}")),
    }
    Ok(out)
}

fn compare_one(expected: &Value, actual: Option<f64>, abs: f64, rel: f64) -> Result<(), String> {
    match (expected.as_f64(), actual) {
        (None, None) => Ok(()),
        (None, Some(a)) => Err(format!("expected not computable, got {a:e}")),
        (Some(e), None) => Err(format!("expected {e:e}, got not computable")),
        (Some(e), Some(a)) => {
            let diff = (a - e).abs();
            if a.is_finite() && diff <= abs + rel * e.abs() {
                Ok(())
            } else {
                Err(format!(
                    "expected {e:e}, got {a:e} (|diff| {diff:e} > {:e})",
                    abs + rel * e.abs()
                ))
            }
        }
    }
}

#[test]
fn reference_vectors() {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("vectors file is not JSON");
    let cases = doc["cases"].as_array().expect("no cases array");
    assert!(!cases.is_empty(), "no cases in {}", path.display());
    let mut failures = Vec::new();
    let mut checked = 0usize;
    for case in cases {
        let id = case["id"].as_str().unwrap_or("?");
        let kind = case["kind"].as_str().unwrap_or("?");
        let actual = match evaluate(kind, &case["inputs"]) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{id}: cannot evaluate: {e}"));
                continue;
            }
        };
        let expected = case["expected"]
            .as_object()
            .expect("expected is not an object");
        for (field, exp) in expected {
            let tol = &case["tolerance"][field];
            let (abs, rel) = (
                tol["abs"].as_f64().unwrap_or(0.0),
                tol["rel"].as_f64().unwrap_or(0.0),
            );
            let Some(act) = actual.get(field.as_str()) else {
                failures.push(format!("{id}.{field}: field not produced"));
                continue;
            };
            checked += 1;
            match (exp, act) {
                (Value::Array(es), Actual::Arr(acts)) => {
                    if es.len() != acts.len() {
                        failures.push(format!(
                            "{id}.{field}: length {} vs {}",
                            acts.len(),
                            es.len()
                        ));
                        continue;
                    }
                    for (k, (e, a)) in es.iter().zip(acts).enumerate() {
                        // msprt.lambda: null means "overflows f64"; None or +inf both qualify.
                        let a = if field == "lambda" && e.is_null() && a == &Some(f64::INFINITY) {
                            None
                        } else {
                            *a
                        };
                        if let Err(msg) = compare_one(e, a, abs, rel) {
                            failures.push(format!("{id}.{field}[{k}]: {msg}"));
                        }
                    }
                }
                (e, Actual::Num(a)) if !e.is_array() => {
                    if let Err(msg) = compare_one(e, *a, abs, rel) {
                        failures.push(format!("{id}.{field}: {msg}"));
                    }
                }
                _ => failures.push(format!("{id}.{field}: shape mismatch")),
            }
        }
    }
    println!(
        "checked {checked} fields in {} cases from {}",
        cases.len(),
        path.display()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
