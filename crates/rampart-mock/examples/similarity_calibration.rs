//! Calibrates the comparison engine's equivalence threshold (`EQUIVALENT_F1`): answers BANKING77
//! queries with the simulated provider and prints the distribution of token F1 (the report's
//! similarity) and, for reference, chrF, for a rewording (two samples of the same style) and
//! for changes of register (casual against formal 1.3× longer, and against terse).
//!
//! `cargo run --release -p rampart-mock --example similarity_calibration [-- N]`

use rampart_core::compare::features::{EQUIVALENT_F1, chrf, token_f1};
use rampart_core::config::Style;
use rampart_mock::generate::answer;

const BANKING77: &str = include_str!("../../../data/banking77/train.csv");

fn quantiles(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "p05 {:.3}  p25 {:.3}  median {:.3}  p75 {:.3}  p95 {:.3}",
        q(0.05),
        q(0.25),
        q(0.5),
        q(0.75),
        q(0.95)
    )
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let queries: Vec<&str> = BANKING77
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit_once(',').map(|(t, _)| t.trim_matches('"')))
        .take(n)
        .collect();
    let cases: [(&str, Style, f64, u64); 3] = [
        ("same style (casual, resampled)", Style::Casual, 1.0, 1),
        ("casual vs formal ×1.3", Style::Formal, 1.3, 0),
        ("casual vs terse", Style::Terse, 1.0, 0),
    ];
    println!("{} queries; EQUIVALENT_F1 = {EQUIVALENT_F1}", queries.len());
    for (name, style, factor, flip) in cases {
        let (mut f1, mut cf) = (Vec::new(), Vec::new());
        for (i, q) in queries.iter().enumerate() {
            let seed = i as u64;
            let b = answer(Style::Casual, 1.0, q, seed);
            let c = answer(style, factor, q, seed ^ flip);
            f1.push(token_f1(&b, &c));
            cf.push(chrf(&b, &c));
        }
        let share = |t: f64| f1.iter().filter(|&&x| x >= t).count() as f64 / f1.len() as f64;
        let shares: Vec<String> = [0.30, 0.35, 0.40, 0.45, 0.50, EQUIVALENT_F1]
            .iter()
            .map(|&t| format!("≥{t:.2}: {:.1} %", share(t) * 100.0))
            .collect();
        println!(
            "{name}\n  token F1  {}\n            {}",
            quantiles(f1.clone()),
            shares.join("  ")
        );
        println!("  chrF      {}", quantiles(cf));
    }
}
