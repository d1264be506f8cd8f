//! Request checks that run before a body is read: a declared `Content-Length` over the
//! route's limit (413), a JSON route called without `Content-Type: application/json` (415),
//! and a deadline on reading the whole body. They are route layers, inside the token check,
//! so an unauthenticated client learns nothing and sends nothing more than its headers.

use crate::error::ApiError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// `error.code` of a JSON route called with another media type (415).
pub const UNSUPPORTED_MEDIA_TYPE: &str = drift_contract::ErrorCode::UnsupportedMediaType.as_str();

/// An error body in the contract's shape, built below the router (where no `ApiError`
/// conversion runs).
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The largest body a route reads, for [`declared_length`].
#[derive(Clone, Copy, Debug)]
pub struct MaxBody(pub usize);

/// Answers 413 at once when the declared `Content-Length` exceeds the route's limit, so
/// that the body is never read (the connection is closed after the answer).
/// Chunked bodies have no declared length: `DefaultBodyLimit` stops them while reading.
pub async fn declared_length(State(max): State<MaxBody>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > max.0 as u64 => ApiError::too_large(format!(
            "the declared body of {n} bytes exceeds this route's limit of {} bytes",
            max.0
        ))
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Whether a `Content-Type` value is `application/json`, parameters (`; charset=utf-8`)
/// allowed, case-insensitive.
pub fn is_json(value: &HeaderValue) -> bool {
    let Ok(v) = value.to_str() else {
        return false;
    };
    let essence = v.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// JSON routes take `application/json` only (415 otherwise): a browser page can send
/// `text/plain` or a form cross-origin without a preflight, never `application/json`.
pub async fn json_only(req: Request, next: Next) -> Response {
    match req.headers().get(header::CONTENT_TYPE) {
        Some(v) if is_json(v) => next.run(req).await,
        _ => json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            UNSUPPORTED_MEDIA_TYPE,
            "this route takes `Content-Type: application/json`",
        ),
    }
}

/// A body that fails once `deadline` has passed before its last frame: a client that
/// trickles a body (or declares one and never sends it) cannot hold a request open.
pub struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    after: Duration,
}

/// The error a body past its deadline yields (the extractors answer it as a body that
/// could not be read, and the connection is closed).
#[derive(Debug)]
pub struct BodyTimeout(Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the body was not received within {:?}", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.after))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The body deadline of every request, counted from when its head was routed.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline(pub Duration);

/// Layer that puts every request body under [`Deadline`].
pub async fn body_deadline(State(d): State<BodyDeadline>, req: Request, next: Next) -> Response {
    let req = req.map(|inner| {
        if inner.is_end_stream() {
            inner
        } else {
            Body::new(Deadline {
                inner,
                sleep: Box::pin(tokio::time::sleep(d.0)),
                after: d.0,
            })
        }
    });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            " application/json ;charset=UTF-8",
        ] {
            assert!(is_json(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/json-seq",
            "",
        ] {
            assert!(!is_json(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
