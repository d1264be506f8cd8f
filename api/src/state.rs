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
use std::time::{Duration, Instant};

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

/// How long a cached monitor config is used before it is read again from Redis. A new
/// reference version is noticed at once (the ingest script refuses the old one), but a
/// parameter update made through another replica (a new `sample_rate`, which this replica
/// applies to every row it ingests) changes nothing the script checks: it reaches every
/// replica within about this age (the first request after it starts a read in the
/// background), for at most one `HGET` per monitor and replica per period.
pub const CONFIG_MAX_AGE: Duration = Duration::from_secs(1);

/// Monitor configs by name, with when each was read.
type ConfigCache = HashMap<String, (Arc<MonitorConfig>, Instant)>;

/// What became of an ingested batch.
#[derive(Clone, Debug)]
pub struct Ingest {
    /// The config the rows were stored under (a fresher one than the caller's after a
    /// re-registration).
    pub cfg: Arc<MonitorConfig>,
    /// Rows of the batch, all valid.
    pub rows: usize,
    /// Of those, the rows the monitor's `sample_rate` kept and Redis stored.
    pub stored: usize,
    /// Redis's answer for the stored rows; `None` when sampling kept no row, and nothing
    /// was sent.
    pub done: Option<Ingested>,
}

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
    /// Configs read from Redis (or registered here) and when, refreshed when Redis says
    /// they changed or once older than [`CONFIG_MAX_AGE`].
    cache: Arc<RwLock<ConfigCache>>,
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
            cache: Arc::new(RwLock::new(HashMap::new())),
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
            c.insert(cfg.name.clone(), (cfg, Instant::now()));
        }
    }

    pub fn forget(&self, name: &str) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(name);
        }
    }

    /// The cached config. Once older than [`CONFIG_MAX_AGE`] it is still the answer, and
    /// is read again from Redis in the background: a refresh never delays a request, nor
    /// fails one while Redis is slow (the request's own Redis call reports that).
    fn cached(&self, name: &str) -> Option<Arc<MonitorConfig>> {
        let (cfg, stale) = {
            let cache = self.cache.read().ok()?;
            let (cfg, at) = cache.get(name)?;
            (cfg.clone(), at.elapsed() > CONFIG_MAX_AGE)
        };
        if stale {
            self.refresh(name, &cfg);
        }
        Some(cfg)
    }

    /// Reads `name`'s config again in a task of its own. One request per period starts it
    /// (it restamps the entry first); the result replaces the entry only if the entry is
    /// still `old` (a reload or `forget` meanwhile knows better) and differs from it (an
    /// unchanged config keeps its `Arc`, which the coalescer compares first).
    fn refresh(&self, name: &str, old: &Arc<MonitorConfig>) {
        {
            let Ok(mut cache) = self.cache.write() else {
                return;
            };
            match cache.get_mut(name) {
                Some((cur, at)) if Arc::ptr_eq(cur, old) && at.elapsed() > CONFIG_MAX_AGE => {
                    *at = Instant::now();
                }
                _ => return,
            }
        }
        let (store, cache) = (self.store.clone(), Arc::clone(&self.cache));
        let (name, old) = (name.to_string(), Arc::clone(old));
        tokio::spawn(async move {
            let fresh = match store.config(&name).await {
                Ok(Some(fresh)) => fresh,
                // Gone: the next ingest is told so by Redis and reloads (re-registers or 404s).
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(monitor = %name, error = %e, "monitor config refresh failed");
                    return;
                }
            };
            if let Ok(mut cache) = cache.write() {
                if let Some((cur, at)) = cache.get_mut(&name) {
                    if Arc::ptr_eq(cur, &old) && **cur != fresh {
                        *cur = Arc::new(fresh);
                        *at = Instant::now();
                    }
                }
            }
        });
    }

    /// The config of a monitor: from the cache (read again in the background once older
    /// than [`CONFIG_MAX_AGE`]), else from Redis, else re-registered if it is one of ours
    /// (Redis lost its data), else 404.
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
    /// with other requests for the monitor), keeping each row with the monitor's
    /// `sample_rate` first, and recovering once from a changed or lost monitor config.
    /// Rows stored are counted in `drift_api_rows_accepted_total`, rows sampling left out
    /// in `drift_rows_sampled_out_total`, both only once the batch is through (a batch that
    /// failed is resent whole by its client, or counted as dropped by the row logger).
    pub async fn ingest(
        &self,
        cfg: Arc<MonitorConfig>,
        columns: Vec<Vec<f64>>,
    ) -> Result<Ingest, ApiError> {
        let rows = columns.first().map_or(0, Vec::len);
        let (columns, stored) = crate::sample::thin(columns, cfg.params.sample_rate);
        let (cfg, done) = if stored == 0 && rows > 0 {
            // Every row was sampled out: nothing to write, no call to make.
            (cfg, None)
        } else {
            let (cfg, done) = self.store_rows(cfg, columns).await?;
            (cfg, Some(done))
        };
        let m = &self.metrics;
        m.rows_accepted
            .with_label_values(&[&cfg.name])
            .inc_by(stored as u64);
        if stored < rows {
            m.rows_sampled_out
                .with_label_values(&[&cfg.name])
                .inc_by((rows - stored) as u64);
        }
        Ok(Ingest {
            cfg,
            rows,
            stored,
            done,
        })
    }

    /// Stores rows that are already sampled, resending them once under a fresh config
    /// when the monitor was re-registered meanwhile (with the same features).
    async fn store_rows(
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
