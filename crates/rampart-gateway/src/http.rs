//! The HTTP surface: the OpenAI-compatible data plane, feedback, and operational endpoints.

pub mod chat;
pub mod feedback;
pub mod ops;

use axum::Router;
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::Gateway;

/// Every route the gateway answers.
pub fn router(gw: Gateway) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/feedback", post(feedback::feedback))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .fallback(not_found)
        .with_state(gw)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at {}", uri.path()))
}
