//! `POST /v1/monitors/{monitor}/rows`.

use super::{BATCH_ERRORS, INGEST_AUTH_ERRORS, MONITOR_ERRORS, STORE_ERRORS};
use crate::batch::parse_rows_body;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Body, MonitorName};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use drift_contract::IngestAccepted;
use std::sync::Arc;

pub(crate) const ROWS_ERRORS: &[&[ErrorCode]] = &[
    &INGEST_AUTH_ERRORS,
    &MONITOR_ERRORS,
    &BATCH_ERRORS,
    &[ErrorCode::MonitorReconfigured],
    &STORE_ERRORS,
];

/// Ingest a batch of rows.
///
/// The batch goes into every feature's window in one atomic step, which also enqueues the
/// evaluation jobs when it crosses an evaluation boundary. The 202 is sent once Redis has
/// acknowledged the whole batch; a rejected batch changed nothing. A monitor with a
/// `sample_rate` below 1 keeps each row of a valid batch with that probability and stores
/// only those (`sampled`); `accepted` still counts every row sent.
#[utoipa::path(
    post,
    path = "/v1/monitors/{monitor}/rows",
    params(drift_contract::MonitorParam),
    request_body(content = drift_contract::RowsBatch, example = crate::openapi::examples::rows_batch),
    responses((status = 202, description = "the whole batch is stored (the rows sampling kept, when the monitor samples)", body = IngestAccepted)),
    security((), ("bearer" = [])),
)]
pub async fn ingest_rows(
    State(st): State<Arc<AppState>>,
    MonitorName(monitor): MonitorName,
    Body(body): Body,
) -> Result<(StatusCode, Json<IngestAccepted>), ApiError> {
    // Parse first: a malformed body is a 400 even for a monitor we would have to look up.
    let batch = parse_rows_body(&body)?;
    let cfg = st.monitor(&monitor).await?;
    // The whole batch is validated before any row is sampled: a bad batch is refused
    // whole whatever sampling would have kept.
    let columns = batch.into_feature_columns(&cfg, st.max_batch_rows, str::to_string)?;
    let done = st.ingest(cfg, columns).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(IngestAccepted {
            accepted: done.rows,
            sampled: done.stored,
            seq: done.done.as_ref().map(|d| d.seq),
            jobs_enqueued: done.done.map_or(0, |d| d.jobs),
        }),
    ))
}
