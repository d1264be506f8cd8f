//! Entry points of `drift-worker run` and `drift-worker export`, each with its small
//! HTTP server (`/metrics`, `/healthz`).

use crate::config::{ExporterConfig, WorkerConfig};
use crate::consumer::{self, ConsumerSettings};
use crate::evaluate::Evaluator;
use crate::export;
use crate::janitor::{self, JanitorSettings};
use crate::metrics::WorkerMetrics;
use anyhow::Context;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use drift_store::Caps;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

use drift_service::metrics::TEXT_FORMAT as TEXT;

/// A consumer name unique per process: host (the container's name in compose), pid and a
/// few random bits, so that a restarted worker never inherits a dead one's pending jobs
/// by accident (the janitor takes those over).
fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Runs a worker until `shutdown` resolves: then it stops reading, finishes the jobs in
/// hand and returns.
pub async fn run_worker(
    listener: TcpListener,
    cfg: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = Arc::new(WorkerMetrics::new()?);
    let store = cfg.redis.connect(8, cfg.caps())?;
    let consumer = cfg.consumer.clone().unwrap_or_else(default_consumer);
    let reader = store.job_reader(&consumer, Duration::from_millis(cfg.block_ms));
    let ev = Arc::new(Evaluator::new(store, metrics.clone(), cfg.eval_threads)?);
    tracing::info!(%consumer, addr = %listener.local_addr()?, "drift-worker started");
    let (tx, rx) = watch::channel(false);
    let reader = tokio::spawn(consumer::run(
        ev.clone(),
        reader,
        ConsumerSettings {
            batch: cfg.batch,
            in_flight: cfg.in_flight,
            block: Duration::from_millis(cfg.block_ms),
            refresh: Duration::from_millis(cfg.refresh_ms),
        },
        rx.clone(),
    ));
    let janitor = tokio::spawn(janitor::run(
        ev,
        JanitorSettings {
            consumer,
            claim_idle: Duration::from_millis(cfg.claim_idle_ms),
            max_deliveries: cfg.max_deliveries,
        },
        rx.clone(),
    ));
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { ([(header::CONTENT_TYPE, TEXT)], m.render()).into_response() }
            }),
        )
        .route("/healthz", get(healthz));
    let mut http_rx = rx.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    shutdown.await;
    tracing::info!("shutdown requested: finishing the jobs in hand");
    let _ = tx.send(true);
    reader.await.context("read loop")?;
    janitor.await.context("janitor")?;
    http.await.context("http task")?.context("serving HTTP")?;
    Ok(())
}

/// Runs the exporter until `shutdown` resolves.
pub async fn run_exporter(
    listener: TcpListener,
    cfg: ExporterConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = Arc::new(cfg.redis.connect(4, Caps::DEFAULT)?);
    let deadline = Duration::from_millis(cfg.redis.redis_timeout_ms.saturating_mul(2));
    tracing::info!(addr = %listener.local_addr()?, "drift exporter started");
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let store = store.clone();
                async move {
                    let body = export::render(&store, deadline).await;
                    ([(header::CONTENT_TYPE, TEXT)], body).into_response()
                }
            }),
        )
        .route("/healthz", get(healthz));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")
}
