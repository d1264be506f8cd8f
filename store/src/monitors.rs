//! The monitor registry: registering (idempotent, versioned), reading configs, listing,
//! resetting and deleting.

use crate::codec;
use crate::keys::GROUP;
use crate::{Store, StoreError};
use deadpool_redis::redis;
use drift_core::{MonitorConfig, MonitorSpec};

/// Outcome of [`Store::register`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    Unchanged,
    ParamsUpdated,
    NewVersion,
}

impl Store {
    /// Registers a monitor (see `scripts/register.lua`) and makes sure its consumer group
    /// exists before any job can be enqueued. The keys of the features it replaces are
    /// read first; a concurrent registration makes the script refuse (STALECONFIG), and it
    /// is retried a few times before the caller is told the config changed.
    pub async fn register(&self, spec: &MonitorSpec) -> Result<Registered, StoreError> {
        Ok(self.register_within(spec, None).await?.0)
    }

    /// [`Store::register`], refusing a new monitor when `max_monitors` are registered
    /// already (atomically: concurrent registrations cannot overshoot the limit). Also
    /// says whether the monitor was created.
    ///
    /// Three steps, each within one slot, so that a cluster runs them as one Redis does:
    /// the monitor joins the set of monitors (`enlist.lua`, where the limit is checked),
    /// its keys are written (`register.lua`), and a new monitor or version is announced to
    /// the workers (`announce.lua`). A failed second step takes a monitor it added out of
    /// the set again; readers skip a listed monitor without a config.
    pub async fn register_within(
        &self,
        spec: &MonitorSpec,
        max_monitors: Option<usize>,
    ) -> Result<(Registered, bool), StoreError> {
        let m = &spec.config.name;
        let max = max_monitors.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut inv = self.scripts.enlist.prepare_invoke();
        inv.key(self.keys.monitors()).arg(m).arg(max);
        let created = self.invoke::<i64>(inv).await? == 1;
        let outcome = match self.register_keys(spec).await {
            Ok(outcome) => outcome,
            Err(e) => {
                if created {
                    let mut cmd = redis::cmd("SREM");
                    cmd.arg(self.keys.monitors()).arg(m);
                    if let Err(undo) = self.query::<i64>(cmd).await {
                        tracing::warn!(monitor = %m, error = %undo, "a failed registration stays listed without a config");
                    }
                }
                return Err(e);
            }
        };
        if created || outcome == Registered::NewVersion {
            // Only a wake-up call: workers also find new monitors on their next refresh.
            let mut inv = self.scripts.announce.prepare_invoke();
            inv.key(self.keys.registry())
                .arg(m)
                .arg(&spec.config.version)
                .arg(GROUP);
            if let Err(e) = self.invoke::<String>(inv).await {
                tracing::warn!(monitor = %m, error = %e, "cannot announce the monitor to the workers");
            }
        }
        Ok((outcome, created))
    }

    /// The monitor's keys, over a registration of whatever features the config has now
    /// (retried a few times when a concurrent registration changed them).
    async fn register_keys(&self, spec: &MonitorSpec) -> Result<Registered, StoreError> {
        let mut attempts = 0;
        loop {
            let mut cmd = redis::cmd("HGET");
            cmd.arg(self.keys.config(&spec.config.name)).arg("features");
            let old: Option<String> = self.query(cmd).await?;
            match self.register_over(spec, old.as_deref().unwrap_or("")).await {
                Err(StoreError::StaleConfig) if attempts < 4 => attempts += 1,
                other => return other,
            }
        }
    }

    async fn register_over(
        &self,
        spec: &MonitorSpec,
        old_features: &str,
    ) -> Result<Registered, StoreError> {
        let cfg = &spec.config;
        let m = &cfg.name;
        let k = &self.keys;
        let json = serde_json::to_string(cfg).map_err(|e| StoreError::Protocol(e.to_string()))?;
        let mut inv = self.scripts.register.prepare_invoke();
        inv.key(k.config(m))
            .key(k.jobs(m))
            .key(k.state(m))
            .key(k.seq(m))
            .key(k.stats(m))
            .key(k.history(m))
            .key(k.events(m))
            .key(k.event_sizes(m))
            .key(k.blocks(m));
        for f in &cfg.features {
            inv.key(k.window(m, f))
                .key(k.result(m, f))
                .key(k.reference(m, f));
        }
        for f in old_features.split('\n').filter(|f| !f.is_empty()) {
            inv.key(k.window(m, f))
                .key(k.result(m, f))
                .key(k.reference(m, f));
        }
        inv.arg(&cfg.version)
            .arg(json)
            .arg(cfg.params.window)
            .arg(cfg.params.stride)
            .arg(cfg.features.len())
            .arg(GROUP)
            .arg(cfg.features.join("\n"))
            .arg(old_features);
        for col in &spec.reference {
            let mut sorted = col.clone();
            sorted.sort_by(f64::total_cmp);
            inv.arg(codec::encode_all(&sorted));
        }
        let code: i64 = self.invoke(inv).await?;
        Ok(match code {
            0 => Registered::Unchanged,
            1 => Registered::ParamsUpdated,
            _ => Registered::NewVersion,
        })
    }

    pub async fn config(&self, monitor: &str) -> Result<Option<MonitorConfig>, StoreError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.keys.config(monitor)).arg("json");
        let json: Option<String> = self.query(cmd).await?;
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| StoreError::Protocol(format!("config of `{monitor}`: {e}")))
        })
        .transpose()
    }

    /// Names of the registered monitors, sorted.
    pub async fn monitors(&self) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.keys.monitors());
        let mut names: Vec<String> = self.query(cmd).await?;
        names.sort();
        Ok(names)
    }

    /// Takes a name that is listed without a config (a registration interrupted between
    /// its first two steps, see [`Store::register_within`]) out of the set of monitors,
    /// with the jobs stream a worker may have created for it; false when it was not
    /// listed.
    pub async fn unlist(&self, monitor: &str) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SREM");
        cmd.arg(self.keys.monitors()).arg(monitor);
        let removed: i64 = self.query(cmd).await?;
        let mut del = redis::cmd("DEL");
        del.arg(self.keys.jobs(monitor))
            .arg(self.keys.dead(monitor));
        let _: i64 = self.query(del).await?;
        Ok(removed == 1)
    }

    /// Clears a monitor's data (windows, counters, results, history, jobs) but keeps its
    /// config and reference; `delete` also removes those and unregisters it. The monitor's
    /// keys go atomically; a delete takes it out of the set of monitors (another slot)
    /// first, so that a delete that fails half-way is completed by its retry (the config
    /// is still there to find).
    pub async fn clear(&self, cfg: &MonitorConfig, delete: bool) -> Result<(), StoreError> {
        let m = &cfg.name;
        let k = &self.keys;
        if delete {
            let mut cmd = redis::cmd("SREM");
            cmd.arg(k.monitors()).arg(m);
            let _: i64 = self.query(cmd).await?;
        }
        let mut inv = self.scripts.clear.prepare_invoke();
        inv.key(k.jobs(m));
        let monitor = [
            k.seq(m),
            k.events(m),
            k.event_sizes(m),
            k.blocks(m),
            k.stats(m),
            k.state(m),
            k.history(m),
        ];
        for key in monitor {
            inv.key(key);
        }
        for f in &cfg.features {
            inv.key(k.window(m, f)).key(k.result(m, f));
        }
        if delete {
            inv.key(k.config(m)).key(k.dead(m));
            for f in &cfg.features {
                inv.key(k.reference(m, f));
            }
        }
        inv.arg(if delete { "delete" } else { "reset" }).arg(GROUP);
        let _: i64 = self.invoke(inv).await?;
        Ok(())
    }
}
