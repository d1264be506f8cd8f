//! `drift-sim`: streams live-like rows of a monitor's reference (with or without a drift
//! scenario) to the drift API, and measures ingest throughput and, with `--watch`, how many
//! rows and seconds the monitor needs to flag the drift and how often it raises false alarms.
//!
//! The pieces: [`cli`] (flags), [`copula`] and [`marginal`] (the model "no drift" rows are
//! drawn from), [`scenario`] (what drift does to a row), [`generator`] (the seeded row
//! stream), [`load`] (pacing and concurrency), [`watch`] (history → delay and false alarms),
//! [`summary`] (the report). [`run`] ties them together so tests can drive a whole run;
//! [`calibrate::run`] is the calibration mode (false-alarm rounds and detection delays of
//! the alarm rules on references drawn from a known model).

pub mod body;
pub mod calibrate;
pub mod cli;
pub mod copula;
pub mod generator;
pub mod load;
pub mod marginal;
pub mod normal;
pub mod progress;
pub mod reference;
pub mod scenario;
pub mod summary;
pub mod target;
pub mod watch;

pub use cli::Args;
pub use summary::Summary;

use anyhow::{bail, Context};
use cli::{Mode, RowModel};
use copula::Copula;
use drift_core::dataset::DEFAULT_MONITOR;
use generator::Generator;
use load::{LoadPlan, Pacing};
use progress::{Display, Live};
use scenario::{Scenario, ScenarioSpec};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use summary::{DriftSummary, Latency, Throughput};
use target::{MonitorInfo, Target};
use tokio::sync::{oneshot, watch as tokio_watch};
use watch::{OnsetPoint, WatchParams, Watcher};

/// Most rows the predict endpoint takes in one request.
pub const MAX_PREDICT_ROWS: u64 = 1000;

/// A whole run: checks the monitor, streams, watches, and returns the summary.
pub async fn run(args: Args) -> anyhow::Result<Summary> {
    run_until(args, std::future::pending()).await
}

/// [`run`], stopping the sending (and the watch grace period) early when `stop` resolves
/// (Ctrl-C in the binary); the summary then covers what was sent.
pub async fn run_until(
    args: Args,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Summary> {
    if args.mode == Mode::Calibrate {
        bail!("--mode calibrate is run by drift_sim::calibrate::run, not by run()");
    }
    if args.mode == Mode::Predict {
        if args.batch > MAX_PREDICT_ROWS {
            bail!(
                "--batch {} is too large for --mode predict (at most {MAX_PREDICT_ROWS} rows per request)",
                args.batch
            );
        }
        if args.monitor != DEFAULT_MONITOR {
            bail!("--mode predict logs rows to the default monitor {DEFAULT_MONITOR:?} only, not {:?}", args.monitor);
        }
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let target = Target::new(args.target.clone(), timeout, args.concurrency as usize)?;
    let info = target.monitor(&args.monitor).await?;
    let reference = reference::load(&args, &info)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let copula = match args.model {
        RowModel::Population => Copula::fit_population(&reference.dataset, seed),
        RowModel::Reference => Copula::fit(&reference.dataset),
    }
    .with_context(|| format!("fitting the row model to {}", reference.source))?;
    let columns = monitor_columns(&info, &copula)?;
    let drift_features = check_drift_features(&args, &info)?;
    let scenario = match args.onset_row() {
        Some(after) => {
            let index = |f: &String| copula.names().iter().position(|n| n == f);
            let features: Vec<usize> = drift_features.iter().filter_map(index).collect();
            Some(Scenario::for_model(
                ScenarioSpec {
                    kind: args.drift_kind,
                    features,
                    magnitude: args.drift_magnitude,
                    after,
                    ramp_rows: args.ramp_rows,
                    swap: args.swap_values,
                    category: args.drift_category.clone(),
                },
                &copula,
            )?)
        }
        None => None,
    };
    let drift_categories = scenario
        .as_ref()
        .map(|s| s.categories().to_vec())
        .unwrap_or_default();
    let generator = Generator::new(copula, scenario, seed).with_columns(columns);

    let (cancel_tx, cancel_rx) = tokio_watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = cancel_tx.send(true);
    });

    let watch_params = WatchParams {
        monitor: info.clone(),
        drift_features: if args.drift {
            drift_features.clone()
        } else {
            Vec::new()
        },
        drifting: args.drift,
    };
    let watcher = if args.watch {
        Some(
            Watcher::start(target.clone(), watch_params.clone())
                .await
                .context("reading the monitor's evaluation history for --watch")?,
        )
    } else {
        None
    };

    let row_limit = args.row_limit();
    let duration = args.duration.map(Duration::from_secs_f64);
    let display = Arc::new(Display::new(
        args.progress,
        Duration::from_secs_f64(args.progress_interval),
        row_limit,
        duration,
    ));
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let (progress_done, progress_rx) = oneshot::channel();
    let progress = tokio::spawn(
        display
            .clone()
            .run(live.clone(), started, row_limit, progress_rx),
    );
    let (final_tx, final_rx) = oneshot::channel();
    let follower = watcher.map(|w| {
        tokio::spawn(watch::follow(
            w,
            live.clone(),
            display.clone(),
            Duration::from_millis(args.watch_interval_ms),
            Duration::from_secs_f64(args.watch_timeout),
            final_rx,
            cancel_rx.clone(),
        ))
    });

    let url = match args.mode {
        Mode::Ingest | Mode::Calibrate => target.url(&["v1", "monitors", &info.name, "rows"])?,
        Mode::Predict => target.url(&["v1", "predict"])?,
    };
    let pacing = Pacing {
        rows: row_limit,
        duration_seconds: args.duration,
        rate: args.rate,
        batch: args.batch,
        concurrency: args.concurrency,
    };
    let plan = LoadPlan {
        mode: args.mode,
        url,
        columns: generator.column_names(),
        labels: generator.labels(),
        pacing: pacing.clone(),
    };
    let mut cancel_load = cancel_rx.clone();
    let load = load::run(plan, generator, target.clone(), live.clone(), async move {
        let _ = cancel_load.wait_for(|c| *c).await;
    })
    .await;
    let _ = progress_done.send(());
    let _ = progress.await;

    let watch_report = match follower {
        None => None,
        Some(task) => {
            let final_seq = match args.mode {
                Mode::Ingest | Mode::Calibrate => load.max_seq,
                Mode::Predict => {
                    predicted_rows_logged(&target, &info, load.counts.rows_accepted).await
                }
            };
            let _ = final_tx.send(final_seq);
            let (watcher, boundary) = task.await.context("the watch task failed")?;
            let onset = onset_point(&args, &info, &load);
            let mut report = watch::analyze(&watcher.entries, watcher.params(), onset, boundary);
            report.poll_errors = watcher.poll_errors;
            report.last_poll_error = watcher.last_error.clone();
            report.stale_jobs = target
                .monitor(&info.name)
                .await
                .ok()
                .map(|now| now.stale_jobs.saturating_sub(info.stale_jobs));
            Some(report)
        }
    };

    let throughput = Throughput::of(&load);
    Ok(Summary {
        target: args.target.to_string(),
        monitor: info.name.clone(),
        mode: args.mode,
        seed,
        model: args.model,
        drift: DriftSummary::of(&args, drift_features, drift_categories),
        monitor_params: info.params.clone(),
        start_rows: info.rows,
        pacing,
        counts: load.counts,
        throughput,
        latency_ms: Latency::of(load.latencies_ms),
        seq_first: load.min_seq,
        seq_last: load.max_seq,
        interrupted: load.interrupted,
        watch: watch_report,
    })
}

/// Reference column of every monitor feature, in the monitor's order.
fn monitor_columns(info: &MonitorInfo, copula: &Copula) -> anyhow::Result<Vec<usize>> {
    info.features
        .iter()
        .map(|f| {
            copula.names().iter().position(|n| n == f).with_context(|| {
                format!(
                    "monitor {:?} has feature {f:?}, which is not in the reference the simulator draws rows from",
                    info.name
                )
            })
        })
        .collect()
}

/// The drift features, checked against the monitor's (only when the stream drifts).
fn check_drift_features(args: &Args, info: &MonitorInfo) -> anyhow::Result<Vec<String>> {
    if !args.drift {
        return Ok(Vec::new());
    }
    let mut seen = Vec::new();
    for f in &args.drift_features {
        if !info.features.contains(f) {
            bail!(
                "unknown feature {f:?} for monitor {:?} (its features: {})",
                info.name,
                info.features.join(", ")
            );
        }
        if seen.contains(f) {
            bail!("--drift-features names {f:?} twice");
        }
        seen.push(f.clone());
    }
    Ok(seen)
}

/// The onset for the analysis: read from `seq` in ingest mode; in predict mode (answers
/// carry no `seq`) estimated as the rows at start plus the rows accepted before the first
/// drifted one, which is exact with `--concurrency 1` when nobody else writes and the API
/// drops no logged row.
fn onset_point(args: &Args, info: &MonitorInfo, load: &load::LoadReport) -> Option<OnsetPoint> {
    let onset = load.onset.as_ref()?;
    match (args.mode, onset.seq) {
        (Mode::Ingest, Some(seq)) => Some(OnsetPoint {
            seq,
            at: onset.at,
            estimated: false,
        }),
        _ => Some(OnsetPoint {
            seq: info.rows + load.rows_accepted_before_onset + 1,
            at: onset.at,
            estimated: true,
        }),
    }
}

/// Predicted rows reach the monitor asynchronously: waits (up to 5 s) until the monitor has
/// counted them, and returns its row count.
async fn predicted_rows_logged(target: &Target, info: &MonitorInfo, accepted: u64) -> Option<u64> {
    let goal = info.rows + accepted;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rows = None;
    loop {
        if let Ok(now) = target.monitor(&info.name).await {
            rows = Some(now.rows);
            if now.rows >= goal {
                break;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rows
}
