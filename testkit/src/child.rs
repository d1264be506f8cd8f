//! Server processes a test owns (NGINX, Prometheus, Redis): started on a free port in a
//! directory of their own, waited for until they answer, tied to their owner so that none
//! outlives it, and stopped (SIGTERM, then SIGKILL) when dropped.

use crate::process::{free_port, TempDir};
use crate::Client;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Lets a wrapper of a [`ChildServer`] (in its `server` field) be used as one: port, URL,
/// pid and directory without forwarding methods.
macro_rules! child_server_wrapper {
    ($t:ty) => {
        impl std::ops::Deref for $t {
            type Target = $crate::child::ChildServer;
            fn deref(&self) -> &$crate::child::ChildServer {
                &self.server
            }
        }

        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut $crate::child::ChildServer {
                &mut self.server
            }
        }
    };
}
pub(crate) use child_server_wrapper;

/// A started server process: its port, directory and child.
pub struct ChildServer {
    name: &'static str,
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    grace: Duration,
}

/// How to tell that a [`ChildServer`] is up.
pub(crate) struct Readiness<'a> {
    /// Path that answers 200 once the server is up.
    pub path: &'a str,
    /// Log whose tail explains an early exit.
    pub log: PathBuf,
    pub timeout: Duration,
}

impl ChildServer {
    pub(crate) fn new(name: &'static str, dir: TempDir, grace: Duration) -> Self {
        ChildServer {
            name,
            child: None,
            port: 0,
            dir,
            grace,
        }
    }

    /// Starts the server on `port` (0: a free one, retried on a clash): `command` prepares
    /// everything for the port in [`ChildServer::port`] (rendering its config) and gives
    /// the command to run; then waits until `ready` answers 200.
    pub(crate) async fn launch(
        &mut self,
        port: u16,
        mut command: impl FnMut(&ChildServer) -> Command,
        ready: Readiness<'_>,
    ) {
        let attempts = if port == 0 { 10 } else { 1 };
        let mut last = String::new();
        for _ in 0..attempts {
            self.port = if port == 0 { free_port() } else { port };
            let mut cmd = command(self);
            // SIGTERM, not SIGKILL: a master process then takes its workers down with it.
            tie_to_owner(&mut cmd, libc::SIGTERM);
            match cmd.spawn() {
                Ok(child) => self.child = Some(child),
                Err(e) => panic!("cannot run {}: {e}", self.name),
            }
            match self.wait_ready(&ready).await {
                Ok(()) => return,
                Err(why) => last = why,
            }
        }
        panic!(
            "{} did not start on 127.0.0.1:{}: {last}",
            self.name, self.port
        );
    }

    async fn wait_ready(&mut self, ready: &Readiness<'_>) -> Result<(), String> {
        let client = self.client();
        let deadline = Instant::now() + ready.timeout;
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return Err(format!("exited ({status}): {}", tail(&ready.log, 5)));
            }
            if client.status(ready.path).await == Some(200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.terminate();
                return Err(format!(
                    "{} did not answer 200 within {:?}",
                    ready.path, ready.timeout
                ));
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

    /// The server's own directory (rendered config, logs, data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How the process ended, if it did (a live server gives `None`).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub(crate) fn terminate(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child, self.grace);
        }
    }
}

impl Drop for ChildServer {
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
