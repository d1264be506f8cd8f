//! A local drift stack for the simulator's tests: a real redis-server, one API and two
//! workers in this process, each on a free loopback port.
#![allow(dead_code)]

use drift_testkit::RedisServer;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in this process, aborted on drop.
pub struct Server {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
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
        _stop: tx,
        task,
    }
}

/// Redis, one API (default monitor: window 500, stride 100) and two workers.
pub struct Stack {
    pub redis: RedisServer,
    pub api: Server,
    pub workers: Vec<Server>,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(|_| {}).await
    }

    /// [`Stack::start`] with the API's configuration adjusted.
    pub async fn start_with(tweak: impl FnOnce(&mut drift_api::ApiConfig)) -> Stack {
        let redis = RedisServer::start();
        let url = redis.url();
        let mut cfg = drift_api::ApiConfig::for_redis(&url, "sim");
        tweak(&mut cfg);
        let api = spawn(move |l, rx| async move {
            drift_api::run(l, cfg, async {
                let _ = rx.await;
            })
            .await
        })
        .await;
        let mut workers = Vec::new();
        for _ in 0..2 {
            let mut cfg = drift_worker::WorkerConfig::for_redis(&url, "sim");
            cfg.block_ms = 200;
            cfg.refresh_ms = 200;
            workers.push(
                spawn(move |l, rx| async move {
                    drift_worker::run_worker(l, cfg, async {
                        let _ = rx.await;
                    })
                    .await
                })
                .await,
            );
        }
        let stack = Stack {
            redis,
            api,
            workers,
        };
        stack.wait_registered().await;
        stack
    }

    /// The default monitor is registered in the background: waits until it answers.
    async fn wait_registered(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/v1/monitors/breast_cancer", self.api.url());
        for _ in 0..500 {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the default monitor was not registered within 10 s");
    }
}
