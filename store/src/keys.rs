//! The Redis key schema (see ARCHITECTURE.md).
//!
//! Every key of one monitor carries the hash tag `{monitor}`, so one monitor's multi-key
//! scripts stay on one Redis Cluster slot. The prefix is configurable so that several
//! deployments (or tests) can share one Redis.

/// Consumer group that every worker joins on each monitor's jobs stream.
pub const GROUP: &str = "workers";

/// One method per key of a monitor: `drift:{m}:<what>`.
macro_rules! monitor_keys {
    ($($(#[$doc:meta])* $name:ident => $what:literal,)*) => {
        $($(#[$doc])* pub fn $name(&self, m: &str) -> String {
            self.of(m, $what, None)
        })*
    };
}

/// One method per key of a monitor's feature: `drift:{m}:<what>:<feature>`.
macro_rules! feature_keys {
    ($($(#[$doc:meta])* $name:ident => $what:literal,)*) => {
        $($(#[$doc])* pub fn $name(&self, m: &str, feature: &str) -> String {
            self.of(m, $what, Some(feature))
        })*
    };
}

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

    /// Notices of newly registered monitors and versions, read by the workers in their job
    /// read so that a new monitor's jobs are read from its first boundary on (capped).
    pub fn registry(&self) -> String {
        format!("{}:registry", self.prefix)
    }

    /// `drift:{m}`: the start of every key of monitor `m`.
    pub fn base(&self, monitor: &str) -> String {
        format!("{}:{{{}}}", self.prefix, monitor)
    }

    /// `drift:{m}:<what>[:<feature>]`, built in one allocation: an ingest builds a key
    /// per feature, and formatting them piecewise was a tenth of a single-row request's
    /// instructions (callgrind).
    fn of(&self, m: &str, what: &str, feature: Option<&str>) -> String {
        let mut key = String::with_capacity(
            self.prefix.len() + m.len() + what.len() + feature.map_or(0, |f| f.len() + 1) + 4,
        );
        for part in [self.prefix.as_str(), ":{", m, "}:", what] {
            key.push_str(part);
        }
        if let Some(f) = feature {
            key.push(':');
            key.push_str(f);
        }
        key
    }

    monitor_keys! {
        config => "config",
        /// Rows ingested so far; also the sequence number of the newest row.
        seq => "seq",
        /// One entry per ingest call (capped by entries and by bytes of values).
        events => "events",
        /// The size in bytes of values of each events entry, oldest first: the events
        /// stream is trimmed to its byte budget without reading its entries.
        event_sizes => "evsizes",
        /// Rows of each block of the window lists, newest block first: the layout every
        /// feature's window list shares (see `scripts/ingest.lua`).
        blocks => "blocks",
        jobs => "jobs",
        dead => "dead",
        /// Global counters of the monitor (rounds, evaluations, stale, ...).
        stats => "stats",
        /// Monitor-level decision: features drifting, share, last detection, revision.
        state => "state",
        /// Every evaluation recorded, oldest first (capped): the drift history.
        history => "history",
    }

    feature_keys! {
        /// The feature's rolling window, newest first.
        window => "win",
        /// The feature's latest result and counters.
        result => "res",
        /// The feature's sorted reference.
        reference => "ref",
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
        assert_eq!(k.config("m"), "drift:{m}:config");
        assert_eq!(k.result("m", "f"), "drift:{m}:res:f");
        assert_eq!(k.reference("m", "f"), "drift:{m}:ref:f");
        assert_eq!(k.history("m"), "drift:{m}:history");
        assert_eq!(k.event_sizes("m"), "drift:{m}:evsizes");
        assert_eq!(k.blocks("m"), "drift:{m}:blocks");
    }
}
