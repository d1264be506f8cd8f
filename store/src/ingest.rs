//! Ingest: one or more requests' batches appended to every feature's window, the row
//! counter, the events stream and, at evaluation boundaries, one job per feature, in one
//! atomic step.

use crate::{Store, StoreError};
use drift_core::MonitorConfig;
use std::time::Instant;

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
        self.ingest_batches_by(cfg, batches, Instant::now() + self.op_timeout)
            .await
    }

    /// [`Store::ingest_batches`] with the deadline `deadline`: past it the caller gets
    /// `Unavailable`, and Redis refuses to run the call (so it writes nothing) if it only
    /// gets to it afterwards, as when the call waited in the socket of a frozen Redis. The
    /// deadline travels on Redis's clock (its offset from ours is learned from `TIME`), so
    /// the hosts' clocks need not agree. A caller told `Unavailable` at the deadline can
    /// therefore count the rows as not stored, except when Redis ran the call just before
    /// the deadline and its answer was still on the way, or Redis went down after running
    /// it.
    pub async fn ingest_batches_by(
        &self,
        cfg: &MonitorConfig,
        batches: &[&[Vec<f64>]],
        deadline: Instant,
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
            k.blocks(m),
        ];
        Store::keys_of(&mut inv, monitor.into_iter().chain(per_feature));
        inv.arg(&cfg.version)
            .arg(total)
            .arg(self.caps.events)
            .arg(self.caps.jobs)
            .arg(self.caps.events_bytes)
            .arg(self.clock.redis_ms(deadline))
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
        inv.arg(blob).arg(self.ack_replicas);
        let clock = &self.clock;
        let ack_replicas = self.ack_replicas;
        let seq_key = k.seq(m);
        let reply: Vec<i64> = self
            .run_until(deadline, |mut c| async move {
                let reply = inv.invoke_async(&mut c).await.map_err(|e| {
                    if e.code() == Some("EXPIRED") {
                        // Redis's clock, should ours have jumped since it was learned.
                        let now = e.detail().and_then(|d| d.split_whitespace().next());
                        if let Some(now) = now.and_then(|n| n.parse().ok()) {
                            clock.observe(now);
                        }
                        return StoreError::Unavailable(
                            "the ingest call reached Redis after its deadline; nothing was written"
                                .into(),
                        );
                    }
                    match StoreError::from(e) {
                        StoreError::UnknownMonitor(_) => StoreError::UnknownMonitor(m.clone()),
                        e => e,
                    }
                })?;
                if ack_replicas > 0 {
                    // On the connection that wrote, so WAIT covers this write; whatever
                    // of the deadline is left is its timeout.
                    let left = deadline.saturating_duration_since(Instant::now());
                    let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
                    let reached = c.wait_replicas(&seq_key, ack_replicas, ms).await?;
                    if reached < i64::from(ack_replicas) {
                        return Err(StoreError::NotReplicated {
                            reached: u64::try_from(reached).unwrap_or(0),
                            needed: u64::from(ack_replicas),
                        });
                    }
                }
                Ok(reply)
            })
            .await?;
        let (jobs, owner, seqs) = match reply.as_slice() {
            [now, jobs, owner, seqs @ ..] if seqs.len() == rows.len() => {
                clock.observe(*now);
                (*jobs, *owner, seqs)
            }
            _ => {
                return Err(StoreError::Protocol(format!(
                    "ingest: {} values for {} batches",
                    reply.len(),
                    rows.len()
                )))
            }
        };
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(seqs
            .iter()
            .enumerate()
            .map(|(j, &seq)| Ingested {
                seq: count(seq),
                jobs: if usize::try_from(owner) == Ok(j + 1) {
                    count(jobs)
                } else {
                    0
                },
            })
            .collect())
    }
}
