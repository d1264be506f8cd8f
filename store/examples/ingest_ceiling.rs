//! Redis's ceiling for the API's ingest work: the same typed call the API makes for each
//! `POST /v1/monitors/{m}/rows` ([`Store::ingest`], hence the same script, keys and
//! arguments), issued back to back from C tasks without HTTP or JSON in front of it.
//! `scripts/bench_ingest.sh` divides the API's rows/s by this number, so the ratio says how
//! much of Redis's capacity the HTTP layer leaves on the table.
//!
//! `cargo run --release -q -p drift-store --example ingest_ceiling -- --redis-url URL
//! --batch 100 --seconds 10 --concurrency 16`
//!
//! Prints one line of `key=value` pairs (`rows_per_s=...` first) on stdout. Registers the
//! default monitor with default parameters first (unchanged when an API already did), and
//! ingests the rows drift-sim's `ingest_body` example puts in the API's request body (the
//! first BATCH reference rows), so both sides of the ratio do the same work.

use anyhow::{bail, Context};
use clap::Parser;
use drift_core::{MonitorConfig, MonitorSpec, Params};
use drift_store::{Caps, RedisArgs, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(Parser, Debug)]
#[command(about = "Rows/s Redis sustains for Store::ingest, without the API in front")]
struct Args {
    #[command(flatten)]
    redis: RedisArgs,
    /// Rows per ingest call (the API's rows per request).
    #[arg(long, env = "BENCH_BATCH", default_value_t = 100)]
    batch: usize,
    /// How long to measure.
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 10.0)]
    seconds: f64,
    /// Calls in flight at once (and pooled connections), like wrk's connections.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.batch == 0 || args.concurrency == 0 {
        bail!("--batch and --concurrency must be at least 1");
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--seconds must be a positive number of seconds");
    }
    let store = args.redis.connect(args.concurrency, Caps::DEFAULT)?;
    let spec = MonitorSpec::default_monitor(Params::default())?;
    store
        .register(&spec)
        .await
        // Not the URL itself: it may hold the password.
        .context("registering the default monitor (is Redis up at --redis-url?)")?;
    // The config as stored, as the API reads it before it ingests.
    let cfg = store.config(&spec.config.name).await?.with_context(|| {
        format!(
            "monitor {:?} is missing after registering it",
            spec.config.name
        )
    })?;
    let columns: Vec<Vec<f64>> = spec
        .reference
        .iter()
        .map(|col| (0..args.batch).map(|i| col[i % col.len()]).collect())
        .collect();
    let work = Arc::new((store, cfg, columns));

    // One round first, outside the measurement: opens every pooled connection and loads
    // the script, which the API has also done before its measured requests.
    rounds(&work, args.concurrency, Instant::now()).await?;

    let started = Instant::now();
    let calls = rounds(
        &work,
        args.concurrency,
        started + Duration::from_secs_f64(args.seconds),
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let rows = calls * args.batch as u64;
    println!(
        "rows_per_s={:.0} calls_per_s={:.0} rows={rows} calls={calls} seconds={elapsed:.3} batch={} concurrency={}",
        rows as f64 / elapsed,
        calls as f64 / elapsed,
        args.batch,
        args.concurrency,
    );
    Ok(())
}

/// Runs `concurrency` tasks that each ingest the batch back to back, at least once and
/// until `until`; returns the calls made. The first failure aborts the run: a ceiling
/// measured over failed calls would not be the cost of the work.
async fn rounds(
    work: &Arc<(Store, MonitorConfig, Vec<Vec<f64>>)>,
    concurrency: usize,
    until: Instant,
) -> anyhow::Result<u64> {
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let work = Arc::clone(work);
        tasks.spawn(async move {
            let (store, cfg, columns) = &*work;
            let mut calls = 0u64;
            loop {
                store.ingest(cfg, columns).await?;
                calls += 1;
                if Instant::now() >= until {
                    return Ok::<u64, drift_store::StoreError>(calls);
                }
            }
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done
            .context("an ingest task panicked")?
            .context("ingest failed")?;
    }
    Ok(total)
}
