//! The metrics exporter: the global drift state, read from Redis on every scrape.
//!
//! Whatever the number of workers, each monitor and feature is one series, and counters
//! come from Redis, so they are global and survive restarts of any process. When Redis
//! cannot be read in time, only `drift_redis_up 0` is served (never a 500 or a hang).

use drift_core::{Correction, Details, MonitorConfig, MonitorStatus};
use drift_service::metrics::registered;
use drift_store::{JobsInfo, Store, StoreError};
use prometheus::core::Collector;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};
use std::time::Duration;

struct Families {
    registry: Registry,
    p_value: GaugeVec,
    statistic: GaugeVec,
    drifted: GaugeVec,
    last_evaluated: GaugeVec,
    evaluations: IntCounterVec,
    detections: IntCounterVec,
    drifting: GaugeVec,
    share: GaugeVec,
    dataset: GaugeVec,
    last_detected: GaugeVec,
    rows: IntCounterVec,
    window_rows: GaugeVec,
    pending: GaugeVec,
    dead: IntCounterVec,
    stale: IntCounterVec,
    superseded: IntCounterVec,
    lag_rows: GaugeVec,
    age: GaugeVec,
    rounds: IntCounterVec,
    alpha: GaugeVec,
    p_threshold: GaugeVec,
    threshold: GaugeVec,
    alarm: GaugeVec,
    episodes: IntCounterVec,
    ert: GaugeVec,
    info: GaugeVec,
    missing_share: GaugeVec,
    reference_missing_share: GaugeVec,
    unseen_share: GaugeVec,
    effect: GaugeVec,
    signal_statistic: GaugeVec,
    signal_threshold: GaugeVec,
    signal_fired: GaugeVec,
    up: prometheus::Gauge,
}

/// Declares and registers one labelled family (`make` is `GaugeVec::new` or
/// `IntCounterVec::new`).
fn family<T: Collector + Clone + 'static>(
    reg: &Registry,
    make: fn(Opts, &[&str]) -> Result<T, prometheus::Error>,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<T, prometheus::Error> {
    registered(reg, make(Opts::new(name, help), labels)?)
}

impl Families {
    fn new() -> Result<Self, prometheus::Error> {
        let r = Registry::new();
        let mf = &["monitor", "feature"];
        let m = &["monitor"];
        let ms = &["monitor", "feature", "signal"];
        Ok(Families {
            info: family(&r, GaugeVec::new, "drift_feature_info", "1 for every monitored feature, labelled with its kind (numeric or categorical)", &["monitor", "feature", "kind"])?,
            missing_share: family(&r, GaugeVec::new, "drift_feature_missing_share", "Share of missing values in the feature's latest evaluated window", mf)?,
            reference_missing_share: family(&r, GaugeVec::new, "drift_feature_reference_missing_share", "Share of missing values in the feature's reference", mf)?,
            unseen_share: family(&r, GaugeVec::new, "drift_feature_unseen_share", "Categorical features: share of the latest window's present values that are no reference category", mf)?,
            effect: family(&r, GaugeVec::new, "drift_feature_effect", "Effect size of the latest evaluation (reported, never alarmed on): wasserstein_normed, psi, jensen_shannon", &["monitor", "feature", "measure"])?,
            signal_statistic: family(&r, GaugeVec::new, "drift_feature_signal_statistic", "Latest statistic of each signal: distribution (KS D or total variation) and missing (change of the missing share)", ms)?,
            signal_threshold: family(&r, GaugeVec::new, "drift_feature_signal_threshold", "Statistic at or above which the ert rule fires the signal, at the latest window", ms)?,
            signal_fired: family(&r, GaugeVec::new, "drift_feature_signal_fired", "1 if the signal is why the feature is flagged", ms)?,
            p_value: family(&r, GaugeVec::new, "drift_feature_p_value", "Latest p-value of the feature's distribution test: KS (numeric) or chi-square goodness of fit (categorical)", mf)?,
            statistic: family(&r, GaugeVec::new, "drift_feature_statistic", "Latest distribution statistic: KS D (numeric) or total-variation distance (categorical)", mf)?,
            drifted: family(&r, GaugeVec::new, "drift_feature_drifted", "1 if the feature is flagged after the monitor's correction", mf)?,
            last_evaluated: family(&r, GaugeVec::new, "drift_feature_last_evaluated_timestamp_seconds", "When the feature was last evaluated", mf)?,
            evaluations: family(&r, IntCounterVec::new, "drift_evaluations_total", "Evaluations recorded", mf)?,
            detections: family(&r, IntCounterVec::new, "drift_detections_total", "Evaluations that flagged the feature", mf)?,
            drifting: family(&r, GaugeVec::new, "drift_features_drifting", "Features currently flagged", m)?,
            share: family(&r, GaugeVec::new, "drift_share", "Share of features currently flagged", m)?,
            dataset: family(&r, GaugeVec::new, "drift_dataset_drifted", "1 if the share of drifted features reaches the monitor's threshold", m)?,
            last_detected: family(&r, GaugeVec::new, "drift_last_detected_timestamp_seconds", "When drift was last detected on any feature", m)?,
            rows: family(&r, IntCounterVec::new, "drift_rows_ingested_total", "Rows ingested", m)?,
            window_rows: family(&r, GaugeVec::new, "drift_window_rows", "Rows in each feature's window", m)?,
            pending: family(&r, GaugeVec::new, "drift_jobs_pending", "Evaluation jobs not yet acknowledged (undelivered or in progress)", m)?,
            dead: family(&r, IntCounterVec::new, "drift_jobs_dead_letter_total", "Jobs moved to the dead-letter stream", m)?,
            stale: family(&r, IntCounterVec::new, "drift_jobs_stale_total", "Jobs acknowledged without an evaluation of their own (every job is evaluated or stale)", m)?,
            superseded: family(&r, IntCounterVec::new, "drift_jobs_superseded_total", "Stale jobs whose feature was evaluated on a newer window instead (workers behind ingest)", m)?,
            lag_rows: family(&r, GaugeVec::new, "drift_feature_result_lag_rows", "Rows ingested after the window of the feature's latest result", mf)?,
            age: family(&r, GaugeVec::new, "drift_feature_result_age_seconds", "Seconds since the feature's latest result was recorded, at scrape time", mf)?,
            rounds: family(&r, IntCounterVec::new, "drift_evaluation_rounds_total", "Evaluation boundaries crossed (one job per feature each)", m)?,
            alpha: family(&r, GaugeVec::new, "drift_monitor_alpha", "Family-wise significance level of the monitor", m)?,
            p_threshold: family(&r, GaugeVec::new, "drift_feature_p_value_threshold", "Per-feature p-value threshold of the per-evaluation rules: alpha / features under Bonferroni, alpha otherwise", m)?,
            threshold: family(&r, GaugeVec::new, "drift_feature_threshold", "Distribution statistic at or above which the ert rule flags the feature, for a window without missing values", mf)?,
            alarm: family(&r, GaugeVec::new, "drift_feature_alarm", "1 from the start of an alarm episode until the feature is first back under its threshold", mf)?,
            episodes: family(&r, IntCounterVec::new, "drift_alarm_episodes_total", "Alarm episodes started: exceedances after none in the previous ceil(window/stride) rounds", mf)?,
            ert: family(&r, GaugeVec::new, "drift_monitor_ert_rounds", "Configured expected rounds between false-alarm rounds (ert rule)", m)?,
            up: registered(&r, prometheus::Gauge::new("drift_redis_up", "1 if the exporter could read Redis")?)?,
            registry: r,
        })
    }

    fn render(&self) -> String {
        drift_service::metrics::render(&self.registry)
    }

    fn add(&self, cfg: &MonitorConfig, st: &MonitorStatus, jobs: &JobsInfo, now: f64) {
        let m = cfg.name.as_str();
        let s = &st.state;
        self.drifting
            .with_label_values(&[m])
            .set(s.features_drifting as f64);
        self.share.with_label_values(&[m]).set(s.drift_share);
        self.dataset
            .with_label_values(&[m])
            .set(if s.dataset_drifted { 1.0 } else { 0.0 });
        if let Some(t) = s.last_detected_at {
            self.last_detected.with_label_values(&[m]).set(t);
        }
        self.rows.with_label_values(&[m]).inc_by(s.rows);
        self.window_rows
            .with_label_values(&[m])
            .set(s.rows.min(cfg.params.window as u64) as f64);
        self.pending
            .with_label_values(&[m])
            .set(jobs.pending as f64);
        self.dead.with_label_values(&[m]).inc_by(s.dead_letters);
        self.stale.with_label_values(&[m]).inc_by(s.stale);
        self.superseded.with_label_values(&[m]).inc_by(s.superseded);
        self.rounds.with_label_values(&[m]).inc_by(s.rounds);
        self.alpha.with_label_values(&[m]).set(cfg.params.alpha);
        let p = &cfg.params;
        if p.correction == Correction::Ert {
            self.ert.with_label_values(&[m]).set(p.ert);
        } else {
            // BH has no fixed cut-off; alpha is its largest possible one.
            let t = p
                .correction
                .p_value_threshold(p.alpha, cfg.features.len())
                .unwrap_or(p.alpha);
            self.p_threshold.with_label_values(&[m]).set(t);
        }
        for (i, (f, r)) in cfg.features.iter().zip(&st.results).enumerate() {
            let l = [m, f.as_str()];
            // Known from registration on, before the first evaluation.
            if let Some(c) = cfg.threshold(i) {
                self.threshold.with_label_values(&l).set(c);
            }
            self.info
                .with_label_values(&[m, f.as_str(), cfg.kind(i).as_str()])
                .set(1.0);
            self.reference_missing_share
                .with_label_values(&l)
                .set(cfg.reference_missing(i) as f64 / cfg.reference_rows.max(1) as f64);
            match r {
                Some(r) => {
                    self.p_value.with_label_values(&l).set(r.p_value);
                    self.statistic.with_label_values(&l).set(r.statistic);
                    self.drifted
                        .with_label_values(&l)
                        .set(if r.drifted { 1.0 } else { 0.0 });
                    self.last_evaluated
                        .with_label_values(&l)
                        .set(r.evaluated_at);
                    self.lag_rows
                        .with_label_values(&l)
                        .set(s.rows.saturating_sub(r.seq) as f64);
                    self.age
                        .with_label_values(&l)
                        .set((now - r.evaluated_at).max(0.0));
                    self.evaluations.with_label_values(&l).inc_by(r.evaluations);
                    self.detections.with_label_values(&l).inc_by(r.detections);
                    self.episodes.with_label_values(&l).inc_by(r.episodes);
                    self.alarm
                        .with_label_values(&l)
                        .set(if r.alarm { 1.0 } else { 0.0 });
                    self.add_details(m, f, &r.details);
                }
                None => {
                    // Counters exist from the start so that increase() sees the first step.
                    self.evaluations.with_label_values(&l);
                    self.detections.with_label_values(&l);
                    self.episodes.with_label_values(&l);
                    self.alarm.with_label_values(&l).set(0.0);
                }
            }
        }
    }
}

impl Families {
    fn add_details(&self, m: &str, f: &str, d: &Details) {
        if d.signals.is_empty() {
            // A result recorded before details existed.
            return;
        }
        self.missing_share
            .with_label_values(&[m, f])
            .set(d.missing_share);
        if let Some(u) = d.unseen_share {
            self.unseen_share.with_label_values(&[m, f]).set(u);
        }
        let e = &d.effects;
        for (measure, v) in [
            ("wasserstein_normed", e.wasserstein_normed),
            ("psi", e.psi),
            ("jensen_shannon", e.jensen_shannon),
        ] {
            if let Some(v) = v {
                self.effect.with_label_values(&[m, f, measure]).set(v);
            }
        }
        for s in &d.signals {
            let l = [m, f, s.signal.as_str()];
            if let Some(v) = s.statistic {
                self.signal_statistic.with_label_values(&l).set(v);
            }
            if let Some(c) = s.threshold {
                self.signal_threshold.with_label_values(&l).set(c);
            }
            self.signal_fired
                .with_label_values(&l)
                .set(if s.fired { 1.0 } else { 0.0 });
        }
    }
}

async fn collect(
    store: &Store,
) -> Result<Vec<(MonitorConfig, MonitorStatus, JobsInfo)>, StoreError> {
    let mut out = Vec::new();
    for name in store.monitors().await? {
        let Some(cfg) = store.config(&name).await? else {
            continue;
        };
        let status = store.status(&cfg).await?;
        let jobs = store.jobs_info(&name).await?;
        out.push((cfg, status, jobs));
    }
    Ok(out)
}

/// Renders the exposition text; `deadline` bounds the whole scrape.
pub async fn render(store: &Store, deadline: Duration) -> String {
    let fam = match Families::new() {
        Ok(f) => f,
        Err(e) => return format!("# exporter error: {e}\n"),
    };
    match tokio::time::timeout(deadline, collect(store)).await {
        Ok(Ok(monitors)) => {
            fam.up.set(1.0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            for (cfg, status, jobs) in &monitors {
                fam.add(cfg, status, jobs, now);
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "scrape: redis read failed");
            fam.up.set(0.0);
        }
        Err(_) => {
            tracing::warn!("scrape: redis read timed out");
            fam.up.set(0.0);
        }
    }
    fam.render()
}
