//! Every error the API answers with, and the body it comes in.
//!
//! Clients branch on `error.code`, never on the message, so a code is part of the contract:
//! it keeps its spelling and its one HTTP status for good. The list is declared once, in
//! the macro call below, so that the enum, [`ErrorCode::ALL`], the statuses and the README
//! table cannot disagree.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($status:literal, $code:literal, $meaning:literal),)+) => {
        /// The `error.code` of an API error, with its one HTTP status.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, grouped by status (the order of the README table).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The HTTP status this code is always sent with. A `u16` keeps the contract free
            /// of HTTP crates; the server converts it.
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)+
                }
            }

            /// The snake_case spelling on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }

            /// When a client gets it, for operators (the README table and the OpenAPI
            /// document show it).
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)+
                }
            }
        }
    };
}

error_codes! {
    MalformedJson = (400, "malformed_json", "the body is not JSON (syntax error, `NaN` literal, truncated)"),
    BadRequest = (400, "bad_request", "the request could not be read: malformed HTTP framing (two or negative Content-Length, unknown Transfer-Encoding, bad header bytes) or a body that did not arrive in time"),
    BadPath = (400, "bad_path", "a path segment could not be decoded"),
    BadQuery = (400, "bad_query", "history: `after` is not an entry id like `1700000000000-0` or `limit` is not a non-negative integer"),
    Unauthorized = (401, "unauthorized", "the route needs `Authorization: Bearer <token>` and none was sent"),
    Forbidden = (403, "forbidden", "the token is not valid for this route"),
    /// Admin routes are off, not open, when no admin token is configured.
    AdminDisabled = (403, "admin_disabled", "admin routes are disabled: the API runs without `--admin-token`"),
    UnknownMonitor = (404, "unknown_monitor", "no monitor of that name is registered"),
    NotFound = (404, "not_found", "no such route"),
    NoModel = (404, "no_model", "this API serves no model (its default monitor is disabled)"),
    MethodNotAllowed = (405, "method_not_allowed", "the route does not take that method"),
    TooManyMonitors = (409, "too_many_monitors", "creating the monitor would exceed `--max-monitors`"),
    /// The request raced a re-registration of the monitor. That is a conflict, not an
    /// outage: there is nothing to wait out, so it is a 409 without `Retry-After` (it used
    /// to be a 503 when the store noticed and a 409 when the feature check did). The client
    /// reads the monitor again, since its features may have changed, and resends.
    MonitorReconfigured = (409, "monitor_reconfigured", "the monitor was re-registered during the request: read it again and resend"),
    PayloadTooLarge = (413, "payload_too_large", "the body exceeds `--max-body-bytes` (`--max-reference-bytes` for a reference) or the batch has more rows than `--max-batch-rows` (1000 for predictions)"),
    UriTooLong = (414, "uri_too_long", "the request target (path and query) is too long"),
    UnsupportedMediaType = (415, "unsupported_media_type", "a JSON route was called without `Content-Type: application/json`"),
    InvalidBatch = (422, "invalid_batch", "JSON of the wrong shape: neither batch form, an unknown field, a row that is not an array or object"),
    InvalidValue = (422, "invalid_value", "a value does not fit its feature's kind (a string, boolean, array or object for a numeric feature; a fractional number, boolean, array or object for a categorical one); the message names the row and column"),
    NonFiniteValue = (422, "non_finite_value", "a value is infinite or outside the range of a 64-bit float"),
    WrongArity = (422, "wrong_arity", "a row has more or fewer values than the batch has columns"),
    MissingFeatures = (422, "missing_features", "a feature of the monitor is missing from the batch"),
    EmptyBatch = (422, "empty_batch", "the batch has no rows"),
    UnknownFeature = (422, "unknown_feature", "a column is not a feature of the monitor"),
    DuplicateFeature = (422, "duplicate_feature", "a column appears more than once"),
    InvalidMonitor = (422, "invalid_monitor", "the monitor name or its parameters are invalid (name characters, window, stride, alpha, share, ert, reference_confidence, sample_rate, feature count)"),
    InvalidReference = (422, "invalid_reference", "the reference CSV cannot be used (empty, duplicate columns, a column without values, a declared kind that does not fit, too many categories)"),
    InvalidParameters = (422, "invalid_parameters", "a query parameter of `PUT /v1/monitors/{monitor}` is unknown or of the wrong type"),
    HeadersTooLarge = (431, "headers_too_large", "too many request headers, or one too large"),
    /// Only for answers from Redis that the code does not expect: a bug, never load.
    Internal = (500, "internal", "unexpected answer from the store (a bug: please report it)"),
    RedisUnavailable = (503, "redis_unavailable", "Redis is unreachable or too slow; retry after `Retry-After` seconds"),
    Overloaded = (503, "overloaded", "the replica is at `--max-connections`; retry after `Retry-After` seconds (health routes still answer)"),
    Starting = (503, "starting", "`/readyz` only: the replica is still registering its monitors"),
}

impl ErrorCode {
    /// Whether the answer carries `Retry-After`: only a temporary outage (503) is worth
    /// retrying unchanged.
    pub const fn retry_after(self) -> bool {
        self.status() == 503
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people: what was wrong and why. It may change between versions.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_wire_spelling_is_the_serde_spelling() {
        for &c in ErrorCode::ALL {
            let v = serde_json::to_value(c).unwrap();
            assert_eq!(v, c.as_str(), "{c:?}");
            let back: ErrorCode = serde_json::from_value(v).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn codes_are_unique_errors_grouped_by_status() {
        let mut seen = HashSet::new();
        let mut last = 0;
        for &c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!((400..600).contains(&c.status()), "{c}");
            assert!(c.status() >= last, "{c} is out of status order");
            last = c.status();
            assert!(
                !c.meaning().contains('|'),
                "{c}: `|` breaks the README table"
            );
        }
    }

    #[test]
    fn only_outages_ask_for_a_retry() {
        assert!(ErrorCode::RedisUnavailable.retry_after());
        assert!(!ErrorCode::MonitorReconfigured.retry_after());
        assert_eq!(ErrorCode::MonitorReconfigured.status(), 409);
    }

    #[test]
    fn error_body_shape() {
        let b = ErrorBody::new(ErrorCode::UnknownMonitor, "no monitor named `x`");
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            serde_json::json!({"error": {"code": "unknown_monitor", "message": "no monitor named `x`"}})
        );
    }
}
