//! The evaluation worker: reads jobs from every monitor's jobs stream in the `workers`
//! consumer group, evaluates them and records the outcome.
//!
//! Delivery is at-least-once (a crashed worker's jobs are taken over by the janitor);
//! recording is exactly-once, because the outcome and the XACK happen in one script that
//! does nothing when the job was already acknowledged.

use crate::config::WorkerConfig;
use crate::jobs::{self, Job, Poison};
use crate::metrics::WorkerMetrics;
use deadpool_redis::redis::{self, Value};
use drift_core::keys::{Keys, GROUP};
use drift_core::ks::{Alternative, Method, Reference};
use drift_core::store::{
    blocking_connection, Evaluation, Recorded, RedisOptions, Store, StoreError, WindowRead,
};
use drift_core::MonitorConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Why a job could not be finished now.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Redis trouble: leave the job pending; it is retried (by us or the janitor).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job can never succeed: dead-letter it at once.
    #[error("{0}")]
    Poison(String),
}

/// A sorted reference and the monitor version it belongs to.
type VersionedReference = (String, Arc<Reference>);

pub struct Worker {
    pub store: Store,
    pub cfg: WorkerConfig,
    pub consumer: String,
    pub metrics: Arc<WorkerMetrics>,
    configs: Mutex<HashMap<String, Arc<MonitorConfig>>>,
    /// Sorted references per (monitor, feature), with the version they belong to.
    refs: Mutex<HashMap<(String, String), VersionedReference>>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

impl Worker {
    pub fn new(cfg: WorkerConfig, metrics: Arc<WorkerMetrics>) -> Result<Self, StoreError> {
        let mut opts = RedisOptions::new(&cfg.redis.redis_url);
        opts.op_timeout = Duration::from_millis(cfg.redis.redis_timeout_ms);
        opts.pool_size = 8;
        let mut store = Store::new(&opts, Keys::new(&cfg.redis.key_prefix))?;
        store.history_maxlen = cfg.history_maxlen;
        store.dead_maxlen = cfg.dead_maxlen;
        let consumer = cfg.consumer.clone().unwrap_or_else(default_consumer);
        Ok(Worker {
            store,
            cfg,
            consumer,
            metrics,
            configs: Mutex::new(HashMap::new()),
            refs: Mutex::new(HashMap::new()),
        })
    }

    /// The monitor's config at the job's version, reloaded when the version moved.
    async fn config_for(&self, job: &Job) -> Result<Option<Arc<MonitorConfig>>, StoreError> {
        let cached = self
            .configs
            .lock()
            .ok()
            .and_then(|c| c.get(&job.monitor).cloned());
        if let Some(c) = cached.filter(|c| c.version == job.version) {
            return Ok(Some(c));
        }
        let Some(fresh) = self.store.config(&job.monitor).await? else {
            return Ok(None);
        };
        let fresh = Arc::new(fresh);
        if let Ok(mut c) = self.configs.lock() {
            c.insert(job.monitor.clone(), fresh.clone());
        }
        Ok(Some(fresh))
    }

    async fn reference(
        &self,
        monitor: &str,
        feature: &str,
        version: &str,
    ) -> Result<Option<Arc<Reference>>, JobError> {
        let key = (monitor.to_string(), feature.to_string());
        if let Some((v, r)) = self.refs.lock().ok().and_then(|m| m.get(&key).cloned()) {
            if v == version {
                return Ok(Some(r));
            }
        }
        let Some(values) = self.store.reference(monitor, feature, version).await? else {
            return Ok(None);
        };
        let r = Arc::new(
            Reference::from_sorted(values)
                .map_err(|e| JobError::Poison(format!("reference of {feature}: {e}")))?,
        );
        if let Ok(mut m) = self.refs.lock() {
            m.insert(key, (version.to_string(), r.clone()));
        }
        Ok(Some(r))
    }

    /// Evaluates one job and records its outcome.
    pub async fn handle(&self, job: &Job) -> Result<Recorded, JobError> {
        let Some(cfg) = self.config_for(job).await? else {
            return Err(JobError::Poison(format!(
                "monitor `{}` is not registered",
                job.monitor
            )));
        };
        let record = |evaluation: Option<Evaluation>| {
            let cfg = cfg.clone();
            async move {
                self.store
                    .record(
                        &cfg,
                        &job.id,
                        job.feature,
                        job.seq,
                        &job.version,
                        now_secs(),
                        evaluation.as_ref(),
                    )
                    .await
            }
        };
        if cfg.version != job.version {
            return Ok(record(None).await?);
        }
        let Some(feature) = cfg.features.get(job.feature).cloned() else {
            return Err(JobError::Poison(format!(
                "feature index {} out of range",
                job.feature
            )));
        };
        let mut window = match self
            .store
            .read_window(&job.monitor, &feature, job.seq, &job.version)
            .await?
        {
            WindowRead::Window(w) => w,
            WindowRead::Stale(reason) => {
                tracing::debug!(job = %job.id, %feature, %reason, "stale job");
                return Ok(record(None).await?);
            }
        };
        let Some(reference) = self.reference(&job.monitor, &feature, &job.version).await? else {
            return Ok(record(None).await?);
        };
        let n = window.len();
        let res = tokio::task::spawn_blocking(move || {
            reference.evaluate(&mut window, Alternative::TwoSided, Method::Auto)
        })
        .await
        .map_err(|e| JobError::Poison(format!("evaluation panicked: {e}")))?
        .map_err(|e| JobError::Poison(format!("evaluation failed: {e}")))?;
        let evaluation = Evaluation {
            p_value: res.pvalue,
            statistic: res.statistic,
            statistic_location: res.statistic_location,
            statistic_sign: res.statistic_sign,
            window_rows: n,
            method: match res.effective_method {
                drift_core::ks::EffectiveMethod::Exact => "exact",
                drift_core::ks::EffectiveMethod::Asymptotic => "asymptotic",
            },
        };
        Ok(record(Some(evaluation)).await?)
    }

    /// Handles a job and accounts for it; errors are logged, never propagated.
    pub async fn process(&self, item: Result<Job, Poison>, deliveries: u64) {
        let start = Instant::now();
        let outcome = match item {
            Ok(job) => match self.handle(&job).await {
                Ok(rec) => rec.as_str(),
                Err(JobError::Poison(reason)) => {
                    self.dead_letter(&job.monitor, &job.id, &reason, deliveries)
                        .await
                }
                Err(JobError::Store(e)) => {
                    tracing::warn!(job = %job.id, monitor = %job.monitor, error = %e, "job failed; left pending for retry");
                    "failed"
                }
            },
            Err(p) => {
                self.dead_letter(&p.monitor, &p.id, &p.reason, deliveries)
                    .await
            }
        };
        self.metrics.jobs.with_label_values(&[outcome]).inc();
        self.metrics.duration.observe(start.elapsed().as_secs_f64());
    }

    async fn dead_letter(
        &self,
        monitor: &str,
        id: &str,
        reason: &str,
        deliveries: u64,
    ) -> &'static str {
        tracing::warn!(job = %id, %monitor, %reason, "dead-lettering job");
        match self
            .store
            .dead_letter(monitor, id, reason, deliveries)
            .await
        {
            Ok(true) => "dead_letter",
            Ok(false) => "duplicate",
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "dead-lettering failed");
                "failed"
            }
        }
    }

    /// Monitors and the stream key of each, with their consumer groups ensured.
    async fn refresh_monitors(&self) -> Result<HashMap<String, String>, StoreError> {
        let mut out = HashMap::new();
        for m in self.store.monitors().await? {
            self.store.ensure_group(&m).await?;
            out.insert(self.store.keys().jobs(&m), m);
        }
        Ok(out)
    }

    /// The read loop: first this consumer's own pending jobs (left by a previous life of
    /// the same name), then new ones. Stops between reads when `shutdown` flips, after
    /// finishing the jobs in hand.
    pub async fn read_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let block = Duration::from_millis(self.cfg.block_ms);
        let mut conn = None;
        let mut streams: HashMap<String, String> = HashMap::new();
        let mut refreshed: Option<Instant> = None;
        let mut drain_own = true;
        let mut backoff = Duration::from_millis(50);
        while !*shutdown.borrow() {
            if refreshed.is_none_or(|t| t.elapsed() >= Duration::from_millis(self.cfg.refresh_ms)) {
                match self.refresh_monitors().await {
                    Ok(s) => {
                        if s.len() != streams.len() {
                            drain_own = true;
                        }
                        streams = s;
                        refreshed = Some(Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list monitors");
                        pause(&mut shutdown, backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            if streams.is_empty() {
                pause(&mut shutdown, block.min(Duration::from_millis(500))).await;
                refreshed = None;
                continue;
            }
            if conn.is_none() {
                let timeout = block + Duration::from_millis(self.cfg.redis.redis_timeout_ms);
                match blocking_connection(&self.cfg.redis.redis_url, timeout).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot connect for reading jobs");
                        pause(&mut shutdown, backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let keys: Vec<&String> = streams.keys().collect();
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(GROUP)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(self.cfg.batch);
            if !drain_own {
                cmd.arg("BLOCK").arg(self.cfg.block_ms);
            }
            cmd.arg("STREAMS").arg(&keys);
            for _ in &keys {
                cmd.arg(if drain_own { "0" } else { ">" });
            }
            let reply: Result<Value, _> = cmd.query_async(c).await;
            match reply {
                Ok(reply) => {
                    backoff = Duration::from_millis(50);
                    let items = jobs::parse_read_reply(&reply, &streams);
                    if drain_own && items.is_empty() {
                        drain_own = false;
                    }
                    for item in items {
                        self.process(item, 1).await;
                    }
                }
                Err(e) => {
                    let nogroup = e.code() == Some("NOGROUP");
                    tracing::warn!(error = %e, "reading jobs failed");
                    if !nogroup {
                        conn = None;
                    }
                    refreshed = None;
                    drain_own = true;
                    pause(&mut shutdown, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        tracing::info!(consumer = %self.consumer, "read loop stopped");
    }

    /// Takes over jobs left pending by dead or stuck consumers, and dead-letters jobs that
    /// keep failing.
    pub async fn janitor(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let period = Duration::from_millis((self.cfg.claim_idle_ms / 2).max(100));
        while !*shutdown.borrow() {
            pause(&mut shutdown, period).await;
            if *shutdown.borrow() {
                break;
            }
            let monitors = match self.store.monitors().await {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "janitor: cannot list monitors");
                    continue;
                }
            };
            for m in monitors {
                if let Err(e) = self.sweep(&m, &shutdown).await {
                    tracing::debug!(monitor = %m, error = %e, "janitor sweep failed");
                }
            }
        }
    }

    async fn sweep(
        &self,
        monitor: &str,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let key = self.store.keys().jobs(monitor);
        let idle = self.cfg.claim_idle_ms;
        let mut pending = redis::cmd("XPENDING");
        pending
            .arg(&key)
            .arg(GROUP)
            .arg("IDLE")
            .arg(idle)
            .arg("-")
            .arg("+")
            .arg(200);
        let reply: Value = self.store.query(pending).await?;
        for (id, deliveries) in jobs::parse_pending(&reply) {
            if deliveries >= self.cfg.max_deliveries {
                let outcome = self
                    .dead_letter(
                        monitor,
                        &id,
                        &format!("delivered {deliveries} times without success"),
                        deliveries,
                    )
                    .await;
                self.metrics.jobs.with_label_values(&[outcome]).inc();
            }
        }
        let mut cursor = "0-0".to_string();
        loop {
            let mut claim = redis::cmd("XAUTOCLAIM");
            claim
                .arg(&key)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(idle)
                .arg(&cursor)
                .arg("COUNT")
                .arg(50);
            let reply: Value = self.store.query(claim).await?;
            let (next, items) = jobs::parse_autoclaim(monitor, &reply);
            if !items.is_empty() {
                tracing::info!(monitor, jobs = items.len(), "took over idle jobs");
            }
            for item in items {
                // Claimed jobs were delivered at least twice; the exact count only matters
                // for dead-lettering, which the XPENDING pass above decides.
                self.process(item, 2).await;
            }
            if next == "0-0" || *shutdown.borrow() {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// Sleeps for `d` unless shutdown is requested first.
async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {},
        _ = shutdown.changed() => {},
    }
}
