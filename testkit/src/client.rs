//! An HTTP client for tests: every call states the status it expects and gets the body
//! back typed (or the test fails showing what came instead).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// One connection pool for every client of a test process, so that a client per call
/// costs nothing.
fn shared() -> reqwest::Client {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    HTTP.get_or_init(reqwest::Client::new).clone()
}

impl Client {
    pub fn new(base: &str) -> Self {
        Client {
            http: shared(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The underlying client, for requests the helpers below do not cover.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `req` and returns (status, JSON body or `null`), whatever the status.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {} failed: {e}", self.base));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends `req`, checks the status is `expect` and returns the body as `T`.
    pub async fn call<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder, expect: u16) -> T {
        let (status, body) = self.send(req).await;
        assert_eq!(
            status, expect,
            "unexpected status from {}: {body}",
            self.base
        );
        serde_json::from_value(body.clone())
            .unwrap_or_else(|e| panic!("body does not match the expected type ({e}): {body}"))
    }

    /// Sends `req` and checks it fails with `status` and error `code` in the API's error
    /// contract (`{"error": {"code", "message"}}`); returns the message.
    pub async fn error(&self, req: reqwest::RequestBuilder, status: u16, code: &str) -> String {
        let (got, body) = self.send(req).await;
        assert_eq!(
            (got, body["error"]["code"].as_str().unwrap_or("")),
            (status, code),
            "unexpected answer from {}: {body}",
            self.base
        );
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "error without a message: {body}");
        message.to_string()
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, expect: u16) -> T {
        self.call(self.http.get(self.url(path)), expect).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        expect: u16,
    ) -> T {
        self.call(self.http.post(self.url(path)).json(body), expect)
            .await
    }

    /// The body of a GET as text, after checking its status.
    pub async fn text(&self, path: &str, expect: u16) -> String {
        let r = self
            .http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} on {} failed: {e}", self.base));
        assert_eq!(r.status().as_u16(), expect, "GET {path}");
        r.text().await.unwrap_or_default()
    }

    /// Sends `req` while the store is down: the answer must be the contract's outage error
    /// (503 `redis_unavailable`, `Retry-After: 1`) within `within`; readiness must then be
    /// 503 and liveness 200 (a Redis outage must not get replicas restarted).
    pub async fn assert_store_unavailable(&self, req: reqwest::RequestBuilder, within: Duration) {
        let start = Instant::now();
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {} failed: {e}", self.base));
        let took = start.elapsed();
        assert!(took < within, "the 503 took {took:?}");
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(body["error"]["code"], "redis_unavailable", "{body}");
        assert_eq!(self.status("/readyz").await, Some(503));
        assert_eq!(self.status("/healthz").await, Some(200));
    }

    /// Repeats the request `make` builds until it answers `status` (or `timeout` passes);
    /// returns that answer's body.
    pub async fn until_status(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        status: u16,
        timeout: Duration,
    ) -> Option<Value> {
        crate::eventually(timeout, || async {
            let (got, body) = self.send(make()).await;
            (got == status).then_some(body)
        })
        .await
    }

    /// The service's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.text("/metrics", 200).await
    }

    /// The status of a GET, or `None` when nothing answers.
    pub async fn status(&self, path: &str) -> Option<u16> {
        let r = self.http.get(self.url(path)).send().await.ok()?;
        Some(r.status().as_u16())
    }
}
