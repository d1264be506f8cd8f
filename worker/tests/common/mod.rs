//! A local drift stack for tests: real redis-server, API replicas, workers and the exporter
//! in this process, each on a free loopback port.
#![allow(dead_code)]

use drift_api::ApiConfig;
use drift_core::dataset::Dataset;
use drift_testkit::RedisServer;
use drift_worker::{ExporterConfig, WorkerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const MONITOR: &str = "breast_cancer";

/// A server running in this process, stopped by [`Server::stop`] (graceful) or on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => t.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

async fn spawn<F, Fut>(f: F) -> Server
where
    F: FnOnce(tokio::net::TcpListener, oneshot::Receiver<()>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(f(listener, rx));
    Server {
        addr,
        stop: Some(tx),
        task: Some(task),
    }
}

pub async fn api(redis: &str, prefix: &str, tweak: impl FnOnce(&mut ApiConfig)) -> Server {
    let mut cfg = ApiConfig::for_redis(redis, prefix);
    tweak(&mut cfg);
    let s = spawn(move |l, rx| async move {
        drift_api::run(l, cfg, async {
            let _ = rx.await;
        })
        .await
    })
    .await;
    // Ready when the default monitor is registered (or the API answers at all).
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{}/healthz", s.url())).send().await {
            if r.status().is_success() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s
}

pub async fn worker(redis: &str, prefix: &str, tweak: impl FnOnce(&mut WorkerConfig)) -> Server {
    let mut cfg = WorkerConfig::for_redis(redis, prefix);
    cfg.block_ms = 200;
    cfg.refresh_ms = 200;
    tweak(&mut cfg);
    spawn(move |l, rx| async move {
        drift_worker::run_worker(l, cfg, async {
            let _ = rx.await;
        })
        .await
    })
    .await
}

pub async fn exporter(redis: &str, prefix: &str) -> Server {
    let cfg = ExporterConfig::for_redis(redis, prefix);
    spawn(move |l, rx| async move {
        drift_worker::run_exporter(l, cfg, async {
            let _ = rx.await;
        })
        .await
    })
    .await
}

/// The reference columns, for drawing rows.
pub fn reference() -> Dataset {
    Dataset::breast_cancer().unwrap()
}

/// `n` rows resampled from the reference, with `shift` standard deviations added to the
/// named feature.
pub fn rows(rng: &mut StdRng, n: usize, shift: Option<(&str, f64)>) -> Value {
    let ds = reference();
    let names = ds.names().to_vec();
    let shift = shift.map(|(f, k)| {
        let i = ds.names().iter().position(|n| n == f).unwrap();
        let col = &ds.columns()[i];
        let mean = col.iter().sum::<f64>() / col.len() as f64;
        let sd =
            (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (col.len() - 1) as f64).sqrt();
        (i, k * sd)
    });
    let data: Vec<Vec<f64>> = (0..n)
        .map(|_| {
            let r = rng.random_range(0..ds.n_rows());
            ds.columns()
                .iter()
                .enumerate()
                .map(|(i, c)| match shift {
                    Some((j, d)) if j == i => c[r] + d,
                    _ => c[r],
                })
                .collect()
        })
        .collect();
    json!({"columns": names, "data": data})
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub async fn post_rows(client: &reqwest::Client, api: &str, body: &Value) -> (u16, Value) {
    let r = client
        .post(format!("{api}/v1/monitors/{MONITOR}/rows"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn monitor(client: &reqwest::Client, api: &str) -> Value {
    client
        .get(format!("{api}/v1/monitors/{MONITOR}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until every feature's latest result is for row `seq`; returns the monitor view.
pub async fn wait_evaluated(
    client: &reqwest::Client,
    api: &str,
    seq: u64,
    timeout: Duration,
) -> Value {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let m = monitor(client, api).await;
        let done = m["results"]
            .as_object()
            .is_some_and(|r| r.values().all(|v| v["seq"].as_u64() == Some(seq)));
        if done {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every feature was evaluated at seq {seq} within {timeout:?}: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Jobs pending (undelivered or unacknowledged) on the jobs stream, read with redis-cli
/// semantics through the test's own client.
pub fn pending(redis: &RedisServer, prefix: &str) -> u64 {
    let key = format!("{prefix}:{{{MONITOR}}}:jobs");
    match redis.query(&["XPENDING", &key, "workers"]) {
        drift_testkit::Resp::Array(Some(items)) => {
            items.first().and_then(|c| c.as_int()).unwrap_or(0) as u64
        }
        other => panic!("XPENDING: {other:?}"),
    }
}

pub fn drifted(view: &Value) -> Vec<String> {
    let mut out: Vec<String> = view["results"]
        .as_object()
        .map(|r| {
            r.iter()
                .filter(|(_, v)| v["drifted"].as_bool() == Some(true))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Sends one batch of `stride` rows, which crosses exactly one evaluation boundary once the
/// window is full, so that the returned row count is the seq of the final round.
pub async fn final_round(client: &reqwest::Client, api: &str, stride: usize) -> u64 {
    let mut rng = rng(999);
    let (status, body) = post_rows(client, api, &rows(&mut rng, stride, None)).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["jobs_enqueued"].as_u64() > Some(0), "{body}");
    body["seq"].as_u64().unwrap()
}

/// (feature index, seq) of every evaluation on the history stream, oldest first.
pub fn history(redis: &RedisServer, prefix: &str) -> Vec<(String, String)> {
    let key = format!("{prefix}:{{{MONITOR}}}:history");
    let raw = redis.cmd(&["XRANGE", &key, "-", "+"]);
    // Flattened entries: id, f, <index>, s, <seq>, ...
    let lines: Vec<&str> = raw.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 < lines.len() {
        if lines[i] == "f" && lines[i + 2] == "s" {
            out.push((lines[i + 1].to_string(), lines[i + 3].to_string()));
            i += 4;
        } else {
            i += 1;
        }
    }
    out
}
