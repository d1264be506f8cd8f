//! Shared state of one API replica: the store, a cache of monitor configs, limits.

use crate::auth::Tokens;
use crate::coalesce::{CoalesceLimits, Coalescer};
use crate::error::{ApiError, ErrorCode};
use crate::metrics::HttpMetrics;
use crate::rowlog::RowLogger;
use crate::status_cache::StatusCache;
use drift_core::model::LogisticModel;
use drift_core::{MonitorConfig, MonitorSpec};
use drift_store::{Ingested, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Limits on what admins may register.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_monitors: usize,
    pub max_features: usize,
}

/// How old the results in a `/datadrift` answer may be. They change at evaluation
/// boundaries only, and reading them per request (one hash per feature) was most of a
/// single-row request's cost; a worker records a boundary's results tens of milliseconds
/// after the row that crossed it at best, so this adds little to what the answer shows.
pub const DATADRIFT_STATUS_AGE: std::time::Duration = std::time::Duration::from_millis(200);

pub struct AppState {
    pub store: Store,
    /// Every ingest path (rows, `/datadrift`, logged predictions) goes through it.
    pub coalescer: Coalescer,
    /// The latest results `/datadrift` answers with, at most [`DATADRIFT_STATUS_AGE`] old.
    pub statuses: StatusCache,
    /// The demo model behind `/v1/predict`, and the default monitor it feeds.
    pub model: Option<(Arc<LogisticModel>, Arc<MonitorConfig>)>,
    /// True once this replica's own monitors are registered; `/readyz` waits for it.
    pub registered: std::sync::atomic::AtomicBool,
    /// Set while the server runs; taken at shutdown so the writer can flush and stop.
    pub row_logger: RwLock<Option<RowLogger>>,
    pub metrics: Arc<HttpMetrics>,
    pub max_batch_rows: usize,
    /// Shared with the auth route layers.
    pub tokens: Arc<Tokens>,
    pub limits: Limits,
    /// Monitors this replica registers itself; re-registered if Redis comes back empty.
    own: HashMap<String, MonitorSpec>,
    /// Configs read from Redis (or registered here), refreshed when Redis says they changed.
    cache: RwLock<HashMap<String, Arc<MonitorConfig>>>,
}

impl AppState {
    pub fn new(
        store: Store,
        metrics: Arc<HttpMetrics>,
        max_batch_rows: usize,
        own: Vec<MonitorSpec>,
        model: Option<(Arc<LogisticModel>, Arc<MonitorConfig>)>,
        tokens: Tokens,
        limits: Limits,
    ) -> Self {
        AppState {
            tokens: Arc::new(tokens),
            limits,
            statuses: StatusCache::new(DATADRIFT_STATUS_AGE),
            coalescer: Coalescer::new(
                store.clone(),
                CoalesceLimits::default(),
                metrics.coalesce.clone(),
            ),
            store,
            model,
            row_logger: RwLock::new(None),
            registered: std::sync::atomic::AtomicBool::new(false),
            metrics,
            max_batch_rows,
            own: own
                .into_iter()
                .map(|s| (s.config.name.clone(), s))
                .collect(),
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The state with ingest requests grouped into script calls under `limits` instead of
    /// the defaults.
    pub fn with_coalescing(mut self, limits: CoalesceLimits) -> Self {
        self.coalescer = Coalescer::new(self.store.clone(), limits, self.metrics.coalesce.clone());
        self
    }

    /// Registers this replica's monitors (idempotent).
    pub async fn register_own(&self) -> Result<(), StoreError> {
        for spec in self.own.values() {
            let outcome = self.store.register(spec).await?;
            tracing::info!(monitor = %spec.config.name, version = %spec.config.version, ?outcome, "monitor registered");
            self.remember(Arc::new(spec.config.clone()));
        }
        self.registered
            .store(true, std::sync::atomic::Ordering::Release);
        self.check_memory_budget().await;
        Ok(())
    }

    /// Warns when Redis's `maxmemory` cannot hold what the registered monitors may take
    /// at their caps (a full Redis refuses writes: ingest then answers 503).
    async fn check_memory_budget(&self) {
        let budget = async {
            let mut need = 0u64;
            for name in self.store.monitors().await? {
                if let Some(cfg) = self.store.config(&name).await? {
                    need += self.store.memory_bound(&cfg);
                }
            }
            Ok::<_, StoreError>((need, self.store.maxmemory().await?))
        };
        match budget.await {
            Ok((need, Some(max))) if need > max => tracing::warn!(
                need_bytes = need,
                maxmemory = max,
                "Redis maxmemory cannot hold the registered monitors at their caps; \
                 raise maxmemory or lower the windows and stream caps"
            ),
            Ok((need, None)) => tracing::info!(
                need_bytes = need,
                "Redis has no maxmemory; the registered monitors may take this much at their caps"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not check Redis's memory budget"),
        }
    }

    fn remember(&self, cfg: Arc<MonitorConfig>) {
        if let Ok(mut c) = self.cache.write() {
            c.insert(cfg.name.clone(), cfg);
        }
    }

    pub fn forget(&self, name: &str) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(name);
        }
    }

    fn cached(&self, name: &str) -> Option<Arc<MonitorConfig>> {
        self.cache.read().ok()?.get(name).cloned()
    }

    /// The config of a monitor: from the cache, else from Redis, else re-registered if it is
    /// one of ours (Redis lost its data), else 404.
    pub async fn monitor(&self, name: &str) -> Result<Arc<MonitorConfig>, ApiError> {
        if let Some(cfg) = self.cached(name) {
            return Ok(cfg);
        }
        self.reload(name).await
    }

    async fn reload(&self, name: &str) -> Result<Arc<MonitorConfig>, ApiError> {
        if let Some(cfg) = self.store.config(name).await? {
            let cfg = Arc::new(cfg);
            self.remember(cfg.clone());
            return Ok(cfg);
        }
        if let Some(spec) = self.own.get(name) {
            tracing::warn!(monitor = %name, "monitor missing from Redis; registering it again");
            self.store.register(spec).await?;
            let cfg = Arc::new(spec.config.clone());
            self.remember(cfg.clone());
            return Ok(cfg);
        }
        self.forget(name);
        Err(ApiError::unknown_monitor(name))
    }

    /// Ingests feature-major columns (through the coalescer: possibly in one script call
    /// with other requests for the monitor), recovering once from a changed or lost
    /// monitor config.
    pub async fn ingest(
        &self,
        cfg: Arc<MonitorConfig>,
        columns: Vec<Vec<f64>>,
    ) -> Result<(Arc<MonitorConfig>, Ingested), ApiError> {
        let columns = Arc::new(columns);
        match self.coalescer.ingest(cfg.clone(), columns.clone()).await {
            Ok(done) => Ok((cfg, done)),
            Err(StoreError::StaleConfig | StoreError::UnknownMonitor(_)) => {
                self.forget(&cfg.name);
                let fresh = self.reload(&cfg.name).await?;
                if fresh.features != cfg.features {
                    // The batch was validated against other features: it must be resent.
                    return Err(ApiError::new(
                        ErrorCode::MonitorReconfigured,
                        "the monitor's features changed during the request; resend the batch",
                    ));
                }
                let done = self.coalescer.ingest(fresh.clone(), columns).await?;
                Ok((fresh, done))
            }
            Err(e) => Err(e.into()),
        }
    }
}
