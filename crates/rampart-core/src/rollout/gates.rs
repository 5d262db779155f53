//! Gates: what a stage must show before the controller advances it. A gate never passes
//! because a timer ran out; `min_duration` is one gate among the others.
//!
//! Canary stages (`percent > 0`):
//!
//! * `min_samples`: both cohorts have, since the stage started, at least the per-arm sample size
//!   that detects a change of `gates.mde` in each guarded rate (error rate and refusal rate)
//!   with the stage's `alpha` and `power`: [`rampart_stats::power::sample_size_simple`]
//!   (two-sided, 1:1), `n = (z_{1−α/2} + z_power)²·(p(1−p) + (p+mde)(1−p−mde))/mde²`
//!   (Chow, Shao & Wang 2008, §4.2), with `p` the control's smoothed stage rate
//!   `(x+½)/(n+1)` clamped to `[RATE_FLOOR, ½]` (a rate near 0 is poorly known early on and
//!   would otherwise understate `n`). The largest `n` over the rates is required.
//! * `sample_ratio`: Pearson χ² of the stage's control/canary counts against the planned split
//!   `(100 − percent) : percent` ([`rampart_stats::srm::srm_chisquare`]); distinct routing keys
//!   are used when the gateway reports them for both cohorts (users are the randomised unit),
//!   requests otherwise. It fails at `p < SRM_P_MIN` (0.001). Because a p-value checked every
//!   tick would be a multiple-testing trap, the state machine acts on it only when the stage is
//!   otherwise ready to advance or has reached `max_duration` (then it holds for review).
//!   Skipped when a tenant cap is below the stage's percent (the split is no longer planned).
//! * `guardrails`: no guardrail breached in this tick's window.
//! * `min_duration`: the stage has run at least its `min_duration`.
//!
//! Shadow stages (`percent = 0`, `shadow_percent > 0`): `min_pairs` (the same sample size,
//! counted in completed pairs, rates from the baseline side), `guardrails` on the pairs,
//! `min_duration`, and, when the comparison engine has filled [`ShadowGateInput`]:
//! `shadow_equivalence` (`equivalence_ci_low ≥ min_equivalence`; a missing bound fails, so
//! the gateway's controller, which always fills the input on shadow stages, holds until the
//! engine has seen the stage's pairs), `shadow_refusals` (no
//! significant refusal increase; a significant one is a *conflicting signal* and holds), and
//! `shadow_win_rate` (`win_rate_ci_low ≥ min_win_rate`, when configured).
//!
//! [`ShadowGateInput`]: super::ShadowGateInput

use rampart_stats::power::{Sides, design_quantiles, sample_size_simple_z};
use rampart_stats::srm::srm_chisquare;
use serde::Serialize;

use super::observations::{CohortCounts, Observations, PairedCounts, ShadowGateInput};
use crate::config::{GatesConfig, RolloutConfig, StageConfig};

/// Lowest control rate the power calculation assumes.
pub const RATE_FLOOR: f64 = 0.01;
/// SRM p-value below which assignment is considered broken.
pub const SRM_P_MIN: f64 = 0.001;

/// One gate's evaluation, for status pages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    pub name: &'static str,
    pub passed: bool,
    /// The measured value (e.g. SRM p-value, equivalence lower bound, elapsed seconds).
    pub value: Option<f64>,
    /// What the value is compared with.
    pub threshold: Option<f64>,
    /// What the gate checks.
    pub evidence: &'static str,
    /// Samples counted by the gate (the smaller cohort, or pairs).
    pub samples: u64,
    /// Samples the gate needs, when it counts samples.
    pub samples_needed: Option<u64>,
    /// Seconds until the gate should pass at the current traffic, when it can be estimated.
    pub eta_seconds: Option<f64>,
}

/// All gates of one tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateOutcome {
    pub reports: Vec<GateReport>,
    /// Every gate passed.
    pub all_passed: bool,
    /// The SRM p-value when the SRM gate failed.
    pub srm_failed: Option<f64>,
    /// A conflicting signal that calls for a human.
    pub conflict: Option<String>,
}

impl GateOutcome {
    /// Names of the gates that have not passed.
    pub fn pending(&self) -> Vec<String> {
        self.reports
            .iter()
            .filter(|g| !g.passed)
            .map(|g| g.name.to_string())
            .collect()
    }
}

/// The per-arm sample size that detects `gates.mde` in every one of `control_rates`
/// (module docs). `None` only when the configuration makes it incomputable.
pub fn required_samples(gates: &GatesConfig, control_rates: &[f64]) -> Option<u64> {
    let z = design_quantiles(gates.alpha, gates.power, Sides::TwoSided).ok()?;
    let mut need: Option<u64> = None;
    for &p in control_rates {
        let p = if p.is_finite() { p } else { RATE_FLOOR };
        // Symmetric in p ↔ 1−p; keep p in [floor, ½] so p + mde stays inside (0, 1).
        let p = p.min(1.0 - p).clamp(RATE_FLOOR, 0.5);
        let mde = gates.mde.min(0.99 - p).max(1e-6);
        let n = sample_size_simple_z(p, mde, z, 1.0).ok()?.n_control;
        need = Some(need.map_or(n, |m| m.max(n)));
    }
    need
}

fn smoothed(x: u64, n: u64) -> f64 {
    (x as f64 + 0.5) / (n as f64 + 1.0)
}

/// The guarded rates of a control cohort (error, refusal), smoothed.
pub fn control_rates(c: &CohortCounts) -> [f64; 2] {
    [
        smoothed(c.errors, c.requests),
        smoothed(c.refusals, c.requests),
    ]
}

fn eta(missing: u64, have: u64, elapsed_s: f64) -> Option<f64> {
    if missing == 0 {
        return Some(0.0);
    }
    (have > 0 && elapsed_s > 0.0).then(|| missing as f64 * elapsed_s / have as f64)
}

/// Whether a stage is a shadow stage (no canary traffic, some mirrored traffic).
pub fn is_shadow(stage: &StageConfig) -> bool {
    stage.percent <= 0.0 && stage.shadow_percent > 0.0
}

/// Evaluates the gates of `stage` with the tick's observations; `elapsed_ms` is the time since
/// the stage epoch and `guardrail_breach` whether this tick's guardrails breached. One function
/// per gate (or family of gates), in report order.
pub fn evaluate_gates(
    cfg: &RolloutConfig,
    stage: &StageConfig,
    obs: &Observations,
    elapsed_ms: i64,
    stale: bool,
    guardrail_breach: bool,
) -> GateOutcome {
    let elapsed_s = (elapsed_ms.max(0) as f64) / 1000.0;
    let mut reports = Vec::with_capacity(6);
    let (mut srm_failed, mut conflict) = (None, None);
    if stale {
        reports.push(stale_counters());
    }
    if is_shadow(stage) {
        reports.push(min_pairs(stage, obs, elapsed_s));
        conflict = shadow_engine(stage, obs, &mut reports);
    } else {
        reports.push(min_samples(stage, obs, elapsed_s));
        if let Some(report) = sample_ratio(cfg, stage, obs) {
            if !report.passed {
                srm_failed = report.value;
            }
            reports.push(report);
        }
    }
    reports.push(guardrails(obs, guardrail_breach));
    reports.push(min_duration(stage, elapsed_s));
    let all_passed = reports.iter().all(|g| g.passed);
    GateOutcome {
        reports,
        all_passed,
        srm_failed,
        conflict,
    }
}

/// The gates of shadow stage `stage` that need neither a clock nor a live window (offline
/// replay, [`crate::replay`]): `min_pairs` over `paired` and the comparison engine's gates over
/// `input`, exactly as [`evaluate_gates`] computes them on a shadow stage.
pub fn evidence_gates(
    stage: &StageConfig,
    paired: PairedCounts,
    input: ShadowGateInput,
) -> GateOutcome {
    let obs = Observations {
        paired_stage: Some(paired),
        shadow_gate: Some(input),
        ..Observations::default()
    };
    let mut reports = vec![min_pairs(stage, &obs, 0.0)];
    let conflict = shadow_engine(stage, &obs, &mut reports);
    GateOutcome {
        all_passed: reports.iter().all(|g| g.passed),
        reports,
        srm_failed: None,
        conflict,
    }
}

/// The stage's counters are an earlier stage's: hold until fresh ones come.
fn stale_counters() -> GateReport {
    GateReport {
        name: "stage_counters",
        passed: false,
        value: None,
        threshold: None,
        evidence: "stage counters belong to an earlier stage; waiting for fresh ones",
        samples: 0,
        samples_needed: None,
        eta_seconds: None,
    }
}

/// Shadow stage: enough pairs for the gates' sample size.
fn min_pairs(stage: &StageConfig, obs: &Observations, elapsed_s: f64) -> GateReport {
    let paired = obs.paired_stage.unwrap_or_default();
    let base = CohortCounts {
        requests: paired.pairs,
        errors: paired.baseline_errors,
        refusals: paired.baseline_refusals,
        ..CohortCounts::default()
    };
    let needed = required_samples(&stage.gates, &control_rates(&base));
    let missing = needed.map_or(0, |n| n.saturating_sub(paired.pairs));
    GateReport {
        name: "min_pairs",
        passed: needed.is_some() && missing == 0,
        value: Some(paired.pairs as f64),
        threshold: needed.map(|n| n as f64),
        evidence: "pairs ≥ sample size for gates.mde at gates.alpha and gates.power",
        samples: paired.pairs,
        samples_needed: needed,
        eta_seconds: eta(missing, paired.pairs, elapsed_s),
    }
}

/// Shadow stage: the comparison engine's verdict (equivalence, refusals, judge win rate), when
/// it has one; returns the conflict to report when it finds a significant refusal increase.
fn shadow_engine(
    stage: &StageConfig,
    obs: &Observations,
    reports: &mut Vec<GateReport>,
) -> Option<String> {
    let sg = obs.shadow_gate?;
    let gates = &stage.gates;
    let pairs = obs.paired_stage.unwrap_or_default().pairs;
    let report = |name, passed, value, threshold, evidence| GateReport {
        name,
        passed,
        value,
        threshold,
        evidence,
        samples: pairs,
        samples_needed: None,
        eta_seconds: None,
    };
    // A verdict without an equivalence bound (no comparable pair yet, or the engine has not
    // looked at this stage's pairs) holds: there is no evidence to advance on.
    let low = sg.equivalence_ci_low;
    reports.push(report(
        "shadow_equivalence",
        low.is_some_and(|l| l >= gates.min_equivalence),
        low,
        Some(gates.min_equivalence),
        "lower bound of the equivalent-answer rate",
    ));
    let mut conflict = None;
    if let Some(sig) = sg.refusal_increase_significant {
        if sig {
            conflict = Some(
                "the comparison engine finds a significant refusal increase on the pairs"
                    .to_string(),
            );
        }
        reports.push(report(
            "shadow_refusals",
            !sig,
            Some(f64::from(u8::from(sig))),
            Some(0.0),
            "significant refusal increase on the pairs",
        ));
    }
    if let Some(min) = gates.min_win_rate {
        let low = sg.win_rate_ci_low;
        reports.push(report(
            "shadow_win_rate",
            low.is_some_and(|l| l >= min),
            low,
            Some(min),
            "lower bound of the judge win rate",
        ));
    }
    conflict
}

/// Canary stage: each cohort has the gates' sample size.
fn min_samples(stage: &StageConfig, obs: &Observations, elapsed_s: f64) -> GateReport {
    let (c, t) = (&obs.stage_control, &obs.stage_canary);
    let needed = required_samples(&stage.gates, &control_rates(c));
    let have = c.requests.min(t.requests);
    let (miss_c, miss_t) = match needed {
        Some(n) => (n.saturating_sub(c.requests), n.saturating_sub(t.requests)),
        None => (0, 0),
    };
    let eta_s = eta(miss_c, c.requests, elapsed_s)
        .zip(eta(miss_t, t.requests, elapsed_s))
        .map(|(a, b)| a.max(b));
    GateReport {
        name: "min_samples",
        passed: needed.is_some() && miss_c == 0 && miss_t == 0,
        value: Some(have as f64),
        threshold: needed.map(|n| n as f64),
        evidence: "per cohort ≥ sample size for gates.mde at gates.alpha and gates.power (control's error and refusal rates)",
        samples: have,
        samples_needed: needed,
        eta_seconds: eta_s,
    }
}

/// Canary stage below 100% and not capped by a tenant: the sample-ratio-mismatch check.
fn sample_ratio(
    cfg: &RolloutConfig,
    stage: &StageConfig,
    obs: &Observations,
) -> Option<GateReport> {
    let (c, t) = (&obs.stage_control, &obs.stage_canary);
    let capped = cfg.tenants.values().any(|cap| *cap < stage.percent);
    if stage.percent >= 100.0 || capped {
        return None;
    }
    let (oc, ot) = match (c.distinct_keys, t.distinct_keys) {
        (Some(a), Some(b)) => (a, b),
        _ => (c.requests, t.requests),
    };
    let p = srm_chisquare(&[oc, ot], &[100.0 - stage.percent, stage.percent])
        .ok()
        .and_then(|r| r.p_value);
    Some(GateReport {
        name: "sample_ratio",
        passed: p.is_none_or(|p| p >= SRM_P_MIN),
        value: p,
        threshold: Some(SRM_P_MIN),
        evidence: "χ² of control/canary (keys, else requests) against the planned split",
        samples: oc + ot,
        samples_needed: None,
        eta_seconds: None,
    })
}

/// No guardrail breached on this tick.
fn guardrails(obs: &Observations, breach: bool) -> GateReport {
    GateReport {
        name: "guardrails",
        passed: !breach,
        value: None,
        threshold: None,
        evidence: if breach {
            "a guardrail is breached"
        } else {
            "no guardrail breached in the window"
        },
        samples: obs.window.canary.requests,
        samples_needed: None,
        eta_seconds: None,
    }
}

/// The stage has lasted its `min_duration`.
fn min_duration(stage: &StageConfig, elapsed_s: f64) -> GateReport {
    let min_s = stage.min_duration.as_secs_f64();
    GateReport {
        name: "min_duration",
        passed: elapsed_s >= min_s,
        value: Some(elapsed_s),
        threshold: Some(min_s),
        evidence: "seconds since the stage started",
        samples: 0,
        samples_needed: None,
        eta_seconds: Some((min_s - elapsed_s).max(0.0)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn gates() -> GatesConfig {
        GatesConfig {
            mde: 0.02,
            alpha: 0.05,
            power: 0.8,
            min_equivalence: 0.7,
            min_win_rate: None,
            min_class_pairs: 20,
        }
    }

    #[test]
    fn sample_size_uses_floor_and_worst_rate() {
        let g = gates();
        let floor = required_samples(&g, &[0.0]).unwrap();
        assert_eq!(floor, required_samples(&g, &[RATE_FLOOR]).unwrap());
        // 7.849·(0.0099 + 0.0291)/0.0004 ≈ 765
        assert!((760..=770).contains(&floor), "{floor}");
        let worst = required_samples(&g, &[0.01, 0.2]).unwrap();
        assert_eq!(worst, required_samples(&g, &[0.2]).unwrap());
        assert!(worst > floor);
        // symmetric in p ↔ 1 − p
        assert_eq!(
            required_samples(&g, &[0.9]).unwrap(),
            required_samples(&g, &[0.1]).unwrap()
        );
    }
}
