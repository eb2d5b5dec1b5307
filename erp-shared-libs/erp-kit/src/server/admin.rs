//! The admin HTTP endpoint, on its own port so it is never exposed through the gateway:
//! `/metrics` (Prometheus/OpenMetrics), `/healthz` (the process is alive) and `/readyz`
//! (the service is SERVING; false while draining).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};

use crate::metrics::MetricsRegistry;

#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) metrics: Arc<MetricsRegistry>,
    pub(crate) ready: Arc<AtomicBool>,
}

pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    }
}
