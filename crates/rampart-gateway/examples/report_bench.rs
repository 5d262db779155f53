//! Benchmark of the comparison report over pairs stored in SQLite (run by `bench/report.sh`).
//!
//! 1. Generates `--pairs N` (default 1,000,000) realistic pairs into a SQLite file through the
//!    store (batches of 10,000): BANKING77 queries answered by the simulated provider's text
//!    generator; the baseline casual, the candidate the same style (another sample of it) for
//!    70 % of pairs and formal (1.3× longer) for 30 %, 2 % refusals on each side, nine classes,
//!    three tenants. The store computes each pair's features as it stores it, as it does for the
//!    gateway's writer.
//! 2. Times, in the same run, the baseline (iterating every pair with `for_each_pair` and
//!    touching the texts, no features) and the report (`compare_pairs`: the stored features →
//!    `Accumulator` → `finish`, then the excerpts of the most different pairs, as the admin API
//!    computes it).
//! 3. Prints what the report's speed costs at write time: the features of one pair computed on
//!    one thread (median of five runs over 20,000 pairs), the work the store does per stored pair.
//!
//! `--db PATH` keeps the database (reused when it already holds N pairs), so a second run only
//! times. Build in release mode.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use rampart_core::compare::{CompareConfig, pair_features};
use rampart_core::config::Style;
use rampart_core::record::{Pair, PairSide};
use rampart_gateway::report::compare_pairs;
use rampart_mock::generate::{answer, refusal};
use rampart_store::{PairFilter, PairStore, SqliteStore};

const BANKING77: &str = include_str!("../../../data/banking77/train.csv");
const ROLLOUT: &str = "bench";
const BATCH: usize = 10_000;

fn queries() -> Vec<(String, String)> {
    BANKING77
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (text, class) = l.rsplit_once(',')?;
            Some((text.trim_matches('"').to_string(), class.to_string()))
        })
        .collect()
}

fn side(variant: &str, text: String, refused: bool, latency_ms: f64, usd_per_tok: f64) -> PairSide {
    let tokens = text.split_whitespace().count() as u64;
    PairSide {
        variant: variant.into(),
        model: format!("model-{variant}"),
        prompt_version: Some(format!("p-{variant}")),
        text: Some(text),
        finish_reason: Some("stop".into()),
        prompt_tokens: 40,
        completion_tokens: tokens,
        latency_ms,
        cost_usd: (40 + tokens) as f64 * usd_per_tok,
        refusal: refused,
        ..PairSide::default()
    }
}

fn pair(i: u64, q: &(String, String)) -> Pair {
    let (prompt, class) = q;
    // A cheap deterministic hash of i for the per-pair choices.
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let refuse_b = h.is_multiple_of(50);
    let refuse_c = h % 50 == 1;
    let formal = h % 10 < 3;
    let b = if refuse_b {
        refusal(Style::Casual).to_string()
    } else {
        answer(Style::Casual, 1.0, prompt, i)
    };
    let c = match (refuse_c, formal) {
        (true, _) => refusal(Style::Formal).to_string(),
        (false, true) => answer(Style::Formal, 1.3, prompt, i),
        // Same style, another sample: an equivalent answer worded differently.
        (false, false) => answer(Style::Casual, 1.0, prompt, i ^ 1),
    };
    Pair {
        request_id: format!("req_{i:012}"),
        ts_ms: 1_700_000_000_000 + i as i64 * 10,
        route: "support".into(),
        rollout: ROLLOUT.into(),
        stage: "shadow".into(),
        key_hash: Some(format!("k{}", i % 50_000)),
        tenant: Some(["acme", "globex", "initech"][(h % 3) as usize].into()),
        class: Some(class.clone()),
        prompt: Some(format!("[{{\"role\":\"user\",\"content\":{prompt:?}}}]")),
        prompt_hash: format!("{:016x}", h),
        baseline: side("v1", b, refuse_b, 300.0 + (h % 400) as f64, 2e-6),
        candidate: side("v2", c, refuse_c, 280.0 + (h % 500) as f64, 1e-6),
        tools: None,
        response_format: None,
        embedding_similarity: None,
        judge: None,
        features: None,
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn Error>> {
    let n: u64 = arg("--pairs").map_or(Ok(1_000_000), |s| s.parse())?;
    let tmp = tempfile::tempdir()?;
    let db = arg("--db").map_or_else(|| tmp.path().join("bench.db"), PathBuf::from);
    let store = SqliteStore::open(&db)?;

    let have = store.count_pairs(ROLLOUT)?;
    let qs = queries();
    if have != n {
        if have > 0 {
            return Err(format!("{} holds {have} pairs, not {n}; remove it", db.display()).into());
        }
        let t = Instant::now();
        let mut batch = Vec::with_capacity(BATCH);
        for i in 0..n {
            batch.push(pair(i, &qs[(i as usize * 7919) % qs.len()]));
            if batch.len() == BATCH {
                store.insert_pairs(&batch)?;
                batch.clear();
            }
        }
        store.insert_pairs(&batch)?;
        eprintln!(
            "generated {n} pairs into {} in {:.1} s ({} MB)",
            db.display(),
            t.elapsed().as_secs_f64(),
            std::fs::metadata(&db)?.len() / 1_000_000
        );
    }

    // Baseline: iterate every pair, touch the texts, no features.
    let t = Instant::now();
    let (mut count, mut chars) = (0u64, 0usize);
    store.for_each_pair(ROLLOUT, &mut |p| {
        count += 1;
        chars += p.baseline.text.as_deref().map_or(0, str::len)
            + p.candidate.text.as_deref().map_or(0, str::len);
    })?;
    let iterate = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let report = compare_pairs(
        &store,
        ROLLOUT,
        &PairFilter::default(),
        CompareConfig::default(),
    )?;
    let full = t.elapsed().as_secs_f64();

    // Write-time cost: the features of one pair, on one thread.
    let sample: Vec<Pair> = (0..20_000u64)
        .map(|i| pair(i, &qs[(i as usize * 7919) % qs.len()]))
        .collect();
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let mut similar = 0.0;
            for p in &sample {
                similar += pair_features(p).similarity;
            }
            std::hint::black_box(similar);
            t.elapsed().as_secs_f64() / sample.len() as f64 * 1e6
        })
        .collect();
    runs.sort_by(f64::total_cmp);

    println!(
        "pairs:                     {count} ({} MB of answer text)",
        chars / 1_000_000
    );
    println!("iterate (for_each_pair):   {iterate:.2} s");
    println!(
        "report (stored features):  {full:.2} s  ({:.0} pairs/s; {:.2}x the iteration)",
        count as f64 / full,
        full / iterate
    );
    println!(
        "write-time features:       {:.1} µs per pair on one thread",
        runs[2]
    );
    println!(
        "equivalence rate {:.3} [{:.3}, {:.3}], flags {:?}",
        report.metrics.equivalence.rate.unwrap_or(f64::NAN),
        report.metrics.equivalence.ci_low.unwrap_or(f64::NAN),
        report.metrics.equivalence.ci_high.unwrap_or(f64::NAN),
        report.flags
    );
    if report.pairs != count {
        return Err(format!("the report saw {} pairs, not {count}", report.pairs).into());
    }
    Ok(())
}
