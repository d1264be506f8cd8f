//! Admin routes: create or replace a monitor from a reference CSV, delete it, reset it.

use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use drift_core::monitor::validate_monitor_name;
use drift_core::store::Registered;
use drift_core::{Correction, Dataset, MonitorSpec, Params};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Parameters of `PUT /v1/monitors/{monitor}`, in the query string; the body is the CSV.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutQuery {
    window: Option<usize>,
    stride: Option<usize>,
    alpha: Option<f64>,
    correction: Option<Correction>,
    dataset_drift_share: Option<f64>,
    /// Comma-separated columns to leave out (e.g. the label).
    exclude: Option<String>,
}

fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::invalid("invalid_parameters", e.body_text())
}

/// `PUT /v1/monitors/{monitor}?window=..&exclude=target` with the reference CSV as body:
/// 201 when created, 200 when replaced or unchanged. A new reference version clears the old
/// results; workers pick the new reference up by its version.
pub async fn put_monitor(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    monitor: Result<Path<String>, PathRejection>,
    query: Result<Query<PutQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    st.tokens.check_admin(&headers)?;
    let name = super::path(monitor)?;
    validate_monitor_name(&name)
        .map_err(|e| ApiError::invalid("invalid_monitor", e.to_string()))?;
    let Query(q) = query.map_err(bad_query)?;
    let body = super::body(body)?;
    let exclude: Vec<&str> = q
        .exclude
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let ds = Dataset::from_csv(body.as_ref(), &exclude)
        .map_err(|e| ApiError::invalid("invalid_reference", e.to_string()))?;
    let defaults = Params::default();
    let params = Params {
        window: q.window.unwrap_or(defaults.window),
        stride: q.stride.unwrap_or(defaults.stride),
        alpha: q.alpha.unwrap_or(defaults.alpha),
        correction: q.correction.unwrap_or(defaults.correction),
        dataset_drift_share: q
            .dataset_drift_share
            .unwrap_or(defaults.dataset_drift_share),
    };
    let spec = MonitorSpec::new(&name, &ds, params, st.limits.max_features)
        .map_err(|e| ApiError::invalid("invalid_monitor", e.to_string()))?;
    let existing = st.store.monitors().await?;
    let exists = existing.contains(&name);
    if !exists && existing.len() >= st.limits.max_monitors {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_monitors",
            format!(
                "at most {} monitors can be registered",
                st.limits.max_monitors
            ),
        ));
    }
    let outcome = st.store.register(&spec).await?;
    st.forget(&name);
    tracing::info!(monitor = %name, version = %spec.config.version, ?outcome, "monitor put by admin");
    let status = if exists {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let outcome = match outcome {
        Registered::Unchanged => "unchanged",
        Registered::ParamsUpdated => "params_updated",
        Registered::NewVersion => "new_version",
    };
    Ok((
        status,
        Json(json!({"monitor": spec.config, "outcome": outcome})),
    ))
}

/// Checks the admin token and clears the monitor (`delete`: also its config).
async fn clear(
    st: &AppState,
    headers: &HeaderMap,
    monitor: Result<Path<String>, PathRejection>,
    delete: bool,
) -> Result<String, ApiError> {
    st.tokens.check_admin(headers)?;
    let name = super::path(monitor)?;
    let cfg = st
        .store
        .config(&name)
        .await?
        .ok_or_else(|| ApiError::unknown_monitor(&name))?;
    st.store.clear(&cfg, delete).await?;
    Ok(name)
}

/// `DELETE /v1/monitors/{monitor}`: removes the monitor and all its data.
pub async fn delete_monitor(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    monitor: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = clear(&st, &headers, monitor, true).await?;
    st.forget(&name);
    tracing::info!(monitor = %name, "monitor deleted by admin");
    Ok(Json(json!({"deleted": name})))
}

/// `POST /v1/monitors/{monitor}/reset`: empties windows, results, counters and history,
/// keeping the config and reference (e.g. after a planned change of the input).
pub async fn reset_monitor(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    monitor: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = clear(&st, &headers, monitor, false).await?;
    tracing::info!(monitor = %name, "monitor reset by admin");
    Ok(Json(json!({"reset": name})))
}
