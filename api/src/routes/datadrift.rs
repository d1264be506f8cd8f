//! `POST /datadrift`: drop-in for the Python prototype's metric server.
//!
//! It takes that server's body, `{"features": {"columns": [...], "data": [[...]]}}` with
//! scikit-learn's feature names ("mean radius"), ingests the rows into the default monitor
//! and answers in the prototype's shape, from the shared results instead of a per-replica
//! window.

use super::{BATCH_ERRORS, INGEST_AUTH_ERRORS, STORE_ERRORS};
use crate::batch::{json_error, numeric_frame};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Body;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use drift_contract::{DataDriftAnswer, DataDriftRequest, DataDriftStatus};
use drift_core::dataset::DEFAULT_MONITOR;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) const DATADRIFT_ERRORS: &[&[ErrorCode]] = &[
    &INGEST_AUTH_ERRORS,
    &BATCH_ERRORS,
    &[ErrorCode::UnknownMonitor, ErrorCode::MonitorReconfigured],
    &STORE_ERRORS,
];

/// scikit-learn's "mean radius" is our "mean_radius".
pub fn snake(name: &str) -> String {
    name.trim().replace(' ', "_")
}

/// Ingest rows the Python prototype's way.
///
/// The rows go into the default monitor; the answer is its latest results, in the
/// prototype's shape and under the client's feature names.
#[utoipa::path(
    post,
    path = "/datadrift",
    tag = "ingest",
    request_body(content = DataDriftRequest, example = crate::openapi::examples::datadrift_request),
    responses((status = 200, description = "stored; the default monitor's latest results", body = DataDriftAnswer)),
    security((), ("bearer" = [])),
)]
pub async fn datadrift(
    State(st): State<Arc<AppState>>,
    Body(body): Body,
) -> Result<Json<DataDriftAnswer>, ApiError> {
    let parsed: DataDriftRequest = serde_json::from_slice(&body).map_err(json_error)?;
    let client_names = parsed.features.columns.clone();
    let batch = numeric_frame(parsed.features.columns, parsed.features.data);
    let cfg = st.monitor(DEFAULT_MONITOR).await?;
    let columns = batch.into_feature_columns(&cfg, st.max_batch_rows, snake)?;
    let done = st.ingest(cfg, columns).await?;
    let cfg = done.cfg;
    let status = st.statuses.get(&st.store, &cfg).await?;
    // When sampling kept no row nothing was written: the row count is the one of the
    // latest results read (at most `DATADRIFT_STATUS_AGE` old), not a Redis call more.
    let seq = done.done.map_or(status.state.rows, |d| d.seq);
    let window = cfg.params.window as u64;
    let mut feature_pvalues = BTreeMap::new();
    let mut drifted_features = Vec::new();
    for name in &client_names {
        let Some(r) = cfg
            .feature_index(&snake(name))
            .and_then(|i| status.results.get(i))
            .and_then(Option::as_ref)
        else {
            continue;
        };
        feature_pvalues.insert(name.clone(), r.p_value);
        if r.drifted {
            drifted_features.push(name.clone());
        }
    }
    Ok(Json(DataDriftAnswer {
        status: if seq >= window {
            DataDriftStatus::DriftChecked
        } else {
            DataDriftStatus::Accumulating
        },
        samples_in_window: seq.min(window),
        window_size: window,
        drift_share: status.state.drift_share,
        dataset_drift: status.state.dataset_drifted,
        number_of_drifted_columns: status.state.features_drifting,
        drifted_features,
        feature_pvalues,
        seq,
    }))
}
