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
    #[error("request body is larger than the configured limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
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

    /// The OpenAI-shaped JSON body.
    pub fn body(&self) -> Value {
        if let ApiError::Upstream { body, .. } = self {
            if body.get("error").is_some_and(Value::is_object) {
                return body.clone();
            }
            return json!({"error": {
                "message": format!("upstream provider error: {body}"),
                "type": "upstream_error",
                "code": "upstream_error",
            }});
        }
        let (kind, code) = self.kind();
        json!({"error": {"message": self.to_string(), "type": kind, "code": code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), axum::Json(self.body())).into_response();
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
