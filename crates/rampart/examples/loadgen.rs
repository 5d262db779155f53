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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// What the requests found, shared by their tasks.
struct Tally {
    /// Milliseconds from due to the last byte of every 2xx answer.
    lat: Mutex<Vec<f64>>,
    /// Requests with no (complete) answer.
    errors: AtomicU64,
    non_2xx: AtomicU64,
    /// The request ids of 2xx answers, kept only with `LOADGEN_IDS`.
    ids: std::sync::Mutex<Vec<String>>,
    keep_ids: bool,
}

/// One request of the run, as it was due.
struct Shot {
    client: reqwest::Client,
    url: String,
    body: String,
    keyed: bool,
    i: u64,
    due: Instant,
}

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
    let ids_file = std::env::var("LOADGEN_IDS").ok();
    let tally = Arc::new(Tally {
        lat: Mutex::new(Vec::with_capacity((rate * seconds) as usize)),
        errors: AtomicU64::new(0),
        non_2xx: AtomicU64::new(0),
        ids: std::sync::Mutex::new(Vec::new()),
        keep_ids: ids_file.is_some(),
    });
    warm_up(&client, &url, &body).await;
    let total = (rate * seconds) as u64;
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + period.mul_f64(i as f64);
        // Pacing the offered load (open loop), not waiting for a result.
        tokio::time::sleep_until(due.into()).await;
        let shot = Shot {
            client: client.clone(),
            url: url.clone(),
            body: body.clone(),
            keyed,
            i,
            due,
        };
        handles.push(tokio::spawn(send(shot, tally.clone())));
    }
    for h in handles {
        let _ = h.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(path) = ids_file {
        let ids = tally.ids.lock().unwrap();
        std::fs::write(&path, ids.join("\n") + "\n").unwrap();
    }
    report(rate, elapsed, &tally).await;
}

/// Warms the connection pool with 20 requests.
async fn warm_up(client: &reqwest::Client, url: &str, body: &str) {
    for _ in 0..20 {
        let _ = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
    }
}

/// Sends one request and counts what came back.
async fn send(shot: Shot, tally: Arc<Tally>) {
    let mut req = shot
        .client
        .post(&shot.url)
        .header("content-type", "application/json")
        .body(shot.body);
    if shot.keyed {
        req = req.header(
            "x-rampart-routing-key",
            format!("bench-user-{}", shot.i % 5000),
        );
    }
    // Latency counts from when the request was due, so queueing in the client shows.
    let t0 = shot.due;
    match req.send().await {
        Ok(r) if r.status().is_success() => {
            let id = r
                .headers()
                .get("x-rampart-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if r.bytes().await.is_ok() {
                tally
                    .lat
                    .lock()
                    .await
                    .push(t0.elapsed().as_secs_f64() * 1e3);
                if let (true, Some(id)) = (tally.keep_ids, id) {
                    tally.ids.lock().unwrap().push(id);
                }
            } else {
                tally.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(_) => {
            tally.non_2xx.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            tally.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Prints the JSON line: percentiles, throughput and failure counts.
async fn report(rate: f64, elapsed: f64, tally: &Tally) {
    let mut v = tally.lat.lock().await.clone();
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
            "rate": rate, "ok": v.len(), "errors": tally.errors.load(Ordering::Relaxed),
            "non_2xx": tally.non_2xx.load(Ordering::Relaxed),
            "throughput": v.len() as f64 / elapsed,
            "p50_ms": pct(50.0), "p90_ms": pct(90.0), "p99_ms": pct(99.0), "max_ms": pct(100.0),
        })
    );
}
