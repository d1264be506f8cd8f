//! The API as the simulator sees it: URLs, the monitor check before streaming, history
//! pages, and the classification of failures into error kinds.

use anyhow::{anyhow, bail, Context};
use drift_core::FeatureKind;
use reqwest::{Client, StatusCode, Url};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the simulator needs to know about the monitor it streams to.
#[derive(Clone, Debug)]
pub struct MonitorInfo {
    pub name: String,
    pub version: String,
    pub features: Vec<String>,
    pub params: MonitorParams,
    /// Rows the monitor had ingested when it was read.
    pub rows: u64,
    /// Evaluation jobs skipped as stale so far (a counter kept in Redis).
    pub stale_jobs: u64,
    /// Every feature's kind (empty from a server that predates kinds: all numeric).
    pub kinds: BTreeMap<String, FeatureKind>,
    /// Each categorical feature's reference categories.
    pub categories: BTreeMap<String, Vec<String>>,
}

/// The monitor's evaluation parameters (as the summary reports them).
#[derive(Clone, Debug, Serialize)]
pub struct MonitorParams {
    pub window: u64,
    pub stride: u64,
    pub alpha: f64,
    pub correction: String,
}

pub use drift_contract::HistoryEntry;
use drift_contract::{ErrorCode, HistoryPage, MonitorList, MonitorView};

/// Most entries asked for in one history page (the API's own cap).
pub const HISTORY_PAGE: usize = drift_contract::HISTORY_PAGE_MAX;

/// The target API: base URL and a shared connection pool.
#[derive(Clone)]
pub struct Target {
    base: Url,
    client: Client,
}

impl Target {
    /// `timeout` bounds every request; connecting gets at most 3 s of it, so an unreachable
    /// host fails fast.
    pub fn new(base: Url, timeout: Duration, pool: usize) -> anyhow::Result<Self> {
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        Ok(Target { base, client })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `base` + path segments (each percent-encoded as needed).
    pub fn url(&self, segments: &[&str]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("{} cannot take a path", self.base))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Reads the monitor, turning "cannot connect" and "no such monitor" into clear errors.
    pub async fn monitor(&self, name: &str) -> anyhow::Result<MonitorInfo> {
        let url = self.url(&["v1", "monitors", name])?;
        let resp =
            self.client.get(url.clone()).send().await.map_err(|e| {
                anyhow!("cannot reach the target {}: {}", self.base, error_chain(&e))
            })?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| anyhow!("reading the answer of GET {url}: {}", error_chain(&e)))?;
        if status == StatusCode::NOT_FOUND {
            let code = error_code(&body);
            if code.as_deref() == Some(ErrorCode::UnknownMonitor.as_str()) {
                let known = self.monitor_names().await.unwrap_or_default();
                if known.is_empty() {
                    bail!("unknown monitor {name:?} at {}", self.base);
                }
                bail!(
                    "unknown monitor {name:?} at {} (known: {})",
                    self.base,
                    known.join(", ")
                );
            }
            let what = code.map_or_else(
                || "without the API's JSON error".to_string(),
                |c| format!("with error code {c}"),
            );
            bail!(
                "GET {url} answered 404 {what}: is {} the drift API?",
                self.base
            );
        }
        ensure_success(&url, status, &body)?;
        let view: MonitorView = serde_json::from_slice(&body)
            .with_context(|| format!("GET {url} did not return a monitor"))?;
        if view.params.window == 0 || view.params.stride == 0 {
            bail!("monitor {name:?} has window or stride 0");
        }
        Ok(MonitorInfo {
            name: view.name,
            version: view.version,
            features: view.features,
            params: MonitorParams {
                window: view.params.window as u64,
                stride: view.params.stride as u64,
                alpha: view.params.alpha,
                correction: view.params.correction.to_string(),
            },
            rows: view.rows,
            stale_jobs: view.counters.stale,
            kinds: view.kinds,
            categories: view.categories,
        })
    }

    async fn monitor_names(&self) -> anyhow::Result<Vec<String>> {
        let list: MonitorList = self
            .client
            .get(self.url(&["v1", "monitors"])?)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(list.monitors.into_iter().map(|m| m.name).collect())
    }

    /// One page of evaluations after entry `after` (exclusive), oldest first.
    pub async fn history(
        &self,
        monitor: &str,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<HistoryEntry>> {
        let mut url = self.url(&["v1", "monitors", monitor, "history"])?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(after) = after {
                q.append_pair("after", after);
            }
            q.append_pair("limit", &limit.to_string());
        }
        let what = format!("GET {url}");
        let page: HistoryPage = fetch_json(self.client.get(url), &what, None).await?;
        Ok(page.entries)
    }

    /// The id of the newest history entry (paging through what is stored), so that a run
    /// only looks at evaluations recorded after it started.
    pub async fn last_history_id(&self, monitor: &str) -> anyhow::Result<Option<String>> {
        let mut last: Option<String> = None;
        loop {
            let page = self.history(monitor, last.as_deref(), HISTORY_PAGE).await?;
            let full = page.len() == HISTORY_PAGE;
            if let Some(e) = page.last() {
                last = Some(e.id.clone());
            }
            if !full {
                return Ok(last);
            }
        }
    }
}

/// Sends `req` (`what` names it in errors, e.g. `GET <url>`), expects `expect` (any success
/// when `None`) and decodes the answer as `T`; a refusal is reported with the API's error.
pub(crate) async fn fetch_json<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
    what: &str,
    expect: Option<StatusCode>,
) -> anyhow::Result<T> {
    let resp = req
        .send()
        .await
        .map_err(|e| anyhow!("{what}: {}", error_chain(&e)))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| anyhow!("{what}: {}", error_chain(&e)))?;
    if !expect.map_or(status.is_success(), |s| s == status) {
        let detail = error_message(&body)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
        bail!("{what} answered {status}: {detail}");
    }
    serde_json::from_slice(&body).with_context(|| format!("{what}: unexpected answer"))
}

/// The `error.code` of an error body, if it is the API's JSON error.
pub fn error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["error"]["code"].as_str().map(str::to_string)
}

/// Fails with the status and the API's error (or the raw body) unless `status` is a success.
fn ensure_success(url: &Url, status: StatusCode, body: &[u8]) -> anyhow::Result<()> {
    if !status.is_success() {
        bail!(
            "GET {url} answered {status}: {}",
            error_message(body).unwrap_or_else(|| String::from_utf8_lossy(body).into())
        );
    }
    Ok(())
}

pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = &v["error"];
    Some(format!(
        "{}: {}",
        e["code"].as_str()?,
        e["message"].as_str().unwrap_or("")
    ))
}

/// The kind under which a failed request is counted: `timeout`, `connection` or `request`
/// for transport failures.
pub fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection"
    } else {
        "request"
    }
}

/// The kind under which an HTTP error answer is counted: `http_422_wrong_arity`, or
/// `http_502` when the body is not the API's JSON error (e.g. from the gateway).
pub fn status_kind(status: StatusCode, body: &[u8]) -> String {
    match error_code(body) {
        Some(code) => format!("http_{}_{}", status.as_u16(), code),
        None => format!("http_{}", status.as_u16()),
    }
}

/// reqwest's error with its sources, on one line ("error sending request: ...: Connection
/// refused").
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
