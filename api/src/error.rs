//! The error contract on the server side: an [`ApiError`] is a contract [`ErrorCode`] and a
//! message, so the status always follows from the code, and a Redis outage is a 503 with
//! `Retry-After`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drift_contract::ErrorBody;
pub use drift_contract::ErrorCode;
use drift_store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedJson, message)
    }

    pub fn unknown_monitor(name: &str) -> Self {
        let shown: String = name.chars().take(80).collect();
        Self::new(
            ErrorCode::UnknownMonitor,
            format!("no monitor named `{shown}` is registered"),
        )
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, message)
    }

    pub fn wrong_arity(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::WrongArity, message)
    }
}

/// The contract keeps statuses as numbers so that clients need no HTTP crate; every one of
/// them is a valid status, which a test checks.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "redis unavailable");
                ApiError::new(
                    ErrorCode::RedisUnavailable,
                    "the shared store (Redis) is unavailable; retry shortly",
                )
            }
            StoreError::NotReplicated { reached, needed } => {
                tracing::warn!(reached, needed, "ingest not acknowledged: replicas short");
                ApiError::new(
                    ErrorCode::RedisUnavailable,
                    format!(
                        "the rows were written but reached {reached} of the {needed} Redis \
                         replicas an acknowledgement needs in time: they may be stored, and \
                         resending them may store them twice"
                    ),
                )
            }
            StoreError::UnknownMonitor(m) => ApiError::unknown_monitor(&m),
            StoreError::StaleConfig => ApiError::new(
                ErrorCode::MonitorReconfigured,
                "the monitor was re-registered during the request; read it again and resend",
            ),
            StoreError::TooManyMonitors(max) => ApiError::new(
                ErrorCode::TooManyMonitors,
                format!("at most {max} monitors can be registered"),
            ),
            StoreError::Protocol(msg) => {
                tracing::error!(error = %msg, "unexpected redis answer");
                ApiError::new(ErrorCode::Internal, "unexpected answer from the store")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.code.retry_after();
        let mut resp = (status, Json(ErrorBody::new(self.code, self.message))).into_response();
        if retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_real_status() {
        for &c in ErrorCode::ALL {
            let s = StatusCode::from_u16(c.status()).unwrap();
            assert!(s.is_client_error() || s.is_server_error(), "{c}");
            assert!(s.canonical_reason().is_some(), "{c}: {s}");
        }
    }

    #[test]
    fn only_outages_carry_retry_after() {
        let r = ApiError::new(ErrorCode::RedisUnavailable, "down").into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = ApiError::from(StoreError::StaleConfig).into_response();
        assert_eq!(r.status(), 409);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }
}
