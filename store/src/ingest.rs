//! Ingest: one or more requests' batches appended to every feature's window, the row
//! counter, the events stream and, at evaluation boundaries, one job per feature, in one
//! atomic step.

use crate::{Store, StoreError};
use drift_core::MonitorConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// Rows ingested so far, this batch included (and every batch before it in the call).
    pub seq: u64,
    /// Evaluation jobs enqueued for this batch.
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
        let mut done = self.ingest_batches(cfg, &[columns]).await?;
        done.pop()
            .ok_or_else(|| StoreError::Protocol("ingest: no answer for the batch".into()))
    }

    /// Appends several batches (each as in [`Store::ingest`]), in order, in one script
    /// call: all of them or none. Batch j gets its own seq, the row count after its rows,
    /// so the batches' row ranges are disjoint and contiguous. When the call crosses
    /// evaluation boundaries, one round of jobs (one per feature) is enqueued, at the seq of
    /// the last batch that crossed one, and that batch reports them: the rounds the earlier
    /// batches of the call would have enqueued alone are superseded by it before any worker
    /// could read them (as when one batch crosses several boundaries).
    pub async fn ingest_batches(
        &self,
        cfg: &MonitorConfig,
        batches: &[&[Vec<f64>]],
    ) -> Result<Vec<Ingested>, StoreError> {
        let m = &cfg.name;
        let nf = cfg.features.len();
        let mut rows = Vec::with_capacity(batches.len());
        for columns in batches {
            let n = columns.first().map_or(0, Vec::len);
            if columns.len() != nf || n == 0 || columns.iter().any(|c| c.len() != n) {
                return Err(StoreError::Protocol("batch shape does not match".into()));
            }
            rows.push(n);
        }
        if rows.is_empty() {
            return Err(StoreError::Protocol("no batch to ingest".into()));
        }
        let total: usize = rows.iter().sum();
        let k = &self.keys;
        let mut inv = self.scripts.ingest.prepare_invoke();
        let per_feature = cfg.features.iter().map(|f| k.window(m, f));
        let monitor = [
            k.config(m),
            k.seq(m),
            k.events(m),
            k.jobs(m),
            k.stats(m),
            k.event_sizes(m),
        ];
        Store::keys_of(&mut inv, monitor.into_iter().chain(per_feature));
        inv.arg(&cfg.version)
            .arg(total)
            .arg(self.caps.events)
            .arg(self.caps.jobs)
            .arg(self.caps.events_bytes)
            .arg(rows.len());
        for n in &rows {
            inv.arg(n);
        }
        // One blob: every value of the call, feature-major (feature 0's value of every row
        // in row order, then feature 1's, ...), the codec's 8 bytes each. The script splits
        // it per feature and logs it on the events stream as it is, so it gets one value
        // argument instead of features x rows.
        let mut blob = Vec::with_capacity(8 * total * nf);
        for f in 0..nf {
            for columns in batches {
                for v in &columns[f] {
                    blob.extend_from_slice(&crate::codec::encode(*v));
                }
            }
        }
        inv.arg(blob);
        let reply: Vec<u64> = self.invoke(inv).await.map_err(|e| match e {
            StoreError::UnknownMonitor(_) => StoreError::UnknownMonitor(m.clone()),
            e => e,
        })?;
        let (jobs, owner, seqs) = match reply.as_slice() {
            [jobs, owner, seqs @ ..] if seqs.len() == rows.len() => (*jobs, *owner, seqs),
            _ => {
                return Err(StoreError::Protocol(format!(
                    "ingest: {} values for {} batches",
                    reply.len(),
                    rows.len()
                )))
            }
        };
        Ok(seqs
            .iter()
            .enumerate()
            .map(|(j, &seq)| Ingested {
                seq,
                jobs: if owner == j as u64 + 1 { jobs } else { 0 },
            })
            .collect())
    }
}
