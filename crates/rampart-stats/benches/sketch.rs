//! Quantile sketch inserts vs the exact baseline (Vec push + sort + pick p50/p95/p99).
//! Target: ≥ 10 million inserts per second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_stats::sketch::DdSketch;
use std::hint::black_box;
use std::time::Instant;

const N: usize = 1_000_000;

/// Log-normal-ish latencies in ms (deterministic).
fn latencies(n: usize) -> Vec<f64> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            (4.0 + 1.5 * (u * 6.0 - 3.0)).exp()
        })
        .collect()
}

fn sketch_insert(values: &[f64]) -> DdSketch {
    let mut s = DdSketch::default();
    for &v in values {
        s.add(v).unwrap();
    }
    s
}

fn exact(values: &[f64]) -> [f64; 3] {
    let mut v = Vec::new();
    for &x in values {
        v.push(x);
    }
    v.sort_unstable_by(f64::total_cmp);
    let pick = |q: f64| v[(q * (v.len() - 1) as f64).floor() as usize];
    [pick(0.5), pick(0.95), pick(0.99)]
}

fn bench(c: &mut Criterion) {
    let values = latencies(N);

    // Headline figures, best of 5 runs each, side by side.
    let best = |f: &dyn Fn()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let sk = best(&|| {
        black_box(sketch_insert(black_box(&values)));
    });
    let ex = best(&|| {
        black_box(exact(black_box(&values)));
    });
    let s = sketch_insert(&values);
    let e = exact(&values);
    println!(
        "sketch insert: {:.1} M values/s vs exact Vec push+sort baseline {:.1} M values/s; \
         p50 {:.2}/{:.2}, p95 {:.2}/{:.2}, p99 {:.2}/{:.2} (sketch/exact); {} bytes serialized",
        N as f64 / sk / 1e6,
        N as f64 / ex / 1e6,
        s.quantile(0.5).unwrap(),
        e[0],
        s.quantile(0.95).unwrap(),
        e[1],
        s.quantile(0.99).unwrap(),
        e[2],
        s.to_bytes().len()
    );

    let mut g = c.benchmark_group("latency_quantiles_1m");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("ddsketch_insert", |b| {
        b.iter(|| sketch_insert(black_box(&values)))
    });
    g.bench_function("exact_vec_push_sort_baseline", |b| {
        b.iter(|| exact(black_box(&values)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
