//! Logs predicted rows for monitoring off the response path.
//!
//! A prediction must answer whether or not Redis is healthy, so rows go into a bounded
//! in-process buffer and a background task writes them in batches (by count or after a few
//! milliseconds), one round trip per batch. When the buffer is full or a write fails, the
//! rows are dropped and counted in `drift_rows_dropped_total{reason}`.
//!
//! Rows are queued in the model's feature order and written by feature name to the
//! monitor's current config: a monitor re-registered with its columns in another order
//! still gets each value in its own window, and one whose features the model's rows do not
//! cover gets nothing (`reason="schema_mismatch"`), never a placeholder value.

use crate::error::ErrorCode;
use crate::state::AppState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct RowLogger {
    tx: mpsc::Sender<Vec<f64>>,
}

/// Tuning of the logger.
#[derive(Clone, Copy, Debug)]
pub struct RowLogConfig {
    pub capacity: usize,
    pub max_batch: usize,
    pub max_delay: Duration,
}

impl RowLogger {
    /// Queues one row (features in the default monitor's order); never waits.
    pub fn log(&self, state: &AppState, row: Vec<f64>) {
        if let Err(e) = self.tx.try_send(row) {
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "buffer_full",
                mpsc::error::TrySendError::Closed(_) => "shutting_down",
            };
            state
                .metrics
                .rows_dropped
                .with_label_values(&[reason])
                .inc();
        }
    }
}

/// Starts the writer task. It ends, after writing what is buffered, once every
/// [`RowLogger`] clone has been dropped.
pub fn start(
    state: Arc<AppState>,
    monitor: String,
    cfg: RowLogConfig,
) -> (RowLogger, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Vec<f64>>(cfg.capacity.max(1));
    let task = tokio::spawn(async move {
        let mut batch: Vec<Vec<f64>> = Vec::with_capacity(cfg.max_batch);
        loop {
            let Some(first) = rx.recv().await else { break };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + cfg.max_delay;
            while batch.len() < cfg.max_batch {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(row)) => batch.push(row),
                    Ok(None) | Err(_) => break,
                }
            }
            write(&state, &monitor, &mut batch).await;
        }
        tracing::info!("prediction row log flushed");
    });
    (RowLogger { tx }, task)
}

async fn write(state: &AppState, monitor: &str, batch: &mut Vec<Vec<f64>>) {
    let n = batch.len() as u64;
    let result = async {
        let cfg = state.monitor(monitor).await.map_err(|e| Some(e.code))?;
        let layout = state.model.as_ref().map(|(_, c)| c.features.as_slice());
        // For each feature of the monitor as registered now, its position in a queued row.
        let positions: Option<Vec<usize>> = cfg
            .features
            .iter()
            .map(|f| layout?.iter().position(|g| g == f))
            .collect();
        let positions = positions.ok_or(None)?;
        let mut columns: Vec<Vec<f64>> = Vec::with_capacity(positions.len());
        for &j in &positions {
            let col: Option<Vec<f64>> = batch.iter().map(|r| r.get(j).copied()).collect();
            columns.push(col.ok_or(None)?);
        }
        state.ingest(cfg, columns).await.map_err(|e| Some(e.code))
    }
    .await;
    batch.clear();
    match result {
        // `AppState::ingest` counted the rows stored and those sampling left out.
        Ok(_) => {}
        Err(code) => {
            let reason = match code {
                Some(ErrorCode::RedisUnavailable) => ErrorCode::RedisUnavailable.as_str(),
                Some(_) => "store_error",
                None => "schema_mismatch",
            };
            tracing::warn!(rows = n, %reason, "dropping logged prediction rows");
            state
                .metrics
                .rows_dropped
                .with_label_values(&[reason])
                .inc_by(n);
        }
    }
}
