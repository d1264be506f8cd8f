//! `drift-stack`: the one launcher of the local drift stack (`make demo`, the full-stack
//! test), so that both bring it up exactly as the Rust tests do, with [`Stack::builder`].
//!
//! Redis, NGINX and Prometheus are child processes; the API replicas, workers and the
//! exporter run in this process and log to its stderr. Once everything is up, the
//! addresses are written to `--info` (JSON, replaced atomically) and one line
//! `drift-stack: up ...` goes to stderr; SIGTERM or Ctrl-C stops the stack gracefully.
//!
//! The children must not outlive the launcher: they are stopped on every exit path, and
//! NGINX and Prometheus, each in a process group of its own, also get SIGTERM from the
//! kernel if the launcher is killed outright (PR_SET_PDEATHSIG). `redis-server` is
//! started by the testkit's `RedisServer`, which sets neither: after a SIGKILL of the
//! launcher, kill `redis_pid` from the info; and a Ctrl-C in a terminal reaches Redis at
//! the same time as the launcher (rows still buffered by the replicas are then lost), so
//! scripts start the launcher in its own session (`setsid`) and stop it with SIGTERM.

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use drift_service::{init_logging, shutdown_signal, LogArgs};
use drift_testkit::{Server, Stack};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "drift-stack",
    version,
    about = "The local drift stack on loopback: redis-server, API replicas behind NGINX, \
             workers, the exporter and Prometheus, until SIGTERM or Ctrl-C"
)]
struct Args {
    /// API replicas behind the gateway.
    #[arg(long, env = "DRIFT_STACK_APIS", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..))]
    apis: u16,
    /// Workers evaluating the jobs.
    #[arg(long, env = "DRIFT_STACK_WORKERS", default_value_t = 2)]
    workers: u16,
    /// Rows in each feature's rolling window (default monitor).
    #[arg(long, env = "DRIFT_STACK_WINDOW", default_value_t = 500)]
    window: usize,
    /// Rows between evaluations once the window is full (default monitor).
    #[arg(long, env = "DRIFT_STACK_STRIDE", default_value_t = 100)]
    stride: usize,
    /// Redis key prefix of every service.
    #[arg(long, env = "DRIFT_STACK_KEY_PREFIX", default_value = "drift")]
    key_prefix: String,
    /// Port of the NGINX gateway on 127.0.0.1 (0: a free port).
    #[arg(long, env = "DRIFT_STACK_GATEWAY_PORT", default_value_t = 0)]
    gateway_port: u16,
    /// Port of Prometheus on 127.0.0.1 (0: a free port).
    #[arg(long, env = "DRIFT_STACK_PROMETHEUS_PORT", default_value_t = 0)]
    prometheus_port: u16,
    /// Admin token of the API replicas (PUT/DELETE of monitors; the calibration run needs
    /// it). Without it the admin routes are disabled.
    #[arg(long, env = "DRIFT_STACK_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Most monitors the API replicas accept.
    #[arg(long, env = "DRIFT_STACK_MAX_MONITORS", default_value_t = 100)]
    max_monitors: usize,
    /// Where to write the addresses (JSON) once everything is up; removed at exit.
    #[arg(long, env = "DRIFT_STACK_INFO")]
    info: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log.log_format, "info");
    let work = WorkDir::create()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let started = Instant::now();
    // Listening from the start: a SIGTERM while the stack comes up must not kill the
    // launcher on the spot (which would leave Redis behind) but stop what has started.
    let mut stop = runtime.spawn(shutdown_signal());
    // The testkit fails with a panic and a clear message; the launcher turns that into
    // its error. `block_on` keeps the start on the main thread, which lives as long as
    // the children (their parent-death signal is tied to the spawning thread).
    let stack = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            tokio::select! {
                stack = start(&args) => Some(stack),
                _ = &mut stop => None,
            }
        })
    }))
    .map_err(|panic| anyhow!("the stack did not start: {}", panic_message(&panic)))?;
    let Some(stack) = stack else {
        tracing::info!("stopped while the stack was coming up");
        return Ok(());
    };
    let result = runtime.block_on(serve(stack, stop, &args, &work, started));
    if let Some(info) = &args.info {
        let _ = std::fs::remove_file(info);
    }
    result
}

async fn start(args: &Args) -> Stack {
    let (window, stride) = (args.window, args.stride);
    let (token, max_monitors) = (args.admin_token.clone(), args.max_monitors);
    Stack::builder()
        .prefix(&args.key_prefix)
        .apis(args.apis.into())
        .workers(args.workers.into())
        .exporter()
        .gateway_port(args.gateway_port)
        .prometheus_port(args.prometheus_port)
        .api_config(move |c| {
            c.window = window;
            c.stride = stride;
            c.admin_token = token.clone().map(drift_api::config::Secret);
            c.max_monitors = max_monitors;
        })
        .start()
        .await
}

async fn serve(
    mut stack: Stack,
    stop: tokio::task::JoinHandle<()>,
    args: &Args,
    work: &WorkDir,
    started: Instant,
) -> anyhow::Result<()> {
    // `Stack::start` returned once every replica's /readyz answered, which is once its
    // monitors (the default one included) are registered.
    let up = async {
        let info = info(&stack, work);
        if let Some(path) = &args.info {
            write_atomically(path, &serde_json::to_vec_pretty(&info)?)?;
        }
        anyhow::Ok(info)
    }
    .await;
    let info = match up {
        Ok(info) => info,
        Err(e) => {
            let _ = stack.stop().await;
            return Err(e);
        }
    };
    let text = |key: &str| info[key].as_str().unwrap_or_default().to_string();
    eprintln!(
        "drift-stack: up in {:.1}s: gateway {}, prometheus {}, {} API replica(s), {} worker(s), \
         exporter {}, redis {} (pid {}), work dir {}{}",
        started.elapsed().as_secs_f64(),
        text("gateway_url"),
        text("prometheus_url"),
        stack.apis.len(),
        stack.workers.len(),
        text("exporter_url"),
        text("redis_url"),
        info["redis_pid"],
        work.path.display(),
        args.info
            .as_ref()
            .map(|p| format!(", info {}", p.display()))
            .unwrap_or_default(),
    );
    let died = tokio::select! {
        _ = stop => None,
        why = watch_children(&mut stack) => Some(why),
    };
    if let Some(why) = &died {
        tracing::error!("{why}; stopping the stack");
    }
    stack
        .stop()
        .await
        .context("the stack did not stop cleanly")?;
    match died {
        Some(why) => bail!("{why}"),
        None => {
            tracing::info!("stack stopped");
            Ok(())
        }
    }
}

fn info(stack: &Stack, work: &WorkDir) -> serde_json::Value {
    let gateway = stack.gateway();
    let prometheus = stack.prometheus();
    let urls = |servers: &[Server]| -> Vec<String> { servers.iter().map(|s| s.url()).collect() };
    json!({
        "pid": std::process::id(),
        "key_prefix": stack.prefix,
        "gateway_url": gateway.url(),
        "gateway_port": gateway.port(),
        "gateway_pid": gateway.pid(),
        "prometheus_url": prometheus.url(),
        "prometheus_port": prometheus.port(),
        "prometheus_pid": prometheus.pid(),
        "api_urls": urls(&stack.apis),
        "worker_urls": urls(&stack.workers),
        "exporter_url": stack.exporter().url(),
        "redis_url": stack.redis.url(),
        "redis_pid": stack.redis.pid(),
        "work_dir": work.path,
        "redis_dir": stack.redis.dir(),
        "gateway_dir": gateway.dir(),
        "prometheus_dir": prometheus.dir(),
        "logs": {
            "services": "stderr of drift-stack",
            "redis": stack.redis.dir().join("redis.log"),
            "gateway_error": gateway.error_log(),
            "gateway_access": gateway.access_log(),
            "prometheus": prometheus.log(),
        },
    })
}

/// Readers poll for the file: they must never see half of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// Resolves when a child server ends on its own: the stack is then broken, and a caller
/// watching the launcher's process learns it from its exit. (A stopped process, e.g.
/// Redis frozen by a test with SIGSTOP, still counts as running.)
async fn watch_children(stack: &mut Stack) -> String {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(status) = stack.gateway.as_mut().and_then(|g| g.exited()) {
            return format!("nginx exited ({status})");
        }
        if let Some(status) = stack.prometheus.as_mut().and_then(|p| p.exited()) {
            return format!("prometheus exited ({status})");
        }
        if let Some(pid) = stack.redis.pid() {
            if !running(pid) {
                return format!("redis-server (pid {pid}) exited");
            }
        }
    }
}

/// Whether `pid` runs (a zombie does not): `RedisServer` keeps its `Child` to itself, so
/// the state is read from /proc.
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')', comm may contain anything.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next());
    !matches!(state, None | Some('Z') | Some('X'))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without message".into())
}

/// The directory every temporary directory of the stack is made in (TMPDIR points at
/// it), so that one path in the info leads to every config and log; removed at exit.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create() -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("drift-stack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        // Started as root, nginx runs its workers as `nobody`: they must reach the prefix.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        // Before any other thread exists (the runtime is built after this).
        std::env::set_var("TMPDIR", &path);
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
