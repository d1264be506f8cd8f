//! A replica's short-lived copy of each monitor's latest results, for answers that carry
//! them with every ingest (`POST /datadrift`). Results change once per evaluation
//! boundary at most, while reading them is one hash per feature: for single-row requests
//! that read was the larger part of the request's Redis and CPU cost.

use drift_core::{MonitorConfig, MonitorStatus};
use drift_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A status read at `at` for one version of a monitor.
struct Entry {
    at: Instant,
    version: String,
    status: Arc<MonitorStatus>,
}

pub struct StatusCache {
    max_age: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl StatusCache {
    /// A cache whose copies are at most `max_age` old (zero: every call reads Redis).
    pub fn new(max_age: Duration) -> Self {
        StatusCache {
            max_age,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The monitor's status as of at most `max_age` ago, for this version of its config.
    pub async fn get(
        &self,
        store: &Store,
        cfg: &MonitorConfig,
    ) -> Result<Arc<MonitorStatus>, StoreError> {
        if !self.max_age.is_zero() {
            if let Ok(entries) = self.entries.lock() {
                if let Some(e) = entries.get(&cfg.name) {
                    if e.version == cfg.version && e.at.elapsed() < self.max_age {
                        return Ok(e.status.clone());
                    }
                }
            }
        }
        let at = Instant::now();
        let status = Arc::new(store.status(cfg).await?);
        if !self.max_age.is_zero() {
            if let Ok(mut entries) = self.entries.lock() {
                entries.insert(
                    cfg.name.clone(),
                    Entry {
                        at,
                        version: cfg.version.clone(),
                        status: status.clone(),
                    },
                );
            }
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drift_core::{Dataset, MonitorSpec, Params};
    use drift_store::{Caps, RedisArgs};
    use drift_testkit::RedisServer;

    #[tokio::test]
    async fn a_copy_is_reused_until_it_is_too_old_or_of_another_version() {
        let redis = RedisServer::start();
        let store = RedisArgs::new(&redis.url(), "c")
            .connect(2, Caps::DEFAULT)
            .unwrap();
        let ds = Dataset::from_csv("a\n1\n2\n3\n".as_bytes(), &[]).unwrap();
        let params = Params {
            window: 2,
            stride: 1,
            correction: drift_core::Correction::Bonferroni,
            ..Params::default()
        };
        let spec = MonitorSpec::new("m", &ds, params, 10).unwrap();
        store.register(&spec).await.unwrap();
        let cfg = spec.config.clone();
        let cache = StatusCache::new(Duration::from_millis(300));
        let first = cache.get(&store, &cfg).await.unwrap();
        store.ingest(&cfg, &[vec![1.0, 2.0, 3.0]]).await.unwrap();
        let again = cache.get(&store, &cfg).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "read again within its age");
        assert_eq!(again.state.rows, 0);
        let mut other = cfg.clone();
        other.version = "other".into();
        assert_eq!(cache.get(&store, &other).await.unwrap().state.rows, 3);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(cache.get(&store, &cfg).await.unwrap().state.rows, 3);
        let fresh = StatusCache::new(Duration::ZERO);
        assert_eq!(fresh.get(&store, &cfg).await.unwrap().state.rows, 3);
    }
}
