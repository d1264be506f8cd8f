//! Admin routes: create or replace a monitor from a reference CSV, delete it, reset it.
//! The admin token is checked by the route layer (see `auth`), before any of this runs.

use super::{ADMIN_AUTH_ERRORS, MONITOR_ERRORS, STORE_ERRORS};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiQuery, Body, MonitorName, NewMonitorName};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use drift_contract::{
    Deleted, MonitorDefinition, PutMonitorAnswer, PutMonitorQuery, PutOutcome, Reset,
};
use drift_core::{Dataset, MonitorSpec};
use drift_store::Registered;
use std::sync::Arc;

pub(crate) const PUT_ERRORS: &[&[ErrorCode]] = &[
    &ADMIN_AUTH_ERRORS,
    &[
        ErrorCode::BadPath,
        ErrorCode::InvalidMonitor,
        ErrorCode::InvalidParameters,
        ErrorCode::BadRequest,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InvalidReference,
        ErrorCode::TooManyMonitors,
    ],
    &STORE_ERRORS,
];
pub(crate) const CLEAR_ERRORS: &[&[ErrorCode]] =
    &[&ADMIN_AUTH_ERRORS, &MONITOR_ERRORS, &STORE_ERRORS];

/// Create or replace a monitor.
///
/// The body is the reference CSV (a header line, then one row per line). A column is
/// numeric when every value is a number, categorical otherwise (override with
/// `categorical=` and `numeric=`); empty cells, `NA`, `null` and `NaN` are missing values. 201 when created, 200
/// when replaced or unchanged. A new reference version clears the old results; workers
/// pick the new reference up by its version.
#[utoipa::path(
    put,
    path = "/v1/monitors/{monitor}",
    params(drift_contract::NewMonitorParam, PutMonitorQuery),
    request_body(
        content = String,
        content_type = "text/csv",
        description = "the reference data: a header line, then one row per line (numbers, categories, empty cells for missing values)",
        example = crate::openapi::examples::reference_csv,
    ),
    responses(
        (status = 200, description = "replaced, or unchanged", body = PutMonitorAnswer),
        (status = 201, description = "created", body = PutMonitorAnswer),
    ),
    security(("bearer" = [])),
)]
pub async fn put_monitor(
    State(st): State<Arc<AppState>>,
    NewMonitorName(name): NewMonitorName,
    ApiQuery(q): ApiQuery<PutMonitorQuery>,
    Body(body): Body,
) -> Result<(StatusCode, Json<PutMonitorAnswer>), ApiError> {
    let ds = Dataset::from_csv_with(body.as_ref(), &q.csv_schema())
        .map_err(|e| ApiError::new(ErrorCode::InvalidReference, e.to_string()))?;
    let spec = MonitorSpec::new(&name, &ds, q.params(), st.limits.max_features)
        .map_err(|e| ApiError::new(ErrorCode::InvalidMonitor, e.to_string()))?;
    // The limit is enforced by the registration script itself, so that concurrent PUTs
    // of new monitors cannot overshoot it.
    let (outcome, created) = st
        .store
        .register_within(&spec, Some(st.limits.max_monitors))
        .await?;
    st.forget(&name);
    tracing::info!(monitor = %name, version = %spec.config.version, ?outcome, "monitor put by admin");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let outcome = match outcome {
        Registered::Unchanged => PutOutcome::Unchanged,
        Registered::ParamsUpdated => PutOutcome::ParamsUpdated,
        Registered::NewVersion => PutOutcome::NewVersion,
    };
    Ok((
        status,
        Json(PutMonitorAnswer {
            monitor: MonitorDefinition(spec.config),
            outcome,
        }),
    ))
}

/// Empties the monitor, and with `delete` drops its config too (and this replica's cached
/// copy of it).
async fn clear(st: &AppState, name: &str, delete: bool) -> Result<(), ApiError> {
    let Some(cfg) = st.store.config(name).await? else {
        // A name listed without a config (an interrupted registration) can be deleted.
        if delete && st.store.unlist(name).await? {
            return Ok(());
        }
        return Err(ApiError::unknown_monitor(name));
    };
    st.store.clear(&cfg, delete).await?;
    if delete {
        st.forget(name);
    }
    Ok(())
}

/// Delete a monitor and all its data.
///
/// A monitor that API replicas declare in their own configuration (the default
/// `breast_cancer`, `--monitors-config`) comes back: the next request that needs it
/// registers it again, empty, as after a Redis data loss.
#[utoipa::path(
    delete,
    path = "/v1/monitors/{monitor}",
    params(drift_contract::MonitorParam),
    responses((status = 200, description = "deleted", body = Deleted)),
    security(("bearer" = [])),
)]
pub async fn delete_monitor(
    State(st): State<Arc<AppState>>,
    MonitorName(name): MonitorName,
) -> Result<Json<Deleted>, ApiError> {
    clear(&st, &name, true).await?;
    tracing::info!(monitor = %name, "monitor deleted by admin");
    Ok(Json(Deleted { deleted: name }))
}

/// Reset a monitor.
///
/// Empties windows, results, counters and history, keeping the config and reference (e.g.
/// after a planned change of the input).
#[utoipa::path(
    post,
    path = "/v1/monitors/{monitor}/reset",
    params(drift_contract::MonitorParam),
    responses((status = 200, description = "reset", body = Reset)),
    security(("bearer" = [])),
)]
pub async fn reset_monitor(
    State(st): State<Arc<AppState>>,
    MonitorName(name): MonitorName,
) -> Result<Json<Reset>, ApiError> {
    clear(&st, &name, false).await?;
    tracing::info!(monitor = %name, "monitor reset by admin");
    Ok(Json(Reset { reset: name }))
}
