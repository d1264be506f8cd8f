use clap::Parser;
use drift_api::{run, shutdown_signal, ApiConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = ApiConfig::parse();
    drift_core::telemetry::init_logging(cfg.redis.log_format);
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    run(listener, cfg, shutdown_signal()).await
}
