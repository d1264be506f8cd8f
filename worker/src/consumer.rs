//! The consumer loop: reads batches of jobs from every monitor's jobs stream in the
//! `workers` consumer group and hands them to the evaluator, reading the next batch while
//! earlier ones are evaluated (at most `in_flight` at once).
//!
//! Delivery is at-least-once (a crashed worker's jobs are taken over by the janitor);
//! recording is exactly-once, because the outcome and the acknowledgement happen in one
//! script that does nothing when the job was already acknowledged.

use crate::evaluate::Evaluator;
use drift_service::Backoff;
use drift_store::{JobReader, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Settings of the loop.
#[derive(Clone, Debug)]
pub struct ConsumerSettings {
    pub batch: usize,
    pub in_flight: usize,
    pub block: Duration,
    pub refresh: Duration,
}

/// Monitors, with their consumer groups (and the registry's) ensured.
async fn refresh_monitors(ev: &Evaluator) -> Result<Vec<String>, StoreError> {
    ev.store.ensure_registry_group().await?;
    let monitors = ev.store.monitors().await?;
    for m in &monitors {
        ev.store.ensure_group(m).await?;
    }
    Ok(monitors)
}

/// Reads first this consumer's own pending jobs (left by a previous life of the same
/// name), then new ones. Stops between reads when `shutdown` flips, after finishing the
/// jobs in hand.
pub async fn run(
    ev: Arc<Evaluator>,
    mut reader: JobReader,
    settings: ConsumerSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut monitors: Vec<String> = Vec::new();
    let mut refreshed: Option<Instant> = None;
    let mut drain_own = true;
    let mut backoff = Backoff::default();
    let mut batches = JoinSet::new();
    while !*shutdown.borrow() {
        while batches.len() >= settings.in_flight.max(1) {
            reap(batches.join_next().await);
        }
        if refreshed.is_none_or(|t| t.elapsed() >= settings.refresh) {
            match refresh_monitors(&ev).await {
                Ok(m) => {
                    if m.len() != monitors.len() {
                        drain_own = true;
                    }
                    monitors = m;
                    refreshed = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list monitors");
                    pause(&mut shutdown, backoff.next_delay()).await;
                    continue;
                }
            }
        }
        // With no monitor yet the read waits on the registry alone.
        match reader.read(&monitors, drain_own, settings.batch).await {
            Ok(items) => {
                backoff.reset();
                if reader.take_notice() {
                    refreshed = None;
                }
                if drain_own && items.is_empty() {
                    drain_own = false;
                }
                if !items.is_empty() {
                    let ev = ev.clone();
                    batches.spawn(async move { ev.process(items, 1).await });
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading jobs failed");
                refreshed = None;
                drain_own = true;
                pause(&mut shutdown, backoff.next_delay()).await;
            }
        }
    }
    tracing::info!(consumer = %reader.consumer(), batches = batches.len(), "read loop stopped; finishing the batches in hand");
    while let Some(done) = batches.join_next().await {
        reap(Some(done));
    }
}

/// Logs a batch task that did not finish normally (its jobs stay pending for a retry).
fn reap(done: Option<Result<crate::evaluate::Outcomes, tokio::task::JoinError>>) {
    if let Some(Err(e)) = done {
        tracing::error!(error = %e, "a batch task failed");
    }
}

/// Sleeps for `d` unless shutdown is requested first.
pub(crate) async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {},
        _ = shutdown.changed() => {},
    }
}
