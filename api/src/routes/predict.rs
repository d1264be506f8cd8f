//! `POST /v1/predict` and its alias `POST /get-prediction`: the demo model.

use super::{BATCH_ERRORS, INGEST_AUTH_ERRORS};
use crate::batch::parse_rows_body;
use crate::error::{ApiError, ErrorCode};
use crate::extract::Body;
use crate::openapi::Alias;
use crate::routes::datadrift::snake;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use drift_contract::{PredictAnswer, Prediction, Predictions};
use std::sync::Arc;
use utoipa::openapi::path::HttpMethod;

/// A prediction request is a row or a small batch, not a bulk upload.
pub const MAX_PREDICT_ROWS: usize = 1000;

/// Predictions never touch Redis on the response path, so no store errors.
pub(crate) const PREDICT_ERRORS: &[&[ErrorCode]] =
    &[&INGEST_AUTH_ERRORS, &[ErrorCode::NoModel], &BATCH_ERRORS];

/// Predict with the demo model.
///
/// One row is answered bare, a batch as a list. The rows are queued for monitoring after
/// the answer is computed and never delay it; scikit-learn's feature names (`mean radius`)
/// are accepted.
#[utoipa::path(
    post,
    path = "/v1/predict",
    request_body(content = drift_contract::RowsBatch, example = crate::openapi::examples::rows_batch),
    responses((status = 200, description = "one prediction per row", body = PredictAnswer)),
    security((), ("bearer" = [])),
)]
pub async fn predict(
    State(st): State<Arc<AppState>>,
    body: Result<Body, ApiError>,
) -> Result<Json<PredictAnswer>, ApiError> {
    let Some((model, cfg)) = st.model.clone() else {
        return Err(ApiError::new(
            ErrorCode::NoModel,
            "this API serves no model (the default monitor is disabled)",
        ));
    };
    // The body is checked only now: without a model, `no_model` is the answer whatever
    // was sent.
    let Body(body) = body?;
    let batch = parse_rows_body(&body)?;
    let columns = batch.into_feature_columns(&cfg, MAX_PREDICT_ROWS, snake)?;
    // Monitoring takes missing values; the demo model does not impute them.
    if let Some((f, i)) = columns
        .iter()
        .enumerate()
        .find_map(|(f, c)| c.iter().position(|v| v.is_nan()).map(|i| (f, i)))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!(
                "row {i}, column `{}`: the model needs every value (null is only accepted for monitoring)",
                cfg.features[f]
            ),
        ));
    }
    let n = columns.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let row: Vec<f64> = columns.iter().map(|c| c[i]).collect();
        let probability = model
            .probability(&row)
            .map_err(|e| ApiError::wrong_arity(e.to_string()))?;
        out.push(Prediction {
            prediction: u8::from(probability >= 0.5),
            probability,
        });
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
        Ok(Json(PredictAnswer::One(out.swap_remove(0))))
    } else {
        Ok(Json(PredictAnswer::Batch(Predictions { predictions: out })))
    }
}

/// `POST /get-prediction`, the prototype's route, is served by [`predict`] too, so the
/// document describes it as a copy of that operation.
pub(crate) const GET_PREDICTION: Alias = Alias {
    path: "/get-prediction",
    of: "/v1/predict",
    method: HttpMethod::Post,
    operation_id: "get_prediction",
    summary: "Predict with the demo model (the prototype's route).",
    description: "The same bodies and answers as `POST /v1/predict`.",
};
