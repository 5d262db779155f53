//! `rampart outcomes import --file F.{csv,jsonl}`: a warehouse export of business outcomes,
//! posted to a running gateway's `POST /v1/outcomes` in batches of up to 1,000.
//!
//! CSV: a header naming the columns (`request_id`, `routing_key`, `rollout`, `name`, `value`,
//! `at`; any order, empty cells omitted; RFC 4180 quoting). JSONL: one outcome object a line.
//! Valid lines are stored even when others are refused; each refused line is printed with its
//! line number and reason, and the exit code is 1 when any line was refused. Progress on stderr.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};

/// Items per call (the endpoint's limit).
pub const BATCH: usize = 1000;

/// One field-split CSV line (RFC 4180: `"a,b"` and `""` inside quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn csv_item(header: &[String], line: &str) -> Value {
    let mut m = Map::new();
    for (col, cell) in header.iter().zip(csv_fields(line)) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        let v = match col.as_str() {
            "value" => cell
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                .unwrap_or_else(|| Value::String(cell.to_string())),
            _ => Value::String(cell.to_string()),
        };
        m.insert(col.clone(), v);
    }
    Value::Object(m)
}

/// The file's items with their line numbers (1-based); a JSON Lines item that does not parse
/// keeps its parse error (the import reports it as refused and goes on).
pub fn read_items(path: &Path) -> anyhow::Result<Vec<(usize, Result<Value, serde_json::Error>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    match ext {
        "jsonl" | "ndjson" => Ok(lines
            .map(|(n, l)| (n, serde_json::from_str::<Value>(l)))
            .collect()),
        "csv" => {
            let mut lines = lines;
            let Some((_, head)) = lines.next() else {
                return Ok(Vec::new());
            };
            let header: Vec<String> = csv_fields(head)
                .iter()
                .map(|h| h.trim().to_string())
                .collect();
            Ok(lines.map(|(n, l)| (n, Ok(csv_item(&header, l)))).collect())
        }
        other => bail!(
            "{}: expected a .csv or .jsonl file (got `.{other}`)",
            path.display()
        ),
    }
}

/// Post every item; print refusals; exit 1 when any was refused.
pub async fn import(server: &str, path: &Path) -> anyhow::Result<ExitCode> {
    let mut refused = Vec::<(usize, String)>::new();
    let mut items = Vec::new();
    for (n, item) in read_items(path)? {
        match item {
            Ok(v) => items.push((n, v)),
            Err(e) => refused.push((n, format!("not JSON: {e}"))),
        }
    }
    let url = format!("{}/v1/outcomes", server.trim_end_matches('/'));
    let http = reqwest::Client::new();
    let mut accepted = 0u64;
    let total = items.len();
    for (done, chunk) in items.chunks(BATCH).enumerate() {
        let body: Vec<&Value> = chunk.iter().map(|(_, v)| v).collect();
        let resp = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach the gateway at {server}"))?;
        let status = resp.status();
        let answer: Value = resp
            .json()
            .await
            .context("the gateway's answer is not JSON")?;
        if !(status.is_success() || status.as_u16() == 422) {
            let msg = answer
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(anyhow!("{status}: {msg}"));
        }
        accepted += answer["accepted"].as_u64().unwrap_or(0);
        for r in answer["refused"].as_array().into_iter().flatten() {
            let i = r["index"].as_u64().unwrap_or(0) as usize;
            let line = chunk.get(i).map_or(0, |(n, _)| *n);
            let msg = r["message"].as_str().unwrap_or("refused").to_string();
            refused.push((line, msg));
        }
        let sent = (done * BATCH + chunk.len()).min(total);
        eprint!(
            "\rimporting {}: {sent}/{total} lines, {} refused",
            path.display(),
            refused.len()
        );
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    refused.sort();
    println!("{accepted} outcome(s) stored, {} refused", refused.len());
    for (line, msg) in &refused {
        println!("line {line}: {msg}");
    }
    Ok(if refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test")]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_and_numbers() {
        assert_eq!(
            csv_fields(r#"a,"b,c","d""e",,"#),
            vec!["a", "b,c", "d\"e", "", ""]
        );
        let header: Vec<String> = ["routing_key", "name", "value"].map(String::from).to_vec();
        assert_eq!(
            csv_item(&header, "u1,csat,4.5"),
            json!({"routing_key": "u1", "name": "csat", "value": 4.5})
        );
        assert_eq!(csv_item(&header, "u1,csat,great")["value"], "great");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.txt");
        std::fs::write(&p, "").unwrap();
        assert!(read_items(&p).is_err());
    }
}
