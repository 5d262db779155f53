//! Outcomes as users read them: per outcome name and cohort, the count, the mean and an
//! anytime-valid interval of the mean, and the canary − control difference with its interval.
//! One pure function, [`summarize`], feeds `rampart status`, the comparison report (text, JSON,
//! HTML) and the dashboard, so all of them show the same numbers.
//!
//! Intervals. Each cohort's mean: [`rampart_stats::mean_interval::mean_interval`]; the
//! difference: [`rampart_stats::mean_interval::mean_difference_interval`], the slow gate's own
//! test (normal-mixture confidence sequences; Howard, Ramdas, McAuliffe & Sekhon 2021;
//! Waudby-Smith et al. 2021), so a page refreshed every few seconds does not overstate what
//! the data shows. For a name with a `[[slow_signals]]` entry the level and tuning are the
//! signal's (`alpha`, ρ tightest at [`TUNE_FACTOR`] × `min_samples` outcomes per cohort), so the
//! difference interval shown is exactly the one the gate acts on; other names use α = 0.05
//! tuned at [`DEFAULT_TUNE_N`]. A value that cannot be computed (fewer than two outcomes, all
//! equal) is `None`, never NaN.

use rampart_stats::mean_interval::{Moments, mean_difference_interval, mean_interval};
use serde::{Deserialize, Serialize};

use crate::config::SlowSignalConfig;
use crate::rollout::slow_signals::TUNE_FACTOR;
use crate::routing::Cohort;

/// Level of the intervals of names without a slow signal.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Outcomes per cohort at which the intervals of names without a slow signal are tightest
/// (`TUNE_FACTOR` × the slow signals' default `min_samples` of 100).
pub const DEFAULT_TUNE_N: u64 = 400;

/// Count, sum and sum of squares of one outcome name in one cohort (what the store returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeMoments {
    pub name: String,
    pub cohort: Cohort,
    pub n: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

/// One cohort's outcomes of one name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortOutcome {
    pub cohort: Cohort,
    pub n: u64,
    pub mean: f64,
    /// The anytime-valid interval of the cohort's mean at level `1 − alpha`.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

/// `mean_canary − mean_control` and its anytime-valid interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutcomeDifference {
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// One outcome name across cohorts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeSummary {
    pub name: String,
    /// Cohorts with outcomes, in the order control, canary, unkeyed.
    pub cohorts: Vec<CohortOutcome>,
    /// `None` unless both control and canary have a computable interval.
    pub difference: Option<OutcomeDifference>,
    /// Level of the intervals.
    pub alpha: f64,
    /// Whether a `[[slow_signals]]` entry gates on this name.
    pub slow_signal: bool,
}

impl OutcomeSummary {
    /// One cohort's outcomes, if it has any.
    pub fn cohort(&self, cohort: Cohort) -> Option<&CohortOutcome> {
        self.cohorts.iter().find(|c| c.cohort == cohort)
    }
}

fn moments(m: &OutcomeMoments) -> Moments {
    Moments {
        n: m.n,
        sum: m.sum,
        sum_sq: m.sum_sq,
    }
}

/// Per name (sorted) × cohort summaries of `rows` (any order; a repeated (name, cohort) is
/// merged), with the intervals of the module docs. Pure.
pub fn summarize(rows: &[OutcomeMoments], signals: &[SlowSignalConfig]) -> Vec<OutcomeSummary> {
    let mut names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let signal = signals.iter().find(|s| s.name == name);
            let (alpha, tune_n) = signal.map_or((DEFAULT_ALPHA, DEFAULT_TUNE_N), |s| {
                (s.alpha, s.min_samples.max(2).saturating_mul(TUNE_FACTOR))
            });
            let arm = |cohort: Cohort| {
                rows.iter()
                    .filter(|r| r.name == name && r.cohort == cohort)
                    .fold(Moments::default(), |mut acc, r| {
                        let m = moments(r);
                        acc.n += m.n;
                        acc.sum += m.sum;
                        acc.sum_sq += m.sum_sq;
                        acc
                    })
            };
            let cohorts = Cohort::ALL
                .into_iter()
                .map(|c| (c, arm(c)))
                .filter(|(_, m)| m.n > 0)
                .map(|(cohort, m)| {
                    let i = mean_interval(&m, alpha, tune_n).ok();
                    CohortOutcome {
                        cohort,
                        n: m.n,
                        mean: m.mean(),
                        ci_low: i.map(|i| i.lower),
                        ci_high: i.map(|i| i.upper),
                    }
                })
                .collect();
            let difference = mean_difference_interval(
                &arm(Cohort::Canary),
                &arm(Cohort::Control),
                alpha,
                tune_n,
            )
            .ok()
            .map(|i| OutcomeDifference {
                estimate: i.estimate,
                ci_low: i.lower,
                ci_high: i.upper,
            });
            OutcomeSummary {
                name: name.to_string(),
                cohorts,
                difference,
                alpha,
                slow_signal: signal.is_some(),
            }
        })
        .collect()
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{v:.2}"))
}

/// Plain-text lines, one per name and cohort, then the difference:
/// `csat     control   n 412  mean 81.20 [79.90, 82.50]`.
pub fn render_lines(summaries: &[OutcomeSummary]) -> Vec<String> {
    let mut out = Vec::new();
    for s in summaries {
        for c in &s.cohorts {
            out.push(format!(
                "{:<16} {:<8} n {:<7} mean {:.2} [{}, {}]",
                s.name,
                c.cohort.as_str(),
                c.n,
                c.mean,
                opt(c.ci_low),
                opt(c.ci_high)
            ));
        }
        let diff = s.difference.map_or_else(
            || "canary − control: not computable yet".to_string(),
            |d| {
                format!(
                    "canary − control {:.2} [{:.2}, {:.2}]",
                    d.estimate, d.ci_low, d.ci_high
                )
            },
        );
        out.push(format!(
            "{:<16} {diff} ({:.0}% anytime-valid{})",
            "",
            (1.0 - s.alpha) * 100.0,
            if s.slow_signal { ", slow gate" } else { "" }
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{SlowAction, SlowThreshold};
    use std::time::Duration;

    fn row(name: &str, cohort: Cohort, xs: &[f64]) -> OutcomeMoments {
        OutcomeMoments {
            name: name.into(),
            cohort,
            n: xs.len() as u64,
            sum: xs.iter().sum(),
            sum_sq: xs.iter().map(|x| x * x).sum(),
        }
    }

    #[test]
    fn each_cohort_gets_its_mean_and_interval_and_the_difference_is_the_gates() {
        let control: Vec<f64> = (0..50).map(|i| 70.0 + (i % 10) as f64).collect();
        let canary: Vec<f64> = (0..40).map(|i| 60.0 + (i % 10) as f64).collect();
        let rows = vec![
            row("refund", Cohort::Control, &[0.0, 1.0, 0.0]),
            row("csat", Cohort::Canary, &canary),
            row("csat", Cohort::Control, &control),
        ];
        let sig = SlowSignalConfig {
            name: "csat".into(),
            higher_is_better: true,
            threshold: SlowThreshold::Absolute(1.0),
            sustain: Duration::ZERO,
            check_interval: Duration::from_secs(60),
            min_samples: 10,
            action: SlowAction::Pin,
            alpha: 0.1,
        };
        let s = summarize(&rows, std::slice::from_ref(&sig));
        assert_eq!(
            s.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            ["csat", "refund"]
        );
        let csat = &s[0];
        assert!(csat.slow_signal);
        assert_eq!(csat.alpha, 0.1);
        let c = csat.cohort(Cohort::Control).unwrap();
        let t = csat.cohort(Cohort::Canary).unwrap();
        assert_eq!((c.n, t.n), (50, 40));
        assert!((c.mean - 74.5).abs() < 1e-9 && (t.mean - 64.5).abs() < 1e-9);
        let (lo, hi) = (c.ci_low.unwrap(), c.ci_high.unwrap());
        assert!(lo < 74.5 && 74.5 < hi && ((lo + hi) / 2.0 - 74.5).abs() < 1e-9);
        // The difference is exactly the slow gate's interval.
        let gate = crate::rollout::slow_signals::evaluate_signal(
            &sig,
            &crate::rollout::SignalOutcomes {
                control: moments(&rows[2]),
                canary: moments(&rows[1]),
            },
        );
        let d = csat.difference.unwrap();
        assert!((d.estimate + 10.0).abs() < 1e-9);
        assert_eq!(Some(d.ci_low), gate.lower);
        assert_eq!(Some(d.ci_high), gate.upper);
        // One cohort only: no difference; the default level.
        let refund = &s[1];
        assert!(!refund.slow_signal && refund.alpha == DEFAULT_ALPHA);
        assert_eq!(refund.cohorts.len(), 1);
        assert!(refund.difference.is_none());
        assert!(refund.cohorts[0].ci_low.is_some());
        let text = render_lines(&s).join("\n");
        assert!(
            text.contains("csat             control  n 50      mean 74.50"),
            "{text}"
        );
        assert!(text.contains("canary − control -10.00"), "{text}");
    }

    #[test]
    fn too_few_or_constant_outcomes_have_no_interval() {
        let rows = vec![
            row("x", Cohort::Control, &[3.0]),
            row("x", Cohort::Canary, &[2.0, 2.0]),
        ];
        let s = summarize(&rows, &[]);
        assert_eq!(s[0].cohorts[0].ci_low, None);
        assert_eq!(s[0].cohorts[1].ci_high, None);
        assert_eq!(s[0].difference, None);
        assert!(summarize(&[], &[]).is_empty());
    }
}
