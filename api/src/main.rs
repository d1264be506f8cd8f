use clap::Parser;
use drift_api::{run, ApiConfig};
use drift_service::{init_logging, shutdown_signal};

/// Requests and job batches allocate many small buffers (JSON values, keys, replies):
/// glibc's malloc was about a fifth of the API's CPU under single-row load (perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = ApiConfig::parse();
    init_logging(cfg.log.log_format, "info");
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    run(listener, cfg, shutdown_signal()).await
}
