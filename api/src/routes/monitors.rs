//! `GET /v1/monitors`, `GET /v1/monitors/{monitor}` and its history.

use super::{MONITOR_ERRORS, STORE_ERRORS};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiQuery, MonitorName};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use drift_contract::{
    parse_entry_id, HistoryPage, HistoryQuery, MonitorList, MonitorSummary, MonitorView,
    HISTORY_PAGE_MAX,
};
use drift_core::MonitorConfig;
use std::sync::Arc;

pub(crate) const LIST_ERRORS: &[&[ErrorCode]] = &[&STORE_ERRORS];
pub(crate) const GET_ERRORS: &[&[ErrorCode]] = &[&MONITOR_ERRORS, &STORE_ERRORS];
pub(crate) const HISTORY_ERRORS: &[&[ErrorCode]] =
    &[&MONITOR_ERRORS, &[ErrorCode::BadQuery], &STORE_ERRORS];

/// List the monitors.
///
/// Every registered monitor with its parameters and summary state.
#[utoipa::path(
    get,
    path = "/v1/monitors",
    responses((status = 200, description = "the registered monitors", body = MonitorList)),
)]
pub async fn list(State(st): State<Arc<AppState>>) -> Result<Json<MonitorList>, ApiError> {
    let mut monitors = Vec::new();
    for name in st.store.monitors().await? {
        let Some(cfg) = st.store.config(&name).await? else {
            continue;
        };
        let status = st.store.status(&cfg).await?;
        monitors.push(MonitorSummary::new(&cfg, &status));
    }
    Ok(Json(MonitorList { monitors }))
}

/// The config from Redis, not from this replica's cache: another replica may have
/// replaced the monitor, and readers must see the version whose results they get.
async fn fresh_config(st: &AppState, name: &str) -> Result<Arc<MonitorConfig>, ApiError> {
    match st.store.config(name).await? {
        Some(cfg) => Ok(Arc::new(cfg)),
        None => st.monitor(name).await,
    }
}

/// Read one monitor.
///
/// Config, decision, counters and every feature's latest result.
#[utoipa::path(
    get,
    path = "/v1/monitors/{monitor}",
    params(drift_contract::MonitorParam),
    responses((status = 200, description = "the monitor", body = MonitorView)),
)]
pub async fn get_one(
    State(st): State<Arc<AppState>>,
    MonitorName(monitor): MonitorName,
) -> Result<Json<MonitorView>, ApiError> {
    let cfg = fresh_config(&st, &monitor).await?;
    let status = st.store.status(&cfg).await?;
    Ok(Json(MonitorView::new(&cfg, &status)))
}

/// Read a monitor's evaluation history.
///
/// Every evaluation recorded for the current version (oldest first, capped in Redis), for
/// drift trends and for measuring detection delay. Page forward with `after`.
#[utoipa::path(
    get,
    path = "/v1/monitors/{monitor}/history",
    params(drift_contract::MonitorParam, HistoryQuery),
    responses((status = 200, description = "one page of evaluations", body = HistoryPage)),
)]
pub async fn history(
    State(st): State<Arc<AppState>>,
    MonitorName(monitor): MonitorName,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    // Checked here rather than left to Redis, which would refuse the id as an error of its
    // own and turn a client mistake into a 500.
    if q.after
        .as_deref()
        .is_some_and(|a| parse_entry_id(a).is_none())
    {
        return Err(ApiError::new(
            ErrorCode::BadQuery,
            "`after` must be an entry id like 1700000000000-0",
        ));
    }
    if q.limit == Some(0) {
        return Err(ApiError::new(
            ErrorCode::BadQuery,
            format!("`limit` must be 1 to {HISTORY_PAGE_MAX} (larger values are capped)"),
        ));
    }
    let limit = q.limit.unwrap_or(1000).min(HISTORY_PAGE_MAX);
    let cfg = fresh_config(&st, &monitor).await?;
    let after = match q.after.as_deref().and_then(parse_entry_id) {
        // Nothing can follow the largest id, and Redis refuses an exclusive range from it.
        Some((u64::MAX, u64::MAX)) => {
            return Ok(Json(HistoryPage {
                monitor: cfg.name.clone(),
                version: cfg.version.clone(),
                entries: Vec::new(),
            }))
        }
        _ => q.after.as_deref(),
    };
    let entries = st.store.history(&cfg, after, limit).await?;
    Ok(Json(HistoryPage {
        monitor: cfg.name.clone(),
        version: cfg.version.clone(),
        entries,
    }))
}
