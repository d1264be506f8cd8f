//! The error contract: every error is JSON `{"error": {"code", "message"}}` with the right
//! status, and a Redis outage is a 503 with `Retry-After`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drift_core::store::StoreError;
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unknown_monitor(name: &str) -> Self {
        let shown: String = name.chars().take(80).collect();
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_monitor",
            format!("no monitor named `{shown}` is registered"),
        )
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "redis unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "redis_unavailable",
                    "the shared store (Redis) is unavailable; retry shortly",
                )
            }
            StoreError::UnknownMonitor(m) => ApiError::unknown_monitor(&m),
            StoreError::StaleConfig => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "monitor_reconfigured",
                "the monitor was re-registered during the request; retry",
            ),
            StoreError::Protocol(msg) => {
                tracing::error!(error = %msg, "unexpected redis answer");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "unexpected answer from the store",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
