//! Starting an in-process API on a free port for tests.
#![allow(dead_code)]

use drift_api::ApiConfig;

/// A running API: its base URL, the sender that stops it, and its task.
pub struct Api {
    pub url: String,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn start(redis_url: &str, prefix: &str, tweak: impl FnOnce(&mut ApiConfig)) -> Api {
    let mut cfg = ApiConfig::for_redis(redis_url, prefix);
    tweak(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(drift_api::run(listener, cfg, async {
        let _ = rx.await;
    }));
    Api {
        url: format!("http://{addr}"),
        stop,
        task,
    }
}

/// Waits until `/readyz` answers 200 (Redis reachable, monitors registered).
pub async fn wait_ready(url: &str) {
    let ready = drift_testkit::eventually(std::time::Duration::from_secs(10), || async {
        let r = reqwest::get(format!("{url}/readyz")).await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "{url} never became ready");
}
