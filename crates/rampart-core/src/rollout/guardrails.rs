//! The kill switch: guardrails that compare the canary with the control cohort over the same
//! rolling window (in shadow stages: the candidate's answers with the baseline's on the same
//! requests) and say whether the candidate must be rolled back now.
//!
//! # The guardrails
//!
//! | name | tested quantity (canary `t`, control `c`) | breach (sequential mode) |
//! |---|---|---|
//! | `catastrophic_error_rate` | `e_t` | `e_t ≥ catastrophic_error_rate` on ≥ `catastrophic_min_requests` canary requests while `e_c` is below it: trips at once, both modes |
//! | `error_rate` | `e_t` and `e_t − e_c` | `LB(e_t) > error_rate_max` **and** `LB(e_t − e_c) > 0` |
//! | `p95_latency` | share `s_t` of canary requests slower than `ratio × p95_c` | `LB(s_t) > 0.05` (⇔ canary p95 > ratio × control p95) |
//! | `refusal_rate` | `r_t − r_c` | `LB(r_t − r_c) > refusal_rate_max_increase` |
//! | `thumbs_down_rate` | `d_t − k·d_c` (rates per feedback, `k = thumbs_down_max_ratio`) | `LB(d_t − k·d_c) > 0` |
//!
//! Every statistical guardrail also needs `min_exposure` canary requests in the window
//! (thumbs-down: [`MIN_FEEDBACK`] canary feedback events as well). The error-rate rule asks for
//! both an absolute excess and an excess over the control in the same window, so a provider
//! outage hitting both cohorts alike (rolling back would not help) never blames the candidate;
//! the catastrophic rule likewise ignores a failure both cohorts share.
//!
//! # The sequential bound (`mode = "sequential"`, the default)
//!
//! `LB` is the lower end of a normal-mixture confidence sequence
//! ([`rampart_stats::sequential::ConfidenceSequence`]; Robbins 1970, Howard et al. 2021): for
//! `Δ̂ = x_t/n_t − k·x_c/n_c`,
//! `LB = Δ̂ − ½/n_t − √((I+ρ)·ln((I+ρ)/(ρα'²)))/I`, `I = 1/V`, valid simultaneously over every look.
//! The variance is taken **at the null boundary** (a score-type variance, as in the score test
//! and Wilson's interval): with the control's smoothed rate `p̃_c = (x_c+½)/(n_c+1)` and the
//! canary rate the null allows, `p₀ = k·p̃_c + margin` (clamped to `[½/(n_t+1), ½]`),
//! `V = p₀(1−p₀)/n_t + k²·p̃_c(1−p̃_c)/n_c`. Compared with a plug-in variance it does not grow
//! with the very excess it is testing, which is what lets a rare-event regression (1 % → 6 %
//! refusals) trip in about a minute on a 5 % canary; the continuity correction `½/n_t` and
//! `min_exposure` keep the Poisson skew of small counts from causing false trips. The guarantee
//! is asymptotic (Waudby-Smith et al. 2021); `tests/rollout_sim.rs` measures the false-trip rate.
//!
//! `α' = guardrails.alpha` per guardrail (no Bonferroni split across the four: with it, a
//! +5 point refusal regression on a 5 % canary at 50 req/s took a median 65 s instead of 50 s,
//! while the A/A false-trip rate of the whole kill switch without it is already 0.2–0.6 % per
//! simulated hour, see `tests/rollout_sim.rs`). [`configured_tests`] reports `m` for anyone
//! who wants to budget `alpha` across guardrails. ρ is fixed in advance (never from the data): the sequence is tuned to be
//! tightest at `2 × min_exposure` canary requests at a 2 % rate.
//!
//! Only the lower side is ever used, so the crate's two-sided radius is taken at level `2α'`.
//! This is the one-sided normal mixture: with a half-normal mixing density on θ ≥ 0, the
//! mixture martingale is `M = 2·√(ρ/(I+ρ))·exp(S²/(2(I+ρ)))·Φ(S/√(I+ρ))` (Howard et al.
//! 2021, §3). At the two-sided boundary for level `2α'`, `√(ρ/(I+ρ))·exp(S²/(2(I+ρ))) = 1/(2α')`
//! and `S/√(I+ρ) ≥ √(ln(1/(4α'²)))`, so `M ≥ Φ(√ln(1/(4α'²)))/α'`; for `α' ≤ 0.05`
//! `Φ(·) ≥ 0.99`, and Ville's inequality bounds the false-trip probability by `α'/0.99`.
//!
//! A rolling window is not one path: each new window is fresh evidence, so over a long stage the
//! per-window guarantee repeats. The simulation tests bound the resulting per-hour false-trip
//! rate for realistic traffic.
//!
//! # Threshold mode (`mode = "threshold"`)
//!
//! The same table with point estimates in place of `LB` (`e_t > error_rate_max` and
//! `e_t > e_c`, `s_t > 0.05`, `r_t − r_c > max_increase`, `d_t > k·d_c`), with the same
//! `min_exposure`. Simple and fast, but every look is a fresh chance of a false trip.

use rampart_stats::sequential::ConfidenceSequence;
use serde::Serialize;

use super::observations::{CohortCounts, LatencyTail, PairedCounts, WindowCounts};
use crate::config::{GuardrailMode, GuardrailsConfig};

/// Share of canary requests allowed above `ratio × control p95` (that is what "p95" means).
pub const LATENCY_TAIL_SHARE: f64 = 0.05;
/// Canary feedback events the thumbs-down guardrail needs in the window.
pub const MIN_FEEDBACK: u64 = 30;
/// Reference rate at which the confidence sequence is tuned.
const TUNE_RATE: f64 = 0.02;

/// Names of the guardrails, as in reports, alerts and audit records.
pub const CATASTROPHIC: &str = "catastrophic_error_rate";
pub const ERROR_RATE: &str = "error_rate";
pub const P95_LATENCY: &str = "p95_latency";
pub const REFUSAL_RATE: &str = "refusal_rate";
pub const THUMBS_DOWN: &str = "thumbs_down_rate";

/// One guardrail's evaluation, for status pages and alerts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardrailReport {
    /// One of the names above.
    pub name: &'static str,
    /// The canary's rate (error, slow share, refusal, thumbs-down per feedback), if any traffic.
    pub value_canary: Option<f64>,
    /// The control's rate, if any traffic.
    pub value_control: Option<f64>,
    /// The threshold the evidence is compared with (same units as the tested quantity).
    pub threshold: f64,
    /// Sequential mode: the anytime-valid lower bound of the tested quantity; threshold mode:
    /// its point estimate. `None` when not evaluable (too little exposure, no data).
    pub evidence: Option<f64>,
    /// What is tested against `threshold`, e.g. `LB(r_t − r_c − max_increase) > 0`.
    pub test: &'static str,
    /// Canary samples (requests; feedback events for thumbs-down).
    pub samples_canary: u64,
    /// Control samples.
    pub samples_control: u64,
    /// Whether the canary has the exposure the guardrail needs.
    pub exposure_met: bool,
    pub breached: bool,
}

/// The anytime-valid lower bound of `x_t/n_t − k·x_c/n_c` (module docs), `None` without data.
///
/// `control = None` tests the canary's rate alone (`k` ignored).
pub fn sequential_lower_bound(
    canary: (u64, u64),
    control: Option<(u64, u64)>,
    k: f64,
    margin: f64,
    cs: &ConfidenceSequence,
) -> Option<f64> {
    let (xt, nt) = canary;
    if nt == 0 || xt > nt {
        return None;
    }
    let ntf = nt as f64;
    let (est_c, pc, var_c) = match control {
        Some((xc, nc)) if nc > 0 && xc <= nc => {
            let ncf = nc as f64;
            let pc = (xc as f64 + 0.5) / (ncf + 1.0);
            (k * xc as f64 / ncf, k * pc, k * k * pc * (1.0 - pc) / ncf)
        }
        Some(_) => return None,
        None => (0.0, 0.0, 0.0),
    };
    let p0 = (pc + margin).clamp(0.5 / (ntf + 1.0), 0.5);
    let var = p0 * (1.0 - p0) / ntf + var_c;
    let radius = cs.radius(var).ok()?;
    Some(xt as f64 / ntf - est_c - 0.5 / ntf - radius)
}

fn rate(x: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| x as f64 / n as f64)
}

impl PairedCounts {
    /// The pairs as two cohorts: baseline answers as control, candidate answers as canary.
    pub fn as_window(&self) -> WindowCounts {
        let arm = |errors, refusals| CohortCounts {
            requests: self.pairs,
            errors,
            refusals,
            ..CohortCounts::default()
        };
        WindowCounts {
            control: arm(self.baseline_errors, self.baseline_refusals),
            canary: arm(self.candidate_errors, self.candidate_refusals),
            latency: self.latency,
        }
    }
}

/// Number of statistical guardrails configured (a Bonferroni divisor, for budgeting `alpha`).
pub fn configured_tests(cfg: &GuardrailsConfig) -> usize {
    [
        cfg.error_rate_max.is_some(),
        cfg.p95_latency_max_ratio.is_some(),
        cfg.refusal_rate_max_increase.is_some(),
        cfg.thumbs_down_max_ratio.is_some(),
    ]
    .into_iter()
    .filter(|b| *b)
    .count()
}

/// The confidence sequence each guardrail uses (module docs); `None` only for an invalid alpha.
pub fn confidence_sequence(cfg: &GuardrailsConfig) -> Option<ConfidenceSequence> {
    let n = (2 * cfg.min_exposure.max(50)) as f64;
    // One-sided use of the two-sided boundary at level 2α' (module docs).
    let level = (2.0 * cfg.alpha).min(0.5);
    ConfidenceSequence::tuned_for(level, n / (TUNE_RATE * (1.0 - TUNE_RATE))).ok()
}

/// Evaluates every configured guardrail (and the catastrophic rule) on one window.
pub fn evaluate_guardrails(cfg: &GuardrailsConfig, w: &WindowCounts) -> Vec<GuardrailReport> {
    let cs = confidence_sequence(cfg);
    let seq = cfg.mode == GuardrailMode::Sequential;
    let (t, c) = (&w.canary, &w.control);
    let exposed = t.requests >= cfg.min_exposure.max(1);
    let has_control = c.requests > 0;
    let lb = |x: (u64, u64), ctl: Option<(u64, u64)>, k: f64, margin: f64| {
        cs.as_ref()
            .and_then(|cs| sequential_lower_bound(x, ctl, k, margin, cs))
    };
    let mut out = Vec::with_capacity(5);

    // Catastrophic: point estimate, at once, both modes.
    let (et, ec) = (rate(t.errors, t.requests), rate(c.errors, c.requests));
    let cat = cfg.catastrophic_error_rate;
    let cat_exposed = t.requests >= cfg.catastrophic_min_requests.max(1);
    out.push(GuardrailReport {
        name: CATASTROPHIC,
        value_canary: et,
        value_control: ec,
        threshold: cat,
        evidence: et,
        test: "e_t ≥ catastrophic_error_rate on ≥ catastrophic_min_requests, e_c below it",
        samples_canary: t.requests,
        samples_control: c.requests,
        exposure_met: cat_exposed,
        breached: cat_exposed && et.is_some_and(|e| e >= cat) && ec.is_none_or(|e| e < cat),
    });

    if let Some(max) = cfg.error_rate_max {
        let (evidence, vs_control) = if !exposed {
            (None, None)
        } else if seq {
            let abs = lb((t.errors, t.requests), None, 0.0, max);
            let diff = if has_control {
                lb(
                    (t.errors, t.requests),
                    Some((c.errors, c.requests)),
                    1.0,
                    0.0,
                )
            } else {
                Some(f64::INFINITY)
            };
            (abs, diff)
        } else {
            let diff = match (et, ec) {
                (Some(a), Some(b)) => Some(a - b),
                (Some(_), None) => Some(f64::INFINITY),
                _ => None,
            };
            (et, diff)
        };
        let breached = evidence.is_some_and(|e| e > max) && vs_control.is_some_and(|d| d > 0.0);
        out.push(GuardrailReport {
            name: ERROR_RATE,
            value_canary: et,
            value_control: ec,
            threshold: max,
            evidence,
            test: if seq {
                "LB(e_t) > error_rate_max and LB(e_t − e_c) > 0"
            } else {
                "e_t > error_rate_max and e_t > e_c"
            },
            samples_canary: t.requests,
            samples_control: c.requests,
            exposure_met: exposed,
            breached,
        });
    }

    if cfg.p95_latency_max_ratio.is_some() {
        let tail: Option<&LatencyTail> = w.latency.as_ref();
        let (st, sc, nt, nc) = match tail {
            Some(l) => (
                rate(l.canary_slow, l.canary_total),
                rate(l.control_slow, l.control_total),
                l.canary_total,
                l.control_total,
            ),
            None => (None, None, 0, 0),
        };
        let exp = nt >= cfg.min_exposure.max(1);
        let evidence = match (exp, tail) {
            (true, Some(l)) if seq => lb(
                (l.canary_slow, l.canary_total),
                None,
                0.0,
                LATENCY_TAIL_SHARE,
            ),
            (true, Some(_)) => st,
            _ => None,
        };
        out.push(GuardrailReport {
            name: P95_LATENCY,
            value_canary: st,
            value_control: sc,
            threshold: LATENCY_TAIL_SHARE,
            evidence,
            test: if seq {
                "LB(share of canary slower than ratio × control p95) > 0.05"
            } else {
                "share of canary slower than ratio × control p95 > 0.05"
            },
            samples_canary: nt,
            samples_control: nc,
            exposure_met: exp,
            breached: evidence.is_some_and(|e| e > LATENCY_TAIL_SHARE),
        });
    }

    if let Some(max) = cfg.refusal_rate_max_increase {
        let (rt, rc) = (rate(t.refusals, t.requests), rate(c.refusals, c.requests));
        let evidence = if !exposed || !has_control {
            None
        } else if seq {
            lb(
                (t.refusals, t.requests),
                Some((c.refusals, c.requests)),
                1.0,
                max,
            )
        } else {
            rt.zip(rc).map(|(a, b)| a - b)
        };
        out.push(GuardrailReport {
            name: REFUSAL_RATE,
            value_canary: rt,
            value_control: rc,
            threshold: max,
            evidence,
            test: if seq {
                "LB(r_t − r_c) > refusal_rate_max_increase"
            } else {
                "r_t − r_c > refusal_rate_max_increase"
            },
            samples_canary: t.requests,
            samples_control: c.requests,
            exposure_met: exposed && has_control,
            breached: evidence.is_some_and(|e| e > max),
        });
    }

    if let Some(k) = cfg.thumbs_down_max_ratio {
        let (dt, dc) = (
            rate(t.thumbs_down, t.feedback),
            rate(c.thumbs_down, c.feedback),
        );
        let exp = exposed && t.feedback >= MIN_FEEDBACK && c.feedback > 0;
        let evidence = if !exp {
            None
        } else if seq {
            lb(
                (t.thumbs_down, t.feedback),
                Some((c.thumbs_down, c.feedback)),
                k,
                0.0,
            )
        } else {
            dt.zip(dc).map(|(a, b)| a - k * b)
        };
        out.push(GuardrailReport {
            name: THUMBS_DOWN,
            value_canary: dt,
            value_control: dc,
            threshold: 0.0,
            evidence,
            test: if seq {
                "LB(d_t − thumbs_down_max_ratio·d_c) > 0"
            } else {
                "d_t − thumbs_down_max_ratio·d_c > 0"
            },
            samples_canary: t.feedback,
            samples_control: c.feedback,
            exposure_met: exp,
            breached: evidence.is_some_and(|e| e > 0.0),
        });
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    pub(crate) fn cfg(mode: GuardrailMode) -> GuardrailsConfig {
        GuardrailsConfig {
            mode,
            window: Duration::from_secs(300),
            check_interval: Duration::from_secs(5),
            error_rate_max: Some(0.02),
            p95_latency_max_ratio: Some(1.5),
            refusal_rate_max_increase: Some(0.02),
            thumbs_down_max_ratio: Some(2.0),
            alpha: 0.05,
            min_exposure: 100,
            catastrophic_error_rate: 0.5,
            catastrophic_min_requests: 20,
        }
    }

    fn counts(requests: u64, errors: u64, refusals: u64) -> CohortCounts {
        CohortCounts {
            requests,
            errors,
            refusals,
            ..CohortCounts::default()
        }
    }

    fn find<'a>(r: &'a [GuardrailReport], name: &str) -> &'a GuardrailReport {
        r.iter().find(|g| g.name == name).unwrap()
    }

    #[test]
    fn clear_refusal_regression_trips_and_aa_does_not() {
        let c = cfg(GuardrailMode::Sequential);
        let bad = WindowCounts {
            control: counts(10_000, 10, 100),
            canary: counts(500, 1, 40),
            latency: None,
        };
        let r = evaluate_guardrails(&c, &bad);
        assert!(find(&r, REFUSAL_RATE).breached);
        assert!(!find(&r, ERROR_RATE).breached);
        let same = WindowCounts {
            control: counts(10_000, 10, 100),
            canary: counts(500, 1, 6),
            latency: None,
        };
        assert!(evaluate_guardrails(&c, &same).iter().all(|g| !g.breached));
    }

    #[test]
    fn exposure_is_required() {
        let c = cfg(GuardrailMode::Sequential);
        let w = WindowCounts {
            control: counts(10_000, 10, 100),
            canary: counts(50, 0, 25),
            latency: None,
        };
        let r = evaluate_guardrails(&c, &w);
        let g = find(&r, REFUSAL_RATE);
        assert!(!g.exposure_met && !g.breached && g.evidence.is_none());
    }

    #[test]
    fn catastrophic_trips_at_once_unless_shared() {
        let c = cfg(GuardrailMode::Sequential);
        let w = WindowCounts {
            control: counts(1_000, 1, 0),
            canary: counts(20, 12, 0),
            latency: None,
        };
        assert!(find(&evaluate_guardrails(&c, &w), CATASTROPHIC).breached);
        let shared = WindowCounts {
            control: counts(1_000, 900, 0),
            canary: counts(20, 19, 0),
            latency: None,
        };
        let r = evaluate_guardrails(&c, &shared);
        assert!(!find(&r, CATASTROPHIC).breached);
        assert!(
            !find(&r, ERROR_RATE).breached,
            "a shared outage is not the candidate's"
        );
    }

    #[test]
    fn latency_tail_and_thumbs() {
        let c = cfg(GuardrailMode::Sequential);
        let w = WindowCounts {
            control: CohortCounts {
                requests: 5_000,
                feedback: 500,
                thumbs_down: 25,
                ..CohortCounts::default()
            },
            canary: CohortCounts {
                requests: 400,
                feedback: 200,
                thumbs_down: 60,
                ..CohortCounts::default()
            },
            latency: Some(LatencyTail {
                control_p95_ms: 900.0,
                threshold_ms: 1350.0,
                control_slow: 50,
                canary_slow: 80,
                canary_total: 400,
                control_total: 5_000,
            }),
        };
        let r = evaluate_guardrails(&c, &w);
        assert!(find(&r, P95_LATENCY).breached);
        assert!(find(&r, THUMBS_DOWN).breached);
        let t = evaluate_guardrails(&cfg(GuardrailMode::Threshold), &w);
        assert!(find(&t, P95_LATENCY).breached && find(&t, THUMBS_DOWN).breached);
    }
}
