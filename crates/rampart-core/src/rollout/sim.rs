//! A pure traffic simulator that drives [`step`](super::step()) the way the gateway's
//! controller task does, for tests, `rampart demo` and tuning defaults.
//!
//! Time advances in buckets of `g = gcd(window, check_interval)` whole simulated seconds (5 s for
//! a 5 m window checked every 5 s, 30 s for one checked every 30 s). Each bucket `g·total_rps`
//! keyed requests arrive; the canary gets `Binomial(total, percent/100)` of them (shadow stages
//! mirror `Binomial(control, shadow_percent/100)` as pairs); errors, refusals, slow requests
//! (slower than `ratio × control p95`, modelled directly by their share), feedback and
//! thumbs-down are binomial draws per cohort per bucket. Buckets are summed over the rolling
//! window and since the stage epoch, exactly the [`Observations`] the gateway builds, and `step`
//! runs every `check_interval`.
//!
//! Drawing per bucket instead of per second changes nothing the controller sees: the routing
//! view only changes at a check, a check only happens at a bucket's end, the window is a whole
//! number of buckets, and a sum of independent `Binomial(nᵢ, p)` is `Binomial(Σnᵢ, p)`. It makes
//! a simulated day at 30 s checks 2,880 buckets, so whole multi-day rollouts run by the hundred
//! in a debug build.
//!
//! Randomness comes only from [`SplitMix64`] seeded by the caller: same seed, same run.

use std::collections::VecDeque;

use super::observations::{CohortCounts, LatencyTail, Observations, PairedCounts, WindowCounts};
use super::state::{Phase, RolloutState, Trigger};
use super::step::{Action, step};
use crate::config::RolloutConfig;

/// The workspace's one seeded generator (re-exported here for the simulation's callers).
pub use rampart_stats::rng::SplitMix64;

/// A `Binomial(n, p)` draw: sequential inversion (Kachitvichyanukul & Schmeiser 1988, BINV)
/// while `n·min(p, 1−p) < 30`, a rounded normal approximation above.
pub fn binomial(rng: &mut SplitMix64, n: u64, p: f64) -> u64 {
    if n == 0 || p.is_nan() || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    if p > 0.5 {
        return n - binomial(rng, n, 1.0 - p);
    }
    let nf = n as f64;
    if nf * p >= 30.0 {
        let x = nf * p + (nf * p * (1.0 - p)).sqrt() * rng.standard_normal();
        return x.round().clamp(0.0, nf) as u64;
    }
    let q = 1.0 - p;
    let s = p / q;
    let a = (nf + 1.0) * s;
    let mut r = q.powf(nf);
    let mut u = rng.uniform();
    let mut x = 0u64;
    while u > r {
        u -= r;
        x += 1;
        if x >= n {
            return n;
        }
        r *= a / x as f64 - s;
        if r <= 0.0 {
            break;
        }
    }
    x
}

/// How one variant behaves, as rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmBehaviour {
    pub error_rate: f64,
    pub refusal_rate: f64,
    /// Share of requests slower than `p95_latency_max_ratio ×` the baseline's p95 (about 1 %
    /// for a log-normal baseline at ratio 1.5; above 5 % means the p95 regressed).
    pub slow_share: f64,
    /// Share of requests that get feedback.
    pub feedback_rate: f64,
    /// Share of feedback that is thumbs-down.
    pub thumbs_down_rate: f64,
}

impl Default for ArmBehaviour {
    fn default() -> Self {
        ArmBehaviour {
            error_rate: 0.005,
            refusal_rate: 0.01,
            slow_share: 0.01,
            feedback_rate: 0.05,
            thumbs_down_rate: 0.1,
        }
    }
}

/// A simulated run's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Keyed requests per second over both cohorts.
    pub total_rps: f64,
    pub baseline: ArmBehaviour,
    /// The candidate from `regression_at_s` on; before that it behaves like the baseline.
    pub candidate: ArmBehaviour,
    pub regression_at_s: u64,
    /// Simulated seconds to run (the run also stops once the rollout is rolled back or ready
    /// to decommission; a `completed` rollout keeps its kill switch armed and keeps running).
    pub duration_s: u64,
}

/// What happened in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRun {
    pub final_state: RolloutState,
    /// Simulated second at which the kill switch fired, if it did.
    pub tripped_at_s: Option<u64>,
    /// `(second, audit action, from, to)` per transition.
    pub transitions: Vec<(u64, String, String, String)>,
    /// Requests per cohort over the whole run.
    pub control_requests: u64,
    pub canary_requests: u64,
    /// Simulated seconds actually run.
    pub simulated_s: u64,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    window: WindowCounts,
    control_slow: u64,
    canary_slow: u64,
    paired: PairedCounts,
}

impl Bucket {
    fn add(&mut self, b: &Bucket) {
        self.window.control.add(&b.window.control);
        self.window.canary.add(&b.window.canary);
        self.control_slow += b.control_slow;
        self.canary_slow += b.canary_slow;
        add_paired(&mut self.paired, &b.paired);
    }

    fn sub(&mut self, b: &Bucket) {
        self.window.control.sub(&b.window.control);
        self.window.canary.sub(&b.window.canary);
        self.control_slow -= b.control_slow;
        self.canary_slow -= b.canary_slow;
        sub_paired(&mut self.paired, &b.paired);
    }
}

fn draw(rng: &mut SplitMix64, n: u64, b: &ArmBehaviour) -> (CohortCounts, u64) {
    let errors = binomial(rng, n, b.error_rate);
    let refusals = binomial(rng, n - errors, b.refusal_rate);
    let feedback = binomial(rng, n - errors, b.feedback_rate);
    let thumbs_down = binomial(rng, feedback, b.thumbs_down_rate);
    let slow = binomial(rng, n, b.slow_share);
    (
        CohortCounts {
            requests: n,
            errors,
            refusals,
            feedback,
            thumbs_up: feedback - thumbs_down,
            thumbs_down,
            distinct_keys: None,
        },
        slow,
    )
}

fn add_paired(a: &mut PairedCounts, b: &PairedCounts) {
    a.pairs += b.pairs;
    a.baseline_errors += b.baseline_errors;
    a.candidate_errors += b.candidate_errors;
    a.baseline_refusals += b.baseline_refusals;
    a.candidate_refusals += b.candidate_refusals;
}

fn sub_paired(a: &mut PairedCounts, b: &PairedCounts) {
    a.pairs -= b.pairs;
    a.baseline_errors -= b.baseline_errors;
    a.candidate_errors -= b.candidate_errors;
    a.baseline_refusals -= b.baseline_refusals;
    a.candidate_refusals -= b.candidate_refusals;
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One bucket's traffic: `total` requests split by `view`, the candidate behaving as `cand`.
fn draw_bucket(
    rng: &mut SplitMix64,
    total: u64,
    view: &crate::routing::RolloutView,
    baseline: &ArmBehaviour,
    cand: &ArmBehaviour,
) -> Bucket {
    let canary_n = binomial(rng, total, view.percent / 100.0);
    let control_n = total - canary_n;
    let (control, control_slow) = draw(rng, control_n, baseline);
    let (canary, canary_slow) = draw(rng, canary_n, cand);
    let pairs = binomial(rng, control_n, view.shadow_percent / 100.0);
    let paired = if pairs > 0 {
        let (b, _) = draw(rng, pairs, baseline);
        let (c, _) = draw(rng, pairs, cand);
        PairedCounts {
            pairs,
            baseline_errors: b.errors,
            candidate_errors: c.errors,
            baseline_refusals: b.refusals,
            candidate_refusals: c.refusals,
            latency: None,
        }
    } else {
        PairedCounts::default()
    };
    Bucket {
        window: WindowCounts {
            control,
            canary,
            latency: None,
            custom: Vec::new(),
        },
        control_slow,
        canary_slow,
        paired,
    }
}

/// The observations of one check: the rolling window `win` (with its latency tail) and the
/// stage's totals since `epoch`.
fn observations(win: &Bucket, stage: &Bucket, epoch: i64, ratio: f64) -> Observations {
    let mut window = win.window.clone();
    let (c, t) = (&window.control, &window.canary);
    window.latency = (c.requests > 0 && t.requests > 0).then_some(LatencyTail {
        control_p95_ms: 1000.0,
        threshold_ms: 1000.0 * ratio,
        control_slow: win.control_slow,
        canary_slow: win.canary_slow,
        canary_total: t.requests,
        control_total: c.requests,
    });
    Observations {
        window,
        stage_since_ms: epoch,
        stage_control: stage.window.control,
        stage_canary: stage.window.canary,
        paired_window: Some(win.paired),
        paired_stage: Some(stage.paired),
        shadow_gate: None,
    }
}

/// Runs `scenario` against `cfg` from `start` (time 0 = `start.stage_epoch_ms`'s second 0 is
/// `now_ms = 0`), stepping every `cfg.guardrails.check_interval`.
pub fn simulate(
    cfg: &RolloutConfig,
    start: &RolloutState,
    scenario: &Scenario,
    seed: u64,
) -> SimRun {
    let mut rng = SplitMix64::new(seed);
    let mut state = start.clone();
    let window_s = cfg.guardrails.window.as_secs().max(1);
    let check_s = cfg.guardrails.check_interval.as_secs().max(1);
    let bucket_s = gcd(window_s, check_s);
    let window_buckets = (window_s / bucket_s) as usize;
    let ratio = cfg.guardrails.p95_latency_max_ratio.unwrap_or(1.5);
    let mut buckets: VecDeque<Bucket> = VecDeque::with_capacity(window_buckets + 1);
    let (mut win, mut stage) = (Bucket::default(), Bucket::default());
    let mut epoch = state.stage_epoch_ms;
    let mut run = SimRun {
        final_state: state.clone(),
        tripped_at_s: None,
        transitions: Vec::new(),
        control_requests: 0,
        canary_requests: 0,
        simulated_s: 0,
    };
    let mut carry = 0.0;
    let mut view = state.view(cfg);
    let mut start_s = 0;
    while start_s < scenario.duration_s {
        let end_s = start_s + bucket_s;
        carry += scenario.total_rps * bucket_s as f64;
        let total = carry.floor() as u64;
        carry -= total as f64;
        let cand = if start_s >= scenario.regression_at_s {
            &scenario.candidate
        } else {
            &scenario.baseline
        };
        let b = draw_bucket(&mut rng, total, &view, &scenario.baseline, cand);
        run.control_requests += b.window.control.requests;
        run.canary_requests += b.window.canary.requests;
        win.add(&b);
        stage.add(&b);
        buckets.push_back(b);
        if buckets.len() > window_buckets
            && let Some(old) = buckets.pop_front()
        {
            win.sub(&old);
        }
        start_s = end_s;
        run.simulated_s = end_s;
        if !end_s.is_multiple_of(check_s) {
            continue;
        }
        let obs = observations(&win, &stage, epoch, ratio);
        let (next, actions) = step(cfg, &state, &obs, (end_s * 1000) as i64);
        for a in &actions {
            if let Action::Audit {
                action, from, to, ..
            } = a
            {
                run.transitions
                    .push((end_s, action.clone(), from.clone(), to.clone()));
            }
        }
        if let Phase::RolledBack {
            trigger: Trigger::Controller,
            ..
        } = next.phase
        {
            run.tripped_at_s.get_or_insert(end_s);
        }
        if next != state {
            view = next.view(cfg);
        }
        state = next;
        if state.stage_epoch_ms != epoch {
            epoch = state.stage_epoch_ms;
            stage = Bucket::default();
        }
        if matches!(
            state.phase,
            Phase::RolledBack { .. } | Phase::ReadyToDecommission { .. }
        ) {
            break;
        }
    }
    run.final_state = state;
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_mean_is_right() {
        let mut rng = SplitMix64::new(7);
        for (n, p) in [(50u64, 0.01), (50, 0.3), (1000, 0.2), (40, 0.9)] {
            let k = 20_000;
            let sum: u64 = (0..k).map(|_| binomial(&mut rng, n, p)).sum();
            let mean = sum as f64 / k as f64;
            let sd = (n as f64 * p * (1.0 - p) / k as f64).sqrt();
            assert!((mean - n as f64 * p).abs() < 5.0 * sd, "{n} {p}: {mean}");
        }
    }
}
