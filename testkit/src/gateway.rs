//! The NGINX gateway in front of the API replicas, rendered from
//! `nginx/local.conf.template` (the file the deployment docs describe), so tests and the
//! demo go through the same routes, limits and JSON errors as users do.

use crate::process::{free_port, require_binary, TempDir};
use crate::Client;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// An `nginx` master process (and its worker) owned by one test or launcher: stopped
/// (SIGTERM, then SIGKILL) on drop.
pub struct Gateway {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl Gateway {
    /// Starts NGINX on `127.0.0.1:port` (0: a free port) with `upstreams` as the replica
    /// set, and waits until `/healthz` answers 200 through it.
    pub async fn start(upstreams: &[SocketAddr], port: u16) -> Self {
        assert!(
            !upstreams.is_empty(),
            "a gateway needs at least one API replica"
        );
        let nginx = require_binary("nginx", "nginx-light");
        let dir = TempDir::new("nginx");
        // Started as root, nginx runs its workers as `nobody`: they must reach the prefix.
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
        let mut gw = Gateway {
            child: None,
            port,
            dir,
        };
        let attempts = if port == 0 { 10 } else { 1 };
        let mut last = String::new();
        for _ in 0..attempts {
            gw.port = if port == 0 { free_port() } else { port };
            gw.render(upstreams);
            gw.check_config(&nginx);
            match gw.spawn(&nginx).await {
                Ok(()) => return gw,
                Err(why) => last = why,
            }
        }
        panic!("nginx did not start on 127.0.0.1:{}: {last}", gw.port);
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// The arguments that keep every file nginx touches inside the prefix directory.
    fn args(&self) -> Vec<String> {
        let prefix = self.dir.path().display().to_string();
        vec![
            "-p".into(),
            prefix,
            "-e".into(),
            self.error_log().display().to_string(),
            "-c".into(),
            self.conf().display().to_string(),
        ]
    }

    fn render(&self, upstreams: &[SocketAddr]) {
        let root = repo_root();
        let template_path = root.join("nginx/local.conf.template");
        let template = std::fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", template_path.display()));
        // A failed replica is skipped for 2 s, as in the compose deployment.
        let servers: String = upstreams
            .iter()
            .map(|a| format!("server {a} max_fails=1 fail_timeout=2s; "))
            .collect();
        let conf = template
            .replace("@LISTEN@", &format!("127.0.0.1:{}", self.port))
            .replace("@UPSTREAMS@", &servers)
            .replace("@PREFIX@", &self.dir.path().display().to_string())
            .replace(
                "@LOCATIONS@",
                &root
                    .join("nginx/gateway-locations.conf")
                    .display()
                    .to_string(),
            );
        std::fs::write(self.conf(), conf)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", self.conf().display()));
    }

    /// `nginx -t` first: a template mistake then reads as nginx's own complaint instead of
    /// a gateway that never answers.
    fn check_config(&self, nginx: &Path) {
        let out = Command::new(nginx)
            .args(["-t", "-q"])
            .args(self.args())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", nginx.display()));
        assert!(
            out.status.success(),
            "nginx -t rejected {}:\n{}",
            self.conf().display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn spawn(&mut self, nginx: &Path) -> Result<(), String> {
        let stderr = std::fs::File::create(self.dir.path().join("stderr.log"))
            .map_err(|e| format!("cannot create stderr.log: {e}"))?;
        let mut cmd = Command::new(nginx);
        cmd.args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // SIGTERM, not SIGKILL: the master then takes its worker down with it.
        tie_to_owner(&mut cmd, libc::SIGTERM);
        let child = cmd.spawn().map_err(|e| format!("cannot run nginx: {e}"))?;
        self.child = Some(child);
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return Err(format!(
                    "nginx exited ({status}): {}",
                    tail(&self.error_log(), 5)
                ));
            }
            if client.status("/healthz").await == Some(200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.terminate();
                return Err("/healthz did not answer 200 through it within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url())
    }

    /// The prefix directory: rendered `nginx.conf`, `error.log`, `access.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn error_log(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    pub fn access_log(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }

    /// The master's pid (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How the master ended, if it did (a live gateway gives `None`).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Stops NGINX (fast shutdown) and waits for it.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child, Duration::from_secs(5));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The checkout this crate was built from, where the templates live.
pub(crate) fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Makes the child stop only when its owner stops it, in the owner's order: it gets a
/// process group of its own (a Ctrl-C in the terminal reaches the owner, not the child
/// behind its back), and `signal` when the thread that spawns it ends, so that an owner
/// killed with SIGKILL leaves no server behind. The kernel ties the latter to the
/// spawning *thread*: spawn from a thread that lives as long as the child should (a
/// test's thread, a runtime's `block_on` thread), never from a blocking-pool thread.
pub(crate) fn tie_to_owner(cmd: &mut Command, signal: libc::c_int) {
    cmd.process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid), allocating nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// SIGTERM (and SIGCONT, since a stopped process ignores it), then SIGKILL after `grace`.
pub(crate) fn terminate(mut child: Child, grace: Duration) {
    if let Ok(None) = child.try_wait() {
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of our own child, which is not yet reaped (try_wait
        // said it runs), so the pid cannot belong to another process.
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `n` lines of a log file, for failure messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
