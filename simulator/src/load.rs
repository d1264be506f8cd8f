//! The sender: paces generated batches at the target rate, keeps `concurrency` requests in
//! flight, and records what the API answered.
//!
//! One dispatcher generates batches in row order and hands them to the request tasks, so
//! the rows are the same for a seed whatever the concurrency; only their order of arrival at
//! the server varies. That is why the onset is located from the server's answer (`seq`), not
//! from the row number (see [`OnsetTracker`]).

use crate::body::RowsBody;
use crate::cli::Mode;
use crate::generator::{Batch, Generator};
use crate::progress::Live;
use crate::target::{status_kind, transport_kind, Target};
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// How much to send, how fast, where.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    pub mode: Mode,
    pub url: Url,
    pub columns: Vec<String>,
    /// Per column, the category names by code (`None`: numeric); see [`RowsBody`].
    pub labels: Vec<Option<Vec<String>>>,
    pub pacing: Pacing,
}

/// How much to send and how fast; the summary reports it as planned, under these JSON names.
#[derive(Clone, Debug, Serialize)]
pub struct Pacing {
    /// Row limit (`None`: until the duration is over).
    #[serde(rename = "rows_planned")]
    pub rows: Option<u64>,
    #[serde(rename = "duration_planned_seconds")]
    pub duration_seconds: Option<f64>,
    /// Rows per second; 0 = unpaced.
    #[serde(rename = "rate_target")]
    pub rate: f64,
    /// Rows per request.
    pub batch: u64,
    /// Requests in flight.
    pub concurrency: u64,
}

impl Pacing {
    pub fn duration(&self) -> Option<Duration> {
        self.duration_seconds.map(Duration::from_secs_f64)
    }
}

/// Where the drift started, as the server counts rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Onset {
    /// Run-wide index (0-based) of the first drifted row generated.
    pub row: u64,
    /// Server position (1-based row count) of the first drifted row the server accepted:
    /// `seq − accepted + k + 1` for the batch whose `k`-th row is its first drifted one,
    /// minimised over batches (with concurrency a later batch can land first). `None` in
    /// predict mode, whose answers carry no `seq` (see the summary's estimate), and for a
    /// batch of which the monitor's `sample_rate` stored only some rows (which ones is not
    /// told).
    pub seq: Option<u64>,
    /// Unix time (s) at which the answer for that batch arrived: the row was in Redis by then.
    pub at: f64,
}

/// Requests and rows sent, and what the API made of them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub requests: u64,
    pub requests_ok: u64,
    pub rows_sent: u64,
    pub rows_accepted: u64,
    /// Rows of failed requests.
    pub rows_failed: u64,
    /// Failed requests by kind: `http_<status>_<code>` (the API's error code),
    /// `http_<status>` (a body that is not the API's), `timeout`, `connection`, `request`.
    pub errors: BTreeMap<String, u64>,
}

/// What the sender saw.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    pub counts: Counts,
    /// Duration of every request that got an answer, in ms.
    pub latencies_ms: Vec<f64>,
    pub elapsed: Duration,
    /// Lowest and highest `seq` acknowledged (ingest mode).
    pub min_seq: Option<u64>,
    pub max_seq: Option<u64>,
    pub onset: Option<Onset>,
    /// Accepted rows generated before the onset (for the predict-mode onset estimate).
    pub rows_accepted_before_onset: u64,
    /// The run was stopped early (Ctrl-C).
    pub interrupted: bool,
}

#[derive(Deserialize)]
struct Accepted {
    accepted: u64,
    /// Rows stored of the batch (a monitor with a `sample_rate` below 1 stores some);
    /// servers before sampling did not send it, and stored every row.
    #[serde(default)]
    sampled: Option<u64>,
    /// `null` when sampling stored no row of the batch.
    seq: Option<u64>,
}

/// Keeps the earliest drifted row accepted.
#[derive(Default)]
struct OnsetTracker {
    best: Option<Onset>,
}

impl OnsetTracker {
    fn offer(&mut self, candidate: Onset) {
        let better = match &self.best {
            None => true,
            Some(b) => match (candidate.seq, b.seq) {
                (Some(c), Some(b)) => c < b,
                _ => candidate.row < b.row,
            },
        };
        if better {
            self.best = Some(candidate);
        }
    }
}

#[derive(Default)]
struct Shared {
    report: LoadReport,
    onset: OnsetTracker,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Sends rows until the row limit, the duration or `stop` is reached, whichever comes first.
pub async fn run(
    plan: LoadPlan,
    mut generator: Generator,
    target: Target,
    live: Arc<Live>,
    stop: impl Future<Output = ()> + Send,
) -> LoadReport {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let plan = Arc::new(plan);
    let concurrency = plan.pacing.concurrency as usize;
    let batch_rows = plan.pacing.batch as usize;
    let (tx, rx) = mpsc::channel::<Batch>(concurrency);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        tasks.push(tokio::spawn(request_loop(
            plan.clone(),
            target.clone(),
            rx.clone(),
            shared.clone(),
            live.clone(),
        )));
    }

    let deadline = plan
        .pacing
        .duration()
        .map(|d| tokio::time::Instant::from_std(started) + d);
    let origin = tokio::time::Instant::from_std(started);
    let mut interrupted = false;
    let mut stop = std::pin::pin!(stop);
    loop {
        let generated = generator.rows_generated();
        let n = match plan.pacing.rows {
            Some(limit) => batch_rows.min(limit.saturating_sub(generated) as usize),
            None => batch_rows,
        };
        if n == 0 {
            break;
        }
        // Batch k leaves when the rows before it are due at the target rate; a late
        // sender catches up without sleeping.
        let rate = plan.pacing.rate;
        let mut due =
            (rate > 0.0).then(|| origin + Duration::from_secs_f64(generated as f64 / rate));
        if let Some(d) = deadline {
            due = Some(due.map_or(d, |t| t.min(d)));
        }
        if let Some(due) = due {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = &mut stop => { interrupted = true; break; }
            }
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        let batch = generator.next_batch(n);
        tokio::select! {
            sent = tx.send(batch) => if sent.is_err() { break },
            _ = &mut stop => { interrupted = true; break; }
        }
    }
    drop(tx);
    for t in tasks {
        if let Err(e) = t.await {
            tracing::error!(error = %e, "request task failed");
        }
    }
    let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
    let mut report = std::mem::take(&mut guard.report);
    report.elapsed = started.elapsed();
    report.onset = guard.onset.best.take();
    report.interrupted = interrupted;
    report
}

async fn request_loop(
    plan: Arc<LoadPlan>,
    target: Target,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Batch>>>,
    shared: Arc<Mutex<Shared>>,
    live: Arc<Live>,
) {
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            rx.recv().await
        };
        let Some(batch) = batch else { return };
        let body = match serde_json::to_vec(&RowsBody {
            columns: &plan.columns,
            labels: &plan.labels,
            rows: &batch.rows,
        }) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "serialising a batch");
                continue;
            }
        };
        let n = batch.len() as u64;
        let t = Instant::now();
        let sent = target
            .client()
            .post(plan.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let outcome = match sent {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(bytes) => Ok((status, bytes)),
                    Err(e) => Err(transport_kind(&e)),
                }
            }
            Err(e) => Err(transport_kind(&e)),
        };
        let latency_ms = t.elapsed().as_secs_f64() * 1000.0;
        let at = unix_now();
        live.rows_done.fetch_add(n, Ordering::Relaxed);
        let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
        let sh = &mut *guard;
        sh.report.counts.requests += 1;
        sh.report.counts.rows_sent += n;
        let failure = match outcome {
            Err(kind) => Some(kind.to_string()),
            Ok((status, bytes)) => {
                sh.report.latencies_ms.push(latency_ms);
                accept(plan.mode, status, &bytes, &batch, at, sh, &live)
            }
        };
        if let Some(kind) = failure {
            *sh.report.counts.errors.entry(kind).or_insert(0) += 1;
            sh.report.counts.rows_failed += n;
            live.failed_requests.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Records a successful answer; returns the error kind of an unsuccessful one.
fn accept(
    mode: Mode,
    status: StatusCode,
    body: &[u8],
    batch: &Batch,
    at: f64,
    sh: &mut Shared,
    live: &Live,
) -> Option<String> {
    let ok = match mode {
        Mode::Ingest | Mode::Calibrate => status == StatusCode::ACCEPTED,
        Mode::Predict => status == StatusCode::OK,
    };
    if !ok {
        return Some(status_kind(status, body));
    }
    let n = batch.len() as u64;
    let (accepted, stored, seq) = match mode {
        Mode::Ingest | Mode::Calibrate => match serde_json::from_slice::<Accepted>(body) {
            Ok(a) => (a.accepted, a.sampled.unwrap_or(a.accepted), a.seq),
            Err(_) => return Some(format!("http_{}_unexpected_body", status.as_u16())),
        },
        Mode::Predict => (n, n, None),
    };
    sh.report.counts.requests_ok += 1;
    sh.report.counts.rows_accepted += accepted;
    live.rows_accepted.fetch_add(accepted, Ordering::Relaxed);
    if let Some(seq) = seq {
        sh.report.max_seq = Some(sh.report.max_seq.map_or(seq, |m| m.max(seq)));
        let first = seq.saturating_sub(stored) + 1;
        sh.report.min_seq = Some(sh.report.min_seq.map_or(first, |m| m.min(first)));
        live.max_seq.fetch_max(seq, Ordering::Relaxed);
    }
    let before_onset = batch.first_drifted.map_or(n, |k| k as u64);
    sh.report.rows_accepted_before_onset += before_onset;
    if let Some(k) = batch.first_drifted {
        // Row k's position is known only when every row of the batch was stored.
        let onset_seq = seq
            .filter(|_| stored == accepted)
            .map(|s| s.saturating_sub(accepted) + k as u64 + 1);
        sh.onset.offer(Onset {
            row: batch.first_row + k as u64,
            seq: onset_seq,
            at,
        });
        if let Some(best) = sh.onset.best.as_ref().and_then(|o| o.seq) {
            live.onset_seq.store(best, Ordering::Relaxed);
        }
    }
    None
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[3.0], 95.0), Some(3.0));
    }

    #[test]
    fn earliest_onset_wins() {
        let mut t = OnsetTracker::default();
        t.offer(Onset {
            row: 1000,
            seq: Some(1051),
            at: 2.0,
        });
        t.offer(Onset {
            row: 1050,
            seq: Some(1001),
            at: 1.0,
        });
        t.offer(Onset {
            row: 1100,
            seq: Some(1101),
            at: 3.0,
        });
        assert_eq!(t.best.unwrap().seq, Some(1001));
    }
}
