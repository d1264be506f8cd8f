//! A local drift stack: one real redis-server, API replicas, workers and the exporter,
//! each on a free loopback port, sharing one key prefix; optionally the NGINX gateway in
//! front of the replicas and Prometheus scraping everything, as deployed.

use crate::{
    spawn_api, spawn_exporter, spawn_worker, Client, Gateway, Prometheus, RedisOptions,
    RedisServer, ScrapeTargets, Server,
};
use drift_api::ApiConfig;
use drift_store::Store;
use drift_worker::WorkerConfig;
use std::sync::Arc;
use std::time::Duration;

type Tweak<C> = Arc<dyn Fn(&mut C) + Send + Sync>;

pub struct StackBuilder {
    prefix: String,
    redis: RedisOptions,
    apis: usize,
    workers: usize,
    exporter: bool,
    gateway: Option<u16>,
    prometheus: Option<u16>,
    api: Tweak<ApiConfig>,
    worker: Tweak<WorkerConfig>,
}

impl StackBuilder {
    /// Key prefix of every service (tests on one Redis stay apart by prefix).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    pub fn redis(mut self, opts: RedisOptions) -> Self {
        self.redis = opts;
        self
    }

    pub fn apis(mut self, n: usize) -> Self {
        self.apis = n;
        self
    }

    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    pub fn exporter(mut self) -> Self {
        self.exporter = true;
        self
    }

    /// NGINX in front of the API replicas, on a free port.
    pub fn gateway(self) -> Self {
        self.gateway_port(0)
    }

    /// NGINX on `port` (0: a free one), for a launcher whose users expect a fixed address.
    pub fn gateway_port(mut self, port: u16) -> Self {
        self.gateway = Some(port);
        self
    }

    /// Prometheus scraping every service of the stack, with the shipped alert rules, on a
    /// free port.
    pub fn prometheus(self) -> Self {
        self.prometheus_port(0)
    }

    /// Prometheus on `port` (0: a free one).
    pub fn prometheus_port(mut self, port: u16) -> Self {
        self.prometheus = Some(port);
        self
    }

    /// Adjusts every API replica's configuration (defaults otherwise).
    pub fn api_config(mut self, f: impl Fn(&mut ApiConfig) + Send + Sync + 'static) -> Self {
        self.api = Arc::new(f);
        self
    }

    /// Adjusts every worker's configuration (defaults otherwise).
    pub fn worker_config(mut self, f: impl Fn(&mut WorkerConfig) + Send + Sync + 'static) -> Self {
        self.worker = Arc::new(f);
        self
    }

    /// Starts everything and waits until every API replica is ready, the gateway answers
    /// and Prometheus scraped every target once. The gateway and Prometheus know the
    /// services started here, not those added later with [`Stack::add_api`].
    pub async fn start(self) -> Stack {
        let redis = RedisServer::start_opts(self.redis.clone());
        let mut stack = Stack {
            redis,
            prefix: self.prefix.clone(),
            apis: Vec::new(),
            workers: Vec::new(),
            exporter: None,
            gateway: None,
            prometheus: None,
            api_tweak: self.api.clone(),
            worker_tweak: self.worker.clone(),
        };
        for _ in 0..self.apis {
            stack.add_api().await;
        }
        for api in &stack.apis {
            api.wait_ready().await;
        }
        for _ in 0..self.workers {
            stack.add_worker().await;
        }
        if self.exporter {
            stack.exporter = Some(spawn_exporter(&stack.redis.url(), &stack.prefix).await);
        }
        if let Some(port) = self.gateway {
            let upstreams: Vec<_> = stack.apis.iter().map(|s| s.addr).collect();
            stack.gateway = Some(Gateway::start(&upstreams, port).await);
        }
        if let Some(port) = self.prometheus {
            let addrs = |servers: &[Server]| servers.iter().map(|s| s.addr).collect();
            let targets = ScrapeTargets {
                exporter: stack.exporter.iter().map(|s| s.addr).collect(),
                apis: addrs(&stack.apis),
                workers: addrs(&stack.workers),
            };
            let prom = Prometheus::start(&targets, port).await;
            prom.wait_targets_up(Duration::from_secs(30)).await;
            stack.prometheus = Some(prom);
        }
        stack
    }
}

pub struct Stack {
    pub redis: RedisServer,
    pub prefix: String,
    pub apis: Vec<Server>,
    pub workers: Vec<Server>,
    pub exporter: Option<Server>,
    pub gateway: Option<Gateway>,
    pub prometheus: Option<Prometheus>,
    api_tweak: Tweak<ApiConfig>,
    worker_tweak: Tweak<WorkerConfig>,
}

impl Stack {
    /// Redis only, prefix `t`; add services with the builder's methods.
    pub fn builder() -> StackBuilder {
        StackBuilder {
            prefix: "t".into(),
            redis: RedisOptions::default(),
            apis: 0,
            workers: 0,
            exporter: false,
            gateway: None,
            prometheus: None,
            api: Arc::new(|_| {}),
            worker: Arc::new(|_| {}),
        }
    }

    /// A client of the first API replica.
    pub fn client(&self) -> Client {
        Client::new(&self.api(0).url())
    }

    pub fn api(&self, i: usize) -> &Server {
        self.apis
            .get(i)
            .unwrap_or_else(|| panic!("the stack has {} API replica(s)", self.apis.len()))
    }

    pub fn exporter(&self) -> &Server {
        self.exporter
            .as_ref()
            .unwrap_or_else(|| panic!("the stack was built without an exporter"))
    }

    pub fn gateway(&self) -> &Gateway {
        self.gateway
            .as_ref()
            .unwrap_or_else(|| panic!("the stack was built without a gateway"))
    }

    pub fn prometheus(&self) -> &Prometheus {
        self.prometheus
            .as_ref()
            .unwrap_or_else(|| panic!("the stack was built without Prometheus"))
    }

    /// Stops everything gracefully: the API replicas first, so that the rows they buffer
    /// reach Redis, then workers, exporter, gateway, Prometheus and Redis last. Every part
    /// is stopped even when one fails; the first failure is returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        let services = self
            .apis
            .drain(..)
            .chain(self.workers.drain(..))
            .chain(self.exporter.take());
        for server in services.collect::<Vec<_>>() {
            let addr = server.addr;
            if let Err(e) = server.stop().await {
                if result.is_ok() {
                    result = Err(e.context(format!("service on {addr}")));
                }
            }
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.stop();
        }
        if let Some(prometheus) = self.prometheus.take() {
            prometheus.stop();
        }
        self.redis.stop();
        result
    }

    /// The store the services use, for typed reads of Redis state.
    pub fn store(&self) -> Store {
        self.redis.store(&self.prefix)
    }

    /// Starts one more API replica with the stack's configuration (not waiting for
    /// readiness).
    pub async fn add_api(&mut self) -> &Server {
        let tweak = self.api_tweak.clone();
        let api = spawn_api(&self.redis.url(), &self.prefix, |c| tweak(c)).await;
        self.apis.push(api);
        &self.apis[self.apis.len() - 1]
    }

    /// Starts one more worker with the stack's configuration.
    pub async fn add_worker(&mut self) -> &Server {
        let tweak = self.worker_tweak.clone();
        let w = spawn_worker(&self.redis.url(), &self.prefix, |c| tweak(c)).await;
        self.workers.push(w);
        &self.workers[self.workers.len() - 1]
    }
}
