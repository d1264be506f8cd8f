//! The Redis key schema (see ARCHITECTURE.md).
//!
//! Every key of one monitor carries the hash tag `{monitor}`, so one monitor's multi-key
//! scripts stay on one Redis Cluster slot. The prefix is configurable so that several
//! deployments (or tests) can share one Redis.

/// Consumer group that every worker joins on each monitor's jobs stream.
pub const GROUP: &str = "workers";

#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new("drift")
    }
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The set of registered monitor names.
    pub fn monitors(&self) -> String {
        format!("{}:monitors", self.prefix)
    }

    /// `drift:{m}`: the start of every key of monitor `m`.
    pub fn base(&self, monitor: &str) -> String {
        format!("{}:{{{}}}", self.prefix, monitor)
    }

    /// `drift:{m}:<what>`.
    fn of(&self, m: &str, what: &str) -> String {
        format!("{}:{what}", self.base(m))
    }

    pub fn config(&self, m: &str) -> String {
        self.of(m, "config")
    }
    /// Rows ingested so far; also the sequence number of the newest row.
    pub fn seq(&self, m: &str) -> String {
        self.of(m, "seq")
    }
    pub fn events(&self, m: &str) -> String {
        self.of(m, "events")
    }
    pub fn jobs(&self, m: &str) -> String {
        self.of(m, "jobs")
    }
    pub fn dead(&self, m: &str) -> String {
        self.of(m, "dead")
    }
    /// Global counters of the monitor (rounds, evaluations, stale, ...).
    pub fn stats(&self, m: &str) -> String {
        self.of(m, "stats")
    }
    /// Monitor-level decision: features drifting, share, last detection, revision.
    pub fn state(&self, m: &str) -> String {
        self.of(m, "state")
    }
    /// Every evaluation recorded, oldest first (capped): the drift history.
    pub fn history(&self, m: &str) -> String {
        self.of(m, "history")
    }
    pub fn window(&self, m: &str, feature: &str) -> String {
        self.of(m, &format!("win:{feature}"))
    }
    pub fn result(&self, m: &str, feature: &str) -> String {
        self.of(m, &format!("res:{feature}"))
    }
    pub fn reference(&self, m: &str, feature: &str) -> String {
        self.of(m, &format!("ref:{feature}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_architecture() {
        let k = Keys::default();
        assert_eq!(k.window("m", "f"), "drift:{m}:win:f");
        assert_eq!(k.seq("m"), "drift:{m}:seq");
        assert_eq!(k.jobs("m"), "drift:{m}:jobs");
        assert_eq!(k.monitors(), "drift:monitors");
    }
}
