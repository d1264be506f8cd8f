//! The janitor: takes over jobs left pending by dead or stuck consumers (`Store::claim_idle` after
//! the idle time), and dead-letters jobs that keep failing.

use crate::consumer::pause;
use crate::evaluate::Evaluator;
use drift_store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct JanitorSettings {
    pub consumer: String,
    pub claim_idle: Duration,
    pub max_deliveries: u64,
}

/// Jobs examined per round trip.
const PAGE: usize = 50;
/// Stuck jobs examined per sweep for dead-lettering.
const STUCK_PAGE: usize = 200;

pub async fn run(
    ev: Arc<Evaluator>,
    settings: JanitorSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let period = (settings.claim_idle / 2).max(Duration::from_millis(100));
    while !*shutdown.borrow() {
        pause(&mut shutdown, period).await;
        if *shutdown.borrow() {
            break;
        }
        let monitors = match ev.store.monitors().await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "janitor: cannot list monitors");
                continue;
            }
        };
        for m in monitors {
            if let Err(e) = sweep(&ev, &settings, &m, &shutdown).await {
                tracing::debug!(monitor = %m, error = %e, "janitor sweep failed");
            }
        }
    }
}

async fn sweep(
    ev: &Evaluator,
    s: &JanitorSettings,
    monitor: &str,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), StoreError> {
    for stuck in ev
        .store
        .stuck_jobs(monitor, s.claim_idle, STUCK_PAGE)
        .await?
    {
        if stuck.deliveries >= s.max_deliveries {
            let reason = format!("delivered {} times without success", stuck.deliveries);
            let outcome = ev
                .dead_letter(monitor, &stuck.id, &reason, stuck.deliveries)
                .await;
            ev.metrics.jobs.with_label_values(&[outcome]).inc();
        }
    }
    let mut cursor = "0-0".to_string();
    loop {
        let (next, items) = ev
            .store
            .claim_idle(monitor, &s.consumer, s.claim_idle, &cursor, PAGE)
            .await?;
        if !items.is_empty() {
            tracing::info!(monitor, jobs = items.len(), "took over idle jobs");
        }
        // Claimed jobs were delivered at least twice; the exact count only matters for
        // dead-lettering, which the stuck-jobs pass above decides.
        ev.process(items, 2).await;
        if next == "0-0" || *shutdown.borrow() {
            return Ok(());
        }
        cursor = next;
    }
}
