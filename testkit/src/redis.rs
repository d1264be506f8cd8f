//! A `redis-server` owned by one test: started on a free port in its own directory,
//! killed when dropped, and able to crash, restart and freeze on demand.

use crate::process::{free_port, require_binary, TempDir};
use drift_store::{Caps, RedisArgs, Store};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port below 55536 whose cluster bus port (port + 10000) is free too,
/// picked at random in 20000..45000 (mostly below the kernel's ephemeral range).
fn free_cluster_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    loop {
        let port: u16 = rng.random_range(20_000..45_000);
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    opts: RedisOptions,
}

/// How to start a [`RedisServer`].
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// Append-only file on (fsync every second), as deployed.
    pub appendonly: bool,
    /// `requirepass`.
    pub password: Option<String>,
    /// An ACL user (name, password) with every permission.
    pub acl_user: Option<(String, String)>,
    /// Serve TLS only, with a self-signed certificate for 127.0.0.1 (needs `openssl`).
    pub tls: bool,
    /// A Redis Cluster node (node timeout 1 s, serving its slots while others are down),
    /// on a port below 55536 whose cluster bus port (port + 10000) is free too.
    pub cluster: bool,
}

impl RedisServer {
    /// Starts an empty Redis without persistence.
    pub fn start() -> Self {
        Self::start_opts(RedisOptions::default())
    }

    /// Starts Redis with the append-only file on (fsync every second), as deployed.
    pub fn start_persistent() -> Self {
        Self::start_opts(RedisOptions {
            appendonly: true,
            ..RedisOptions::default()
        })
    }

    pub fn start_opts(opts: RedisOptions) -> Self {
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir: TempDir::new("redis"),
            opts,
        };
        if server.opts.tls {
            server.make_certificate();
        }
        for _ in 0..20 {
            server.port = if server.opts.cluster {
                free_cluster_port()
            } else {
                free_port()
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port after 20 attempts");
    }

    fn make_certificate(&self) {
        let openssl = require_binary("openssl", "openssl");
        let ok = Command::new(openssl)
            .current_dir(self.dir.path())
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-keyout", "server.key", "-out", "server.crt"])
            .args(["-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl could not make a test certificate");
    }

    fn spawn(&mut self) -> bool {
        let bin = require_binary("redis-server", "redis-server");
        let dir = self.dir.path().display().to_string();
        let mut cmd = Command::new(bin);
        if self.opts.tls {
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args(["--tls-cert-file", &format!("{dir}/server.crt")])
                .args(["--tls-key-file", &format!("{dir}/server.key")])
                .args(["--tls-ca-cert-file", &format!("{dir}/server.crt")])
                .args(["--tls-auth-clients", "no"]);
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        if let Some(pw) = &self.opts.password {
            cmd.args(["--requirepass", pw]);
            if self.opts.cluster {
                // A replica authenticates to its master with the same password.
                cmd.args(["--masterauth", pw]);
            }
        }
        if let Some((user, pw)) = &self.opts.acl_user {
            cmd.args(["--user", user, "on", &format!(">{pw}"), "~*", "&*", "+@all"]);
        }
        if self.opts.cluster {
            cmd.args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("{dir}/nodes.conf")])
                .args(["--cluster-node-timeout", "1000"])
                .args(["--cluster-require-full-coverage", "no"]);
        }
        // Dies with the process that owns it, even when that one is SIGKILLed.
        crate::child::tie_to_owner(&mut cmd, libc::SIGTERM);
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .args(["--dir", &dir])
            .args(["--save", ""])
            .args([
                "--appendonly",
                if self.opts.appendonly { "yes" } else { "no" },
            ])
            .args(["--appendfsync", "everysec"])
            .args(["--logfile", &format!("{dir}/redis.log")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            return false;
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // port taken or bad config
            }
            if self.answers() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Whether the server answers (and has loaded its data), asked with `redis-cli`, which
    /// the redis-server package brings along.
    fn answers(&self) -> bool {
        let mut cli = Command::new(require_binary("redis-cli", "redis-tools"));
        cli.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.opts.tls {
            cli.args(["--tls", "--insecure"]);
        }
        if let Some(pw) = &self.opts.password {
            cli.args(["-a", pw, "--no-auth-warning"]);
        }
        cli.arg("ping")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
    }

    /// The server's directory: its log (`redis.log`) and append-only file.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL clients use, with the password and scheme this server needs.
    pub fn url(&self) -> String {
        let auth = self
            .opts
            .password
            .as_ref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        if self.opts.tls {
            // The certificate is self-signed: skip verification in tests.
            format!("rediss://{auth}127.0.0.1:{}/#insecure", self.port)
        } else {
            format!("redis://{auth}127.0.0.1:{}", self.port)
        }
    }

    /// A store on this server with key prefix `prefix`, for typed reads of what the code
    /// under test wrote (and for fault injection).
    pub fn store(&self, prefix: &str) -> Store {
        RedisArgs::new(&self.url(), prefix)
            .connect(4, Caps::DEFAULT)
            .unwrap_or_else(|e| panic!("store on {}: {e}", self.url()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL): what was not fsynced is lost, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server cleanly (SIGTERM: Redis flushes the append-only file and exits).
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            crate::child::terminate(c, Duration::from_secs(5));
        }
    }

    /// Starts the server again on the same port and directory (keeping its append-only
    /// file, if any).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}
