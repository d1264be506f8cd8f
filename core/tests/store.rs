//! The Redis scripts on a real Redis: registration, ingest boundaries, windows, and the
//! drift decision (Lua) agreeing with `correction::decide` (Rust).

use deadpool_redis::redis::{self, Value};
use drift_core::correction::{decide, Correction};
use drift_core::keys::{Keys, GROUP};
use drift_core::store::{Evaluation, Recorded, RedisOptions, Registered, Store, WindowRead};
use drift_core::{Dataset, MonitorSpec, Params};
use drift_testkit::RedisServer;

fn spec(name: &str, csv: &str, params: Params) -> MonitorSpec {
    let ds = Dataset::from_csv(csv.as_bytes(), &[]).unwrap();
    MonitorSpec::new(name, &ds, params, 100).unwrap()
}

fn small(window: usize, stride: usize, correction: Correction) -> Params {
    Params {
        window,
        stride,
        correction,
        ..Params::default()
    }
}

const CSV5: &str = "a,b,c,d,e\n1,2,3,4,5\n2,3,4,5,6\n3,4,5,6,7\n";

async fn read_jobs(redis: &RedisServer, keys: &Keys, m: &str) -> Vec<(String, usize, u64)> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let v: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("test")
        .arg("COUNT")
        .arg(1000)
        .arg("STREAMS")
        .arg(keys.jobs(m))
        .arg(">")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = Vec::new();
    let Value::Array(streams) = v else { return out };
    for s in streams {
        let Value::Array(kv) = s else { continue };
        let Value::Array(entries) = &kv[1] else {
            continue;
        };
        for e in entries {
            let Value::Array(parts) = e else { continue };
            let id: String = redis::from_redis_value(parts[0].clone()).unwrap();
            let fields: Vec<String> = redis::from_redis_value(parts[1].clone()).unwrap();
            let f = fields[1].parse().unwrap();
            let s = fields[3].parse().unwrap();
            out.push((id, f, s));
        }
    }
    out
}

#[tokio::test]
async fn registration_is_idempotent_and_versioned() {
    let redis = RedisServer::start();
    let store = Store::new(&RedisOptions::new(&redis.url()), Keys::new("x")).unwrap();
    let a = spec("m", CSV5, small(2, 1, Correction::Bonferroni));
    assert_eq!(store.register(&a).await.unwrap(), Registered::NewVersion);
    assert_eq!(store.register(&a).await.unwrap(), Registered::Unchanged);
    let b = spec("m", CSV5, small(3, 1, Correction::Bonferroni));
    assert_eq!(store.register(&b).await.unwrap(), Registered::ParamsUpdated);
    assert_eq!(store.config("m").await.unwrap().unwrap().params.window, 3);
    let c = spec(
        "m",
        "a,b,c,d,e\n9,9,9,9,9\n8,8,8,8,8\n",
        small(3, 1, Correction::Bonferroni),
    );
    assert_eq!(store.register(&c).await.unwrap(), Registered::NewVersion);
    assert_eq!(store.monitors().await.unwrap(), vec!["m".to_string()]);
    let r = store.reference("m", "a", &c.config.version).await.unwrap();
    assert_eq!(r, Some(vec![8.0, 9.0]));
    assert_eq!(
        store.reference("m", "a", &a.config.version).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn ingest_enqueues_one_round_per_boundary_crossing_and_windows_are_exact() {
    let redis = RedisServer::start();
    let keys = Keys::new("x");
    let store = Store::new(&RedisOptions::new(&redis.url()), keys.clone()).unwrap();
    let s = spec("m", CSV5, small(5, 2, Correction::Bonferroni));
    store.register(&s).await.unwrap();
    let cfg = &s.config;
    let batch = |from: u64, n: u64| -> Vec<Vec<f64>> {
        (0..5)
            .map(|f| (from..from + n).map(|r| (r * 10 + f) as f64).collect())
            .collect()
    };
    // Rows are numbered from 1; feature f of row r holds r*10+f.
    let out = store.ingest(cfg, &batch(1, 4)).await.unwrap();
    assert_eq!((out.seq, out.jobs), (4, 0), "window not full yet");
    let out = store.ingest(cfg, &batch(5, 1)).await.unwrap();
    assert_eq!(
        (out.seq, out.jobs),
        (5, 5),
        "first boundary at the window size"
    );
    let out = store.ingest(cfg, &batch(6, 1)).await.unwrap();
    assert_eq!((out.seq, out.jobs), (6, 0));
    // 7 and 9 are both crossed: one round, for the newest state.
    let out = store.ingest(cfg, &batch(7, 3)).await.unwrap();
    assert_eq!((out.seq, out.jobs), (9, 5));
    let jobs = read_jobs(&redis, &keys, "m").await;
    assert_eq!(jobs.len(), 10);
    assert!(jobs[..5].iter().all(|j| j.2 == 5));
    assert!(jobs[5..].iter().all(|j| j.2 == 9));
    // The window that ended at row 9: rows 5..=9, newest first.
    let w = store.read_window("m", "c", 9, &cfg.version).await.unwrap();
    assert_eq!(w, WindowRead::Window(vec![92.0, 82.0, 72.0, 62.0, 52.0]));
    // Row 5's job is superseded (boundary 7 was crossed since).
    let w = store.read_window("m", "c", 5, &cfg.version).await.unwrap();
    assert_eq!(w, WindowRead::Stale("superseded".into()));
    // One more row (no boundary): the window that ended at 9 is still read exactly.
    store.ingest(cfg, &batch(10, 1)).await.unwrap();
    let w = store.read_window("m", "a", 9, &cfg.version).await.unwrap();
    assert_eq!(w, WindowRead::Window(vec![90.0, 80.0, 70.0, 60.0, 50.0]));
    let w = store
        .read_window("m", "a", 9, "other-version")
        .await
        .unwrap();
    assert_eq!(w, WindowRead::Stale("version".into()));
    // Windows are capped at window + stride.
    let len = redis.cmd(&["LLEN", &keys.window("m", "a")]);
    assert_eq!(len, "7");
}

/// A tiny deterministic generator, so that failures reproduce.
fn next(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

#[tokio::test]
async fn lua_decision_agrees_with_rust_for_every_correction() {
    let redis = RedisServer::start();
    let keys = Keys::new("x");
    let store = Store::new(&RedisOptions::new(&redis.url()), keys.clone()).unwrap();
    let mut rng = 42u64;
    for (name, corr) in [
        ("bonf", Correction::Bonferroni),
        ("bh", Correction::Bh),
        ("none", Correction::None),
    ] {
        let s = spec(name, CSV5, small(2, 1, corr));
        store.register(&s).await.unwrap();
        let cfg = &s.config;
        let mut latest: Vec<Option<f64>> = vec![None; 5];
        let mut flagged_rounds = 0;
        for round in 0..40 {
            let rows: Vec<Vec<f64>> = vec![vec![1.0, 2.0]; 5];
            store.ingest(cfg, &rows).await.unwrap();
            let jobs = read_jobs(&redis, &keys, name).await;
            assert_eq!(jobs.len(), 5);
            for (i, (id, f, seq)) in jobs.iter().enumerate() {
                // Mix of tiny, borderline and large p-values, and ties.
                let u = next(&mut rng);
                let p = match round % 4 {
                    0 => u * 0.02,
                    1 => [0.001, 0.01, 0.0125, 0.02, 0.03][i],
                    2 => u,
                    _ => 0.01,
                };
                let e = Evaluation {
                    p_value: p,
                    statistic: 0.5,
                    statistic_location: 1.0,
                    statistic_sign: 1,
                    window_rows: 2,
                    method: "exact",
                };
                let rec = store
                    .record(cfg, id, *f, *seq, &cfg.version, 1.0, Some(&e))
                    .await
                    .unwrap();
                assert_eq!(rec, Recorded::Evaluated);
                latest[*f] = Some(p);
                let status = store.status(cfg).await.unwrap();
                let want = decide(&latest, cfg.params.alpha, corr);
                let got: Vec<bool> = status
                    .results
                    .iter()
                    .map(|r| r.as_ref().is_some_and(|r| r.drifted))
                    .collect();
                assert_eq!(got, want, "{name} round {round}: p = {latest:?}");
                let n = want.iter().filter(|d| **d).count() as u64;
                assert_eq!(status.state.features_drifting, n);
                flagged_rounds += (n > 0) as u32;
                // A second delivery of the same job changes nothing.
                let again = store
                    .record(cfg, id, *f, *seq, &cfg.version, 1.0, Some(&e))
                    .await
                    .unwrap();
                assert_eq!(again, Recorded::Duplicate);
            }
        }
        assert!(
            flagged_rounds > 0,
            "{name}: the test never exercised a flag"
        );
    }
}
