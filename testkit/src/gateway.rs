//! The NGINX gateway in front of the API replicas, rendered from
//! `nginx/local.conf.template` (the file the deployment docs describe), so tests and the
//! demo go through the same routes, limits and JSON errors as users do.

use crate::child::{repo_root, ChildServer, Readiness};
use crate::process::{require_binary, TempDir};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// An `nginx` master process (and its worker) owned by one test or launcher: stopped
/// (SIGTERM, then SIGKILL) on drop. Port, URL, pid and directory come from its
/// [`ChildServer`].
pub struct Gateway {
    server: ChildServer,
}

crate::child::child_server_wrapper!(Gateway);

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
            server: ChildServer::new("nginx", dir, Duration::from_secs(5)),
        };
        let error_log = gw.error_log();
        let command = |s: &ChildServer| {
            Gateway::render(s, upstreams);
            Gateway::check_config(s, &nginx);
            let mut cmd = Command::new(&nginx);
            let stderr = std::fs::File::create(s.dir().join("stderr.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null());
            cmd.args(Gateway::args(s))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr);
            cmd
        };
        let ready = Readiness {
            path: "/healthz",
            log: error_log,
            timeout: Duration::from_secs(20),
        };
        gw.server.launch(port, command, ready).await;
        gw
    }

    fn conf(s: &ChildServer) -> PathBuf {
        s.dir().join("nginx.conf")
    }

    /// The arguments that keep every file nginx touches inside the prefix directory.
    fn args(s: &ChildServer) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        vec![
            "-p".into(),
            path(s.dir()),
            "-e".into(),
            path(&s.dir().join("error.log")),
            "-c".into(),
            path(&Gateway::conf(s)),
        ]
    }

    fn render(s: &ChildServer, upstreams: &[SocketAddr]) {
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
            .replace("@LISTEN@", &format!("127.0.0.1:{}", s.port()))
            .replace("@UPSTREAMS@", &servers)
            .replace("@PREFIX@", &s.dir().display().to_string())
            .replace(
                "@LOCATIONS@",
                &root
                    .join("nginx/gateway-locations.conf")
                    .display()
                    .to_string(),
            );
        std::fs::write(Gateway::conf(s), conf)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", Gateway::conf(s).display()));
    }

    /// `nginx -t` first: a template mistake then reads as nginx's own complaint instead of
    /// a gateway that never answers.
    fn check_config(s: &ChildServer, nginx: &Path) {
        let out = Command::new(nginx)
            .args(["-t", "-q"])
            .args(Gateway::args(s))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", nginx.display()));
        assert!(
            out.status.success(),
            "nginx -t rejected {}:\n{}",
            Gateway::conf(s).display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn error_log(&self) -> PathBuf {
        self.dir().join("error.log")
    }

    pub fn access_log(&self) -> PathBuf {
        self.dir().join("access.log")
    }

    /// Stops NGINX (fast shutdown) and waits for it.
    pub fn stop(mut self) {
        self.terminate();
    }
}
