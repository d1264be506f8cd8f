//! One job, start to end: the monitor's config and sorted reference (cached per version),
//! the window, the KS test, the alarm's decision and the recording, and the accounting of
//! every outcome. Consumer and janitor both hand their jobs here.

use crate::metrics::WorkerMetrics;
use drift_core::ks::{Alternative, EffectiveMethod, Method, Reference};
use drift_core::{Evaluation, MonitorConfig};
use drift_store::{Decision, Job, Poison, Recorded, Store, StoreError, WindowRead};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a decision over every feature is retried when other evaluations keep being
/// recorded in between; each conflict means another evaluation made progress.
const MAX_CONFLICTS: usize = 16;

/// How long a monitor's config is trusted without reading it again. Jobs name the
/// reference version, which catches a new reference at once; a parameter change (a new
/// rule, `ert`, `alpha`) keeps the version and is picked up within this time.
const CONFIG_TTL: Duration = Duration::from_secs(2);

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

pub struct Evaluator {
    pub store: Store,
    pub metrics: Arc<WorkerMetrics>,
    configs: Mutex<HashMap<String, (Instant, Arc<MonitorConfig>)>>,
    /// Sorted references per (monitor, feature), with the version they belong to.
    refs: Mutex<HashMap<(String, String), VersionedReference>>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Evaluator {
    pub fn new(store: Store, metrics: Arc<WorkerMetrics>) -> Self {
        Evaluator {
            store,
            metrics,
            configs: Mutex::new(HashMap::new()),
            refs: Mutex::new(HashMap::new()),
        }
    }

    /// The monitor's config at the job's version, reloaded when the version moved or the
    /// cached copy is older than [`CONFIG_TTL`].
    async fn config_for(&self, job: &Job) -> Result<Option<Arc<MonitorConfig>>, StoreError> {
        let cached = self
            .configs
            .lock()
            .ok()
            .and_then(|c| c.get(&job.monitor).cloned());
        if let Some((_, c)) =
            cached.filter(|(at, c)| c.version == job.version && at.elapsed() < CONFIG_TTL)
        {
            return Ok(Some(c));
        }
        let Some(fresh) = self.store.config(&job.monitor).await? else {
            return Ok(None);
        };
        let fresh = Arc::new(fresh);
        if let Ok(mut c) = self.configs.lock() {
            c.insert(job.monitor.clone(), (Instant::now(), fresh.clone()));
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
        let skip = || async { self.store.record(&cfg, job, now_secs(), None).await };
        if cfg.version != job.version {
            return Ok(skip().await?);
        }
        let Some(feature) = cfg.features.get(job.feature).cloned() else {
            return Err(JobError::Poison(format!(
                "feature index {} out of range",
                job.feature
            )));
        };
        let global = !cfg.params.correction.is_local();
        let (mut window, mut snapshot) = match self.store.read_window(&cfg, job, global).await? {
            WindowRead::Window { values, snapshot } => (values, snapshot),
            WindowRead::Stale(reason) => {
                tracing::debug!(job = %job.id, %feature, %reason, "stale job");
                return Ok(skip().await?);
            }
        };
        let Some(reference) = self.reference(&job.monitor, &feature, &job.version).await? else {
            return Ok(skip().await?);
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
                EffectiveMethod::Exact => "exact",
                EffectiveMethod::Asymptotic => "asymptotic",
            },
        };
        for _ in 0..MAX_CONFLICTS {
            let d = Decision::of(&cfg, job.feature, &evaluation, snapshot.as_ref());
            match self
                .store
                .record(&cfg, job, now_secs(), Some((&evaluation, &d)))
                .await?
            {
                Recorded::Conflict(fresh) => snapshot = Some(fresh),
                done => return Ok(done),
            }
        }
        Err(JobError::Store(StoreError::Unavailable(format!(
            "decision conflicted {MAX_CONFLICTS} times; left pending"
        ))))
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

    /// Moves a job to the dead-letter stream; returns the outcome to count.
    pub async fn dead_letter(
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
}
