//! Extractors whose rejection is the API's own error, so that a handler never sees axum's
//! plain-text rejections and every failure keeps the JSON contract.

use crate::error::{ApiError, ErrorCode};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use drift_contract::{HistoryQuery, PutMonitorQuery};
use drift_core::monitor::validate_monitor_name;
use serde::de::DeserializeOwned;

/// The `{monitor}` path segment of a route that reads or writes an existing monitor. A name
/// that no monitor can have is left to the lookup, which answers 404 as for any unknown name.
pub struct MonitorName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for MonitorName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rej| ApiError::new(ErrorCode::BadPath, rej.body_text()))?;
        Ok(MonitorName(name))
    }
}

/// The `{monitor}` of a monitor being created: it must also be a valid name, since it ends
/// up in Redis keys and metric labels (422 `invalid_monitor`).
pub struct NewMonitorName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for NewMonitorName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let MonitorName(name) = MonitorName::from_request_parts(parts, state).await?;
        validate_monitor_name(&name)
            .map_err(|e| ApiError::new(ErrorCode::InvalidMonitor, e.to_string()))?;
        Ok(NewMonitorName(name))
    }
}

/// The raw request body, within the route's `DefaultBodyLimit` (413 past it).
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|rej| {
                if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large("request body exceeds the configured limit")
                } else {
                    ApiError::new(ErrorCode::BadRequest, rej.body_text())
                }
            })
    }
}

/// A query string type, with the code its route answers when the string does not parse:
/// reads say the query is malformed (400), the admin `PUT` that its parameters are
/// invalid (422), as they always have.
pub trait QueryParams: DeserializeOwned {
    const REJECTED: ErrorCode;
}

impl QueryParams for HistoryQuery {
    const REJECTED: ErrorCode = ErrorCode::BadQuery;
}

impl QueryParams for PutMonitorQuery {
    const REJECTED: ErrorCode = ErrorCode::InvalidParameters;
}

/// The parsed query string of a route.
pub struct ApiQuery<T>(pub T);

impl<T: QueryParams, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|rej| ApiError::new(T::REJECTED, rej.body_text()))
    }
}
