//! Ingest calls on a real Redis: several requests' batches in one script call, the events
//! stream's byte accounting, and the connection pool's checkout policy (no PING per
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

#[tokio::test]
async fn batches_of_one_call_get_contiguous_seqs_and_their_rows_in_order() {
    let (_redis, store, cfg) = registered(20, 5).await;
    let (a, b, c) = (rows(1, 3), rows(4, 1), rows(5, 7));
    let done = store
        .ingest_batches(&cfg, &[&a[..], &b[..], &c[..]])
        .await
        .unwrap();
    let seqs: Vec<u64> = done.iter().map(|d| d.seq).collect();
    assert_eq!(
        seqs,
        vec![3, 4, 11],
        "each batch's seq is the count after its rows"
    );
    assert!(done.iter().all(|d| d.jobs == 0), "window of 20 not full");
    // Newest first: rows 11 down to 1, exactly once each.
    let want: Vec<f64> = (1..=11).rev().map(|r| (r * 10 + 1) as f64).collect();
    assert_eq!(store.window_values("m", "b").await.unwrap(), want);
    let (events, jobs, _) = store.stream_lens("m").await.unwrap();
    assert_eq!((events, jobs), (1, 0), "one events entry per call");
    assert_eq!(store.rows("m").await.unwrap(), 11);
}

#[tokio::test]
async fn the_events_entry_of_a_call_holds_its_rows_feature_major() {
    let (_redis, store, cfg) = registered(20, 5).await;
    store.ingest(&cfg, &rows(1, 2)).await.unwrap();
    let (a, b) = (rows(3, 1), rows(4, 2));
    store.ingest_batches(&cfg, &[&a[..], &b[..]]).await.unwrap();
    let events = store.events("m").await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].seq, events[0].rows), (2, 2));
    assert_eq!((events[1].seq, events[1].rows), (5, 3));
    let want: Vec<f64> = (0..3)
        .flat_map(|f| (3..=5).map(move |r| (r * 10 + f) as f64))
        .collect();
    assert_eq!(events[1].values, want);
}

#[tokio::test]
async fn a_call_larger_than_one_push_keeps_the_newest_window() {
    // One feature, window + stride of 5,010: a call of more rows keeps only its newest 5,010.
    let redis = RedisServer::start();
    let store = store_with(&redis, Caps::DEFAULT);
    let s = spec("m", "a\n1\n2\n3\n", 5000, 10);
    store.register(&s).await.unwrap();
    let col = |from: u64, n: u64| vec![(from..from + n).map(|r| r as f64).collect::<Vec<f64>>()];
    let (a, b) = (col(1, 6000), col(6001, 3000));
    let done = store
        .ingest_batches(&s.config, &[&a[..], &b[..]])
        .await
        .unwrap();
    assert_eq!((done[0].seq, done[1].seq), (6000, 9000));
    let want: Vec<f64> = (3991..=9000).rev().map(|r| r as f64).collect();
    assert_eq!(store.window_values("m", "a").await.unwrap(), want);
    // Whole blocks are kept: the newest 5,010 rows, and the rest of the oldest block.
    store.ingest(&s.config, &col(9001, 4500)).await.unwrap();
    let got = store.window_values("m", "a").await.unwrap();
    let want: Vec<f64> = (3991..=13500).rev().map(|r| r as f64).collect();
    assert_eq!(got, want);
}

/// What a window list holds: the newest `cap` rows at least, newest first, consecutive,
/// and less than one more block (of at most `cap` rows) beyond them.
fn assert_holds_newest(got: &[f64], seq: u64, cap: u64, value: impl Fn(u64) -> f64) {
    let n = got.len() as u64;
    assert!(
        n >= seq.min(cap) && n <= seq.min(2 * cap + 64),
        "{n} rows for seq {seq}"
    );
    let want: Vec<f64> = (seq + 1 - n..=seq).rev().map(value).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_call_enqueues_one_round_at_its_last_crossing_and_that_batch_reports_it() {
    // Boundaries at 10, 15, 20, ...
    let (_redis, store, cfg) = registered(10, 5).await;
    store.ingest(&cfg, &rows(1, 8)).await.unwrap();
    // 9..=11 crosses 10; 12..=13 crosses nothing; 14..=16 crosses 15; 17 crosses nothing.
    let (a, b, c, d) = (rows(9, 3), rows(12, 2), rows(14, 3), rows(17, 1));
    let done = store
        .ingest_batches(&cfg, &[&a[..], &b[..], &c[..], &d[..]])
        .await
        .unwrap();
    let got: Vec<(u64, u64)> = done.iter().map(|d| (d.seq, d.jobs)).collect();
    assert_eq!(got, vec![(11, 0), (13, 0), (16, 3), (17, 0)]);
    let (_, jobs, _) = store.stream_lens("m").await.unwrap();
    assert_eq!(jobs, 3, "one round, one job per feature");
    let mut reader = store.job_reader("t", Duration::from_millis(10));
    let read = reader.read(&["m".to_string()], false, 100).await.unwrap();
    let jobs: Vec<_> = read.into_iter().map(|j| j.unwrap()).collect();
    assert!(jobs.iter().all(|j| j.seq == 16 && j.version == cfg.version));
    // The job reads the window that ended at its row, although row 17 came after it.
    let lease = Duration::from_secs(5);
    let w = store.read_windows(&cfg, &jobs[..1], lease, false).await;
    let want: Vec<f64> = (7..=16).rev().map(|r| (r * 10) as f64).collect();
    assert_eq!(
        w.unwrap().unwrap().reads,
        vec![drift_store::JobRead::Window {
            seq: 16,
            values: want
        }]
    );
    // Alone, batch d would have crossed nothing either: calls and single batches agree.
    let alone = store.ingest(&cfg, &rows(18, 2)).await.unwrap();
    assert_eq!((alone.seq, alone.jobs), (19, 0));
    let alone = store.ingest(&cfg, &rows(20, 1)).await.unwrap();
    assert_eq!((alone.seq, alone.jobs), (20, 3));
}

#[tokio::test]
async fn a_failing_call_changes_nothing_for_any_of_its_batches() {
    let (_redis, store, cfg) = registered(10, 5).await;
    store.ingest(&cfg, &rows(1, 4)).await.unwrap();
    let before = store.footprint(&cfg).await.unwrap();
    let (a, b) = (rows(5, 2), rows(7, 3));
    // A monitor re-registered since the caller read its config.
    let mut stale = cfg.clone();
    stale.version = "older".into();
    let err = store.ingest_batches(&stale, &[&a[..], &b[..]]).await;
    assert_eq!(err.unwrap_err(), StoreError::StaleConfig);
    // A stored config that does not match the batches (feature count): BADBATCH.
    store.tamper_config("m", "nf", "4").await.unwrap();
    let err = store.ingest_batches(&cfg, &[&a[..], &b[..]]).await;
    assert!(
        matches!(err, Err(StoreError::Protocol(ref e)) if e.contains("BADBATCH")),
        "{err:?}"
    );
    store.tamper_config("m", "nf", "3").await.unwrap();
    // A batch of the wrong shape is refused before anything is sent.
    let short = [vec![1.0], vec![2.0]];
    let err = store.ingest_batches(&cfg, &[&a[..], &short[..]]).await;
    assert!(matches!(err, Err(StoreError::Protocol(_))), "{err:?}");
    assert_eq!(store.footprint(&cfg).await.unwrap(), before);
    let acc = store.events_accounting("m").await.unwrap();
    assert_eq!((acc.total, acc.entries.len()), (4 * 3 * 8, 1));
}

#[tokio::test]
async fn the_events_byte_total_stays_exact_while_trimming_and_after_a_lost_sizes_list() {
    let redis = RedisServer::start();
    // Three features: 24 bytes of values per row. Room for 10 rows, at most 6 entries.
    let caps = Caps {
        events_bytes: 240,
        events: 6,
        ..Caps::DEFAULT
    };
    let store = store_with(&redis, caps);
    let s = spec("m", CSV3, 10, 5);
    store.register(&s).await.unwrap();
    let cfg = &s.config;
    let mut next = 1;
    let check = |acc: drift_store::inspect::EventsAccounting| {
        assert_eq!(acc.total, acc.entries.iter().sum::<u64>(), "{acc:?}");
        assert_eq!(acc.sizes, acc.entries, "{acc:?}");
        assert!(acc.total <= 240 || acc.entries.len() == 1, "{acc:?}");
        assert!(acc.entries.len() <= 6, "{acc:?}");
    };
    for (i, n) in [1u64, 3, 2, 5, 1, 1, 1, 1, 4, 12, 2, 1, 3]
        .into_iter()
        .enumerate()
    {
        if i % 3 == 2 {
            let (a, b) = (rows(next, n), rows(next + n, 1));
            store.ingest_batches(cfg, &[&a[..], &b[..]]).await.unwrap();
            next += n + 1;
        } else {
            store.ingest(cfg, &rows(next, n)).await.unwrap();
            next += n;
        }
        check(store.events_accounting("m").await.unwrap());
        if i == 6 {
            // As a stream written before the sizes list existed: rebuilt at the next call.
            store.forget_event_sizes("m").await.unwrap();
        }
    }
    // A batch above the whole budget is kept alone.
    let big = store.events_accounting("m").await.unwrap();
    assert_eq!(big.entries.len(), 3, "{big:?}");
    store.ingest(cfg, &rows(next, 11)).await.unwrap();
    let acc = store.events_accounting("m").await.unwrap();
    assert_eq!((acc.total, acc.entries.clone()), (264, vec![264]));
    check(acc);
    // Registering a new version clears the stream and its sizes.
    let other = spec("m", "a,b,c\n9,9,9\n8,8,8\n", 10, 5);
    store.register(&other).await.unwrap();
    let acc = store.events_accounting("m").await.unwrap();
    assert_eq!((acc.total, acc.entries.len(), acc.sizes.len()), (0, 0, 0));
    store.ingest(&other.config, &rows(1, 2)).await.unwrap();
    store.clear(&other.config, false).await.unwrap();
    let acc = store.events_accounting("m").await.unwrap();
    assert_eq!((acc.total, acc.entries.len(), acc.sizes.len()), (0, 0, 0));
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
async fn a_call_that_timed_out_on_a_frozen_redis_is_not_run_after_it_resumes() {
    let redis = RedisServer::start();
    let mut opts = RedisArgs::new(&redis.url(), "x").options(2);
    opts.op_timeout = Duration::from_millis(300);
    let store = Store::new(&opts, drift_store::Keys::new("x"), Caps::DEFAULT).unwrap();
    let s = spec("m", CSV3, 10, 5);
    store.register(&s).await.unwrap();
    let cfg = &s.config;
    store.ingest(cfg, &rows(1, 1)).await.unwrap();
    let before = store.footprint(cfg).await.unwrap();
    let inspect = inspector(&redis).await;
    inspect.reset_command_stats().await.unwrap();
    redis.pause();
    // Sent at once (the connection was used moments ago), then no answer in time.
    let err = store.ingest(cfg, &rows(2, 1)).await;
    assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    redis.resume();
    // Redis runs the call it had in its socket, past its deadline: it writes nothing.
    assert_eq!(store.footprint(cfg).await.unwrap(), before);
    let stats = inspect.command_calls().await.unwrap();
    assert_eq!(stats.get("evalsha"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("lpush"), None, "{stats:?}");
    // The timed-out connection is not handed out again.
    store.ingest(cfg, &rows(2, 1)).await.unwrap();
    assert!(
        inspect.connections_received().await.unwrap() >= 1,
        "the timed-out connection was handed out again"
    );
    assert_eq!(store.rows("m").await.unwrap(), 2);
}

#[tokio::test]
async fn a_call_past_its_deadline_writes_nothing() {
    let (_redis, store, cfg) = registered(10, 5).await;
    store.ingest(&cfg, &rows(1, 1)).await.unwrap();
    let before = store.footprint(&cfg).await.unwrap();
    let a = rows(2, 1);
    let past = std::time::Instant::now() - Duration::from_millis(50);
    let err = store.ingest_batches_by(&cfg, &[&a[..]], past).await;
    assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    assert_eq!(store.footprint(&cfg).await.unwrap(), before);
    let soon = std::time::Instant::now() + Duration::from_secs(1);
    let done = store
        .ingest_batches_by(&cfg, &[&a[..]], soon)
        .await
        .unwrap();
    assert_eq!(done[0].seq, 2);
}

/// Windows are lists of blocks of rows (appended to the head block while it is small,
/// whole blocks dropped): whatever the batch sizes, a window list holds the newest
/// window + stride rows and less than one block more, and a job reads exactly the rows
/// that ended at its own row.
#[tokio::test]
async fn windows_hold_the_newest_rows_whatever_the_batch_sizes() {
    let (_redis, store, cfg) = registered(50, 7).await;
    let mut state = 7u64;
    let mut seq = 0u64;
    let lease = Duration::from_secs(5);
    for call in 0..300 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Mostly small batches (single rows included), sometimes one larger than the cap.
        let n = match (state >> 33) % 10 {
            0 => 1,
            1..=6 => 1 + (state >> 40) % 20,
            7 | 8 => 20 + (state >> 40) % 300,
            _ => 1,
        };
        let done = store.ingest(&cfg, &rows(seq + 1, n)).await.unwrap();
        seq += n;
        assert_eq!(done.seq, seq);
        let a = store.window_values("m", "a").await.unwrap();
        assert_holds_newest(&a, seq, 57, |r| (r * 10) as f64);
        let c = store.window_values("m", "c").await.unwrap();
        assert_holds_newest(&c, seq, 57, |r| (r * 10 + 2) as f64);
        if done.jobs > 0 {
            let mut reader = store.job_reader("t", Duration::from_millis(10));
            let jobs: Vec<_> = reader
                .read(&["m".to_string()], false, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|j| j.unwrap())
                .collect();
            let job = jobs.iter().find(|j| j.feature == 0).unwrap().clone();
            let r = store
                .read_windows(&cfg, &[job], lease, false)
                .await
                .unwrap();
            let w: Vec<f64> = (seq - 49..=seq).rev().map(|r| (r * 10) as f64).collect();
            assert_eq!(
                r.unwrap().reads,
                vec![drift_store::JobRead::Window { seq, values: w }],
                "call {call}"
            );
        }
    }
}
