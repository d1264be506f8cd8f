use clap::Parser;
use drift_api::{run, ApiConfig};
use drift_service::{init_logging, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = ApiConfig::parse();
    init_logging(cfg.log.log_format, "info");
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    run(listener, cfg, shutdown_signal()).await
}
