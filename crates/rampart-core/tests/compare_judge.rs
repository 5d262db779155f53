//! A position-biased simulated judge: the swap-corrected win rate's interval contains the true
//! preference; the first-position-only rate's does not.
//!
//! The fake judge: each pair has a latent truth (the candidate is better with probability
//! `P_TRUE`); shown two answers, the judge answers "the first shown" with probability `BIAS`,
//! otherwise the truth. Expected rates: uncorrected `(1 − BIAS)·P_TRUE = 0.42`; swap-corrected
//! `½ + (1 − BIAS)(P_TRUE − ½) = 0.57` (the direction of the bias is removed; the biased
//! verdicts become ties and shrink the rate towards ½, see `compare::judge`). With 300 pairs
//! the corrected interval (±≈0.045) covers 0.60, the uncorrected (±≈0.055) does not.
#![allow(clippy::unwrap_used)]

use rampart_core::compare::judge::{JudgeTally, Verdict, judge_prompt, parse_verdict};
use rampart_stats::bootstrap::BootstrapConfig;

const P_TRUE: f64 = 0.6;
const BIAS: f64 = 0.3;

struct Rng(rampart_stats::rng::SplitMix64);
impl Rng {
    fn f64(&mut self) -> f64 {
        self.0.uniform()
    }
}

/// The fake judge reads the prompt like a real one would: it finds which answer is the
/// candidate's by content and replies in free text.
fn fake_judge(rng: &mut Rng, prompt: &str, candidate_better: bool) -> String {
    if rng.f64() < BIAS {
        return "Answer A is more helpful.\nA".to_string();
    }
    let a_is_candidate = prompt.contains("[The Start of Assistant A's Answer]\nCANDIDATE");
    let pick_a = a_is_candidate == candidate_better;
    if pick_a {
        "Verdict: A".into()
    } else {
        "After careful thought, the better one is:\n**B**".into()
    }
}

#[test]
fn swap_correction_removes_position_bias() {
    let mut rng = Rng(rampart_stats::rng::SplitMix64::new(2024));
    let mut tally = JudgeTally::new();
    for i in 0..300 {
        let truth = rng.f64() < P_TRUE;
        let (b, c) = (
            format!("BASELINE answer {i}"),
            format!("CANDIDATE answer {i}"),
        );
        let first = judge_prompt("Where is my card?", &b, &c);
        let second = judge_prompt("Where is my card?", &c, &b);
        let v1 = parse_verdict(&fake_judge(&mut rng, &first, truth));
        let v2 = parse_verdict(&fake_judge(&mut rng, &second, truth));
        assert!(v1.is_some() && v2.is_some());
        tally.push(v1, v2);
    }
    let r = tally.finish(&BootstrapConfig {
        n_resamples: 4_000,
        confidence_level: 0.95,
        seed: 9,
    });
    let (lo, hi) = (r.ci_low.unwrap(), r.ci_high.unwrap());
    assert!(
        lo <= P_TRUE && P_TRUE <= hi,
        "corrected [{lo}, {hi}] should contain {P_TRUE}"
    );
    let expected_corrected = 0.5 + (1.0 - BIAS) * (P_TRUE - 0.5);
    assert!(lo <= expected_corrected && expected_corrected <= hi);
    let (ulo, uhi) = (
        r.uncorrected_ci_low.unwrap(),
        r.uncorrected_ci_high.unwrap(),
    );
    assert!(
        uhi < P_TRUE,
        "uncorrected [{ulo}, {uhi}] should miss {P_TRUE}"
    );
    assert!(r.win_rate.unwrap() > 0.5 && r.uncorrected_win_rate.unwrap() < 0.5);
    assert!(r.inconsistent > 0 && r.unparsed == 0);
    // Sanity: an unbiased verdict string parses as expected.
    assert_eq!(parse_verdict("Verdict: A"), Some(Verdict::A));
}
