//! Live-like rows for the default monitor (resampled from its reference, optionally with
//! one feature shifted) and the calls tests make with them.

use crate::{Client, RedisServer};
use drift_contract::{IngestAccepted, MonitorView};
use drift_core::dataset::{Dataset, DEFAULT_MONITOR};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const MONITOR: &str = DEFAULT_MONITOR;

/// The reference columns, for drawing rows.
pub fn reference() -> Dataset {
    Dataset::breast_cancer().unwrap_or_else(|e| panic!("embedded reference: {e}"))
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `n` rows resampled from the reference in the columns form, with `shift` standard
/// deviations added to the named feature.
pub fn rows(rng: &mut StdRng, n: usize, shift: Option<(&str, f64)>) -> Value {
    let ds = reference();
    let names = ds.names().to_vec();
    let shift = shift.map(|(f, k)| {
        let i = ds
            .names()
            .iter()
            .position(|n| n == f)
            .unwrap_or_else(|| panic!("no feature {f}"));
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

/// Posts a batch to the default monitor; returns (status, body) whatever the status. A
/// 202 must carry the contract's `IngestAccepted`.
pub async fn post_rows(client: &Client, body: &Value) -> (u16, Value) {
    let (status, answer) = client
        .send(
            client
                .http()
                .post(client.url(&format!("/v1/monitors/{MONITOR}/rows")))
                .json(body),
        )
        .await;
    if status == 202 {
        if let Err(e) = serde_json::from_value::<IngestAccepted>(answer.clone()) {
            panic!("a 202 that is not an IngestAccepted ({e}): {answer}");
        }
    }
    (status, answer)
}

/// The default monitor's view, typed as the contract declares it.
pub async fn monitor_view(client: &Client) -> MonitorView {
    client.get(&format!("/v1/monitors/{MONITOR}"), 200).await
}

/// The default monitor's view as JSON, after checking that it is a [`MonitorView`].
pub async fn monitor(client: &Client) -> Value {
    let view = monitor_view(client).await;
    serde_json::to_value(&view).unwrap_or_else(|e| panic!("monitor view to JSON: {e}"))
}

/// Waits until every feature's latest result is for row `seq`; returns the monitor view.
pub async fn wait_evaluated(client: &Client, seq: u64, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let m = monitor(client).await;
        let done = m["results"]
            .as_object()
            .is_some_and(|r| r.values().all(|v| v["seq"].as_u64() == Some(seq)));
        if done {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "not every feature was evaluated at seq {seq} within {timeout:?}: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The features a monitor view flags, sorted.
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
pub async fn final_round(client: &Client, stride: usize) -> u64 {
    let mut rng = rng(999);
    let path = format!("/v1/monitors/{MONITOR}/rows");
    let done: IngestAccepted = client.post(&path, &rows(&mut rng, stride, None), 202).await;
    assert!(done.jobs_enqueued > 0, "no evaluation round: {done:?}");
    done.seq
        .unwrap_or_else(|| panic!("a batch that enqueued jobs has a seq: {done:?}"))
}

/// Jobs of the default monitor delivered and not acknowledged, read through the store.
pub async fn pending(redis: &RedisServer, prefix: &str) -> u64 {
    redis
        .store(prefix)
        .unacknowledged(MONITOR)
        .await
        .unwrap_or_else(|e| panic!("reading pending jobs: {e}"))
}

/// (feature, seq) of every evaluation on the default monitor's history, oldest first.
pub async fn history(redis: &RedisServer, prefix: &str) -> Vec<(String, String)> {
    let store = redis.store(prefix);
    let cfg = store
        .config(MONITOR)
        .await
        .unwrap_or_else(|e| panic!("reading the config: {e}"))
        .unwrap_or_else(|| panic!("{MONITOR} is not registered"));
    store
        .history(&cfg, None, usize::MAX >> 1)
        .await
        .unwrap_or_else(|e| panic!("reading the history: {e}"))
        .into_iter()
        .map(|h| (h.feature, h.seq.to_string()))
        .collect()
}
