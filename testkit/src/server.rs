//! The project's services run in the test process, each on a free loopback port through
//! its `run(listener, config, shutdown)` entry point, exactly as `main` runs it.

use drift_api::ApiConfig;
use drift_worker::{ExporterConfig, WorkerConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A service running in this process: stopped gracefully by [`Server::stop`], aborted
/// (as by a crash) by [`Server::abort`] or on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client of this service.
    pub fn client(&self) -> crate::Client {
        crate::Client::new(&self.url())
    }

    /// The service's own `/metrics` text.
    pub async fn metrics(&self) -> String {
        crate::Client::new(&self.url()).text("/metrics", 200).await
    }

    /// Waits until `/readyz` answers 200 (Redis reachable, monitors registered).
    pub async fn wait_ready(&self) {
        let client = crate::Client::new(&self.url());
        let ready = crate::eventually(Duration::from_secs(10), || async {
            (client.status("/readyz").await == Some(200)).then_some(())
        })
        .await;
        assert!(ready.is_some(), "{} never became ready", self.url());
    }

    /// Asks the service to shut down (as SIGTERM does) and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => t.await?,
            None => Ok(()),
        }
    }

    /// Ends the service at once, with nothing flushed or acknowledged.
    pub fn abort(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
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
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"));
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(f(listener, rx));
    let server = Server {
        addr,
        stop: Some(tx),
        task: Some(task),
    };
    // Up when it answers at all (readiness may need Redis, which a test may withhold).
    let client = crate::Client::new(&server.url());
    let up = crate::eventually(Duration::from_secs(10), || async {
        client.status("/healthz").await.map(|_| ())
    })
    .await;
    assert!(up.is_some(), "{} did not start serving", server.url());
    server
}

fn adjusted<C>(mut cfg: C, tweak: impl FnOnce(&mut C)) -> C {
    tweak(&mut cfg);
    cfg
}

/// Resolves when the server's stop sender fires or is dropped: its shutdown signal.
async fn until(rx: oneshot::Receiver<()>) {
    let _ = rx.await;
}

/// An API replica on `redis_url` with key prefix `prefix`, its defaults adjusted by `tweak`.
pub async fn spawn_api(
    redis_url: &str,
    prefix: &str,
    tweak: impl FnOnce(&mut ApiConfig),
) -> Server {
    let cfg = adjusted(ApiConfig::for_redis(redis_url, prefix), tweak);
    spawn(move |l, rx| drift_api::run(l, cfg, until(rx))).await
}

/// A worker; its blocking read and monitor refresh are shortened so tests settle fast.
pub async fn spawn_worker(
    redis_url: &str,
    prefix: &str,
    tweak: impl FnOnce(&mut WorkerConfig),
) -> Server {
    let mut cfg = WorkerConfig::for_redis(redis_url, prefix);
    (cfg.block_ms, cfg.refresh_ms) = (200, 200);
    let cfg = adjusted(cfg, tweak);
    spawn(move |l, rx| drift_worker::run_worker(l, cfg, until(rx))).await
}

pub async fn spawn_exporter(redis_url: &str, prefix: &str) -> Server {
    spawn_exporter_with(redis_url, prefix, |_| {}).await
}

/// The exporter, its defaults adjusted by `tweak`.
pub async fn spawn_exporter_with(
    redis_url: &str,
    prefix: &str,
    tweak: impl FnOnce(&mut ExporterConfig),
) -> Server {
    let cfg = adjusted(ExporterConfig::for_redis(redis_url, prefix), tweak);
    spawn(move |l, rx| drift_worker::run_exporter(l, cfg, until(rx))).await
}
