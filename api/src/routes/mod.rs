//! HTTP handlers, one module per resource. Each module also lists the error codes its
//! handlers can answer with; the OpenAPI document is built from those lists.
pub mod admin;
pub mod datadrift;
pub mod health;
pub mod ingest;
pub mod monitors;
pub mod predict;

use drift_contract::ErrorCode;

/// What any route that reads or writes Redis may answer on top of its own errors.
pub(crate) const STORE_ERRORS: [ErrorCode; 2] = [ErrorCode::Internal, ErrorCode::RedisUnavailable];

/// What any route on an existing `{monitor}` may answer: a path that does not decode, or
/// no monitor of that name.
pub(crate) const MONITOR_ERRORS: [ErrorCode; 2] = [ErrorCode::BadPath, ErrorCode::UnknownMonitor];

/// What a batch of rows can be rejected for (body, parse, match against the features).
pub(crate) const BATCH_ERRORS: [ErrorCode; 12] = [
    ErrorCode::BadRequest,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::PayloadTooLarge,
    ErrorCode::MalformedJson,
    ErrorCode::InvalidBatch,
    ErrorCode::InvalidValue,
    ErrorCode::NonFiniteValue,
    ErrorCode::WrongArity,
    ErrorCode::MissingFeatures,
    ErrorCode::EmptyBatch,
    ErrorCode::UnknownFeature,
    ErrorCode::DuplicateFeature,
];

/// The answers of the ingest token check.
pub(crate) const INGEST_AUTH_ERRORS: [ErrorCode; 2] =
    [ErrorCode::Unauthorized, ErrorCode::Forbidden];

/// The answers of the admin token check.
pub(crate) const ADMIN_AUTH_ERRORS: [ErrorCode; 3] = [
    ErrorCode::Unauthorized,
    ErrorCode::Forbidden,
    ErrorCode::AdminDisabled,
];
