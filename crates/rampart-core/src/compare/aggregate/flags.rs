//! The flag rule of the comparison report (see [`crate::compare::report`]): the p-values of
//! one family adjusted together (Holm or Benjamini–Hochberg), then each metric flagged when its
//! adjusted p-value is below `alpha` and its effect reaches the configured minimum.

use rampart_stats::multiple::{benjamini_hochberg, holm};

use super::{Adjustment, CompareConfig};
use crate::compare::report::Metrics;

/// Adjusts every testable p-value of `ms` as one family, sets `p_adjusted` and `flagged`, and
/// returns each entry's flag names.
pub(super) fn adjust_and_flag(ms: &mut [Metrics], cfg: &CompareConfig) -> Vec<Vec<String>> {
    let all = vec![true; ms.len()];
    adjust_and_flag_where(ms, &all, cfg)
}

/// The raw p-values of one entry, in flag order: refusal, errors, length, openings, formats.
fn raw_p_values(m: &Metrics) -> Vec<f64> {
    let mut raw = vec![
        m.refusal.p_value,
        m.errors.p_value,
        m.length_ratio.p_value.unwrap_or(1.0),
        m.openings.p_value,
    ];
    raw.extend(m.formats.iter().map(|f| f.p_value));
    raw
}

/// [`adjust_and_flag`] over the entries where `testable` is true: only their p-values form
/// the family (an entry left out, with too few pairs, is not a test and does not dilute the
/// others), and only they are flagged; the others keep `p_adjusted = None` and no flags.
pub(super) fn adjust_and_flag_where(
    ms: &mut [Metrics],
    testable: &[bool],
    cfg: &CompareConfig,
) -> Vec<Vec<String>> {
    let raw: Vec<f64> = ms
        .iter()
        .zip(testable)
        .filter(|(_, t)| **t)
        .flat_map(|(m, _)| raw_p_values(m))
        .collect();
    let adjusted = if raw.is_empty() {
        Vec::new()
    } else {
        match cfg.adjustment {
            Adjustment::Holm => holm(&raw),
            Adjustment::BenjaminiHochberg => benjamini_hochberg(&raw),
        }
        .unwrap_or_else(|_| vec![1.0; raw.len()])
    };
    let mut it = adjusted.into_iter();
    ms.iter_mut()
        .zip(testable)
        .map(|(m, t)| {
            if *t {
                flag(m, &mut it, cfg)
            } else {
                Vec::new()
            }
        })
        .collect()
}

/// Sets one entry's adjusted p-values (taken from `it` in [`raw_p_values`] order) and flags.
fn flag(m: &mut Metrics, it: &mut impl Iterator<Item = f64>, cfg: &CompareConfig) -> Vec<String> {
    let mut next = || it.next().unwrap_or(1.0);
    let alpha = cfg.alpha;
    let mut flags = Vec::new();
    let big = |d: Option<f64>, min: f64| d.is_some_and(|d| d.abs() >= min);

    let p = next();
    m.refusal.p_adjusted = Some(p);
    m.refusal.flagged = p < alpha && big(m.refusal.delta, cfg.min_refusal_delta);
    if m.refusal.flagged {
        flags.push("refusal".to_string());
    }

    let p = next();
    m.errors.p_adjusted = Some(p);
    m.errors.flagged = p < alpha && big(m.errors.delta, cfg.min_error_delta);
    if m.errors.flagged {
        flags.push("errors".to_string());
    }

    let p = next();
    let l = &mut m.length_ratio;
    l.p_adjusted = l.p_value.map(|_| p);
    let excludes_one = l
        .ci_low
        .zip(l.ci_high)
        .is_some_and(|(lo, hi)| lo > 1.0 || hi < 1.0);
    l.flagged = l.p_value.is_some()
        && p < alpha
        && excludes_one
        && big(l.estimate.map(|e| e - 1.0), cfg.min_length_ratio_delta);
    if l.flagged {
        flags.push("length".to_string());
    }

    let p = next();
    m.openings.p_adjusted = Some(p);
    m.openings.drift_flagged =
        p < alpha && big(m.openings.share_delta, cfg.min_opening_share_delta);
    if m.openings.drift_flagged {
        flags.push("openings".to_string());
    }

    for f in &mut m.formats {
        let p = next();
        f.p_adjusted = Some(p);
        let delta = f.baseline_rate.zip(f.candidate_rate).map(|(b, c)| c - b);
        f.flagged = p < alpha && big(delta, cfg.min_format_delta);
        if f.flagged {
            flags.push(format!("format:{}", f.feature));
        }
    }
    flags
}
