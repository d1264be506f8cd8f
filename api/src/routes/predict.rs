//! `POST /v1/predict` and its alias `POST /get-prediction`: the demo model.

use crate::batch::parse_rows_body;
use crate::error::ApiError;
use crate::routes::datadrift::snake;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// A prediction request is a row or a small batch, not a bulk upload.
pub const MAX_PREDICT_ROWS: usize = 1000;

/// Answers `{"prediction", "probability"}` for one row, `{"predictions": [...]}` for more.
/// The rows are queued for monitoring after the answer is computed and never delay it.
pub async fn predict(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    st.tokens.check_ingest(&headers)?;
    let Some((model, cfg)) = st.model.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_model",
            "this API serves no model (the default monitor is disabled)",
        ));
    };
    let body = super::body(body)?;
    let batch = parse_rows_body(&body)?;
    let columns = batch.into_feature_columns(&cfg, MAX_PREDICT_ROWS, snake)?;
    let n = columns[0].len();
    let mut out = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let row: Vec<f64> = columns.iter().map(|c| c[i]).collect();
        let p = model
            .probability(&row)
            .map_err(|e| ApiError::invalid("wrong_arity", e.to_string()))?;
        out.push(json!({"prediction": u8::from(p >= 0.5), "probability": p}));
        rows.push(row);
    }
    let logger = st.row_logger.read().ok().and_then(|l| l.clone());
    match logger {
        Some(logger) => rows.into_iter().for_each(|r| logger.log(&st, r)),
        None => st
            .metrics
            .rows_dropped
            .with_label_values(&["shutting_down"])
            .inc_by(n as u64),
    }
    if n == 1 {
        Ok(Json(out.swap_remove(0)))
    } else {
        Ok(Json(json!({ "predictions": out })))
    }
}
