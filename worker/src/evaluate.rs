//! A batch of jobs, start to end: the monitor's config and sorted references (cached per
//! version), the batch's windows in one round trip, the KS tests in parallel on a thread
//! pool (CPU work stays off the async runtime), the alarm's decision, and every outcome
//! recorded with its acknowledgement in one more round trip. Consumer and janitor both
//! hand their batches here.
//!
//! Freshness under overload: of several jobs of one feature in a batch only the newest is
//! read (the others are acknowledged unread as superseded), and a job whose boundary was
//! overtaken is evaluated on the newest window (`read_windows.lua`), so a worker that
//! falls behind keeps every feature's result recent instead of skipping everything.

use crate::metrics::WorkerMetrics;
use drift_core::evaluate::{evaluate, Context, FeatureReference, KsThresholds};
use drift_core::{Evaluation, MonitorConfig};
use drift_store::{
    Evaluated, Flags, Job, JobRead, Poison, Recorded, SkipKind, Snapshot, Store, StoreError, Tally,
};
use rayon::prelude::*;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a decision over every feature is retried when other evaluations keep being
/// recorded in between; each conflict means another evaluation made progress.
const MAX_CONFLICTS: usize = 16;

/// How long a monitor's config is trusted without reading it again. Jobs name the
/// reference version, which catches a new reference at once; a parameter change (a new
/// rule, `ert`, `alpha`) keeps the version and is picked up within this time.
const CONFIG_TTL: Duration = Duration::from_secs(2);

/// How long a window read stays leased to its job: long enough for a slow batch to be
/// recorded, short enough that a crashed worker's features are soon evaluated by others.
pub const LEASE: Duration = Duration::from_secs(5);

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

/// A prepared reference and the monitor version it belongs to.
type VersionedReference = (String, Arc<FeatureReference>);

/// What became of the jobs of a batch, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub recorded: Tally,
    pub dead_letter: u64,
    pub failed: u64,
}

impl Outcomes {
    fn add(&mut self, o: Outcomes) {
        self.recorded.evaluated += o.recorded.evaluated;
        self.recorded.stale += o.recorded.stale;
        self.recorded.superseded += o.recorded.superseded;
        self.recorded.duplicate += o.recorded.duplicate;
        self.dead_letter += o.dead_letter;
        self.failed += o.failed;
    }

    fn count(&mut self, outcome: &str) {
        match outcome {
            "dead_letter" => self.dead_letter += 1,
            "duplicate" => self.recorded.duplicate += 1,
            _ => self.failed += 1,
        }
    }
}

pub struct Evaluator {
    pub store: Store,
    pub metrics: Arc<WorkerMetrics>,
    pool: rayon::ThreadPool,
    configs: Mutex<HashMap<String, (Instant, Arc<MonitorConfig>)>>,
    /// Prepared references per (monitor, feature), with the version they belong to.
    refs: Mutex<HashMap<(String, String), VersionedReference>>,
    thresholds: Arc<KsThresholds>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Evaluator {
    /// An evaluator whose KS tests run on `threads` threads (0: one per core).
    pub fn new(
        store: Store,
        metrics: Arc<WorkerMetrics>,
        threads: usize,
    ) -> Result<Self, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ks-{i}"))
            .build()?;
        Ok(Evaluator {
            store,
            metrics,
            pool,
            configs: Mutex::new(HashMap::new()),
            refs: Mutex::new(HashMap::new()),
            thresholds: Arc::new(KsThresholds::default()),
        })
    }

    /// The monitor's config, reloaded when a job names another version or the cached copy
    /// is older than [`CONFIG_TTL`].
    async fn config_for(
        &self,
        monitor: &str,
        jobs: &[Job],
    ) -> Result<Option<Arc<MonitorConfig>>, StoreError> {
        let cached = self
            .configs
            .lock()
            .ok()
            .and_then(|c| c.get(monitor).cloned());
        if let Some((_, c)) = cached.filter(|(at, c)| {
            at.elapsed() < CONFIG_TTL && jobs.iter().all(|j| j.version == c.version)
        }) {
            return Ok(Some(c));
        }
        let Some(fresh) = self.store.config(monitor).await? else {
            return Ok(None);
        };
        let fresh = Arc::new(fresh);
        if let Ok(mut c) = self.configs.lock() {
            c.insert(monitor.to_string(), (Instant::now(), fresh.clone()));
        }
        Ok(Some(fresh))
    }

    /// The sorted references of `features`, loading the missing ones in one round trip
    /// (a feature whose reference is unusable gets the reason); `None` when the monitor
    /// moved to another version meanwhile.
    async fn references(
        &self,
        cfg: &MonitorConfig,
        features: &[usize],
    ) -> Result<Option<Vec<Result<Arc<FeatureReference>, String>>>, StoreError> {
        let key = |i: usize| (cfg.name.clone(), cfg.features[i].clone());
        let mut found: Vec<Option<Result<Arc<FeatureReference>, String>>> = match self.refs.lock() {
            Ok(m) => features
                .iter()
                .map(|&i| {
                    m.get(&key(i))
                        .filter(|(v, _)| *v == cfg.version)
                        .map(|(_, r)| Ok(r.clone()))
                })
                .collect(),
            Err(_) => vec![None; features.len()],
        };
        let missing: Vec<usize> = features
            .iter()
            .zip(&found)
            .filter(|(_, r)| r.is_none())
            .map(|(&i, _)| i)
            .collect();
        if !missing.is_empty() {
            let Some(loaded) = self.store.references(cfg, &missing, &cfg.version).await? else {
                return Ok(None);
            };
            let mut loaded = missing.iter().zip(loaded);
            for slot in found.iter_mut().filter(|r| r.is_none()) {
                let Some((&i, values)) = loaded.next() else {
                    break;
                };
                let r = values.and_then(|v| {
                    FeatureReference::new(cfg.kind(i), v, cfg.categories(i))
                        .map(Arc::new)
                        .map_err(|e| format!("reference of {}: {e}", cfg.features[i]))
                });
                if let (Ok(r), Ok(mut m)) = (&r, self.refs.lock()) {
                    m.insert(key(i), (cfg.version.clone(), r.clone()));
                }
                *slot = Some(r);
            }
        }
        Ok(found.into_iter().collect::<Option<Vec<_>>>())
    }

    /// Runs the tests of a batch on the pool; one result per window, in order.
    async fn evaluate_all(
        &self,
        cfg: Arc<MonitorConfig>,
        work: Vec<(Arc<FeatureReference>, usize, Vec<f64>)>,
    ) -> Result<Vec<Result<Evaluation, String>>, JobError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thresholds = self.thresholds.clone();
        self.pool.spawn(move || {
            let out: Vec<Result<Evaluation, String>> = work
                .into_par_iter()
                .map(|(r, feature, values)| {
                    let ctx = Context {
                        config: &cfg,
                        feature,
                        thresholds: &thresholds,
                    };
                    catch_unwind(AssertUnwindSafe(|| evaluate(&r, &ctx, values)))
                        .unwrap_or_else(|_| Err("evaluation panicked".into()))
                })
                .collect();
            let _ = tx.send(out);
        });
        rx.await
            .map_err(|_| JobError::Poison("the evaluation pool dropped a batch".into()))
    }

    /// Reads the windows of `jobs` (one per feature) and evaluates them: the evaluations,
    /// and the decision snapshot under a rule over every feature. Jobs that cannot be
    /// evaluated go to `skipped` (or to the dead letters, counted in `out`).
    async fn read_and_evaluate(
        &self,
        cfg: &Arc<MonitorConfig>,
        jobs: Vec<Job>,
        skipped: &mut Vec<(String, SkipKind)>,
        out: &mut Outcomes,
        deliveries: u64,
    ) -> Result<(Vec<Evaluated>, Option<Snapshot>), JobError> {
        let monitor = cfg.name.as_str();
        let features: Vec<usize> = jobs.iter().map(|j| j.feature).collect();
        let global = !cfg.params.correction.is_local();
        let read = match self.references(cfg, &features).await? {
            Some(refs) => self
                .store
                .read_windows(cfg, &jobs, LEASE, global)
                .await?
                .map(|read| (refs, read)),
            None => None,
        };
        let Some((refs, read)) = read else {
            // The monitor moved to another version since its config was read.
            skipped.extend(jobs.into_iter().map(|j| (j.id, SkipKind::Stale)));
            return Ok((Vec::new(), None));
        };
        let mut work = Vec::new();
        let mut windows = Vec::new();
        for ((job, r), reference) in jobs.into_iter().zip(read.reads).zip(refs) {
            match (r, reference) {
                (JobRead::Window { .. }, Err(reason)) | (JobRead::Corrupt(reason), _) => {
                    out.count(
                        self.dead_letter(monitor, &job.id, &reason, deliveries)
                            .await,
                    );
                }
                (JobRead::Window { seq, values }, Ok(reference)) => {
                    work.push((reference, job.feature, values));
                    windows.push((job, seq));
                }
                (JobRead::Skip(kind, reason), _) => {
                    tracing::debug!(job = %job.id, monitor, %reason, "job skipped");
                    skipped.push((job.id, kind));
                }
            }
        }
        let results = self.evaluate_all(cfg.clone(), work).await?;
        let mut evaluated = Vec::with_capacity(results.len());
        for ((job, seq), res) in windows.into_iter().zip(results) {
            match res {
                Ok(evaluation) => evaluated.push(Evaluated {
                    job,
                    seq,
                    evaluation,
                }),
                Err(reason) => {
                    out.count(
                        self.dead_letter(monitor, &job.id, &reason, deliveries)
                            .await,
                    );
                }
            }
        }
        Ok((evaluated, read.snapshot))
    }

    /// Handles the jobs of one monitor: reads, evaluates and records them in one batch.
    async fn monitor_batch(
        &self,
        monitor: &str,
        jobs: Vec<Job>,
        deliveries: u64,
    ) -> Result<Outcomes, JobError> {
        let mut out = Outcomes::default();
        let Some(cfg) = self.config_for(monitor, &jobs).await? else {
            for j in &jobs {
                let reason = format!("monitor `{monitor}` is not registered");
                out.count(self.dead_letter(monitor, &j.id, &reason, deliveries).await);
            }
            return Ok(out);
        };
        let mut skipped: Vec<(String, SkipKind)> = Vec::new();
        // The newest job of each feature; the others are superseded by it.
        let mut newest: BTreeMap<usize, Job> = BTreeMap::new();
        for job in jobs {
            if job.feature >= cfg.features.len() {
                let reason = format!("feature index {} out of range", job.feature);
                out.count(
                    self.dead_letter(monitor, &job.id, &reason, deliveries)
                        .await,
                );
            } else if job.version != cfg.version {
                skipped.push((job.id, SkipKind::Stale));
            } else {
                match newest.entry(job.feature) {
                    Entry::Vacant(v) => {
                        v.insert(job);
                    }
                    Entry::Occupied(mut o) if job.seq > o.get().seq => {
                        let old = o.insert(job);
                        skipped.push((old.id, SkipKind::Superseded));
                    }
                    Entry::Occupied(_) => skipped.push((job.id, SkipKind::Superseded)),
                }
            }
        }
        let to_read: Vec<Job> = newest.into_values().collect();
        let (evaluated, mut snapshot) = if to_read.is_empty() {
            (Vec::new(), None)
        } else {
            self.read_and_evaluate(&cfg, to_read, &mut skipped, &mut out, deliveries)
                .await?
        };
        for _ in 0..MAX_CONFLICTS {
            let flags = Flags::decide(&cfg, &evaluated, snapshot.as_ref());
            match self
                .store
                .record_batch(&cfg, now_secs(), &skipped, &evaluated, &flags)
                .await?
            {
                Recorded::Conflict(fresh) => snapshot = Some(fresh),
                Recorded::Done(tally) => {
                    out.recorded = tally;
                    return Ok(out);
                }
            }
        }
        Err(JobError::Store(StoreError::Unavailable(format!(
            "decision conflicted {MAX_CONFLICTS} times; left pending"
        ))))
    }

    /// Handles a batch as read (jobs of any monitors, and entries that are not jobs) and
    /// accounts for every job; errors are logged, never propagated.
    pub async fn process(&self, items: Vec<Result<Job, Poison>>, deliveries: u64) -> Outcomes {
        let start = Instant::now();
        let mut total = Outcomes::default();
        let mut by_monitor: BTreeMap<String, Vec<Job>> = BTreeMap::new();
        for item in items {
            match item {
                Ok(job) => by_monitor.entry(job.monitor.clone()).or_default().push(job),
                Err(p) => total.count(
                    self.dead_letter(&p.monitor, &p.id, &p.reason, deliveries)
                        .await,
                ),
            }
        }
        for (monitor, jobs) in by_monitor {
            let n = jobs.len() as u64;
            match self.monitor_batch(&monitor, jobs, deliveries).await {
                Ok(o) => total.add(o),
                Err(JobError::Store(e)) => {
                    tracing::warn!(%monitor, jobs = n, error = %e, "batch failed; left pending for retry");
                    total.failed += n;
                }
                Err(JobError::Poison(reason)) => {
                    // Not one job's fault (a corrupt reference): the jobs stay pending and
                    // are dead-lettered once delivered too often.
                    tracing::warn!(%monitor, jobs = n, %reason, "batch cannot be evaluated");
                    total.failed += n;
                }
            }
        }
        self.account(&total, start.elapsed());
        total
    }

    fn account(&self, o: &Outcomes, took: Duration) {
        let t = &o.recorded;
        let m = &self.metrics;
        for (outcome, n) in [
            ("evaluated", t.evaluated),
            ("stale", t.stale),
            ("superseded", t.superseded),
            ("duplicate", t.duplicate),
            ("dead_letter", o.dead_letter),
            ("failed", o.failed),
        ] {
            m.jobs.with_label_values(&[outcome]).inc_by(n);
        }
        let jobs = t.evaluated + t.stale + t.superseded + t.duplicate + o.dead_letter + o.failed;
        if jobs > 0 {
            m.batch.observe(jobs as f64);
            for _ in 0..jobs {
                m.duration.observe(took.as_secs_f64());
            }
        }
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
