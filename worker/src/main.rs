use clap::Parser;
use drift_worker::{run_exporter, run_worker, Cli, Command};

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(cfg) => {
            drift_core::telemetry::init_logging(cfg.redis.log_format);
            let listener = bind(&cfg.listen).await?;
            run_worker(listener, cfg, shutdown_signal()).await
        }
        Command::Export(cfg) => {
            drift_core::telemetry::init_logging(cfg.redis.log_format);
            let listener = bind(&cfg.listen).await?;
            run_exporter(listener, cfg, shutdown_signal()).await
        }
        Command::Ks(args) => drift_worker::ks_cli::run(&args.cases, args.timing),
    }
}
