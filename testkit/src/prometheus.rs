//! A Prometheus server rendered from `prometheus/local.yml.template` with the rules of
//! `prometheus/alerts.yml`, so tests check the alerts and dashboard queries that ship,
//! against the services' real `/metrics`.

use crate::child::{repo_root, ChildServer, Readiness};
use crate::process::{require_binary, TempDir};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
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
/// on drop. Port, URL, pid and directory come from its [`ChildServer`].
pub struct Prometheus {
    server: ChildServer,
    targets: usize,
}

crate::child::child_server_wrapper!(Prometheus);

impl Prometheus {
    /// Starts Prometheus on `127.0.0.1:port` (0: a free port) and waits for `/-/ready`.
    pub async fn start(targets: &ScrapeTargets, port: u16) -> Self {
        let bin = require_binary("prometheus", "prometheus");
        let dir = TempDir::new("prometheus");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", data.display()));
        let mut prom = Prometheus {
            server: ChildServer::new("prometheus", dir, Duration::from_secs(10)),
            targets: targets.len(),
        };
        Prometheus::render(&prom.server, targets);
        let log = prom.log();
        let command = |s: &ChildServer| {
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(s.dir().join("prometheus.log"));
            let (stdout, stderr) = match out.and_then(|f| Ok((f.try_clone()?, f))) {
                Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
                Err(_) => (Stdio::null(), Stdio::null()),
            };
            let mut cmd = Command::new(&bin);
            cmd.arg(format!("--config.file={}", Prometheus::config(s).display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    s.dir().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{}", s.port()))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr);
            cmd
        };
        let ready = Readiness {
            path: "/-/ready",
            log,
            timeout: Duration::from_secs(60),
        };
        prom.server.launch(port, command, ready).await;
        prom
    }

    fn config(s: &ChildServer) -> PathBuf {
        s.dir().join("prometheus.yml")
    }

    fn render(s: &ChildServer, targets: &ScrapeTargets) {
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
        std::fs::write(Prometheus::config(s), conf)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", Prometheus::config(s).display()));
    }

    pub fn log(&self) -> PathBuf {
        self.dir().join("prometheus.log")
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
}
