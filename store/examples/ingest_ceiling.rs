//! Redis's ceilings for the API's ingest work, without HTTP or JSON in front of it, from C
//! tasks issuing their calls back to back:
//!
//! - `raw`: the least Redis can do to store the same values: per call, one pipeline of
//!   `LPUSH` (the batch's values, 8 bytes each, in row order) and `LTRIM` (to window +
//!   stride) per feature, on the monitor's window keys. No counter, events stream, jobs or
//!   validation: the floor of the work, not a usable ingest.
//! - `typed`: the API's own typed call for each `POST /v1/monitors/{m}/rows`
//!   ([`Store::ingest`], hence the same script, keys and arguments).
//!
//! `scripts/bench_ingest.sh` divides the API's rows/s by both, so the ratios say how much of
//! Redis's capacity the whole ingest path (HTTP, JSON, the script) leaves on the table.
//!
//! `cargo run --release -q -p drift-store --example ingest_ceiling -- --redis-url URL
//! --batch 100 --seconds 10 --concurrency 16 [--modes raw,typed]`
//!
//! Prints one line of `key=value` pairs on stdout: per mode `<mode>_rows_per_s`,
//! `<mode>_calls_per_s` and the Redis time per call (`INFO commandstats`, reset after the
//! warm-up round): `typed_evalsha_usec_per_call` (the whole script, the commands it calls
//! included) and `raw_usec_per_call` (the LPUSH and LTRIM of one pipeline). Registers the
//! default monitor with default parameters first (unchanged when an API already did), and
//! ingests the rows drift-sim's `ingest_body` example puts in the API's request body (the
//! first BATCH reference rows), so every side of the ratios does the same work.

use anyhow::{bail, Context};
use clap::Parser;
use drift_core::{MonitorConfig, MonitorSpec, Params};
use drift_store::{codec, Caps, RedisArgs, Store};
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(Parser, Debug)]
#[command(about = "Rows/s Redis sustains for the API's ingest work, without the API in front")]
struct Args {
    #[command(flatten)]
    redis: RedisArgs,
    /// Rows per ingest call (the API's rows per request).
    #[arg(long, env = "BENCH_BATCH", default_value_t = 100)]
    batch: usize,
    /// How long to measure each mode.
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 10.0)]
    seconds: f64,
    /// Calls in flight at once (and connections), like wrk's connections.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// Which ceilings to measure, in this order: `raw` (pipelined LPUSH + LTRIM per
    /// feature) and `typed` (Store::ingest).
    #[arg(long, value_delimiter = ',', default_value = "raw,typed")]
    modes: Vec<Mode>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Raw,
    Typed,
}

/// What every task of a run shares.
struct Work {
    store: Store,
    cfg: MonitorConfig,
    columns: Vec<Vec<f64>>,
    /// The raw mode's pipeline: LPUSH and LTRIM per feature, built once.
    raw: redis::Pipeline,
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
    let raw = raw_pipeline(&store, &cfg, &columns);
    let work = Arc::new(Work {
        store,
        cfg,
        columns,
        raw,
    });
    let client = redis::Client::open(args.redis.redis_url.as_str())?;
    let mut admin = client.get_multiplexed_async_connection().await?;
    let mut out = Vec::new();
    for mode in &args.modes {
        let mut conns = Vec::with_capacity(args.concurrency);
        for _ in 0..args.concurrency {
            conns.push(client.get_multiplexed_async_connection().await?);
        }
        // One round first, outside the measurement: opens every connection and loads the
        // script, which the API has also done before its measured requests.
        let conns = rounds(&work, *mode, conns, Instant::now()).await?.1;
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async::<()>(&mut admin)
            .await?;
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(args.seconds);
        let (calls, _) = rounds(&work, *mode, conns, until).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut admin)
            .await?;
        let rows = calls * args.batch as u64;
        let name = match mode {
            Mode::Raw => "raw",
            Mode::Typed => "typed",
        };
        out.push(format!(
            "{name}_rows_per_s={:.0} {name}_calls_per_s={:.0}",
            rows as f64 / elapsed,
            calls as f64 / elapsed
        ));
        match mode {
            Mode::Typed => out.push(format!(
                "typed_evalsha_usec_per_call={:.1}",
                usec(&stats, &["evalsha"]) / calls.max(1) as f64
            )),
            Mode::Raw => out.push(format!(
                "raw_usec_per_call={:.1}",
                usec(&stats, &["lpush", "ltrim"]) / calls.max(1) as f64
            )),
        }
    }
    println!(
        "{} batch={} concurrency={} seconds={}",
        out.join(" "),
        args.batch,
        args.concurrency,
        args.seconds
    );
    Ok(())
}

/// The LPUSH and LTRIM per feature that store a batch, nothing else.
fn raw_pipeline(store: &Store, cfg: &MonitorConfig, columns: &[Vec<f64>]) -> redis::Pipeline {
    let cap = cfg.params.window + cfg.params.stride;
    let mut pipe = redis::pipe();
    for (f, col) in cfg.features.iter().zip(columns) {
        let key = store.keys().window(&cfg.name, f);
        let from = col.len().saturating_sub(cap);
        let push = pipe.cmd("LPUSH").arg(&key);
        for v in &col[from..] {
            push.arg(&codec::encode(*v)[..]);
        }
        push.ignore();
        pipe.cmd("LTRIM").arg(&key).arg(0).arg(cap - 1).ignore();
    }
    pipe
}

/// The total `usec` of these commands in an `INFO commandstats` answer.
fn usec(stats: &str, commands: &[&str]) -> f64 {
    stats
        .lines()
        .filter_map(|l| {
            let (name, fields) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            commands.contains(&name).then_some(fields)
        })
        .filter_map(|fields| {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix("usec="))?
                .parse::<f64>()
                .ok()
        })
        .sum()
}

/// Runs one task per connection that each makes the mode's call back to back, at least
/// once and until `until`; returns the calls made and the connections. The first failure
/// aborts the run: a ceiling measured over failed calls would not be the cost of the work.
async fn rounds(
    work: &Arc<Work>,
    mode: Mode,
    conns: Vec<MultiplexedConnection>,
    until: Instant,
) -> anyhow::Result<(u64, Vec<MultiplexedConnection>)> {
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let work = Arc::clone(work);
        tasks.spawn(async move {
            let mut calls = 0u64;
            loop {
                match mode {
                    Mode::Typed => {
                        work.store.ingest(&work.cfg, &work.columns).await?;
                    }
                    Mode::Raw => work.raw.query_async::<()>(&mut conn).await?,
                }
                calls += 1;
                if Instant::now() >= until {
                    return Ok::<_, anyhow::Error>((calls, conn));
                }
            }
        });
    }
    let mut total = 0;
    let mut conns = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (calls, conn) = done
            .context("an ingest task panicked")?
            .context("ingest failed")?;
        total += calls;
        conns.push(conn);
    }
    Ok((total, conns))
}
