//! A worker replica's own metrics: jobs by outcome and how long they take.

use drift_service::metrics::{registered, render};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

pub struct WorkerMetrics {
    registry: Registry,
    pub jobs: IntCounterVec,
    pub duration: Histogram,
    pub batch: Histogram,
}

impl WorkerMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let jobs = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "drift_worker_jobs_total",
                    "Jobs handled by this worker, by outcome (evaluated, stale, superseded, duplicate, dead_letter, failed)",
                ),
                &["outcome"],
            )?,
        )?;
        let duration = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "drift_worker_job_duration_seconds",
                    "Time from picking up a job to recording its outcome (its whole batch)",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            )?,
        )?;
        let batch = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "drift_worker_batch_jobs",
                    "Jobs per batch read, evaluated and recorded together",
                )
                .buckets(vec![
                    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 250.0, 500.0, 1000.0,
                ]),
            )?,
        )?;
        for o in [
            "evaluated",
            "stale",
            "superseded",
            "duplicate",
            "dead_letter",
            "failed",
        ] {
            jobs.with_label_values(&[o]);
        }
        Ok(WorkerMetrics {
            registry,
            jobs,
            duration,
            batch,
        })
    }

    pub fn render(&self) -> String {
        render(&self.registry)
    }
}
