//! The HTTP layer under hostile input, on a real server: bounded metrics labels, tokens
//! and declared lengths checked before a body is read, header, body and idle timeouts, the
//! connection limit, JSON bodies on framing errors, and JSON-only ingest.
//!
//! Malformed requests go over raw TCP, since no HTTP client sends them.

use drift_testkit::{spawn_api, RedisServer, Server};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const P: &str = "h";

/// A response read off a raw connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
    /// The server closed the connection after the response.
    closed: bool,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Reads one response (head and a `content-length` body) from `s`, then whether the server
/// closes the connection within `close_within`.
async fn read_response(s: &mut TcpStream, close_within: Duration) -> Option<Raw> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("no response within 5 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("body not sent within 5 s")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    let closed = closes_within(s, close_within).await;
    Some(Raw {
        status,
        head,
        body,
        closed,
    })
}

/// Whether the peer closes (EOF or reset) within `d`; bytes read meanwhile are dropped.
async fn closes_within(s: &mut TcpStream, d: Duration) -> bool {
    let deadline = Instant::now() + d;
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends `bytes` on a new connection and reads the answer.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<Raw> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything: ignore write errors.
    let _ = s.write_all(bytes).await;
    read_response(&mut s, Duration::from_secs(3)).await
}

async fn api(redis: &RedisServer, tweak: impl FnOnce(&mut drift_api::ApiConfig)) -> Server {
    let srv = spawn_api(&redis.url(), P, tweak).await;
    srv.wait_ready().await;
    srv
}

fn rows_body() -> String {
    let ds = drift_core::Dataset::breast_cancer().unwrap();
    let row: Vec<f64> = ds.columns().iter().map(|c| c[0]).collect();
    json!({"columns": ds.names(), "data": [row]}).to_string()
}

/// Defect 1: made-up methods and paths must not add series to `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_labels_stay_bounded_under_random_methods_and_paths() {
    let redis = RedisServer::start();
    let srv = api(&redis, |_| {}).await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("http_request"))
            .count()
    };
    let before = srv.metrics().await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..500u32 {
        let (client, url) = (client.clone(), srv.url());
        tasks.push(tokio::spawn(async move {
            let method = reqwest::Method::from_bytes(format!("M{i:05}X").as_bytes()).unwrap();
            let r = client
                .request(method, format!("{url}/v1/monitors"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405);
            let r = client
                .get(format!("{url}/random/{i}/p{}", i * 7919))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404);
            let r = client
                .get(format!("{url}/v1/monitors/m{i}/history"))
                .send()
                .await
                .unwrap();
            assert!(r.status().as_u16() < 600, "{}", r.status());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = srv.metrics().await;
    let labels: Vec<&str> = after
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .collect();
    assert!(
        labels.iter().any(|l| l.contains("method=\"_OTHER\"")),
        "{labels:?}"
    );
    assert!(
        labels.iter().any(|l| l.contains("route=\"unmatched\"")),
        "{labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l.contains("route=\"/v1/monitors/{monitor}/history\"")),
        "{labels:?}"
    );
    // A few new label sets of the counter (405 `_OTHER`, 404 `unmatched`, the history
    // template, `/metrics`) and their histograms: a fixed number of lines, whatever the
    // requests.
    assert!(labels.len() <= 20, "{labels:?}");
    assert!(
        series(&after) <= series(&before) + 100,
        "{} lines before, {} after",
        series(&before),
        series(&after)
    );
    assert!(after.len() < 64 * 1024, "/metrics is {} bytes", after.len());
}

/// Defect 2: the token is checked on the headers, before a body that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_before_the_body_is_read() {
    let redis = RedisServer::start();
    let srv = api(&redis, |c| {
        c.admin_token = Some(drift_api::config::Secret("adm".into()));
        c.ingest_tokens = vec![drift_api::config::Secret("ing".into())];
    })
    .await;
    let cases: [(&str, u16, &str); 3] = [
        ("PUT /v1/monitors/m HTTP/1.1\r\nContent-Length: 62914560\r\n", 401, "unauthorized"),
        (
            "PUT /v1/monitors/m HTTP/1.1\r\nAuthorization: Bearer nope\r\nContent-Length: 62914560\r\n",
            403,
            "forbidden",
        ),
        (
            "POST /v1/monitors/breast_cancer/rows HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n",
            401,
            "unauthorized",
        ),
    ];
    for (head, status, code) in cases {
        let start = Instant::now();
        let r = raw(srv.addr, format!("{head}Host: x\r\n\r\n").as_bytes())
            .await
            .expect("an answer");
        assert_eq!((r.status, r.code().as_str()), (status, code), "{head}");
        assert!(start.elapsed() < Duration::from_secs(2), "{head}");
        assert!(r.closed, "{head}: the unread body's connection stays open");
    }
}

/// Defect 2: a declared length over the route's limit is a 413 at once, body unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_lengths_over_the_limit_are_refused_at_once() {
    let redis = RedisServer::start();
    let srv = api(&redis, |c| {
        c.admin_token = Some(drift_api::config::Secret("adm".into()));
        c.max_body_bytes = 4096;
        c.max_reference_bytes = 1 << 20;
    })
    .await;
    let cases = [
        "POST /v1/monitors/breast_cancer/rows HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 4097\r\n",
        "POST /v1/predict HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 60000000\r\n",
        "PUT /v1/monitors/m HTTP/1.1\r\nAuthorization: Bearer adm\r\nContent-Length: 1048577\r\n",
    ];
    for head in cases {
        let start = Instant::now();
        let r = raw(srv.addr, format!("{head}Host: x\r\n\r\n").as_bytes())
            .await
            .expect("an answer");
        assert_eq!(
            (r.status, r.code().as_str()),
            (413, "payload_too_large"),
            "{head}"
        );
        assert!(start.elapsed() < Duration::from_secs(2), "{head}");
        assert!(r.closed, "{head}");
    }
    // Within the limit the body is read as before.
    let c = srv.client();
    let (status, _) = c
        .send(
            c.http()
                .post(c.url("/v1/monitors/breast_cancer/rows"))
                .header("content-type", "application/json")
                .body(rows_body()),
        )
        .await;
    assert_eq!(status, 202);
}

/// Defect 3: half a header, an idle keep-alive connection and a body that never ends are
/// all closed after their timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_idle_connections_and_slow_bodies_time_out() {
    let redis = RedisServer::start();
    let srv = api(&redis, |c| {
        c.header_timeout_ms = 300;
        c.idle_timeout_ms = 600;
        c.body_timeout_ms = 400;
    })
    .await;
    // Half a header, then nothing.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let start = Instant::now();
    assert!(
        closes_within(&mut s, Duration::from_secs(3)).await,
        "half a header kept open"
    );
    assert!(start.elapsed() >= Duration::from_millis(250));
    // Connected, nothing sent.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    assert!(
        closes_within(&mut s, Duration::from_secs(3)).await,
        "silent connection kept open"
    );

    // A keep-alive connection: served twice, then closed when idle. Every request is sent
    // well within the header timeout, so only the idle timeout can close it.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(&mut s, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert!(!r.closed, "keep-alive connection closed at once");
    }
    let start = Instant::now();
    assert!(
        closes_within(&mut s, Duration::from_secs(5)).await,
        "idle connection kept open"
    );
    let idle_for = start.elapsed();
    assert!(
        idle_for < Duration::from_secs(3),
        "closed after {idle_for:?}"
    );

    // A declared body that stops half-way, and a chunked body that never ends.
    let body = rows_body();
    let half = &body[..body.len() / 2];
    let declared = format!(
        "POST /v1/monitors/breast_cancer/rows HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{half}",
        body.len()
    );
    let chunked = format!(
        "POST /v1/monitors/breast_cancer/rows HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{half}\r\n",
        half.len()
    );
    for req in [declared, chunked] {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let start = Instant::now();
        // Answered (a 4xx: the body could not be read) or closed, within the deadline.
        let closed = match read_response(&mut s, Duration::from_secs(3)).await {
            Some(r) => {
                assert!(r.status >= 400 && r.status < 500, "{r:?}");
                r.closed
            }
            None => true,
        };
        assert!(closed, "slow body kept open");
        assert!(start.elapsed() < Duration::from_secs(4));
    }
    // Nothing of it stuck: the replica still serves.
    assert_eq!(srv.client().status("/healthz").await, Some(200));
}

/// Defect 3: at `--max-connections`, one more connection neither breaks the ones served
/// nor goes unanswered for health checks, and service resumes when connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_keeps_existing_connections_and_health_checks() {
    let redis = RedisServer::start();
    let srv = api(&redis, |c| {
        c.max_connections = 4;
        c.header_timeout_ms = 20_000;
        c.idle_timeout_ms = 1_000;
    })
    .await;
    let get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    // The start-up checks' pooled connections may linger: past the idle timeout, they are
    // closed. (The test's own connections are never idle that long.)
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut held = Vec::new();
    for i in 0..4 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(get).await.unwrap();
        let r = read_response(&mut s, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!((r.status, r.closed), (200, false), "connection {i}: {r:?}");
        held.push(s);
    }
    // The 5th: health checks are answered (and the connection closed), anything else is a
    // 503 with a JSON error and Retry-After.
    let r = raw(srv.addr, get).await.unwrap();
    assert_eq!((r.status, r.closed), (200, true), "{r:?}");
    let r = raw(srv.addr, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = raw(srv.addr, b"GET /v1/monitors HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code().as_str(), r.closed),
        (503, "overloaded", true),
        "{r:?}"
    );
    assert!(
        r.head.to_ascii_lowercase().contains("retry-after: 1"),
        "{r:?}"
    );
    // The held connections are still served.
    for s in &mut held {
        s.write_all(b"GET /v1/monitors HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(s, Duration::from_millis(50)).await.unwrap();
        assert_eq!((r.status, r.closed), (200, false));
    }
    drop(held);
    // Slots free again: a new connection is served in full, keep-alive included.
    let c = drift_testkit::eventually(Duration::from_secs(5), || async {
        let mut s = TcpStream::connect(srv.addr).await.ok()?;
        s.write_all(b"GET /v1/monitors HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .ok()?;
        let r = read_response(&mut s, Duration::from_millis(50)).await?;
        (r.status == 200 && !r.closed).then_some(s)
    })
    .await;
    assert!(c.is_some(), "no full service after the connections closed");
}

/// Defect 4: requests hyper cannot parse get the right status, a JSON error body where
/// hyper writes the answer, and a closed connection; never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_errors_get_json_bodies_and_close() {
    let redis = RedisServer::start();
    let srv = api(&redis, |_| {}).await;
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let huge_header = format!("X-Big: {}\r\n", "a".repeat(600 * 1024));
    let long_path = format!("/{}", "p".repeat(100 * 1024));
    let post = "POST /v1/monitors/breast_cancer/rows";
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("two content-lengths", format!("{post} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}").into_bytes(), 400, "bad_request"),
        ("negative content-length", format!("{post} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n").into_bytes(), 400, "bad_request"),
        ("unknown transfer-encoding", format!("{post} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n").into_bytes(), 400, "bad_request"),
        ("chunked on HTTP/1.0", format!("{post} HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").into_bytes(), 400, "bad_request"),
        ("HTTP/0.9 request line", b"GET /healthz\r\n\r\n".to_vec(), 400, "bad_request"),
        ("HTTP/2.0 request line", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n".to_vec(), 400, "bad_request"),
        ("NUL in a header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(), 400, "bad_request"),
        ("obs-fold", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n".to_vec(), 400, "bad_request"),
        ("space before the colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), 400, "bad_request"),
        ("raw non-ASCII in the path", b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400, "bad_request"),
        ("200 headers", format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(), 431, "headers_too_large"),
        ("a 600 KB header", format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{huge_header}\r\n").into_bytes(), 431, "headers_too_large"),
        ("a 100 KB path", format!("GET {long_path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(), 414, "uri_too_long"),
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), 400, "bad_request"),
    ];
    for (name, bytes, status, code) in &cases {
        let r = raw(srv.addr, bytes)
            .await
            .unwrap_or_else(|| panic!("{name}: no answer"));
        assert_eq!(r.status, *status, "{name}: {r:?}");
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{name}: {r:?}"
        );
        assert_eq!(r.code(), *code, "{name}");
        assert!(r.closed, "{name}: connection left open");
    }
    // The HTTP/2 preface is not HTTP/1: hyper closes without an answer (no HTTP/2 here).
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    assert!(closes_within(&mut s, Duration::from_secs(3)).await);
    assert_eq!(srv.client().status("/healthz").await, Some(200));
}

/// Defect 5: JSON routes take `application/json` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_routes_refuse_other_media_types() {
    let redis = RedisServer::start();
    let srv = api(&redis, |_| {}).await;
    let c = srv.client();
    let rows = rows_body();
    let ds = drift_core::Dataset::breast_cancer().unwrap();
    let row: Vec<f64> = ds.columns().iter().map(|c| c[0]).collect();
    let predict = json!({"columns": ds.names(), "data": [row]}).to_string();
    let paths = [
        ("/v1/monitors/breast_cancer/rows", rows.clone()),
        ("/v1/predict", predict.clone()),
        ("/get-prediction", predict.clone()),
        (
            "/datadrift",
            json!({"features": {"columns": ["x"], "data": [[1.0]]}}).to_string(),
        ),
    ];
    for (path, body) in &paths {
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let mut req = c.http().post(c.url(path)).body(body.clone());
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 415, "{path} {ct:?}");
            assert!(r.headers().get("access-control-allow-origin").is_none());
            let v: Value = r.json().await.unwrap();
            assert_eq!(
                v["error"]["code"], "unsupported_media_type",
                "{path} {ct:?}"
            );
        }
    }
    for ct in ["application/json", "application/json; charset=utf-8"] {
        let r = c
            .http()
            .post(c.url("/v1/monitors/breast_cancer/rows"))
            .header("content-type", ct)
            .body(rows.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{ct}");
    }
    // No CORS: a preflight is not granted.
    let r = c
        .http()
        .request(
            reqwest::Method::OPTIONS,
            c.url("/v1/monitors/breast_cancer/rows"),
        )
        .header("origin", "https://example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!r.status().is_success());
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
