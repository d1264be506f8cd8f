use clap::Parser;
use drift_service::{init_logging, shutdown_signal};
use drift_worker::{run_exporter, run_worker, Cli, Command};

/// Requests and job batches allocate many small buffers (JSON values, keys, replies):
/// glibc's malloc was about a fifth of the API's CPU under single-row load (perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(cfg) => {
            init_logging(cfg.log.log_format, "info");
            run_worker(bind(&cfg.listen).await?, cfg, shutdown_signal()).await
        }
        Command::Export(cfg) => {
            init_logging(cfg.log.log_format, "info");
            run_exporter(bind(&cfg.listen).await?, cfg, shutdown_signal()).await
        }
        Command::Ks(args) => drift_worker::ks_cli::run(&args.cases, args.timing),
    }
}
