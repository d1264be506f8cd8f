//! Liveness, readiness, this replica's metrics, and the answers of unknown routes.

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use drift_contract::{Health, HealthStatus};
use drift_service::metrics::TEXT_FORMAT;
use std::sync::Arc;

pub(crate) const READY_ERRORS: &[&[ErrorCode]] = &[&[ErrorCode::Starting], &super::STORE_ERRORS];

/// Liveness.
///
/// The process answers. Never touches Redis, so a Redis outage does not get healthy
/// replicas restarted.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "the process answers", body = Health)),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: HealthStatus::Ok,
    })
}

/// Readiness.
///
/// Redis answers and this replica's monitors are registered.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, description = "ready for traffic", body = Health)),
)]
pub async fn readyz(State(st): State<Arc<AppState>>) -> Result<Json<Health>, ApiError> {
    st.store.ping().await?;
    if !st.registered.load(std::sync::atomic::Ordering::Acquire) {
        return Err(ApiError::new(
            ErrorCode::Starting,
            "monitors are being registered",
        ));
    }
    Ok(Json(Health {
        status: HealthStatus::Ready,
    }))
}

/// This replica's metrics.
///
/// Operational metrics of this replica only, in Prometheus' text format; the global drift
/// state is served by the exporter.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((
        status = 200,
        description = "Prometheus text exposition format 0.0.4",
        body = String,
        content_type = "text/plain",
    )),
)]
pub async fn metrics(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, TEXT_FORMAT)],
        st.metrics.render(),
    )
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
}
