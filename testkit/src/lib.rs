//! Test harness: real servers (redis-server first) on free loopback ports.
//!
//! Every test gets its own `redis-server` process in its own temporary directory, so tests
//! never share state; the process is killed when the handle is dropped.

use std::io::Write;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Finds a binary on PATH, or fails the test with the command that installs it.
pub fn require_binary(name: &str, debian_package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed; it is needed by this test. Install it with \
         `apt-get install -y {debian_package}` (`make test` does this by itself)"
    );
}

/// A port that was free a moment ago (the OS picked it for a listener we closed).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"))
}

/// A fresh, empty temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "drift-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `redis-server` owned by one test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    appendonly: bool,
    password: Option<String>,
    tls: bool,
}

/// How to start a [`RedisServer`].
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// Append-only file on (fsync every second), as deployed.
    pub appendonly: bool,
    /// `requirepass`.
    pub password: Option<String>,
    /// Serve TLS only, with a self-signed certificate for 127.0.0.1 (needs `openssl`).
    pub tls: bool,
}

impl RedisServer {
    /// Starts an empty Redis without persistence.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts Redis with the append-only file on (fsync every second), as deployed.
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    fn start_with(appendonly: bool) -> Self {
        Self::start_opts(RedisOptions {
            appendonly,
            ..RedisOptions::default()
        })
    }

    pub fn start_opts(opts: RedisOptions) -> Self {
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir: TempDir::new("redis"),
            appendonly: opts.appendonly,
            password: opts.password,
            tls: opts.tls,
        };
        if server.tls {
            let openssl = require_binary("openssl", "openssl");
            let ok = Command::new(openssl)
                .current_dir(server.dir.path())
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args(["-keyout", "server.key", "-out", "server.crt"])
                .args([
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "openssl could not make a test certificate");
        }
        for _ in 0..20 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port after 20 attempts");
    }

    fn spawn(&mut self) -> bool {
        let bin = require_binary("redis-server", "redis-server");
        let log = self.dir.path().join("redis.log");
        let mut cmd = Command::new(bin);
        if self.tls {
            let d = self.dir.path().display().to_string();
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args(["--tls-cert-file", &format!("{d}/server.crt")])
                .args(["--tls-key-file", &format!("{d}/server.key")])
                .args(["--tls-ca-cert-file", &format!("{d}/server.crt")])
                .args(["--tls-auth-clients", "no"]);
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.path().display().to_string()])
            .args(["--save", ""])
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }])
            .args(["--appendfsync", "everysec"])
            .args(["--logfile", &log.display().to_string()])
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
            if self.ping() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL clients use, with the password and scheme this server needs.
    pub fn url(&self) -> String {
        let auth = self
            .password
            .as_ref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        if self.tls {
            // The certificate is self-signed: skip verification in tests.
            format!("rediss://{auth}127.0.0.1:{}/#insecure", self.port)
        } else {
            format!("redis://{auth}127.0.0.1:{}", self.port)
        }
    }

    fn ping(&self) -> bool {
        if self.tls {
            return Command::new("redis-cli")
                .args(["--tls", "--insecure", "-p", &self.port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"));
        }
        self.cmd_raw(&["PING"]).is_ok_and(|r| r.contains("PONG"))
    }

    fn cmd_raw(&self, args: &[&str]) -> std::io::Result<String> {
        Ok(self.query_raw(args)?.flat().join("\n"))
    }

    fn query_raw(&self, args: &[&str]) -> std::io::Result<Resp> {
        request(self.port, self.password.as_deref(), args)
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

    /// Stops the server cleanly (SHUTDOWN, which writes the append-only file).
    pub fn stop(&mut self) {
        let _ = self.cmd_raw(&["SHUTDOWN"]);
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
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

    /// Runs a command with a plain RESP client (for checks that must not go through the
    /// code under test) and returns the reply's scalars, one per line.
    pub fn cmd(&self, args: &[&str]) -> String {
        self.cmd_raw(args)
            .unwrap_or_else(|e| panic!("redis command {args:?}: {e}"))
    }

    /// Runs a command and returns the parsed reply.
    pub fn query(&self, args: &[&str]) -> Resp {
        self.query_raw(args)
            .unwrap_or_else(|e| panic!("redis command {args:?}: {e}"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// A RESP reply, parsed completely (however long it is).
#[derive(Clone, Debug, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// The reply as text, one scalar per line (arrays flattened), for simple assertions.
    pub fn flat(&self) -> Vec<String> {
        match self {
            Resp::Simple(s) | Resp::Error(s) => vec![s.clone()],
            Resp::Int(i) => vec![i.to_string()],
            Resp::Bulk(Some(b)) => vec![String::from_utf8_lossy(b).into_owned()],
            Resp::Bulk(None) | Resp::Array(None) => vec!["(nil)".into()],
            Resp::Array(Some(items)) => items.iter().flat_map(Resp::flat).collect(),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Resp::Int(i) => Some(*i),
            Resp::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }
}

fn read_line(r: &mut impl std::io::BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_resp(r: &mut impl std::io::BufRead) -> std::io::Result<Resp> {
    let line = read_line(r)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad RESP");
    let (tag, rest) = line.split_at(1.min(line.len()));
    Ok(match tag {
        "+" => Resp::Simple(rest.to_string()),
        "-" => Resp::Error(rest.to_string()),
        ":" => Resp::Int(rest.parse().map_err(|_| bad())?),
        "$" => {
            let n: i64 = rest.parse().map_err(|_| bad())?;
            if n < 0 {
                Resp::Bulk(None)
            } else {
                let mut buf = vec![0u8; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Resp::Bulk(Some(buf))
            }
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| bad())?;
            if n < 0 {
                Resp::Array(None)
            } else {
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(read_resp(r)?);
                }
                Resp::Array(Some(items))
            }
        }
        _ => return Err(bad()),
    })
}

fn encode(args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
    }
    req
}

fn request(port: u16, password: Option<&str>, args: &[&str]) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = std::io::BufReader::new(s.try_clone()?);
    if let Some(pw) = password {
        s.write_all(encode(&["AUTH", pw]).as_bytes())?;
        read_resp(&mut reader)?;
    }
    s.write_all(encode(args).as_bytes())?;
    read_resp(&mut reader)
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
