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
/// acknowledged the whole batch; a rejected batch changed nothing.
#[utoipa::path(
    post,
    path = "/v1/monitors/{monitor}/rows",
    params(drift_contract::MonitorParam),
    request_body(content = drift_contract::RowsBatch, example = crate::openapi::examples::rows_batch),
    responses((status = 202, description = "the whole batch is stored", body = IngestAccepted)),
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
    let columns = batch.into_feature_columns(&cfg, st.max_batch_rows, str::to_string)?;
    let n = columns.first().map_or(0, Vec::len);
    let (cfg, done) = st.ingest(cfg, columns).await?;
    st.metrics
        .rows_accepted
        .with_label_values(&[&cfg.name])
        .inc_by(n as u64);
    Ok((
        StatusCode::ACCEPTED,
        Json(IngestAccepted {
            accepted: n,
            seq: done.seq,
            jobs_enqueued: done.jobs,
        }),
    ))
}
