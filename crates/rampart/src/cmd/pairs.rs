//! `rampart pairs ROLLOUT`: recent shadow pairs, baseline and candidate side by side.

use std::process::ExitCode;

use serde_json::Value;

use super::client::{AdminClient, segment};

pub async fn pairs(
    server: &str,
    rollout: &str,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(server);
    let body = client
        .get(&format!(
            "/admin/rollouts/{}/pairs?limit={limit}",
            segment(rollout)
        ))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let pairs = body["pairs"].as_array().cloned().unwrap_or_default();
    if pairs.is_empty() {
        println!("no pairs yet for rollout {rollout}");
        return Ok(ExitCode::SUCCESS);
    }
    let width = terminal_width();
    for p in &pairs {
        print!("{}", render_pair(p, width));
    }
    Ok(ExitCode::SUCCESS)
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w: &usize| *w >= 40)
        .unwrap_or(120)
}

fn side_text(side: &Value) -> String {
    if let Some(e) = side["error"].as_str() {
        return format!("[error: {e}]");
    }
    let mut t = side["text"]
        .as_str()
        .unwrap_or("[text not captured]")
        .to_string();
    if let Some(calls) = side["tool_calls"].as_array() {
        for c in calls {
            t.push_str(&format!(
                "\n[tool call {}({})]",
                c.pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                c.pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            ));
        }
    }
    t
}

fn side_meta(side: &Value) -> String {
    format!(
        "{} {} · {:.0} ms · {} tok{}{}",
        side["variant"].as_str().unwrap_or("?"),
        side["model"].as_str().unwrap_or("?"),
        side["latency_ms"].as_f64().unwrap_or(0.0),
        side["completion_tokens"].as_u64().unwrap_or(0),
        if side["refusal"].as_bool() == Some(true) {
            " · REFUSAL"
        } else {
            ""
        },
        if side["cached"].as_bool() == Some(true) {
            " · cached"
        } else {
            ""
        },
    )
}

/// Greedy word wrap on character counts.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split_whitespace() {
            let mut word = word.to_string();
            while word.chars().count() > width {
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                lines.push(head);
            }
            let needed =
                line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
            if needed > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        s.chars().take(width).collect()
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

pub fn render_pair(p: &Value, width: usize) -> String {
    let col = (width.saturating_sub(3)) / 2;
    let mut out = String::new();
    out.push_str(&format!(
        "── {} · {} · class {} · stage {}\n",
        p["request_id"].as_str().unwrap_or("?"),
        p["ts_ms"]
            .as_i64()
            .map(|t| t.to_string())
            .unwrap_or_default(),
        p["class"].as_str().unwrap_or("-"),
        p["stage"].as_str().unwrap_or("-"),
    ));
    if let Some(prompt) = p["prompt"].as_str() {
        let last_user = serde_json::from_str::<Value>(prompt)
            .ok()
            .and_then(|m| {
                m.as_array()?
                    .iter()
                    .rev()
                    .find(|m| m["role"] == "user")
                    .and_then(|m| m["content"].as_str().map(str::to_string))
            })
            .unwrap_or_else(|| prompt.to_string());
        for l in wrap(&format!("prompt: {last_user}"), width) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    let left = wrap(&side_text(&p["baseline"]), col);
    let right = wrap(&side_text(&p["candidate"]), col);
    out.push_str(&format!(
        "{} │ {}\n",
        pad(&format!("BASELINE  {}", side_meta(&p["baseline"])), col),
        side_meta_header(&p["candidate"], col)
    ));
    out.push_str(&format!("{}─┼─{}\n", "─".repeat(col), "─".repeat(col)));
    for i in 0..left.len().max(right.len()) {
        let l = left.get(i).map(String::as_str).unwrap_or("");
        let r = right.get(i).map(String::as_str).unwrap_or("");
        out.push_str(&format!("{} │ {}\n", pad(l, col), r));
    }
    out.push('\n');
    out
}

fn side_meta_header(side: &Value, col: usize) -> String {
    pad(&format!("CANDIDATE {}", side_meta(side)), col)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wraps_to_width_and_splits_long_words() {
        for l in wrap("the quick brown fox jumps over the lazy dog", 10) {
            assert!(l.chars().count() <= 10, "{l}");
        }
        assert_eq!(wrap("abcdefghijkl", 5), vec!["abcde", "fghij", "kl"]);
        assert_eq!(wrap("", 5), vec![""]);
    }

    #[test]
    fn renders_both_sides_within_width() {
        let p = serde_json::json!({
            "request_id": "req_1", "ts_ms": 1, "class": "refunds", "stage": "shadow",
            "prompt": "[{\"role\":\"user\",\"content\":\"Where is my refund?\"}]",
            "baseline": {"variant": "v1", "model": "old", "text": "Thanks for reaching out! Your refund is on its way.", "latency_ms": 12.0, "completion_tokens": 10},
            "candidate": {"variant": "v2", "model": "new", "text": null, "error": "timeout", "latency_ms": 30000.0}
        });
        let out = render_pair(&p, 60);
        assert!(out.contains("Where is my refund?"));
        assert!(out.contains("Thanks for"));
        assert!(out.contains("[error: timeout]"));
        for l in out.lines().skip(2) {
            assert!(l.chars().count() <= 61, "{l:?}");
        }
    }
}
