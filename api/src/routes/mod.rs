//! HTTP handlers, one module per resource.
pub mod admin;
pub mod datadrift;
pub mod health;
pub mod ingest;
pub mod monitors;
pub mod predict;

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::StatusCode;

/// The body, or the contract's error for a body that could not be read (413 past the limit).
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("request body exceeds the configured limit")
        } else {
            ApiError::new(rej.status(), "bad_request", rej.body_text())
        }
    })
}

pub fn path(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s)
        .map_err(|rej| ApiError::new(StatusCode::BAD_REQUEST, "bad_path", rej.body_text()))
}
