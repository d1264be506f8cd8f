//! `GET /v1/monitors` and `GET /v1/monitors/{monitor}`.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use drift_core::store::MonitorStatus;
use drift_core::MonitorConfig;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The public view of a monitor: config, decision, counters and per-feature results.
pub fn monitor_view(cfg: &MonitorConfig, status: &MonitorStatus) -> Value {
    let s = &status.state;
    let mut results = Map::new();
    for (f, r) in cfg.features.iter().zip(&status.results) {
        results.insert(f.clone(), serde_json::to_value(r).unwrap_or(Value::Null));
    }
    json!({
        "name": cfg.name,
        "version": cfg.version,
        "features": cfg.features,
        "params": cfg.params,
        "reference_rows": cfg.reference_rows,
        "rows": s.rows,
        "window_rows": s.rows.min(cfg.params.window as u64),
        "status": if s.rows < cfg.params.window as u64 { "accumulating" } else { "monitoring" },
        "features_drifting": s.features_drifting,
        "drift_share": s.drift_share,
        "dataset_drifted": s.dataset_drifted,
        "last_detected_at": s.last_detected_at,
        "counters": {
            "rounds": s.rounds,
            "evaluations": s.evaluations,
            "stale": s.stale,
            "detections": s.detections,
            "dead_letters": s.dead_letters,
        },
        "results": results,
    })
}

pub async fn list(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for name in st.store.monitors().await? {
        let Some(cfg) = st.store.config(&name).await? else {
            continue;
        };
        let status = st.store.status(&cfg).await?;
        out.push(json!({
            "name": cfg.name,
            "version": cfg.version,
            "features": cfg.features.len(),
            "params": cfg.params,
            "rows": status.state.rows,
            "features_drifting": status.state.features_drifting,
            "dataset_drifted": status.state.dataset_drifted,
        }));
    }
    Ok(Json(json!({ "monitors": out })))
}

pub async fn get_one(
    State(st): State<Arc<AppState>>,
    monitor: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let monitor = super::path(monitor)?;
    // Always read the config from Redis here: another replica may have replaced it.
    let cfg = match st.store.config(&monitor).await? {
        Some(cfg) => Arc::new(cfg),
        None => st.monitor(&monitor).await?,
    };
    let status = st.store.status(&cfg).await?;
    Ok(Json(monitor_view(&cfg, &status)))
}

#[derive(serde::Deserialize)]
pub struct HistoryQuery {
    /// Only entries after this id (exclusive), to page forward.
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/monitors/{monitor}/history`: every evaluation recorded (oldest first, capped
/// in Redis), for drift trends and for measuring detection delay.
pub async fn history(
    State(st): State<Arc<AppState>>,
    monitor: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let monitor = super::path(monitor)?;
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "bad_query",
            e.body_text(),
        )
    })?;
    if let Some(after) = &q.after {
        let valid = after.split_once('-').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
        if !valid {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "bad_query",
                "`after` must be an entry id like 1700000000000-0",
            ));
        }
    }
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let cfg = match st.store.config(&monitor).await? {
        Some(cfg) => Arc::new(cfg),
        None => st.monitor(&monitor).await?,
    };
    let entries = st.store.history(&cfg, q.after.as_deref(), limit).await?;
    Ok(Json(
        json!({ "monitor": cfg.name, "version": cfg.version, "entries": entries }),
    ))
}
