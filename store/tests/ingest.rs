//! Ingest calls on a real Redis, and the connection pool's checkout policy (no PING per
//! request, failed connections never reused).

use drift_core::{Correction, Dataset, MonitorConfig, MonitorSpec, Params};
use drift_store::{Caps, RedisArgs, Store, StoreError};
use drift_testkit::RedisServer;
use std::time::Duration;

const CSV3: &str = "a,b,c\n1,2,3\n2,3,4\n3,4,5\n";

fn spec(name: &str, csv: &str, window: usize, stride: usize) -> MonitorSpec {
    let ds = Dataset::from_csv(csv.as_bytes(), &[]).unwrap();
    let params = Params {
        window,
        stride,
        correction: Correction::Bonferroni,
        ..Params::default()
    };
    MonitorSpec::new(name, &ds, params, 100).unwrap()
}

fn store_with(redis: &RedisServer, caps: Caps) -> Store {
    RedisArgs::new(&redis.url(), "x").connect(4, caps).unwrap()
}

async fn registered(window: usize, stride: usize) -> (RedisServer, Store, MonitorConfig) {
    let redis = RedisServer::start();
    let store = store_with(&redis, Caps::DEFAULT);
    let s = spec("m", CSV3, window, stride);
    store.register(&s).await.unwrap();
    (redis, store, s.config)
}

/// `n` rows starting at row `from` (numbered from 1): feature f of row r holds r*10+f.
fn rows(from: u64, n: u64) -> Vec<Vec<f64>> {
    (0..3)
        .map(|f| (from..from + n).map(|r| (r * 10 + f) as f64).collect())
        .collect()
}

/// An inspecting store whose own connection is open before the counters are reset.
async fn inspector(redis: &RedisServer) -> Store {
    let s = redis.store("x");
    s.ping().await.unwrap();
    s
}

async fn calls(store: &Store, name: &str) -> u64 {
    store
        .command_calls()
        .await
        .unwrap()
        .get(name)
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_checkout_sends_no_command_of_its_own() {
    let (redis, store, cfg) = registered(10, 5).await;
    let inspect = inspector(&redis).await;
    store.ingest(&cfg, &rows(1, 1)).await.unwrap();
    inspect.reset_command_stats().await.unwrap();
    for i in 0..50 {
        store.ingest(&cfg, &rows(2 + i, 1)).await.unwrap();
    }
    let stats = inspect.command_calls().await.unwrap();
    let get = |n: &str| stats.get(n).copied().unwrap_or(0);
    assert_eq!(get("evalsha"), 50, "{stats:?}");
    assert_eq!((get("ping"), get("unwatch")), (0, 0), "{stats:?}");
}

#[tokio::test]
async fn an_idle_connection_is_checked_before_it_is_reused() {
    let redis = RedisServer::start();
    let mut opts = RedisArgs::new(&redis.url(), "x").options(2);
    opts.idle_ping = Duration::from_secs(1);
    let store = Store::new(&opts, drift_store::Keys::new("x"), Caps::DEFAULT).unwrap();
    let s = spec("m", CSV3, 10, 5);
    store.register(&s).await.unwrap();
    let inspect = inspector(&redis).await;
    inspect.reset_command_stats().await.unwrap();
    store.ingest(&s.config, &rows(1, 1)).await.unwrap();
    // (0 unless this machine took a second since the registration.)
    let pings = calls(&inspect, "ping").await;
    store.ingest(&s.config, &rows(2, 1)).await.unwrap();
    assert_eq!(calls(&inspect, "ping").await, pings, "used moments ago");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    store.ingest(&s.config, &rows(3, 1)).await.unwrap();
    assert_eq!(
        calls(&inspect, "ping").await,
        pings + 1,
        "idle: checked once"
    );
    store.ingest(&s.config, &rows(4, 1)).await.unwrap();
    assert_eq!(calls(&inspect, "ping").await, pings + 1);
}

#[tokio::test]
async fn a_connection_that_failed_is_replaced_and_the_others_are_checked() {
    let (redis, store, cfg) = registered(10, 5).await;
    // Two pooled connections in use at once, then idle in the pool.
    let (a, b) = (rows(1, 1), rows(2, 1));
    let (x, y) = tokio::join!(store.ingest(&cfg, &a), store.ingest(&cfg, &b));
    x.unwrap();
    y.unwrap();
    let inspect = inspector(&redis).await;
    inspect.reset_command_stats().await.unwrap();
    // Every connection of `store` is closed under it.
    assert!(inspect.kill_clients().await.unwrap() >= 1);
    let mut failures = 0;
    for i in 0..5 {
        match store.ingest(&cfg, &rows(3 + i, 1)).await {
            Ok(_) => {}
            Err(StoreError::Unavailable(_)) => failures += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // The first checkout finds its socket closed (nothing told the pool); the failure
    // marks that connection broken and makes any other one PING before its reuse, which
    // fails too, so a fresh connection serves the next call: one failed request in all.
    assert_eq!(failures, 1);
    assert!(inspect.connections_received().await.unwrap() >= 1);
    assert_eq!(store.rows("m").await.unwrap(), 2 + 4);
}

#[tokio::test]
async fn a_connection_that_timed_out_is_not_reused_after_redis_resumes() {
    let redis = RedisServer::start();
    let mut opts = RedisArgs::new(&redis.url(), "x").options(2);
    opts.op_timeout = Duration::from_millis(300);
    let store = Store::new(&opts, drift_store::Keys::new("x"), Caps::DEFAULT).unwrap();
    let s = spec("m", CSV3, 10, 5);
    store.register(&s).await.unwrap();
    let cfg = &s.config;
    store.ingest(cfg, &rows(1, 1)).await.unwrap();
    let inspect = inspector(&redis).await;
    inspect.reset_command_stats().await.unwrap();
    redis.pause();
    let err = store.ingest(cfg, &rows(2, 1)).await;
    assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    redis.resume();
    // The paused call's script still runs once Redis resumes: its row may count.
    store.ingest(cfg, &rows(3, 1)).await.unwrap();
    assert!(
        inspect.connections_received().await.unwrap() >= 1,
        "the timed-out connection was handed out again"
    );
    let n = store.rows("m").await.unwrap();
    assert!((2..=3).contains(&n), "{n}");
}
