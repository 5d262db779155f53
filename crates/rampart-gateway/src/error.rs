//! The one error type at the HTTP edge.
//!
//! Its exhaustive `match` gives each failure its HTTP status and OpenAI's error shape,
//! `{"error":{"message","type","code"}}`, and says whose fault it was: the client's
//! (`invalid_request_error`), the upstream provider's (`upstream_error`, passed through with the
//! upstream status), or ours (`server_error`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "request body is larger than the configured limit of {limit} bytes (server.max_body_bytes)"
    )]
    PayloadTooLarge { limit: usize },
    /// The client did not send its body in time; the connection is closed.
    #[error("the request body was not received within {0:?} (server.body_read_timeout)")]
    BodyTimeout(std::time::Duration),
    /// The request is well-formed but costs more than a configured bound allows.
    #[error("{0}")]
    TooComplex(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Conflict(String),
    /// The provider answered with an error; its status, body and `Retry-After` are passed
    /// through.
    #[error("upstream provider answered {status}")]
    Upstream {
        status: u16,
        body: Value,
        retry_after: Option<String>,
    },
    #[error("the provider did not answer within {0:?}")]
    UpstreamTimeout(std::time::Duration),
    /// The detail (which names the upstream's address) is kept for logs and stored events; the
    /// client's body says only what kind of failure it was.
    #[error("cannot reach the provider: {0}")]
    UpstreamUnreachable(String),
    #[error("the provider sent an answer rampart cannot read: {0}")]
    UpstreamInvalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooComplex(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Upstream { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            ApiError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::UpstreamUnreachable(_) | ApiError::UpstreamInvalid(_) => {
                StatusCode::BAD_GATEWAY
            }
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `type` and `code` for this error.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("invalid_request_error", "invalid_request"),
            ApiError::PayloadTooLarge { .. } => ("invalid_request_error", "request_too_large"),
            ApiError::TooComplex(_) => ("invalid_request_error", "request_too_complex"),
            ApiError::BodyTimeout(_) => ("invalid_request_error", "request_timeout"),
            ApiError::MethodNotAllowed(_) => ("invalid_request_error", "method_not_allowed"),
            ApiError::NotFound(_) => ("invalid_request_error", "not_found"),
            ApiError::Unauthorized(_) => ("invalid_request_error", "unauthorized"),
            ApiError::Conflict(_) => ("invalid_request_error", "conflict"),
            ApiError::Upstream { .. } => ("upstream_error", "upstream_error"),
            ApiError::UpstreamTimeout(_) => ("upstream_error", "upstream_timeout"),
            ApiError::UpstreamUnreachable(_) => ("upstream_error", "upstream_unreachable"),
            ApiError::UpstreamInvalid(_) => ("upstream_error", "upstream_invalid_response"),
            ApiError::Unavailable(_) => ("server_error", "unavailable"),
            ApiError::Internal(_) => ("server_error", "internal_error"),
        }
    }

    /// The message the client sees: never an upstream's address or rampart's internals.
    fn client_message(&self) -> String {
        match self {
            ApiError::UpstreamUnreachable(_) => "cannot reach the provider".into(),
            ApiError::Internal(_) => "internal error; see the gateway's log".into(),
            other => scrub_urls(&other.to_string()),
        }
    }

    /// The OpenAI-shaped JSON body.
    pub fn body(&self) -> Value {
        if let ApiError::Upstream { body, .. } = self {
            let message = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(scrub_urls)
                .unwrap_or_else(|| "upstream provider error".to_string());
            let field = |k: &str| body.pointer(&format!("/error/{k}")).cloned();
            return json!({"error": {
                "message": message,
                "type": field("type").filter(Value::is_string).unwrap_or(json!("upstream_error")),
                "code": field("code").unwrap_or(json!("upstream_error")),
                "param": field("param").unwrap_or(Value::Null),
            }});
        }
        let (kind, code) = self.kind();
        json!({"error": {"message": self.client_message(), "type": kind, "code": code}})
    }
}

/// `text` with every `http://…` or `https://…` address replaced by `[upstream]`, so an
/// upstream's error cannot tell clients where rampart's providers live.
pub fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["http://", "https://"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        out.push_str(&rest[..at]);
        out.push_str("[upstream]");
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ','))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error answered as 500");
        }
        let mut resp = (self.status(), axum::Json(self.body())).into_response();
        if matches!(self, ApiError::BodyTimeout(_)) {
            // The rest of a slow body must not be read as the next request.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        if let ApiError::Upstream {
            retry_after: Some(v),
            ..
        } = &self
            && let Ok(v) = axum::http::HeaderValue::from_str(v)
        {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        resp
    }
}
