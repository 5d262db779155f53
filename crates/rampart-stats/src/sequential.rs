//! Sequential, anytime-valid inference: results that stay valid no matter how often they
//! are looked at, so the kill switch can check every second without inflating its
//! false-alarm rate.
//!
//! Two tools built on the same normal-mixture martingale:
//!
//! * **mSPRT** (Johari, Koomen, Pekelis & Walsh 2017, *Peeking at A/B Tests*): the mixture
//!   likelihood ratio `Λ_n` of H0: θ = θ₀ against a `N(θ₀, τ²)` mixture of alternatives, and
//!   the always-valid p-value `p_n = min(p_{n−1}, 1/Λ_n)`.
//! * **Confidence sequences** for a difference `Δ = μ_t − k·μ_c` (Robbins 1970, *Statistical
//!   methods related to the law of the iterated logarithm*; Howard, Ramdas, McAuliffe & Sekhon
//!   2021, *Time-uniform, nonparametric, nonasymptotic confidence sequences*, §3 normal
//!   mixture). With estimator `Δ̂` of variance `V` and information `I = 1/V`, the score
//!   `S = I·(Δ̂ − Δ)` is a Brownian motion in information time `I`, so
//!   `M = √(ρ/(I+ρ))·exp(S²/(2(I+ρ)))` is a nonnegative martingale and, by Ville's inequality,
//!   `P(∃ I: |S| ≥ √((I+ρ)·ln((I+ρ)/(ρα²)))) ≤ α`. Hence the radius
//!   `r = √((I+ρ)·ln((I+ρ)/(ρα²))) / I` and `Δ ≥ Δ̂ − r` holds for all times simultaneously
//!   with probability ≥ 1 − α. (We use the two-sided boundary for the one-sided bound: valid,
//!   conservative by up to a factor 2 in α.) The CS is the dual of the mSPRT with `ρ = 1/τ²`.
//!
//! Assumptions: observations independent; the allocation of units to arms does not depend on
//! outcomes. The guarantee is exact for Gaussian outcomes with known variances; with the
//! plug-in variances used here (sample variances, Laplace-smoothed rates) it is asymptotic
//! (Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas 2021, *Time-uniform central limit theory and
//! asymptotic confidence sequences*). The simulation test in this module checks the
//! false-alarm rate of a guardrail that looks after every observation.

use crate::proportion::Counts;
use crate::{Result, StatsError, check_alpha};

/// Largest `ln Λ` whose exponential is finite in f64.
const LN_MAX: f64 = 709.782_712_893_384;

/// One interim look of an mSPRT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MsprtLook {
    /// Observations per arm so far.
    pub n: u64,
    /// `D = mean_treatment − mean_control`.
    pub mean_diff: f64,
    /// `v = σ_c² + σ_t²`, variance of one treatment-minus-control pair (> 0). For rates,
    /// `r_c(1−r_c) + r_t(1−r_t)`.
    pub pair_variance: f64,
}

impl MsprtLook {
    /// A look for a proportion metric with `n` units per arm:
    /// `D = x_t/n − x_c/n`, `v = r_c(1−r_c) + r_t(1−r_t)`.
    pub fn from_proportions(n: u64, control_successes: u64, treatment_successes: u64) -> Self {
        let nf = n as f64;
        let (rc, rt) = (
            control_successes as f64 / nf,
            treatment_successes as f64 / nf,
        );
        MsprtLook {
            n,
            mean_diff: rt - rc,
            pair_variance: rc * (1.0 - rc) + rt * (1.0 - rt),
        }
    }
}

/// The mSPRT at one look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MsprtPoint {
    /// `ln Λ_n`.
    pub log_lambda: f64,
    /// `min(1, 1/Λ_n)`.
    pub p_value_instant: f64,
    /// Always-valid p-value: running minimum of `p_value_instant` (never increases).
    pub p_value: f64,
}

impl MsprtPoint {
    /// `Λ_n`, or `None` when it overflows f64 (`ln Λ > 709.78`).
    pub fn lambda(&self) -> Option<f64> {
        if self.log_lambda > LN_MAX {
            None
        } else {
            Some(self.log_lambda.exp())
        }
    }
}

/// `ln Λ_n` of the normal-mixture SPRT.
///
/// Formula (Johari et al. 2017, two-stream normal case with pair variance v):
/// `Λ_n = √(v/(v + nτ²)) · exp(n²τ²(D − θ₀)² / (2v(v + nτ²)))`, computed in log space.
/// Errors: `v ≤ 0`, `τ² ≤ 0`, `n = 0` or non-finite inputs.
pub fn msprt_log_lambda(look: &MsprtLook, tau2: f64, theta0: f64) -> Result<f64> {
    let v = look.pair_variance;
    if !(v > 0.0 && v.is_finite()) {
        return Err(StatsError::NotComputable("pair variance must be > 0"));
    }
    if !(tau2 > 0.0 && tau2.is_finite()) {
        return Err(StatsError::InvalidInput("tau2 must be finite and > 0"));
    }
    if look.n == 0 || !look.mean_diff.is_finite() || !theta0.is_finite() {
        return Err(StatsError::InvalidInput(
            "n ≥ 1 and finite differences required",
        ));
    }
    let n = look.n as f64;
    let d = look.mean_diff - theta0;
    let denom = v + n * tau2;
    Ok(0.5 * (v / denom).ln() + n * n * tau2 * d * d / (2.0 * v * denom))
}

/// Incremental mSPRT: feed looks in time order; keeps the running always-valid p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Msprt {
    tau2: f64,
    theta0: f64,
    p_value: f64,
    last_n: u64,
}

impl Msprt {
    /// A new test of H0: Δ = `theta0` with mixing variance `tau2` (> 0).
    pub fn new(tau2: f64, theta0: f64) -> Result<Self> {
        if !(tau2 > 0.0 && tau2.is_finite() && theta0.is_finite()) {
            return Err(StatsError::InvalidInput(
                "tau2 > 0 and finite theta0 required",
            ));
        }
        Ok(Msprt {
            tau2,
            theta0,
            p_value: 1.0,
            last_n: 0,
        })
    }

    /// The always-valid p-value so far (1 before any look).
    pub fn p_value(&self) -> f64 {
        self.p_value
    }

    /// Records a look (its `n` must exceed the previous look's) and returns the mSPRT there.
    pub fn observe(&mut self, look: &MsprtLook) -> Result<MsprtPoint> {
        if look.n <= self.last_n {
            return Err(StatsError::InvalidInput(
                "looks must have strictly increasing n",
            ));
        }
        let log_lambda = msprt_log_lambda(look, self.tau2, self.theta0)?;
        let p_value_instant = (-log_lambda).exp().min(1.0);
        self.p_value = self.p_value.min(p_value_instant);
        self.last_n = look.n;
        Ok(MsprtPoint {
            log_lambda,
            p_value_instant,
            p_value: self.p_value,
        })
    }
}

/// mSPRT over a whole sequence of looks (see [`Msprt`]).
pub fn msprt(looks: &[MsprtLook], tau2: f64, theta0: f64) -> Result<Vec<MsprtPoint>> {
    let mut test = Msprt::new(tau2, theta0)?;
    looks.iter().map(|l| test.observe(l)).collect()
}

/// A normal-mixture confidence sequence: error level `alpha` and mixture precision `rho`
/// (in information units, i.e. 1/variance of the estimator).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceSequence {
    alpha: f64,
    rho: f64,
}

impl ConfidenceSequence {
    /// A CS with explicit `rho > 0` (equivalent to an mSPRT with `τ² = 1/ρ`).
    pub fn new(alpha: f64, rho: f64) -> Result<Self> {
        check_alpha(alpha)?;
        if !(rho > 0.0 && rho.is_finite()) {
            return Err(StatsError::InvalidInput("rho must be finite and > 0"));
        }
        Ok(ConfidenceSequence { alpha, rho })
    }

    /// A CS whose radius is smallest when the information `1/Var(Δ̂)` reaches `information`
    /// (e.g. the planned sample size divided by the pair variance).
    ///
    /// Minimizing `(I+ρ)·ln((I+ρ)/(ρα²))` over ρ at `I = m` gives `ρ = m/u` with
    /// `u = ln((1+u)/α²)`, solved by fixed-point iteration from `u = 2 ln(1/α)`
    /// (Howard et al. 2021 give the one-step value `2ln(1/α) + ln(1 + 2ln(1/α))`).
    pub fn tuned_for(alpha: f64, information: f64) -> Result<Self> {
        check_alpha(alpha)?;
        if !(information > 0.0 && information.is_finite()) {
            return Err(StatsError::InvalidInput(
                "information must be finite and > 0",
            ));
        }
        // A contraction (derivative 1/(1+u) < 1): about one digit per step; stop once settled.
        let mut u = -2.0 * alpha.ln();
        for _ in 0..50 {
            let next = ((1.0 + u) / (alpha * alpha)).ln();
            let settled = (next - u).abs() <= 1e-15 * next;
            u = next;
            if settled {
                break;
            }
        }
        Self::new(alpha, information / u)
    }

    /// The error level α.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The mixture precision ρ.
    pub fn rho(&self) -> f64 {
        self.rho
    }

    /// Radius of the sequence for an estimator with variance `var`:
    /// `√((I+ρ)·ln((I+ρ)/(ρα²)))/I`, `I = 1/var`. Errors when `var` is not finite and > 0.
    pub fn radius(&self, var: f64) -> Result<f64> {
        if !(var > 0.0 && var.is_finite()) {
            return Err(StatsError::NotComputable("estimator variance must be > 0"));
        }
        let info = 1.0 / var;
        let ir = info + self.rho;
        Ok((ir * (ir / (self.rho * self.alpha * self.alpha)).ln()).sqrt() / info)
    }

    /// `true` iff `estimate − radius(var) > margin`, decided without a square root or a
    /// division by the information (for checks after every observation).
    pub fn lower_bound_exceeds(&self, estimate: f64, var: f64, margin: f64) -> bool {
        if !(var > 0.0 && var.is_finite() && estimate.is_finite()) {
            return false;
        }
        let gap = estimate - margin;
        if gap <= 0.0 {
            return false;
        }
        let info = 1.0 / var;
        let ir = info + self.rho;
        let s = info * gap;
        s * s > ir * (ir / (self.rho * self.alpha * self.alpha)).ln()
    }
}

/// A guardrail decision: the anytime-valid lower confidence bound of
/// `Δ = μ_treatment − k·μ_control` and whether it exceeds the margin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardrailCheck {
    /// `Δ̂ = m_t − k·m_c`.
    pub estimate: f64,
    /// `Δ̂ − radius`: with probability ≥ 1 − α, Δ ≥ this at every time simultaneously.
    pub lower_bound: f64,
    /// The margin the bound is compared with.
    pub margin: f64,
    /// `lower_bound > margin`: the guardrail has tripped.
    pub exceeds: bool,
}

/// Per-arm summary of a continuous metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanSummary {
    /// Sample mean.
    pub mean: f64,
    /// Sample variance of one observation.
    pub variance: f64,
    /// Number of observations.
    pub n: u64,
}

fn finish_check(
    cs: &ConfidenceSequence,
    estimate: f64,
    var: f64,
    margin: f64,
) -> Result<GuardrailCheck> {
    if !margin.is_finite() || !estimate.is_finite() {
        return Err(StatsError::InvalidInput(
            "margin and estimate must be finite",
        ));
    }
    let lower_bound = estimate - cs.radius(var)?;
    Ok(GuardrailCheck {
        estimate,
        lower_bound,
        margin,
        exceeds: lower_bound > margin,
    })
}

fn check_factor(k: f64) -> Result<()> {
    if k.is_finite() && k >= 0.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidInput("factor k must be finite and ≥ 0"))
    }
}

/// Laplace-smoothed Bernoulli variance `p̃(1 − p̃)`, `p̃ = (x + 1)/(n + 2)`: never 0, so a
/// guardrail cannot trip on the first few observations because an arm looks constant.
fn smoothed_bernoulli_variance(c: Counts) -> f64 {
    let p = (c.successes as f64 + 1.0) / (c.total as f64 + 2.0);
    p * (1.0 - p)
}

/// Anytime-valid lower bound of `rate_t − k·rate_c` for proportions (e.g. error rates).
///
/// `Δ̂ = x_t/n_t − k·x_c/n_c`, `V = ṽ_t/n_t + k²·ṽ_c/n_c` with Laplace-smoothed Bernoulli
/// variances `ṽ = p̃(1−p̃)`, `p̃ = (x+1)/(n+2)`; bound `Δ̂ − cs.radius(V)` (module docs).
/// "Canary rate exceeds control by more than 2 points" is `k = 1, margin = 0.02`;
/// "canary rate exceeds 1.5 × control" is `k = 1.5, margin = 0`.
/// Errors: an arm with no trials, successes > total, k < 0.
pub fn proportion_difference_lower_bound(
    treatment: Counts,
    control: Counts,
    k: f64,
    margin: f64,
    cs: &ConfidenceSequence,
) -> Result<GuardrailCheck> {
    check_factor(k)?;
    if treatment.total == 0 || control.total == 0 {
        return Err(StatsError::NotComputable("an arm has no observations"));
    }
    if treatment.successes > treatment.total || control.successes > control.total {
        return Err(StatsError::InvalidInput("successes must not exceed total"));
    }
    let (nt, nc) = (treatment.total as f64, control.total as f64);
    let estimate = treatment.successes as f64 / nt - k * control.successes as f64 / nc;
    let var = smoothed_bernoulli_variance(treatment) / nt
        + k * k * smoothed_bernoulli_variance(control) / nc;
    finish_check(cs, estimate, var, margin)
}

/// Anytime-valid lower bound of `mean_t − k·mean_c` for a continuous metric (e.g. latency).
///
/// `Δ̂ = m_t − k·m_c`, `V = s_t²/n_t + k²·s_c²/n_c`; bound `Δ̂ − cs.radius(V)`.
/// Errors: an arm with no observations, negative or non-finite variance, or `V = 0`.
pub fn mean_difference_lower_bound(
    treatment: MeanSummary,
    control: MeanSummary,
    k: f64,
    margin: f64,
    cs: &ConfidenceSequence,
) -> Result<GuardrailCheck> {
    check_factor(k)?;
    if treatment.n == 0 || control.n == 0 {
        return Err(StatsError::NotComputable("an arm has no observations"));
    }
    let ok = |v: f64| v >= 0.0 && v.is_finite();
    if !(ok(treatment.variance) && ok(control.variance)) {
        return Err(StatsError::InvalidInput("variances must be finite and ≥ 0"));
    }
    let estimate = treatment.mean - k * control.mean;
    let var = treatment.variance / treatment.n as f64 + k * k * control.variance / control.n as f64;
    finish_check(cs, estimate, var, margin)
}

/// O(1)-per-observation guardrail on two proportions, for checking after every event.
///
/// Tracks per-arm counts and answers "is `rate_t − k·rate_c > margin` with anytime-valid
/// confidence 1 − α?" exactly like [`proportion_difference_lower_bound`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProportionGuardrail {
    /// Treatment (canary) counts so far.
    pub treatment: Counts,
    /// Control counts so far.
    pub control: Counts,
    /// The ratio factor k (1 for a plain difference).
    pub k: f64,
    /// The margin.
    pub margin: f64,
    /// The confidence sequence.
    pub cs: ConfidenceSequence,
}

impl ProportionGuardrail {
    /// A guardrail with no observations yet.
    pub fn new(k: f64, margin: f64, cs: ConfidenceSequence) -> Result<Self> {
        check_factor(k)?;
        if !margin.is_finite() {
            return Err(StatsError::InvalidInput("margin must be finite"));
        }
        Ok(ProportionGuardrail {
            treatment: Counts::new(0, 0),
            control: Counts::new(0, 0),
            k,
            margin,
            cs,
        })
    }

    /// Records one treatment observation.
    pub fn record_treatment(&mut self, success: bool) {
        self.treatment.total += 1;
        self.treatment.successes += u64::from(success);
    }

    /// Records one control observation.
    pub fn record_control(&mut self, success: bool) {
        self.control.total += 1;
        self.control.successes += u64::from(success);
    }

    /// Whether the guardrail trips now (false while an arm is empty). O(1).
    pub fn tripped(&self) -> bool {
        let (t, c) = (self.treatment, self.control);
        if t.total == 0 || c.total == 0 {
            return false;
        }
        let (nt, nc) = (t.total as f64, c.total as f64);
        let estimate = t.successes as f64 / nt - self.k * c.successes as f64 / nc;
        let var = smoothed_bernoulli_variance(t) / nt
            + self.k * self.k * smoothed_bernoulli_variance(c) / nc;
        self.cs.lower_bound_exceeds(estimate, var, self.margin)
    }

    /// The full check (estimate, bound, decision).
    pub fn check(&self) -> Result<GuardrailCheck> {
        proportion_difference_lower_bound(
            self.treatment,
            self.control,
            self.k,
            self.margin,
            &self.cs,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn msprt_zero_difference() {
        let looks = [
            MsprtLook {
                n: 1,
                mean_diff: 0.0,
                pair_variance: 2.0,
            },
            MsprtLook {
                n: 2,
                mean_diff: 0.0,
                pair_variance: 2.0,
            },
        ];
        let pts = msprt(&looks, 1.0, 0.0).unwrap();
        assert!((pts[0].log_lambda + 0.202_732_554_054_082_22).abs() < 1e-15);
        assert_eq!(pts[1].p_value, 1.0);
        let mut t = Msprt::new(1.0, 0.0).unwrap();
        t.observe(&looks[1]).unwrap();
        assert!(t.observe(&looks[0]).is_err());
    }

    #[test]
    fn cs_is_dual_of_msprt() {
        // Δ̂ on the boundary ⇔ Λ = 1/α with τ² = 1/ρ, v = pair variance, n per arm.
        let (n, v, alpha, rho) = (400u64, 0.5, 0.05, 30.0);
        let cs = ConfidenceSequence::new(alpha, rho).unwrap();
        let var = v / n as f64;
        let r = cs.radius(var).unwrap();
        let look = MsprtLook {
            n,
            mean_diff: r,
            pair_variance: v,
        };
        let ll = msprt_log_lambda(&look, 1.0 / rho, 0.0).unwrap();
        assert!((ll - (1.0 / alpha).ln()).abs() < 1e-9, "{ll}");
    }

    #[test]
    fn tuned_rho_minimizes_radius() {
        let info = 10_000.0;
        let best = ConfidenceSequence::tuned_for(0.05, info).unwrap();
        let r0 = best.radius(1.0 / info).unwrap();
        for f in [0.5, 0.8, 1.25, 2.0] {
            let other = ConfidenceSequence::new(0.05, best.rho() * f).unwrap();
            assert!(other.radius(1.0 / info).unwrap() >= r0);
        }
    }

    #[test]
    fn fast_check_agrees_with_full_check() {
        let cs = ConfidenceSequence::tuned_for(0.05, 1000.0).unwrap();
        let mut g = ProportionGuardrail::new(1.0, 0.01, cs).unwrap();
        for i in 0..5000u64 {
            g.record_treatment(i % 7 == 0);
            g.record_control(i % 13 == 0);
            if i % 97 == 0 {
                assert_eq!(g.tripped(), g.check().unwrap().exceeds, "at {i}");
            }
        }
        assert!(g.tripped());
    }

    #[test]
    fn ratio_form() {
        let cs = ConfidenceSequence::new(0.05, 100.0).unwrap();
        // canary 6% vs control 2% on 20k each: 6% > 1.5 × 2% clearly
        let r = proportion_difference_lower_bound(
            Counts::new(1200, 20_000),
            Counts::new(400, 20_000),
            1.5,
            0.0,
            &cs,
        )
        .unwrap();
        assert!(r.exceeds && r.lower_bound < r.estimate);
        let m = mean_difference_lower_bound(
            MeanSummary {
                mean: 1.0,
                variance: 0.0,
                n: 10,
            },
            MeanSummary {
                mean: 1.0,
                variance: 0.0,
                n: 10,
            },
            1.0,
            0.0,
            &cs,
        );
        assert!(m.is_err());
    }
}
