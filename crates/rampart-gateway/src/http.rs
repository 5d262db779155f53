//! The HTTP surface: the OpenAI-compatible data plane, feedback, operational endpoints, the
//! admin API and the `/ui/` dashboard.

pub mod admin;
pub mod chat;
pub mod fallback;
pub mod feedback;
pub mod ops;
pub mod outcomes;
pub mod ui;

use axum::Router;
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
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/feedback", post(feedback::feedback))
        .route("/v1/outcomes", post(outcomes::outcomes))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .fallback(not_found)
        .with_state(gw)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at {}", uri.path()))
}
