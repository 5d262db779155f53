//! Paired bootstrap: 10 000 resamples over 100 000 pairs, parallel (rayon) vs the
//! single-threaded baseline. Target: under 2 s on 2 cores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_stats::bootstrap::{BootstrapConfig, paired_bootstrap, paired_bootstrap_parallel};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn data(n: usize) -> (Vec<f64>, Vec<f64>) {
    // Deterministic judge-score-like data in [0, 10].
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let base: Vec<f64> = (0..n).map(|_| (next() * 10.0).floor()).collect();
    let cand: Vec<f64> = base
        .iter()
        .map(|b| (b + (next() * 3.0).floor() - 1.0).clamp(0.0, 10.0))
        .collect();
    (base, cand)
}

fn bench(c: &mut Criterion) {
    let (base, cand) = data(100_000);
    let cfg = BootstrapConfig {
        n_resamples: 10_000,
        confidence_level: 0.95,
        seed: 7,
    };
    let threads = rayon::current_num_threads();

    // Headline figures, measured once each in this run, side by side.
    let t = Instant::now();
    let par = paired_bootstrap_parallel(&base, &cand, &cfg).unwrap();
    let par_time = t.elapsed();
    let t = Instant::now();
    let seq = paired_bootstrap(&base, &cand, &cfg).unwrap();
    let seq_time = t.elapsed();
    assert_eq!(
        par, seq,
        "parallel and sequential results must be identical"
    );
    println!(
        "paired bootstrap, 10000 resamples x 100000 pairs: parallel ({threads} threads) {par_time:.2?} \
         vs single-threaded baseline {seq_time:.2?} (speed-up {:.2}x); CI [{:.5}, {:.5}]",
        seq_time.as_secs_f64() / par_time.as_secs_f64(),
        par.ci.low,
        par.ci.high
    );

    let mut g = c.benchmark_group("paired_bootstrap_10k_x_100k");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("parallel", |b| {
        b.iter(|| paired_bootstrap_parallel(black_box(&base), black_box(&cand), &cfg).unwrap())
    });
    g.bench_function("sequential_baseline", |b| {
        b.iter(|| paired_bootstrap(black_box(&base), black_box(&cand), &cfg).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
