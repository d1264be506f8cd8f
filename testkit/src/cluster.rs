//! A Redis Cluster owned by one test: 3 masters and 3 replicas from `redis-server` on
//! loopback ports, joined with `redis-cli --cluster create`, able to lose a node for real
//! (SIGKILL) and take it back.

use crate::process::require_binary;
use crate::redis::{RedisOptions, RedisServer};
use drift_store::{Caps, RedisArgs, Store};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    password: Option<String>,
}

/// One line of `CLUSTER NODES`, as far as tests need it.
#[derive(Clone, Debug)]
struct NodeLine {
    port: u16,
    master: bool,
    failed: bool,
    slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Three masters, each with one replica, every slot served, every replica in sync.
    pub fn start() -> Self {
        Self::start_with_password(None)
    }

    /// [`RedisCluster::start`] with `requirepass` (and `masterauth`) on every node.
    pub fn start_with_password(password: Option<&str>) -> Self {
        let password = password.map(str::to_string);
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::start_opts(RedisOptions {
                    cluster: true,
                    password: password.clone(),
                    ..RedisOptions::default()
                })
            })
            .collect();
        let cli = require_binary("redis-cli", "redis-tools");
        let mut create = Command::new(cli);
        if let Some(pw) = &password {
            create.args(["-a", pw, "--no-auth-warning"]);
        }
        let out = create
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("redis-cli --cluster create: {e}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes, password };
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// The seed URLs, comma-separated, as `--redis-url` takes them with `--redis-cluster`.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&self, i: usize) -> &RedisServer {
        &self.nodes[i]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A store on the cluster with key prefix `prefix`.
    pub fn store(&self, prefix: &str) -> Store {
        RedisArgs::cluster(&self.seeds(), prefix)
            .connect(4, Caps::DEFAULT)
            .unwrap_or_else(|e| panic!("store on the cluster {}: {e}", self.seeds()))
    }

    fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        let mut cli = Command::new(require_binary("redis-cli", "redis-tools"));
        cli.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(pw) = &self.password {
            cli.args(["-a", pw, "--no-auth-warning"]);
        }
        let out = cli.args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The slot of `key` (hash tags count, as for every key of a monitor).
    pub fn slot_of(&self, key: &str) -> u16 {
        self.live_ports()
            .iter()
            .find_map(|&p| {
                self.cli(p, &["cluster", "keyslot", key])?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no node answers CLUSTER KEYSLOT {key}"))
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.pid().is_some())
            .map(RedisServer::port)
            .collect()
    }

    /// The cluster's view of its nodes, from the first live node that answers.
    fn node_lines(&self) -> Vec<NodeLine> {
        let Some(text) = self
            .live_ports()
            .iter()
            .find_map(|&p| self.cli(p, &["cluster", "nodes"]))
        else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| {
                let parts: Vec<&str> = l.split_whitespace().collect();
                let addr = parts.get(1)?.split('@').next()?;
                let port = addr.rsplit(':').next()?.parse().ok()?;
                let flags = parts.get(2)?;
                let slots = parts
                    .iter()
                    .skip(8)
                    .filter_map(|r| {
                        let (a, b) = r.split_once('-').unwrap_or((r, r));
                        Some((a.parse().ok()?, b.parse().ok()?))
                    })
                    .collect();
                Some(NodeLine {
                    port,
                    master: flags.contains("master"),
                    failed: flags.contains("fail"),
                    slots,
                })
            })
            .collect()
    }

    /// The index of the node that serves `slot` as master now.
    pub fn master_of_slot(&self, slot: u16) -> Option<usize> {
        let line = self.node_lines().into_iter().find(|n| {
            n.master && !n.failed && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
        })?;
        self.nodes.iter().position(|n| n.port() == line.port)
    }

    /// The index of the node that holds monitor `monitor`'s keys as master now.
    pub fn master_of_monitor(&self, prefix: &str, monitor: &str) -> Option<usize> {
        self.master_of_slot(self.slot_of(&format!("{prefix}:{{{monitor}}}:seq")))
    }

    /// Indexes of the nodes that are masters now (and not failed).
    pub fn masters(&self) -> Vec<usize> {
        self.node_lines()
            .iter()
            .filter(|n| n.master && !n.failed && !n.slots.is_empty())
            .filter_map(|l| self.nodes.iter().position(|n| n.port() == l.port))
            .collect()
    }

    /// Names `{stem}0`, `{stem}1`, ... of `n` monitors whose keys live on `n` different
    /// masters (`n` at most 3).
    pub fn monitors_on_distinct_masters(&self, prefix: &str, stem: &str, n: usize) -> Vec<String> {
        let mut names = Vec::new();
        let mut used = Vec::new();
        for i in 0..1000 {
            let name = format!("{stem}{i}");
            let Some(master) = self.master_of_monitor(prefix, &name) else {
                continue;
            };
            if !used.contains(&master) {
                used.push(master);
                names.push(name);
                if names.len() == n {
                    return names;
                }
            }
        }
        panic!("no {n} monitors on distinct masters among 1000 names");
    }

    /// SIGKILLs node `i`, as a crash of its host would.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again with its cluster config (it rejoins; a master that was
    /// replaced comes back as a replica).
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].restart();
    }

    /// Waits until every slot is served by a live master and every live replica is in
    /// sync with its master (panics after `timeout`).
    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_healthy() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become healthy within {timeout:?}: {:?}",
                self.node_lines()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn is_healthy(&self) -> bool {
        let lines = self.node_lines();
        let live = self.live_ports();
        let served: u32 = lines
            .iter()
            .filter(|n| n.master && !n.failed && live.contains(&n.port))
            .flat_map(|n| n.slots.iter())
            .map(|&(a, b)| u32::from(b) - u32::from(a) + 1)
            .sum();
        if served != 16384 {
            return false;
        }
        live.iter().all(|&p| {
            let Some(info) = self.cli(p, &["info", "replication"]) else {
                return false;
            };
            if info.contains("role:slave") {
                info.contains("master_link_status:up")
            } else {
                self.cli(p, &["cluster", "info"])
                    .is_some_and(|c| c.contains("cluster_state:ok"))
            }
        })
    }
}
