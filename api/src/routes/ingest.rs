//! `POST /v1/monitors/{monitor}/rows`.

use crate::batch::parse_rows_body;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn ingest_rows(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    monitor: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    st.tokens.check_ingest(&headers)?;
    let monitor = super::path(monitor)?;
    let body = super::body(body)?;
    // Parse first: a malformed body is a 400 even for a monitor we would have to look up.
    let batch = parse_rows_body(&body)?;
    let cfg = st.monitor(&monitor).await?;
    let columns = batch.into_feature_columns(&cfg, st.max_batch_rows, str::to_string)?;
    let n = columns[0].len();
    let (cfg, done) = st.ingest(cfg, &columns).await?;
    st.metrics
        .rows_accepted
        .with_label_values(&[&cfg.name])
        .inc_by(n as u64);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": n, "seq": done.seq, "jobs_enqueued": done.jobs})),
    ))
}
