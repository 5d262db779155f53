//! Shared helpers for the integration tests: realistic prompts and model builders.

#![allow(dead_code)]

use std::collections::BTreeMap;

use rampart_core::config::{LatencySpec, MockBehaviour, MockModel, Style};

/// Distinct customer-support prompts: BANKING77 queries (the copy bundled in `data/banking77/`,
/// or `$BANKING77_CSV`), else synthetic ones.
pub fn prompts(n: usize) -> Vec<String> {
    let path = std::env::var("BANKING77_CSV").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/banking77/train.csv"
        )
        .to_string()
    });
    let mut out: Vec<String> = Vec::new();
    if let Ok(csv) = std::fs::read_to_string(path) {
        for line in csv.lines().skip(1) {
            let Some((text, _category)) = line.rsplit_once(',') else {
                continue;
            };
            let text = text.trim_matches('"').replace("\"\"", "\"");
            if !text.is_empty() && !out.contains(&text) {
                out.push(text);
            }
            if out.len() == n {
                return out;
            }
        }
    }
    let topics = [
        "card",
        "transfer",
        "refund",
        "PIN",
        "top-up",
        "exchange rate",
        "fee",
        "account",
    ];
    let mut i = out.len();
    while out.len() < n {
        out.push(format!(
            "Question {i}: what is happening with my {} and the {}?",
            topics[i % topics.len()],
            topics[(i / topics.len()) % topics.len()]
        ));
        i += 1;
    }
    out
}

pub fn behaviour(style: Style) -> MockBehaviour {
    MockBehaviour {
        style,
        latency: LatencySpec {
            median_ms: 400.0,
            p95_ms: 900.0,
        },
        error_rate: 0.0,
        refusal_rate: 0.0,
        length_factor: 1.0,
    }
}

pub fn model(base: MockBehaviour) -> MockModel {
    MockModel {
        base,
        overrides: BTreeMap::new(),
        position_bias: 0.0,
        hang_rate: 0.0,
    }
}

pub fn chat(model: &str, prompt: &str) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful support agent."},
            {"role": "user", "content": prompt},
        ],
    })
}

/// Four standard errors of a proportion `p` over `n` trials.
pub fn four_se(p: f64, n: usize) -> f64 {
    4.0 * (p * (1.0 - p) / n as f64).sqrt()
}
