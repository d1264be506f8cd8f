//! The HTTP/1.1 server: an accept loop with a header-read timeout, an idle keep-alive
//! timeout, a bound on concurrent connections, back-off on accept errors, graceful
//! shutdown, and JSON bodies on the errors hyper answers by itself.
//!
//! `axum::serve` has none of these knobs; the request path (router, extractors) is the
//! same. Body deadlines are a router layer ([`crate::limits::body_deadline`]).
//!
//! Connections beyond `--max-connections` are not refused outright: up to [`OVERFLOW`]
//! more are accepted as *overflow* connections, which serve `/healthz` and `/readyz` (one
//! request each, short header timeout, no keep-alive) and answer 503 to anything else, so
//! that health checks keep working while the replica is saturated. Beyond that, new
//! connections wait in the kernel's accept queue until a slot frees.

use crate::limits::json_error;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Connections accepted beyond `--max-connections` to answer health checks.
pub const OVERFLOW: usize = 32;

/// Header-read timeout of an overflow connection.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// `error.code` of a request refused on an overflow connection (503). Not (yet) an
/// `ErrorCode` of the contract.
pub const OVERLOADED: &str = drift_contract::ErrorCode::Overloaded.as_str();

/// File descriptors kept free for everything else (Redis pool, logs, the listener) when
/// `--max-connections` is capped by the open-files limit.
const FD_RESERVE: u64 = 64;

/// The server's connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Time to receive a request head, from the connection's start or from the first
    /// byte of a later request; the connection is closed without an answer after it.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may stay open with no request in flight and no bytes.
    pub idle_timeout: Duration,
    /// Connections served at once (plus [`OVERFLOW`] for health checks).
    pub max_connections: usize,
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `wanted`, lowered so that every connection fits under the open-files limit with
/// [`FD_RESERVE`] descriptors to spare.
pub fn effective_max_connections(wanted: usize) -> usize {
    let wanted = wanted.max(1);
    match open_files_limit() {
        Some(limit) => {
            let fit = limit.saturating_sub(FD_RESERVE + OVERFLOW as u64).max(1);
            if (wanted as u64) > fit {
                tracing::warn!(
                    wanted,
                    open_files_limit = limit,
                    using = fit,
                    "--max-connections lowered to fit the open-files limit"
                );
                fit as usize
            } else {
                wanted
            }
        }
        None => wanted,
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets
/// in-flight requests finish, closes idle connections and returns once every connection
/// is closed (the semantics of `axum::serve(..).with_graceful_shutdown(..)`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = effective_max_connections(limits.max_connections);
    let normal = Arc::new(Semaphore::new(max));
    let overflow = Arc::new(Semaphore::new(OVERFLOW));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut backoff = Duration::ZERO;
    loop {
        // A permit first: at the limit, connections wait in the accept queue (and cost no
        // descriptor) instead of being accepted and starved.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = normal.clone().acquire_owned() => Slot::Normal(p.map_err(io::Error::other)?),
            p = overflow.clone().acquire_owned() => Slot::Overflow(p.map_err(io::Error::other)?),
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, _peer) = match accepted {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS: retrying at once would spin. Wait, doubling up
                // to one second, while connections close.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::warn!(error = %e, retry_in = ?backoff, "accept failed");
                drop(permit);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            app: app.clone(),
            limits,
            stop: stop_rx.clone(),
        };
        tokio::spawn(conn.run(stream, permit));
    }
    // Connections the kernel completed but this loop did not accept yet may carry a request
    // already (a gateway connects and sends at once, and does not re-send a POST): closing
    // the listener would reset them, a 502 at the gateway for every one (seen while compose
    // scaled the API down under load). Accept what is queued and answer one request on
    // each; connections arriving after the listener is closed are refused, which the
    // gateway retries on another replica.
    if let Ok(queued) = listener.into_std() {
        while let Ok((stream, _peer)) = queued.accept() {
            let Ok(stream) = stream
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(stream))
            else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let conn = Connection {
                app: app.clone(),
                limits,
                stop: stop_rx.clone(),
            };
            tokio::spawn(conn.run(stream, Slot::Queued));
        }
    }
    // Every connection holds a receiver: they see the flag, finish and drop it.
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

/// Errors of one incoming connection (it was reset before accept returned), not of the
/// listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

enum Slot {
    Normal(#[allow(dead_code)] OwnedSemaphorePermit),
    Overflow(#[allow(dead_code)] OwnedSemaphorePermit),
    /// Taken from the accept queue at shutdown: one request, answered whatever the stop flag.
    Queued,
}

/// What the idle watchdog of a connection knows.
#[derive(Default)]
struct Activity {
    /// Milliseconds since `epoch` of the last byte read or written.
    last_io_ms: AtomicU64,
    /// Requests whose response head is not produced yet.
    in_flight: AtomicUsize,
}

struct Connection {
    app: Router,
    limits: ServerLimits,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, slot: Slot) {
        let epoch = Instant::now();
        let activity = Arc::new(Activity::default());
        let overflow = matches!(slot, Slot::Overflow(_));
        let queued = matches!(slot, Slot::Queued);
        let io = TokioIo::new(Wire::new(stream, activity.clone(), epoch));
        let service = Tracked {
            inner: TowerToHyperService::new(self.app.clone()),
            activity: activity.clone(),
            overflow,
        };
        let header_timeout = if overflow {
            self.limits.header_timeout.min(OVERFLOW_HEADER_TIMEOUT)
        } else {
            self.limits.header_timeout
        };
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(!overflow && !queued);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let idle = self.limits.idle_timeout;
        let mut tick = tokio::time::interval(
            (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A queued connection is accepted after the stop: hyper would close it before reading
        // its request; without keep-alive it closes after that one request anyway.
        let mut closing = *self.stop.borrow() && !queued;
        if closing {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                changed = self.stop.changed(), if !closing && !queued => {
                    if changed.is_err() || *self.stop.borrow() {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
                _ = tick.tick(), if !closing => {
                    let quiet = epoch.elapsed().as_millis() as u64
                        - activity.last_io_ms.load(Ordering::Relaxed).min(epoch.elapsed().as_millis() as u64);
                    if activity.in_flight.load(Ordering::Relaxed) == 0
                        && Duration::from_millis(quiet) >= idle
                    {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        drop(slot);
    }
}

/// The router as a hyper service, counting requests in flight (for the idle watchdog); on
/// an overflow connection, only health checks reach the router.
#[derive(Clone)]
struct Tracked {
    inner: TowerToHyperService<Router>,
    activity: Arc<Activity>,
    overflow: bool,
}

type BoxFuture =
    Pin<Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if self.overflow && !matches!(req.uri().path(), "/healthz" | "/readyz") {
            let resp = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                OVERLOADED,
                "this replica is at its connection limit (`--max-connections`); retry shortly",
            );
            let (mut parts, body) = resp.into_parts();
            parts.headers.insert(
                axum::http::header::RETRY_AFTER,
                "1".parse().unwrap_or_else(|_| unreachable!()),
            );
            return Box::pin(async move { Ok(Response::from_parts(parts, body)) });
        }
        let activity = self.activity.clone();
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        let fut = hyper::service::Service::call(&self.inner, req);
        Box::pin(async move {
            let _done = InFlight(activity);
            fut.await
        })
    }
}

/// Decrements the in-flight count when the response is produced (or the request dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The socket as hyper sees it: records activity for the idle watchdog, and gives the
/// responses hyper writes by itself on a malformed request head (400, 414, 431, with an
/// empty body) the contract's JSON body.
struct Wire {
    inner: TcpStream,
    activity: Arc<Activity>,
    epoch: Instant,
    /// Bytes that replace a response hyper wrote, still to be sent.
    pending: Vec<u8>,
    sent: usize,
}

impl Wire {
    fn new(inner: TcpStream, activity: Arc<Activity>, epoch: Instant) -> Self {
        Wire {
            inner,
            activity,
            epoch,
            pending: Vec::new(),
            sent: 0,
        }
    }

    fn touch(&self) {
        self.activity
            .last_io_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
            self.touch();
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(replacement) = json_for_automatic_error(buf) {
            // hyper considers its response written; ours goes out in its place.
            self.pending = replacement;
            self.sent = 0;
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes each response head as one contiguous buffer, which
    // is what `json_for_automatic_error` recognises.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// `error.code`s of the answers to malformed request heads. 400 reuses the contract's
/// `bad_request`; 414 and 431 are not (yet) contract codes.
pub const URI_TOO_LONG: &str = drift_contract::ErrorCode::UriTooLong.as_str();
pub const HEADERS_TOO_LARGE: &str = drift_contract::ErrorCode::HeadersTooLarge.as_str();

/// If `buf` is exactly a response head hyper wrote by itself for a request it could not
/// parse (`role::Server::on_error`: status 400, 414 or 431, `content-length: 0`, no other
/// header than `date` and `connection: close`), the same response with a JSON error body and `connection: close`.
///
/// Every response of the router carries a `content-type`, so it never matches.
fn json_for_automatic_error(buf: &[u8]) -> Option<Vec<u8>> {
    let head = buf.strip_suffix(b"\r\n\r\n")?;
    if head.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    let (code, message) = match status {
        400 => (
            "bad_request",
            "the request could not be parsed as HTTP/1.1 (request line, header syntax, or message framing)",
        ),
        414 => (URI_TOO_LONG, "the request target is too long"),
        431 => (
            HEADERS_TOO_LARGE,
            "the request has too many headers or they are too large",
        ),
        _ => return None,
    };
    let mut date = None;
    let mut zero_length = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" if value.trim() == "0" => zero_length = true,
            "date" => date = Some(value.trim()),
            "connection" if value.trim().eq_ignore_ascii_case("close") => {}
            _ => return None,
        }
    }
    if !zero_length {
        return None;
    }
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let reason = StatusCode::from_u16(status).ok()?;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status,
        reason.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Some(d) = date {
        out.push_str(&format!("date: {d}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_own_error_heads_are_rewritten() {
        let auto = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(json_for_automatic_error(auto).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains("connection: close\r\n"));
        assert!(out.contains("date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"));
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], HEADERS_TOO_LARGE);
        for app in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert!(json_for_automatic_error(app).is_none());
        }
    }
}
