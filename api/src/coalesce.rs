//! Group commit of ingest requests: concurrent requests for the same monitor and config
//! version share one ingest script call.
//!
//! Each monitor has a lane: a queue of requests and at most [`CoalesceLimits::in_flight`]
//! script calls in flight for it. A request that finds a free call slot starts a call
//! (a driver task); otherwise it queues, and the next call of the lane takes every request
//! queued (up to [`CoalesceLimits::max_values`] values and
//! [`CoalesceLimits::max_requests`] requests per call), so there is no timer: a request
//! waits at most for a call in flight to finish. Under light load every request is alone in
//! its call and starts it at once; under load the cost of a call (a round trip, the
//! script's fixed work, one events entry and at most one round of jobs) is shared.
//!
//! What each request gets is what it would get alone:
//! - its rows are never split across calls, and a call applies all its requests or none;
//! - its own seq (the row count after its rows; the requests of a call get disjoint,
//!   contiguous row ranges, in queue order) and its own jobs (see
//!   [`drift_store::Store::ingest_batches`]);
//! - its answer only after Redis acknowledged the call, or the call's error (Redis down,
//!   `STALECONFIG`, `NOMONITOR`, ...), which every request of the call gets and handles as
//!   if it had been alone (`AppState::ingest` reloads the config and resends its own rows);
//! - an answer within the store's operation deadline, counted from its arrival: a request
//!   still queued when it passes leaves the queue (its rows are never written) and gets a
//!   503. A call carries the earliest deadline of its requests, and Redis refuses to run a
//!   call it only gets to after that deadline (see
//!   [`drift_store::Store::ingest_batches_by`]), so a request told 503 at its deadline was
//!   not stored either, unless Redis ran its call just before and the answer was on the
//!   way, or Redis went down after running it.
//!
//! A call runs in its own task, so a client that disconnects never cancels the call that
//! carries other clients' rows.

use drift_core::MonitorConfig;
use drift_store::{Ingested, Store, StoreError};
use prometheus::Histogram;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How much one script call may carry, and how many run at once per monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoalesceLimits {
    /// Script calls in flight per monitor on this replica (at least 1).
    pub in_flight: usize,
    /// Values (rows x features) per call; a request larger than this goes alone.
    pub max_values: usize,
    /// Requests per call.
    pub max_requests: usize,
}

impl Default for CoalesceLimits {
    fn default() -> Self {
        CoalesceLimits {
            in_flight: 2,
            max_values: 64 * 1024,
            max_requests: 256,
        }
    }
}

/// What the coalescer reports on `/metrics`.
#[derive(Clone)]
pub struct CoalesceMetrics {
    /// Requests carried by each script call.
    pub requests_per_call: Histogram,
    /// Rows carried by each script call.
    pub rows_per_call: Histogram,
}

/// The group-commit front of [`Store::ingest_batches`]; cheap to clone.
#[derive(Clone)]
pub struct Coalescer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    limits: CoalesceLimits,
    /// How long a request waits for its call's answer (the store's operation deadline).
    timeout: Duration,
    metrics: CoalesceMetrics,
    lanes: Mutex<HashMap<String, Lane>>,
}

#[derive(Default)]
struct Lane {
    queue: VecDeque<Pending>,
    in_flight: usize,
}

/// One request waiting for its call.
struct Pending {
    cfg: Arc<MonitorConfig>,
    columns: Arc<Vec<Vec<f64>>>,
    values: usize,
    /// When the request gives up waiting (its arrival plus the operation deadline).
    deadline: Instant,
    tx: oneshot::Sender<Result<Ingested, StoreError>>,
}

impl Coalescer {
    pub fn new(store: Store, limits: CoalesceLimits, metrics: CoalesceMetrics) -> Self {
        let timeout = store.op_timeout();
        Coalescer {
            inner: Arc::new(Inner {
                store,
                limits: CoalesceLimits {
                    in_flight: limits.in_flight.max(1),
                    max_values: limits.max_values.max(1),
                    max_requests: limits.max_requests.max(1),
                },
                timeout,
                metrics,
                lanes: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Ingests one request's batch (`columns[i]` holds feature i's values, in `cfg`'s
    /// order) in the next script call of its monitor, and answers with its own seq and
    /// jobs once Redis acknowledged that call.
    pub async fn ingest(
        &self,
        cfg: Arc<MonitorConfig>,
        columns: Arc<Vec<Vec<f64>>>,
    ) -> Result<Ingested, StoreError> {
        let values = columns.iter().map(Vec::len).sum();
        let deadline = Instant::now() + self.inner.timeout;
        let name = cfg.name.clone();
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut lanes = self.inner.lanes();
            let lane = lanes.entry(name.clone()).or_default();
            lane.queue.push_back(Pending {
                cfg,
                columns,
                values,
                deadline,
                tx,
            });
            let start = lane.in_flight < self.inner.limits.in_flight;
            if start {
                lane.in_flight += 1;
            }
            start
        };
        if start {
            tokio::spawn(Arc::clone(&self.inner).drive(name));
        }
        match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "the ingest call was abandoned".into(),
            )),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                self.inner.timeout.as_millis()
            ))),
        }
    }
}

/// Holds one of a lane's call slots; gives it back if the driver ends early (a panic, or
/// the runtime shutting down).
struct Slot<'a> {
    inner: &'a Inner,
    name: &'a str,
    held: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.held {
            let mut lanes = self.inner.lanes();
            if let Some(lane) = lanes.get_mut(self.name) {
                lane.in_flight = lane.in_flight.saturating_sub(1);
            }
        }
    }
}

impl Inner {
    fn lanes(&self) -> MutexGuard<'_, HashMap<String, Lane>> {
        // Nothing panics while holding the lock; if something did, the map is still whole.
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes calls for the lane until its queue is empty, then gives its slot back.
    async fn drive(self: Arc<Self>, name: String) {
        let mut slot = Slot {
            inner: &self,
            name: &name,
            held: true,
        };
        while let Some(group) = self.next_group(&name) {
            self.call(group).await;
        }
        // `next_group` gave the slot back with the lock held, so that no request queued
        // meanwhile is left without a driver.
        slot.held = false;
    }

    /// Takes the next call's requests off the lane, or, when none is queued, gives the
    /// caller's slot back (and drops the lane when nothing else uses it).
    fn next_group(&self, name: &str) -> Option<Vec<Pending>> {
        let mut lanes = self.lanes();
        let lane = lanes.get_mut(name)?;
        let mut group: Vec<Pending> = Vec::new();
        let mut values = 0;
        let now = Instant::now();
        while let Some(next) = lane.queue.front() {
            if next.tx.is_closed() || next.deadline <= now {
                // The request gave up (deadline, or client gone): its rows are not written.
                lane.queue.pop_front();
                continue;
            }
            if let Some(head) = group.first() {
                let fits = group.len() < self.limits.max_requests
                    && values + next.values <= self.limits.max_values
                    && same_config(&head.cfg, &next.cfg);
                if !fits {
                    break;
                }
            }
            values += next.values;
            group.extend(lane.queue.pop_front());
        }
        if group.is_empty() {
            lane.in_flight = lane.in_flight.saturating_sub(1);
            if lane.in_flight == 0 && lane.queue.is_empty() {
                lanes.remove(name);
            }
            return None;
        }
        Some(group)
    }

    /// One script call for `group`; every request gets its own answer or the call's error.
    async fn call(&self, group: Vec<Pending>) {
        let (Some(cfg), Some(deadline)) = (
            group.first().map(|p| Arc::clone(&p.cfg)),
            group.iter().map(|p| p.deadline).min(),
        ) else {
            return;
        };
        let batches: Vec<&[Vec<f64>]> = group.iter().map(|p| p.columns.as_slice()).collect();
        let rows: usize = group
            .iter()
            .map(|p| p.columns.first().map_or(0, Vec::len))
            .sum();
        self.metrics.requests_per_call.observe(group.len() as f64);
        self.metrics.rows_per_call.observe(rows as f64);
        let result = self.store.ingest_batches_by(&cfg, &batches, deadline).await;
        drop(batches);
        match result {
            Ok(done) if done.len() == group.len() => {
                for (p, d) in group.into_iter().zip(done) {
                    let _ = p.tx.send(Ok(d));
                }
            }
            Ok(done) => {
                let e = StoreError::Protocol(format!(
                    "ingest: {} answers for {} requests",
                    done.len(),
                    group.len()
                ));
                fail(group, &e);
            }
            Err(e) => {
                tracing::debug!(monitor = %cfg.name, requests = group.len(), error = %e, "ingest call failed");
                fail(group, &e);
            }
        }
    }
}

fn fail(group: Vec<Pending>, e: &StoreError) {
    for p in group {
        let _ = p.tx.send(Err(e.clone()));
    }
}

/// Whether two requests were validated against the same registration (same version and
/// feature order), so their columns can share a call.
fn same_config(a: &Arc<MonitorConfig>, b: &Arc<MonitorConfig>) -> bool {
    Arc::ptr_eq(a, b) || (a.version == b.version && a.features == b.features)
}
