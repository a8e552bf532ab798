//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiError;
use crate::startup::AppState;

/// Liveness: the process answers.
pub async fn healthz(State(state): State<AppState>) -> Response {
    axum::Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started.elapsed().as_secs(),
    }))
    .into_response()
}

/// Readiness: the store answers within two seconds.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let kind = state.store.kind();
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => axum::Json(json!({ "status": "ready", "store": kind })).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: store error");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "unavailable", "store": kind, "reason": e.to_string() })),
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "unavailable", "store": kind, "reason": "the store did not answer within 2 s" })),
        )
            .into_response(),
    }
}

/// Prometheus metrics; behind a bearer token when `metrics_token` is set.
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(expected) = &state.settings.metrics_token {
        let given = crate::auth::request_token(&headers).unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::render_metrics(),
    )
        .into_response())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
