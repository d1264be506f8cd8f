//! Command line of `drift-worker`: `run` (evaluation worker), `export` (metrics exporter)
//! and `ks` (the KS engine on a file of cases).

use drift_service::LogArgs;
use drift_store::{Caps, RedisArgs};
use std::path::PathBuf;

#[derive(clap::Parser, Debug)]
#[command(
    name = "drift-worker",
    version,
    about = "Drift monitor workers, exporter and KS tool"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Claim evaluation jobs from Redis and run the tests.
    Run(WorkerConfig),
    /// Serve the global drift state from Redis as Prometheus metrics.
    Export(ExporterConfig),
    /// Run two-sample KS tests on a JSON file of cases (scipy's ks_2samp semantics).
    Ks(KsArgs),
}

#[derive(clap::Args, Clone, Debug)]
pub struct WorkerConfig {
    /// Address of this worker's /metrics and /healthz.
    #[arg(long, env = "DRIFT_LISTEN", default_value = "127.0.0.1:9101")]
    pub listen: String,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Consumer name in the group; must be unique per process (default: host-pid-random).
    #[arg(long, env = "DRIFT_CONSUMER")]
    pub consumer: Option<String>,
    /// Jobs pending longer than this on any consumer are taken over by another worker.
    #[arg(long, env = "DRIFT_CLAIM_IDLE_MS", default_value_t = 15_000)]
    pub claim_idle_ms: u64,
    /// A job delivered this many times without success goes to the dead-letter stream.
    #[arg(long, env = "DRIFT_MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: u64,
    /// How long one blocking read waits for new jobs; also bounds shutdown latency.
    #[arg(long, env = "DRIFT_BLOCK_MS", default_value_t = 1000)]
    pub block_ms: u64,
    /// Jobs read per round trip, and evaluated and recorded together (a batch's windows
    /// are read in one round trip and its outcomes recorded in one more).
    #[arg(long, env = "DRIFT_BATCH", default_value_t = 512, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub batch: usize,
    /// Threads running the KS tests (0: one per core).
    #[arg(long, env = "DRIFT_EVAL_THREADS", default_value_t = 0)]
    pub eval_threads: usize,
    /// Batches in progress at once: the next batch is read while one is evaluated.
    #[arg(long, env = "DRIFT_BATCHES_IN_FLIGHT", default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub in_flight: usize,
    /// Evaluations kept on each monitor's history stream.
    #[arg(long, env = "DRIFT_HISTORY_MAXLEN", default_value_t = Caps::DEFAULT.history)]
    pub history_maxlen: u64,
    /// Jobs kept on each monitor's dead-letter stream.
    #[arg(long, env = "DRIFT_DEAD_MAXLEN", default_value_t = Caps::DEFAULT.dead)]
    pub dead_maxlen: u64,
    /// How often the list of monitors is refreshed.
    #[arg(long, env = "DRIFT_REFRESH_MS", default_value_t = 2000)]
    pub refresh_ms: u64,
}

#[derive(clap::Args, Clone, Debug)]
pub struct ExporterConfig {
    /// Address of the exporter's /metrics and /healthz.
    #[arg(long, env = "DRIFT_LISTEN", default_value = "127.0.0.1:9102")]
    pub listen: String,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(clap::Args, Clone, Debug)]
pub struct KsArgs {
    /// File of cases in the format of the KS test vectors (`-` for standard input).
    #[arg(long)]
    pub cases: PathBuf,
    /// Print `compute_seconds=<float>` as the last line on standard error.
    #[arg(long)]
    pub timing: bool,
}

/// The configuration of one subcommand as with no flags and no environment, for this
/// Redis and key prefix (tests and tools).
fn defaults(subcommand: &str, url: &str, prefix: &str) -> Command {
    match drift_service::parse_without_env::<Cli>(&["drift-worker", subcommand]) {
        Ok(cli) => {
            let mut command = cli.command;
            if let Command::Run(WorkerConfig { redis, .. })
            | Command::Export(ExporterConfig { redis, .. }) = &mut command
            {
                *redis = RedisArgs::new(url, prefix);
            }
            command
        }
        Err(e) => unreachable!("the {subcommand} subcommand parses without arguments: {e}"),
    }
}

impl WorkerConfig {
    /// Defaults for tests: everything as with no flags, but this Redis and prefix.
    pub fn for_redis(url: &str, prefix: &str) -> Self {
        match defaults("run", url, prefix) {
            Command::Run(c) => c,
            _ => unreachable!("parsed the run subcommand"),
        }
    }

    /// The caps this worker applies to the streams it writes.
    pub fn caps(&self) -> Caps {
        Caps {
            history: self.history_maxlen,
            dead: self.dead_maxlen,
            ..Caps::DEFAULT
        }
    }
}

impl ExporterConfig {
    pub fn for_redis(url: &str, prefix: &str) -> Self {
        match defaults("export", url, prefix) {
            Command::Export(c) => c,
            _ => unreachable!("parsed the export subcommand"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_configs_ignore_the_environment() {
        // An exported variable must not change what a test runs against.
        std::env::set_var("DRIFT_CLAIM_IDLE_MS", "1");
        std::env::set_var("DRIFT_REDIS_TIMEOUT_MS", "2");
        let w = WorkerConfig::for_redis("redis://127.0.0.1:1", "t");
        assert_eq!(w.claim_idle_ms, 15_000);
        assert_eq!(w.redis.redis_timeout_ms, 1500);
        assert_eq!(w.caps(), Caps::DEFAULT);
        let e = ExporterConfig::for_redis("redis://127.0.0.1:1", "t");
        assert_eq!(e.redis.key_prefix, "t");
    }
}
