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
//! and Wilson's interval): the rates `(p₀, p̃_c)` are the maximum-likelihood rates of both
//! cohorts *under the null* `p_t = k·p_c + margin`
//! ([`rampart_stats::proportion::restricted_rates`], Miettinen & Nurminen 1985), from the
//! smoothed counts `x + ½` of `n + 1`; `p₀` is clamped to `[½/(n_t+1), ½]` and
//! `V = p₀(1−p₀)/n_t + k²·p̃_c(1−p̃_c)/n_c`. Compared with a plug-in variance it does not grow
//! with the very excess it is testing, which is what lets a rare-event regression (1 % → 6 %
//! refusals) trip in about a minute on a 5 % canary. Taking both rates from both cohorts (not
//! the control's from the control alone) matters when the control is small: when a rollout
//! reaches 100 % the window's control shrinks to the last minutes of the previous stage, and a
//! control of 49 feedback events that happened to hold no thumbs-down (0.6 % likely at a 10 %
//! rate) used to look like a precise 1 % and trip the thumbs-down guardrail on identical arms in
//! 1 % of whole rollouts. The continuity correction `½/n_t` and `min_exposure` keep the Poisson
//! skew of small counts from causing false trips. The guarantee is asymptotic (Waudby-Smith et
//! al. 2021); `tests/rollout_sim.rs` measures the false-trip rate per hour and
//! `tests/rollout_whole.rs` over the README's whole example rollout.
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
//! # Custom guardrails (`[[guardrails.custom]]`)
//!
//! Each entry watches one recorded metric (`latency_ms`, `ttft_ms`, `prompt_tokens`,
//! `completion_tokens`, `cost_usd`, `error`, `refusal`) through its per-cohort window moments
//! ([`MetricMoments`]) and reports under its configured name. The tested quantity is
//! `m_t − k·m_c` with `k = 1, margin = max_increase` or `k = max_ratio, margin = 0`; it
//! breaches when `LB(m_t − k·m_c) > margin` with `min_exposure` canary values (and two control
//! values) in the window.
//!
//! - 0/1 metrics (`error`, `refusal`) use the proportion bound above, on the same sequence.
//! - Continuous metrics use [`mean_difference_lower_bound`]: `Δ̂ = m_t − k·m_c`,
//!   `V = s_t²/n_t + k²·s_c²/n_c` (unbiased sample variances, each floored at the variance of
//!   rounding to the metric's resolution, `res²/12`, so a metric constant in the window is
//!   still testable), `LB = Δ̂ − radius(V)`. The sequence's ρ is set so it is tightest at
//!   `2 × min_exposure` canary values of the control's variance, i.e. the tuning is in units of
//!   the control's standard deviation, making it scale-free (ms, tokens and USD alike). That
//!   variance comes from the window's control cohort, typically ≥ 19× the canary's sample, and is
//!   a nuisance parameter: it fixes the units, not where the bound sits.
//!
//! Custom guardrails see live cohorts only: in shadow stages (pairs as cohorts) they have no
//! data and never breach.
//!
//! # Threshold mode (`mode = "threshold"`)
//!
//! The same table with point estimates in place of `LB` (`e_t > error_rate_max` and
//! `e_t > e_c`, `s_t > 0.05`, `r_t − r_c > max_increase`, `d_t > k·d_c`), with the same
//! `min_exposure`. Simple and fast, but every look is a fresh chance of a false trip.

use std::borrow::Cow;

use rampart_stats::proportion::restricted_rates;
use rampart_stats::sequential::ConfidenceSequence;
use serde::Serialize;

mod custom;
use custom::evaluate_custom;

use super::observations::{CohortCounts, LatencyTail, MetricMoments, PairedCounts, WindowCounts};
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
    /// One of the names above, or a custom guardrail's configured name.
    pub name: Cow<'static, str>,
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
    let (est_c, var) = match control {
        Some((xc, nc)) if nc > 0 && xc <= nc => {
            let ncf = nc as f64;
            // Rates at the null boundary from both cohorts' smoothed counts (module docs).
            let smooth = |x: u64, n: f64| (x as f64 + 0.5, n - x as f64 + 0.5);
            let (p0, pc) = restricted_rates(smooth(xt, ntf), smooth(xc, ncf), k, margin).ok()?;
            let p0 = p0.clamp(0.5 / (ntf + 1.0), 0.5);
            let var = p0 * (1.0 - p0) / ntf + k * k * pc * (1.0 - pc) / ncf;
            (k * xc as f64 / ncf, var)
        }
        Some(_) => return None,
        None => {
            let p0 = margin.clamp(0.5 / (ntf + 1.0), 0.5);
            (0.0, p0 * (1.0 - p0) / ntf)
        }
    };
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
            custom: Vec::new(),
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
        + cfg.custom.len()
}

/// The confidence sequence each guardrail uses (module docs); `None` only for an invalid alpha.
pub fn confidence_sequence(cfg: &GuardrailsConfig) -> Option<ConfidenceSequence> {
    let n = (2 * cfg.min_exposure.max(50)) as f64;
    // One-sided use of the two-sided boundary at level 2α' (module docs).
    let level = (2.0 * cfg.alpha).min(0.5);
    ConfidenceSequence::tuned_for(level, n / (TUNE_RATE * (1.0 - TUNE_RATE))).ok()
}

/// Evaluates every configured guardrail (and the catastrophic rule) on one window: one
/// function per guardrail, in report order.
pub fn evaluate_guardrails(cfg: &GuardrailsConfig, w: &WindowCounts) -> Vec<GuardrailReport> {
    let on = Window::new(cfg, w);
    let builtin = [
        Some(catastrophic(&on)),
        cfg.error_rate_max.map(|max| error_rate(&on, max)),
        cfg.p95_latency_max_ratio.map(|_| p95_latency(&on)),
        cfg.refusal_rate_max_increase
            .map(|max| refusal_rate(&on, max)),
        cfg.thumbs_down_max_ratio.map(|k| thumbs_down(&on, k)),
    ];
    let custom = cfg.custom.iter().map(|g| {
        let m = w.custom.iter().find(|m| m.name == g.name);
        let none = MetricMoments::default();
        let (mc, mt) = m.map_or((&none, &none), |m| (&m.control, &m.canary));
        evaluate_custom(cfg, g, mt, mc, on.cs.as_ref())
    });
    builtin.into_iter().flatten().chain(custom).collect()
}

/// One window as every built-in guardrail sees it.
struct Window<'a> {
    cfg: &'a GuardrailsConfig,
    w: &'a WindowCounts,
    cs: Option<ConfidenceSequence>,
    /// `mode = "sequential"` (else fixed).
    seq: bool,
    /// The canary has `min_exposure` requests.
    exposed: bool,
    has_control: bool,
}

impl<'a> Window<'a> {
    fn new(cfg: &'a GuardrailsConfig, w: &'a WindowCounts) -> Window<'a> {
        Window {
            cfg,
            w,
            cs: confidence_sequence(cfg),
            seq: cfg.mode == GuardrailMode::Sequential,
            exposed: w.canary.requests >= cfg.min_exposure.max(1),
            has_control: w.control.requests > 0,
        }
    }

    /// The sequential lower bound (see [`sequential_lower_bound`]).
    fn lb(&self, x: (u64, u64), ctl: Option<(u64, u64)>, k: f64, margin: f64) -> Option<f64> {
        self.cs
            .as_ref()
            .and_then(|cs| sequential_lower_bound(x, ctl, k, margin, cs))
    }

    /// The test's description in the window's mode.
    fn test(&self, sequential: &'static str, fixed: &'static str) -> &'static str {
        if self.seq { sequential } else { fixed }
    }
}

/// Catastrophic: point estimate, at once, both modes.
fn catastrophic(on: &Window<'_>) -> GuardrailReport {
    let (t, c, cfg) = (&on.w.canary, &on.w.control, on.cfg);
    let (et, ec) = (rate(t.errors, t.requests), rate(c.errors, c.requests));
    let cat = cfg.catastrophic_error_rate;
    let cat_exposed = t.requests >= cfg.catastrophic_min_requests.max(1);
    GuardrailReport {
        name: CATASTROPHIC.into(),
        value_canary: et,
        value_control: ec,
        threshold: cat,
        evidence: et,
        test: "e_t ≥ catastrophic_error_rate on ≥ catastrophic_min_requests, e_c below it",
        samples_canary: t.requests,
        samples_control: c.requests,
        exposure_met: cat_exposed,
        breached: cat_exposed && et.is_some_and(|e| e >= cat) && ec.is_none_or(|e| e < cat),
    }
}

/// `error_rate_max`: the canary's error rate above `max` and above the control's.
fn error_rate(on: &Window<'_>, max: f64) -> GuardrailReport {
    let (t, c) = (&on.w.canary, &on.w.control);
    let (et, ec) = (rate(t.errors, t.requests), rate(c.errors, c.requests));
    let (evidence, vs_control) = if !on.exposed {
        (None, None)
    } else if on.seq {
        let abs = on.lb((t.errors, t.requests), None, 0.0, max);
        let diff = if on.has_control {
            on.lb(
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
    GuardrailReport {
        name: ERROR_RATE.into(),
        value_canary: et,
        value_control: ec,
        threshold: max,
        evidence,
        test: on.test(
            "LB(e_t) > error_rate_max and LB(e_t − e_c) > 0",
            "e_t > error_rate_max and e_t > e_c",
        ),
        samples_canary: t.requests,
        samples_control: c.requests,
        exposure_met: on.exposed,
        breached,
    }
}

/// `p95_latency_max_ratio`: the share of canary requests slower than ratio × the control's
/// p95, against [`LATENCY_TAIL_SHARE`].
fn p95_latency(on: &Window<'_>) -> GuardrailReport {
    let tail: Option<&LatencyTail> = on.w.latency.as_ref();
    let (st, sc, nt, nc) = match tail {
        Some(l) => (
            rate(l.canary_slow, l.canary_total),
            rate(l.control_slow, l.control_total),
            l.canary_total,
            l.control_total,
        ),
        None => (None, None, 0, 0),
    };
    let exp = nt >= on.cfg.min_exposure.max(1);
    let evidence = match (exp, tail) {
        (true, Some(l)) if on.seq => on.lb(
            (l.canary_slow, l.canary_total),
            None,
            0.0,
            LATENCY_TAIL_SHARE,
        ),
        (true, Some(_)) => st,
        _ => None,
    };
    GuardrailReport {
        name: P95_LATENCY.into(),
        value_canary: st,
        value_control: sc,
        threshold: LATENCY_TAIL_SHARE,
        evidence,
        test: on.test(
            "LB(share of canary slower than ratio × control p95) > 0.05",
            "share of canary slower than ratio × control p95 > 0.05",
        ),
        samples_canary: nt,
        samples_control: nc,
        exposure_met: exp,
        breached: evidence.is_some_and(|e| e > LATENCY_TAIL_SHARE),
    }
}

/// `refusal_rate_max_increase`: the canary's refusal rate minus the control's above `max`.
fn refusal_rate(on: &Window<'_>, max: f64) -> GuardrailReport {
    let (t, c) = (&on.w.canary, &on.w.control);
    let (rt, rc) = (rate(t.refusals, t.requests), rate(c.refusals, c.requests));
    let evidence = if !on.exposed || !on.has_control {
        None
    } else if on.seq {
        on.lb(
            (t.refusals, t.requests),
            Some((c.refusals, c.requests)),
            1.0,
            max,
        )
    } else {
        rt.zip(rc).map(|(a, b)| a - b)
    };
    GuardrailReport {
        name: REFUSAL_RATE.into(),
        value_canary: rt,
        value_control: rc,
        threshold: max,
        evidence,
        test: on.test(
            "LB(r_t − r_c) > refusal_rate_max_increase",
            "r_t − r_c > refusal_rate_max_increase",
        ),
        samples_canary: t.requests,
        samples_control: c.requests,
        exposure_met: on.exposed && on.has_control,
        breached: evidence.is_some_and(|e| e > max),
    }
}

/// `thumbs_down_max_ratio`: the canary's thumbs-down rate above `k` × the control's.
fn thumbs_down(on: &Window<'_>, k: f64) -> GuardrailReport {
    let (t, c) = (&on.w.canary, &on.w.control);
    let (dt, dc) = (
        rate(t.thumbs_down, t.feedback),
        rate(c.thumbs_down, c.feedback),
    );
    let exp = on.exposed && t.feedback >= MIN_FEEDBACK && c.feedback > 0;
    let evidence = if !exp {
        None
    } else if on.seq {
        on.lb(
            (t.thumbs_down, t.feedback),
            Some((c.thumbs_down, c.feedback)),
            k,
            0.0,
        )
    } else {
        dt.zip(dc).map(|(a, b)| a - k * b)
    };
    GuardrailReport {
        name: THUMBS_DOWN.into(),
        value_canary: dt,
        value_control: dc,
        threshold: 0.0,
        evidence,
        test: on.test(
            "LB(d_t − thumbs_down_max_ratio·d_c) > 0",
            "d_t − thumbs_down_max_ratio·d_c > 0",
        ),
        samples_canary: t.feedback,
        samples_control: c.feedback,
        exposure_met: exp,
        breached: evidence.is_some_and(|e| e > 0.0),
    }
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
            custom: Vec::new(),
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
            custom: Vec::new(),
        };
        let r = evaluate_guardrails(&c, &bad);
        assert!(find(&r, REFUSAL_RATE).breached);
        assert!(!find(&r, ERROR_RATE).breached);
        let same = WindowCounts {
            control: counts(10_000, 10, 100),
            canary: counts(500, 1, 6),
            latency: None,
            custom: Vec::new(),
        };
        assert!(evaluate_guardrails(&c, &same).iter().all(|g| !g.breached));
    }

    #[test]
    fn a_small_control_without_events_is_not_taken_as_precise() {
        // The window 270 s after a rollout reached 100 % (identical arms, 10 % thumbs-down):
        // the control is the previous stage's last 30 s, and its 49 feedback events happen to
        // hold no thumbs-down (0.9⁴⁹ ≈ 0.6 %). With the control's rate taken from the control
        // alone (≈ 1 %), LB(d_t − 2·d_c) was +0.007 and the kill switch tripped.
        let c = cfg(GuardrailMode::Sequential);
        let w = WindowCounts {
            control: CohortCounts {
                requests: 1_118,
                errors: 7,
                refusals: 7,
                feedback: 49,
                thumbs_up: 49,
                thumbs_down: 0,
                distinct_keys: None,
            },
            canary: CohortCounts {
                requests: 13_882,
                errors: 65,
                refusals: 150,
                feedback: 729,
                thumbs_up: 651,
                thumbs_down: 78,
                distinct_keys: None,
            },
            latency: None,
            custom: Vec::new(),
        };
        let g = find(&evaluate_guardrails(&c, &w), THUMBS_DOWN).clone();
        assert!(g.exposure_met && !g.breached, "{g:?}");
        // A canary that really doubles the control's rate (which the control's size leaves
        // room to see) still trips.
        let mut bad = w.clone();
        bad.control.thumbs_down = 20;
        bad.control.feedback = 500;
        bad.canary.thumbs_down = 300;
        assert!(find(&evaluate_guardrails(&c, &bad), THUMBS_DOWN).breached);
    }

    #[test]
    fn exposure_is_required() {
        let c = cfg(GuardrailMode::Sequential);
        let w = WindowCounts {
            control: counts(10_000, 10, 100),
            canary: counts(50, 0, 25),
            latency: None,
            custom: Vec::new(),
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
            custom: Vec::new(),
        };
        assert!(find(&evaluate_guardrails(&c, &w), CATASTROPHIC).breached);
        let shared = WindowCounts {
            control: counts(1_000, 900, 0),
            canary: counts(20, 19, 0),
            latency: None,
            custom: Vec::new(),
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
            custom: Vec::new(),
        };
        let r = evaluate_guardrails(&c, &w);
        assert!(find(&r, P95_LATENCY).breached);
        assert!(find(&r, THUMBS_DOWN).breached);
        let t = evaluate_guardrails(&cfg(GuardrailMode::Threshold), &w);
        assert!(find(&t, P95_LATENCY).breached && find(&t, THUMBS_DOWN).breached);
    }

    use crate::config::{CustomGuardrail, CustomRule, RecordedMetric};
    use crate::rollout::observations::CustomMoments;

    /// Deterministic values with the given mean and a spread of ±`spread` (uniform-ish).
    fn moments(n: u64, mean: f64, spread: f64, seed: u64) -> MetricMoments {
        let mut m = MetricMoments::default();
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            m.push((mean + spread * (2.0 * u - 1.0)).round());
        }
        m
    }

    fn custom_cfg(
        mode: GuardrailMode,
        metric: RecordedMetric,
        rule: CustomRule,
    ) -> GuardrailsConfig {
        GuardrailsConfig {
            custom: vec![CustomGuardrail {
                name: "long_answers".into(),
                metric,
                rule,
            }],
            ..cfg(mode)
        }
    }

    fn window(control: MetricMoments, canary: MetricMoments) -> WindowCounts {
        WindowCounts {
            control: counts(control.n, 0, 0),
            canary: counts(canary.n, 0, 0),
            latency: None,
            custom: vec![CustomMoments {
                name: "long_answers".into(),
                control,
                canary,
            }],
        }
    }

    #[test]
    fn custom_ratio_trips_on_doubled_tokens_once_exposed() {
        let c = custom_cfg(
            GuardrailMode::Sequential,
            RecordedMetric::CompletionTokens,
            CustomRule::MaxRatio(1.5),
        );
        let control = moments(5_000, 60.0, 40.0, 1);
        let short = evaluate_guardrails(&c, &window(control, moments(60, 120.0, 80.0, 2)));
        let g = find(&short, "long_answers");
        assert!(!g.exposure_met && !g.breached && g.evidence.is_none());
        let r = evaluate_guardrails(&c, &window(control, moments(300, 120.0, 80.0, 2)));
        let g = find(&r, "long_answers");
        assert!(g.exposure_met && g.breached, "{g:?}");
        assert_eq!(g.threshold, 0.0);
        assert!((g.value_canary.unwrap() / g.value_control.unwrap() - 2.0).abs() < 0.1);
        assert!(!find(&r, REFUSAL_RATE).breached);
    }

    #[test]
    fn custom_aa_does_not_trip() {
        for (rule, seed) in [
            (CustomRule::MaxRatio(1.5), 3),
            (CustomRule::MaxIncrease(5.0), 4),
        ] {
            let c = custom_cfg(
                GuardrailMode::Sequential,
                RecordedMetric::CompletionTokens,
                rule,
            );
            for n in [100, 300, 1_000, 5_000] {
                let w = window(
                    moments(20_000, 60.0, 40.0, seed),
                    moments(n, 60.0, 40.0, seed + n),
                );
                let r = evaluate_guardrails(&c, &w);
                let g = find(&r, "long_answers");
                assert!(g.exposure_met && !g.breached, "{rule:?} n={n}: {g:?}");
            }
        }
    }

    #[test]
    fn custom_increase_and_threshold_mode() {
        // +30 tokens over a max_increase of 20: trips in both modes.
        let w = window(moments(5_000, 60.0, 10.0, 5), moments(400, 90.0, 10.0, 6));
        for mode in [GuardrailMode::Sequential, GuardrailMode::Threshold] {
            let c = custom_cfg(
                mode,
                RecordedMetric::CompletionTokens,
                CustomRule::MaxIncrease(20.0),
            );
            let g = evaluate_guardrails(&c, &w)
                .into_iter()
                .find(|g| g.name == "long_answers")
                .unwrap();
            assert!(g.breached, "{mode:?}: {g:?}");
            assert_eq!(g.threshold, 20.0);
        }
        // +10 tokens: the point estimate is below the margin in threshold mode.
        let w = window(moments(5_000, 60.0, 10.0, 5), moments(400, 70.0, 10.0, 6));
        let c = custom_cfg(
            GuardrailMode::Threshold,
            RecordedMetric::CompletionTokens,
            CustomRule::MaxIncrease(20.0),
        );
        let g = evaluate_guardrails(&c, &w)
            .into_iter()
            .find(|g| g.name == "long_answers")
            .unwrap();
        assert!(!g.breached && (g.evidence.unwrap() - 10.0).abs() < 1.0);
    }

    #[test]
    fn custom_constant_metric_is_still_testable() {
        // A longer system prompt: every canary request has 40 more prompt tokens.
        let (mut c_m, mut t_m) = (MetricMoments::default(), MetricMoments::default());
        (0..2_000).for_each(|_| c_m.push(100.0));
        (0..200).for_each(|_| t_m.push(140.0));
        let c = custom_cfg(
            GuardrailMode::Sequential,
            RecordedMetric::PromptTokens,
            CustomRule::MaxRatio(1.2),
        );
        assert!(find(&evaluate_guardrails(&c, &window(c_m, t_m)), "long_answers").breached);
        let c = custom_cfg(
            GuardrailMode::Sequential,
            RecordedMetric::PromptTokens,
            CustomRule::MaxRatio(1.5),
        );
        assert!(!find(&evaluate_guardrails(&c, &window(c_m, t_m)), "long_answers").breached);
    }

    #[test]
    fn custom_binary_metric_and_missing_data() {
        let c = custom_cfg(
            GuardrailMode::Sequential,
            RecordedMetric::Refusal,
            CustomRule::MaxIncrease(0.02),
        );
        let bin = |n: u64, ones: u64| {
            let mut m = MetricMoments::default();
            (0..n).for_each(|i| m.push(if i < ones { 1.0 } else { 0.0 }));
            m
        };
        assert!(
            find(
                &evaluate_guardrails(&c, &window(bin(10_000, 100), bin(500, 40))),
                "long_answers"
            )
            .breached
        );
        assert!(
            !find(
                &evaluate_guardrails(&c, &window(bin(10_000, 100), bin(500, 6))),
                "long_answers"
            )
            .breached
        );
        // No moments for the guardrail (e.g. a shadow stage): reported, never breached.
        let mut w = window(bin(10_000, 100), bin(500, 40));
        w.custom.clear();
        let g = find(&evaluate_guardrails(&c, &w), "long_answers").clone();
        assert!(!g.breached && !g.exposure_met && g.samples_canary == 0);
        assert_eq!(configured_tests(&c), 5);
    }
}
