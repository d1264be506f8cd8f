//! Entry points of `drift-worker run` and `drift-worker export`, each with its small
//! HTTP server (`/metrics`, `/healthz`).

use crate::config::{ExporterConfig, WorkerConfig};
use crate::export;
use crate::metrics::WorkerMetrics;
use crate::runner::Worker;
use anyhow::Context;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use drift_core::keys::Keys;
use drift_core::store::{RedisOptions, Store};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

const TEXT: &str = "text/plain; version=0.0.4";

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
    let worker = Arc::new(Worker::new(cfg, metrics.clone())?);
    tracing::info!(consumer = %worker.consumer, addr = %listener.local_addr()?, "drift-worker started");
    let (tx, rx) = watch::channel(false);
    let reader = tokio::spawn(worker.clone().read_loop(rx.clone()));
    let janitor = tokio::spawn(worker.clone().janitor(rx.clone()));
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
    let mut opts = RedisOptions::new(&cfg.redis.redis_url);
    opts.op_timeout = Duration::from_millis(cfg.redis.redis_timeout_ms);
    opts.pool_size = 4;
    let store = Arc::new(Store::new(&opts, Keys::new(&cfg.redis.key_prefix))?);
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
