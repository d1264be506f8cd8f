//! `POST /datadrift`: drop-in for the Python prototype's metric server.
//!
//! It takes that server's body, `{"features": {"columns": [...], "data": [[...]]}}` with
//! scikit-learn's feature names ("mean radius"), ingests the rows into the default monitor
//! and answers in the prototype's shape, from the shared results instead of a per-replica
//! window.

use crate::batch::{json_error, ColumnsBatch};
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use drift_core::dataset::DEFAULT_MONITOR;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

#[derive(Deserialize)]
struct Body {
    features: Frame,
}

#[derive(Deserialize)]
struct Frame {
    columns: Vec<String>,
    data: Vec<Vec<f64>>,
}

/// scikit-learn's "mean radius" is our "mean_radius".
pub fn snake(name: &str) -> String {
    name.trim().replace(' ', "_")
}

pub async fn datadrift(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    st.tokens.check_ingest(&headers)?;
    let body = super::body(body)?;
    let parsed: Body = serde_json::from_slice(&body).map_err(json_error)?;
    let client_names = parsed.features.columns.clone();
    let batch = ColumnsBatch {
        columns: parsed.features.columns,
        data: parsed.features.data,
    };
    let cfg = st.monitor(DEFAULT_MONITOR).await?;
    let columns = batch.into_feature_columns(&cfg, st.max_batch_rows, snake)?;
    let (cfg, done) = st.ingest(cfg, &columns).await?;
    let status = st.store.status(&cfg).await?;
    let window = cfg.params.window as u64;
    let mut pvalues = Map::new();
    let mut drifted = Vec::new();
    for name in &client_names {
        let Some(i) = cfg.feature_index(&snake(name)) else {
            continue;
        };
        if let Some(r) = &status.results[i] {
            pvalues.insert(name.clone(), json!(r.p_value));
            if r.drifted {
                drifted.push(name.clone());
            }
        }
    }
    let full = done.seq >= window;
    Ok(Json(json!({
        "status": if full { "drift_checked" } else { "accumulating" },
        "samples_in_window": done.seq.min(window),
        "window_size": window,
        "drift_share": status.state.drift_share,
        "dataset_drift": status.state.dataset_drifted,
        "number_of_drifted_columns": status.state.features_drifting,
        "drifted_features": drifted,
        "feature_pvalues": pvalues,
        "seq": done.seq,
    })))
}
