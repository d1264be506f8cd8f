//! A Prometheus server rendered from `prometheus/local.yml.template` with the rules of
//! `prometheus/alerts.yml`, so tests check the alerts and dashboard queries that ship,
//! against the services' real `/metrics`.

use crate::gateway::{repo_root, tail, terminate, tie_to_owner};
use crate::process::{free_port, require_binary, TempDir};
use crate::Client;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What Prometheus scrapes, one list per job of the template.
#[derive(Clone, Debug, Default)]
pub struct ScrapeTargets {
    pub exporter: Vec<SocketAddr>,
    pub apis: Vec<SocketAddr>,
    pub workers: Vec<SocketAddr>,
}

impl ScrapeTargets {
    pub fn len(&self) -> usize {
        self.exporter.len() + self.apis.len() + self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A `prometheus` process with its own storage directory, stopped (SIGTERM, then SIGKILL)
/// on drop.
pub struct Prometheus {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    targets: usize,
}

impl Prometheus {
    /// Starts Prometheus on `127.0.0.1:port` (0: a free port) and waits for `/-/ready`.
    pub async fn start(targets: &ScrapeTargets, port: u16) -> Self {
        let bin = require_binary("prometheus", "prometheus");
        let dir = TempDir::new("prometheus");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", data.display()));
        let mut prom = Prometheus {
            child: None,
            port,
            dir,
            targets: targets.len(),
        };
        prom.render(targets);
        let attempts = if port == 0 { 10 } else { 1 };
        let mut last = String::new();
        for _ in 0..attempts {
            prom.port = if port == 0 { free_port() } else { port };
            match prom.spawn(&bin).await {
                Ok(()) => return prom,
                Err(why) => last = why,
            }
        }
        panic!(
            "prometheus did not start on 127.0.0.1:{}: {last}",
            prom.port
        );
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("prometheus.yml")
    }

    fn render(&self, targets: &ScrapeTargets) {
        let root = repo_root();
        let template_path = root.join("prometheus/local.yml.template");
        let template = std::fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", template_path.display()));
        let flow = |addrs: &[SocketAddr]| {
            let items: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
            format!("[{}]", items.join(", "))
        };
        let conf = template
            .replace("@EXPORTER@", &flow(&targets.exporter))
            .replace("@APIS@", &flow(&targets.apis))
            .replace("@WORKERS@", &flow(&targets.workers))
            .replace(
                "@RULES@",
                &root.join("prometheus/alerts.yml").display().to_string(),
            );
        std::fs::write(self.config(), conf)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", self.config().display()));
    }

    async fn spawn(&mut self, bin: &Path) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| format!("cannot open {}: {e}", self.log().display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", self.log().display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", self.config().display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        tie_to_owner(&mut cmd, libc::SIGTERM);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        self.child = Some(child);
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return Err(format!("exited ({status}): {}", tail(&self.log(), 5)));
            }
            if client.status("/-/ready").await == Some(200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.terminate();
                return Err("/-/ready did not answer 200 within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url())
    }

    /// Rendered `prometheus.yml`, `prometheus.log` and the TSDB under `data/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How the process ended, if it did (a live server gives `None`).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// `data` of a successful GET on the HTTP API (`/api/v1/...`); anything else fails.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let client = self.client();
        let req = client.http().get(client.url(path)).query(params);
        let (status, doc) = client.send(req).await;
        assert!(
            status == 200 && doc["status"] == "success",
            "GET {path} {params:?} on Prometheus: {status} {doc}"
        );
        doc["data"].clone()
    }

    /// The result series of an instant query, as a JSON array of `{metric, value}`; a
    /// scalar result comes as one series without labels, so callers handle one shape.
    pub async fn query(&self, expr: &str) -> Value {
        let data = self.api("/api/v1/query", &[("query", expr)]).await;
        if data["resultType"] == "scalar" || data["resultType"] == "string" {
            return serde_json::json!([{ "metric": {}, "value": data["result"] }]);
        }
        data["result"].clone()
    }

    /// Every alert Prometheus knows (pending and firing), as `/api/v1/alerts` lists them.
    pub async fn alerts(&self) -> Vec<Value> {
        let data = self.api("/api/v1/alerts", &[]).await;
        data["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// The active scrape targets with their health.
    pub async fn targets(&self) -> Vec<Value> {
        let data = self.api("/api/v1/targets", &[]).await;
        data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until every configured target has been scraped successfully: before that,
    /// queries and alerts see gaps that no test means.
    pub async fn wait_targets_up(&self, timeout: Duration) {
        let want = self.targets;
        let deadline = Instant::now() + timeout;
        loop {
            let targets = self.targets().await;
            if targets.len() == want && targets.iter().all(|t| t["health"] == "up") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not all {want} Prometheus targets up within {timeout:?}: {}",
                Value::Array(targets)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops Prometheus and waits for it.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child, Duration::from_secs(10));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.terminate();
    }
}
