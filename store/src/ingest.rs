//! Ingest: a batch appended to every feature's window, the row counter, the events stream
//! and, at evaluation boundaries, one job per feature, in one atomic step.

use crate::codec;
use crate::{Store, StoreError};
use drift_core::MonitorConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// Rows ingested so far, this batch included.
    pub seq: u64,
    /// Evaluation jobs enqueued by this batch.
    pub jobs: u64,
}

impl Store {
    /// Appends a batch (`columns[i]` holds feature i's values, in config order) in one
    /// atomic step; see `scripts/ingest.lua`.
    pub async fn ingest(
        &self,
        cfg: &MonitorConfig,
        columns: &[Vec<f64>],
    ) -> Result<Ingested, StoreError> {
        let m = &cfg.name;
        let n = columns.first().map_or(0, Vec::len);
        if columns.len() != cfg.features.len() || n == 0 || columns.iter().any(|c| c.len() != n) {
            return Err(StoreError::Protocol("batch shape does not match".into()));
        }
        let k = &self.keys;
        let mut inv = self.scripts.ingest.prepare_invoke();
        let per_feature = cfg.features.iter().map(|f| k.window(m, f));
        let monitor = [k.config(m), k.seq(m), k.events(m), k.jobs(m), k.stats(m)];
        Store::keys_of(&mut inv, monitor.into_iter().chain(per_feature));
        inv.arg(&cfg.version)
            .arg(n)
            .arg(self.caps.events)
            .arg(self.caps.jobs)
            .arg(self.caps.events_bytes);
        for col in columns {
            for v in col {
                inv.arg(&codec::encode(*v)[..]);
            }
        }
        let (seq, jobs): (u64, u64) = self.invoke(inv).await.map_err(|e| match e {
            StoreError::UnknownMonitor(_) => StoreError::UnknownMonitor(m.clone()),
            e => e,
        })?;
        Ok(Ingested { seq, jobs })
    }
}
