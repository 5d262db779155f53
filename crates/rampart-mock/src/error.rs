//! [`SimError`]: an HTTP status and an OpenAI-shaped error body, exactly what a real provider
//! would send back. The simulator's only error type; the server writes it out unchanged.

use std::fmt;

use serde_json::{Value, json};

/// A failed call: HTTP `status` and body `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub body: Value,
}

impl SimError {
    fn new(
        status: u16,
        message: impl Into<String>,
        kind: &str,
        param: Option<&str>,
        code: &str,
    ) -> SimError {
        SimError {
            status,
            body: json!({
                "error": {
                    "message": message.into(),
                    "type": kind,
                    "param": param,
                    "code": code,
                }
            }),
        }
    }

    /// 400 `invalid_request_error`: the body is malformed.
    pub fn invalid_request(message: impl Into<String>, param: &str) -> SimError {
        SimError::new(
            400,
            message,
            "invalid_request_error",
            Some(param),
            "invalid_request",
        )
    }

    /// 404 `model_not_found`.
    pub fn model_not_found(model: &str) -> SimError {
        SimError::new(
            404,
            format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model"),
            "model_not_found",
        )
    }

    /// 500 `server_error`: an error injected at the model's `error_rate`.
    pub fn injected() -> SimError {
        SimError::new(
            500,
            "The server had an error while processing your request (simulated).",
            "server_error",
            None,
            "server_error",
        )
    }

    /// 504 `timeout`: a hanging call (`hang_rate`) closed by the simulator itself.
    pub fn hung() -> SimError {
        SimError::new(
            504,
            "The simulated call hung and was closed.",
            "server_error",
            None,
            "timeout",
        )
    }

    /// The error's `type` field (`server_error`, `invalid_request_error`, …).
    pub fn kind(&self) -> &str {
        self.body
            .pointer("/error/type")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The error's `code` field.
    pub fn code(&self) -> &str {
        self.body
            .pointer("/error/code")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self
            .body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("");
        write!(f, "{} {}: {}", self.status, self.code(), message)
    }
}

impl std::error::Error for SimError {}
