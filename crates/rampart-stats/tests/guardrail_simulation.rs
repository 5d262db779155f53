//! Simulation: an A/A guardrail checked after every observation keeps its false-alarm rate
//! at or below α, while a naive fixed-sample z-test checked the same way does not.
//!
//! Setup: both arms have the same 5 % error rate; each step adds one observation to each arm
//! (20 000 per arm), and after every step the guardrail asks "does canary rate − control
//! rate exceed 0 with anytime-valid confidence 95 %?" (a normal-mixture confidence sequence)
//! while the
//! naive check asks "is the one-sided pooled z-test significant at 5 %?". A replication
//! raises a false alarm the first time its check fires. 2 000 replications, 40 M looks each
//! way, every look O(1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_stats::normal::isf;
use rampart_stats::sequential::{ConfidenceSequence, ProportionGuardrail};
use rayon::prelude::*;

const ALPHA: f64 = 0.05;
const STEPS: u64 = 20_000;
const REPLICATIONS: u64 = 2_000;
const RATE: f64 = 0.05;

/// The workspace's SplitMix64: good enough for Bernoulli draws in a test.
struct SplitMix(rampart_stats::rng::SplitMix64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
}

fn threshold(p: f64) -> u64 {
    (p * 2f64.powi(64)) as u64
}

/// Pooled one-sided z-test "treatment > control" with equal n, as a fixed-sample test.
fn naive_fires(xt: u64, xc: u64, n: u64, z_crit: f64) -> bool {
    let nf = n as f64;
    let pooled = (xt + xc) as f64 / (2.0 * nf);
    let var = pooled * (1.0 - pooled) * (2.0 / nf);
    var > 0.0 && (xt as f64 - xc as f64) / nf / var.sqrt() > z_crit
}

fn guardrail() -> ProportionGuardrail {
    // Tightest around 10 000 observations per arm: information n / (2p(1−p)).
    let cs = ConfidenceSequence::tuned_for(ALPHA, 10_000.0 / (2.0 * RATE * (1.0 - RATE))).unwrap();
    ProportionGuardrail::new(1.0, 0.0, cs).unwrap()
}

/// Runs one replication; returns (guardrail fired, naive test fired).
fn replicate(seed: u64, rate_t: f64, rate_c: f64, z_crit: f64) -> (bool, bool) {
    let mut rng = SplitMix(rampart_stats::rng::SplitMix64::new(
        seed.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0x5851_F42D_4C95_7F2D,
    ));
    let (tt, tc) = (threshold(rate_t), threshold(rate_c));
    let mut g = guardrail();
    let (mut cs_fired, mut naive_fired) = (false, false);
    let (mut xt, mut xc) = (0u64, 0u64);
    for n in 1..=STEPS {
        let t = rng.next() < tt;
        let c = rng.next() < tc;
        xt += u64::from(t);
        xc += u64::from(c);
        g.record_treatment(t);
        g.record_control(c);
        if !cs_fired && g.tripped() {
            cs_fired = true;
        }
        if !naive_fired && naive_fires(xt, xc, n, z_crit) {
            naive_fired = true;
        }
        if cs_fired && naive_fired {
            break;
        }
    }
    (cs_fired, naive_fired)
}

#[test]
fn aa_guardrail_keeps_false_alarm_rate_while_naive_peeking_does_not() {
    let z_crit = isf(ALPHA).unwrap();
    let started = std::time::Instant::now();
    let (cs, naive) = (0..REPLICATIONS)
        .into_par_iter()
        .map(|r| {
            let (a, b) = replicate(r, RATE, RATE, z_crit);
            (u64::from(a), u64::from(b))
        })
        .reduce(|| (0, 0), |x, y| (x.0 + y.0, x.1 + y.1));
    let cs_rate = cs as f64 / REPLICATIONS as f64;
    let naive_rate = naive as f64 / REPLICATIONS as f64;
    println!(
        "A/A, {REPLICATIONS} replications x {STEPS} looks per arm: anytime-valid guardrail false-alarm rate = {cs_rate:.4}, \
         naive z-test checked every look = {naive_rate:.4} (alpha = {ALPHA}; {:.1?})",
        started.elapsed()
    );
    assert!(
        cs_rate <= ALPHA,
        "guardrail false-alarm rate {cs_rate} exceeds {ALPHA}"
    );
    assert!(
        naive_rate > ALPHA,
        "naive peeking rate {naive_rate} should exceed {ALPHA}"
    );
}

#[test]
fn guardrail_detects_a_real_regression() {
    // Canary error rate 8 % vs 5 %: the guardrail must trip in (almost) every replication.
    let z_crit = isf(ALPHA).unwrap();
    let reps = 100u64;
    let detected: u64 = (0..reps)
        .into_par_iter()
        .map(|r| u64::from(replicate(1_000_000 + r, 0.08, RATE, z_crit).0))
        .sum();
    let rate = detected as f64 / reps as f64;
    println!("A/B 8% vs 5%: guardrail detection rate = {rate:.2}");
    assert!(rate >= 0.95, "detection rate {rate}");
}
