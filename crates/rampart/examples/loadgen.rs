//! Open-loop load generator for the benchmarks in `bench/`.
//!
//! Sends requests at a fixed rate (not waiting for answers, so a slow server cannot slow the
//! offered load down) and prints one JSON line: latency percentiles in milliseconds, achieved
//! throughput, and errors.
//!
//! `cargo run --release --example loadgen -- URL RATE SECONDS MODEL [keyed]`
//!
//! With `LOADGEN_IDS=FILE`, the `x-rampart-request-id` of every 2xx answer is written to FILE,
//! one per line (the soak test checks each was stored). The JSON line counts non-2xx answers
//! (`non_2xx`) apart from requests that got no answer (`errors`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: loadgen URL RATE SECONDS MODEL [keyed]");
        std::process::exit(2);
    }
    let url = args[1].clone();
    let rate: f64 = args[2].parse().expect("RATE");
    let seconds: f64 = args[3].parse().expect("SECONDS");
    let model = args[4].clone();
    let keyed = args.get(5).is_some_and(|a| a == "keyed");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "I am still waiting on my card, can you check?"}],
        "max_tokens": 64
    })
    .to_string();
    let lat = Arc::new(Mutex::new(Vec::<f64>::with_capacity(
        (rate * seconds) as usize,
    )));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let non_2xx = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let ids_file = std::env::var("LOADGEN_IDS").ok();
    let ids = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    // Warm the connection pool.
    for _ in 0..20 {
        let _ = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
    }
    let total = (rate * seconds) as u64;
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, body, lat, errors, non_2xx, ids) = (
            client.clone(),
            url.clone(),
            body.clone(),
            lat.clone(),
            errors.clone(),
            non_2xx.clone(),
            ids.clone(),
        );
        let keep_ids = ids_file.is_some();
        handles.push(tokio::spawn(async move {
            let mut req = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if keyed {
                req = req.header("x-rampart-routing-key", format!("bench-user-{}", i % 5000));
            }
            // Latency counts from when the request was due, so queueing in the client shows.
            let t0 = due;
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    let id = r
                        .headers()
                        .get("x-rampart-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    if r.bytes().await.is_ok() {
                        lat.lock().await.push(t0.elapsed().as_secs_f64() * 1e3);
                        if let (true, Some(id)) = (keep_ids, id) {
                            ids.lock().unwrap().push(id);
                        }
                    } else {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Ok(_) => {
                    non_2xx.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(_) => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(path) = ids_file {
        let ids = ids.lock().unwrap();
        std::fs::write(&path, ids.join("\n") + "\n").unwrap();
    }
    let mut v = lat.lock().await.clone();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |q: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((q / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[i]
    };
    println!(
        "{}",
        serde_json::json!({
            "rate": rate, "ok": v.len(), "errors": errors.load(std::sync::atomic::Ordering::Relaxed),
            "non_2xx": non_2xx.load(std::sync::atomic::Ordering::Relaxed),
            "throughput": v.len() as f64 / elapsed,
            "p50_ms": pct(50.0), "p90_ms": pct(90.0), "p99_ms": pct(99.0), "max_ms": pct(100.0),
        })
    );
}
