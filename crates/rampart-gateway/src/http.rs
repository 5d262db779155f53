//! The HTTP surface: the OpenAI-compatible data plane, feedback, operational endpoints, the
//! admin API and the `/ui/` dashboard.

pub mod admin;
pub mod chat;
pub mod coalesce;
pub mod fallback;
pub mod feedback;
pub mod ops;
pub mod outcomes;
pub mod sse;
pub mod ui;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::state::Gateway;

/// Every route the gateway answers.
pub fn router(gw: Gateway) -> Router {
    let admin = Router::new()
        .route("/admin/rollouts", get(admin::list_rollouts))
        .route("/admin/rollouts/{name}", get(admin::get_rollout))
        .route("/admin/rollouts/{name}/pairs", get(admin::pairs))
        .route("/admin/rollouts/{name}/events", get(admin::events))
        .route("/admin/rollouts/{name}/report", get(admin::report))
        .route(
            "/admin/rollouts/{name}/tenants/{tenant}",
            axum::routing::put(admin::put_tenant),
        )
        .route("/admin/rollouts/{name}/{action}", post(admin::action))
        .route_layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            admin::require_admin,
        ));
    Router::new()
        .merge(admin)
        .merge(ui::router(gw.clone()))
        .route(chat::PATH, post(chat::chat_completions))
        .route("/v1/feedback", post(feedback::feedback))
        .route("/v1/outcomes", post(outcomes::outcomes))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .fallback(not_found)
        .layer(axum::middleware::map_response(openai_error_shape))
        .with_state(gw)
}

/// Give every error answer OpenAI's shape, also those no handler wrote: 405s, and the
/// extractors' plain-text rejections (a bad query string or path). Their headers (`Allow`)
/// are kept; HTML pages are left alone.
async fn openai_error_shape(resp: Response) -> Response {
    let status = resp.status();
    // Only bodies that are empty or plain text are reshaped: JSON already is, and a page
    // meant for a browser (the dashboard's sign-in form, served with its 401) stays a page.
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error");
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" if status == StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("method not allowed on this endpoint; allowed: {allow}")
        }
        "" => reason.to_string(),
        t => t.to_string(),
    };
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let code = reason.to_ascii_lowercase().replace([' ', '-'], "_");
    let body = serde_json::json!({"error": {"message": message, "type": kind, "code": code}});
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// A JSON body as it is (an answer's bytes), `application/json`.
pub fn json_response(body: bytes::Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at {}", uri.path()))
}
