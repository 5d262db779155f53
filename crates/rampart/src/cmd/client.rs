//! A small client for a running gateway's admin API (`--server`, token from
//! `RAMPART_ADMIN_TOKEN`).

use anyhow::{Context, anyhow};
use serde_json::Value;

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl AdminClient {
    pub fn new(server: &str) -> AdminClient {
        AdminClient {
            http: reqwest::Client::new(),
            base: server.trim_end_matches('/').to_string(),
            token: std::env::var("RAMPART_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        }
    }

    /// Send with the token; the body as text, or the gateway's error message on a failure.
    async fn fetch(&self, req: reqwest::RequestBuilder) -> anyhow::Result<String> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the gateway at {}", self.base))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .context("cannot read the gateway's answer")?;
        if !status.is_success() {
            let msg = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "no error message".to_string());
            return Err(anyhow!("{status}: {msg}"));
        }
        Ok(body)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let body = self.fetch(req).await?;
        serde_json::from_str(&body).context("the gateway's answer is not JSON")
    }

    /// GET a non-JSON body (text, HTML); errors still carry the gateway's message.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        self.fetch(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }
}

/// Percent-encode one path segment (rollout names are restricted, but be safe).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
