//! The Redis scripts on a real Redis: registration, ingest boundaries, windows, and the
//! recording of decisions (stored as decided, conflicts detected for rules over every
//! feature).

use drift_core::alarm::{decide, episode_lookback, starts_episode};
use drift_core::{
    Correction, Dataset, Details, Evaluation, MonitorConfig, MonitorSpec, Params, Signal,
    SignalKind,
};
use drift_store::{
    Caps, Evaluated, Flags, Job, JobRead, Recorded, RedisArgs, Registered, SkipKind, Store, Tally,
    WindowsRead,
};
use drift_testkit::RedisServer;
use std::time::Duration;

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

fn store(redis: &RedisServer) -> Store {
    RedisArgs::new(&redis.url(), "x")
        .connect(4, Caps::DEFAULT)
        .unwrap()
}

/// A fresh Redis and store with monitor `name` (five features a..e) registered.
async fn registered(name: &str, params: Params) -> (RedisServer, Store, MonitorConfig) {
    let redis = RedisServer::start();
    let store = store(&redis);
    let s = spec(name, CSV5, params);
    store.register(&s).await.unwrap();
    (redis, store, s.config)
}

/// Every job enqueued so far, delivered to a test consumer.
async fn read_jobs(store: &Store, m: &str) -> Vec<Job> {
    let mut reader = store.job_reader("test", Duration::from_millis(10));
    reader
        .read(&[m.to_string()], false, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.unwrap())
        .collect()
}

fn job(cfg: &MonitorConfig, feature: usize, seq: u64) -> Job {
    Job {
        monitor: cfg.name.clone(),
        id: "0-1".into(),
        feature,
        seq,
        version: cfg.version.clone(),
    }
}

const LEASE: Duration = Duration::from_secs(5);

/// The windows of `jobs`, read as one batch.
async fn read(store: &Store, cfg: &MonitorConfig, jobs: &[Job]) -> WindowsRead {
    let global = !cfg.params.correction.is_local();
    store
        .read_windows(cfg, jobs, LEASE, global)
        .await
        .unwrap()
        .expect("the monitor is at the config's version")
}

/// The one window read for `job`: (seq it ends at, values newest first).
async fn window(store: &Store, cfg: &MonitorConfig, job: &Job) -> (u64, Vec<f64>) {
    match read(store, cfg, std::slice::from_ref(job))
        .await
        .reads
        .remove(0)
    {
        JobRead::Window { seq, values } => (seq, values),
        other => panic!("not a window: {other:?}"),
    }
}

/// Reads `jobs` as one batch, evaluates each window read as `eval` says, decides and
/// records the batch (a local rule never conflicts).
async fn evaluate(
    store: &Store,
    cfg: &MonitorConfig,
    jobs: &[Job],
    eval: impl Fn(&Job) -> Evaluation,
) -> Tally {
    let r = read(store, cfg, jobs).await;
    let mut evaluated = Vec::new();
    let mut skipped = Vec::new();
    for (job, read) in jobs.iter().zip(r.reads) {
        match read {
            JobRead::Window { seq, .. } => evaluated.push(Evaluated {
                job: job.clone(),
                seq,
                evaluation: eval(job),
            }),
            JobRead::Skip(kind, _) => skipped.push((job.id.clone(), kind)),
            JobRead::Corrupt(why) => panic!("{why}"),
        }
    }
    let flags = Flags::decide(cfg, &evaluated, r.snapshot.as_ref());
    match store
        .record_batch(cfg, 1.0, &skipped, &evaluated, &flags)
        .await
        .unwrap()
    {
        Recorded::Done(t) => t,
        Recorded::Conflict(s) => panic!("conflict at {s:?}"),
    }
}

fn evaluated(n: u64) -> Tally {
    Tally {
        evaluated: n,
        ..Tally::default()
    }
}

#[tokio::test]
async fn registration_is_idempotent_and_versioned() {
    let redis = RedisServer::start();
    let store = store(&redis);
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
    let r = store.references(&c.config, &[0], &c.config.version).await;
    assert_eq!(r.unwrap(), Some(vec![Ok(vec![8.0, 9.0])]));
    let r = store.references(&c.config, &[0], &a.config.version).await;
    assert_eq!(r.unwrap(), None);
}

#[tokio::test]
async fn a_new_feature_list_clears_the_windows_of_the_old_features() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let a = spec("m", "a,b\n1,2\n3,4\n", small(2, 1, Correction::Bonferroni));
    store.register(&a).await.unwrap();
    store
        .ingest(&a.config, &[vec![1.0, 2.0], vec![3.0, 4.0]])
        .await
        .unwrap();
    assert_eq!(store.window_len("m", "b").await.unwrap(), 2);
    let b = spec("m", "a,c\n1,2\n3,4\n", small(2, 1, Correction::Bonferroni));
    assert_eq!(store.register(&b).await.unwrap(), Registered::NewVersion);
    assert_eq!(store.window_len("m", "a").await.unwrap(), 0);
    assert_eq!(store.window_len("m", "b").await.unwrap(), 0);
    assert_eq!(store.rows("m").await.unwrap(), 0);
    let mut old = b.config.clone();
    old.features = vec!["b".into()];
    let r = store.references(&old, &[0], &b.config.version).await;
    assert!(
        matches!(&r.unwrap().unwrap()[..], [Err(_)]),
        "the old feature's reference must be gone"
    );
}

#[tokio::test]
async fn ingest_enqueues_one_round_per_boundary_crossing_and_windows_are_exact() {
    let (_redis, store, cfg) = registered("m", small(5, 2, Correction::Bonferroni)).await;
    let cfg = &cfg;
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
    let jobs = read_jobs(&store, "m").await;
    assert_eq!(jobs.len(), 10);
    assert!(jobs[..5].iter().all(|j| j.seq == 5));
    assert!(jobs[5..].iter().all(|j| j.seq == 9));
    // The window that ended at row 9: rows 5..=9, newest first.
    let (seq, w) = window(&store, cfg, &job(cfg, 2, 9)).await;
    assert_eq!((seq, w), (9, vec![92.0, 82.0, 72.0, 62.0, 52.0]));
    // Boundary 7 was crossed since row 5's, but the list still holds row 5's window.
    let (seq, w) = window(&store, cfg, &job(cfg, 1, 5)).await;
    assert_eq!((seq, w), (5, vec![51.0, 41.0, 31.0, 21.0, 11.0]));
    // One more row (no boundary): the window that ended at 9 is still read exactly, also
    // when Redis lost its scripts meanwhile.
    store.ingest(cfg, &batch(10, 1)).await.unwrap();
    store.flush_scripts().await.unwrap();
    let (seq, w) = window(&store, cfg, &job(cfg, 0, 9)).await;
    assert_eq!((seq, w), (9, vec![90.0, 80.0, 70.0, 60.0, 50.0]));
    // Another job of feature 0 whose window is leased to the first one is dropped unread
    // (the same job delivered again is not: it may be a takeover).
    let mut other = job(cfg, 0, 9);
    other.id = "0-2".into();
    let r = read(&store, cfg, &[other, job(cfg, 0, 9)]).await.reads;
    assert_eq!(r[0], JobRead::Skip(SkipKind::Superseded, "leased".into()));
    assert!(matches!(r[1], JobRead::Window { seq: 9, .. }), "{:?}", r[1]);
    let mut moved = cfg.clone();
    moved.version = "other-version".into();
    let r = store
        .read_windows(&moved, &[job(cfg, 0, 9)], LEASE, false)
        .await;
    assert_eq!(r.unwrap(), None, "a read at another version reads nothing");
    // Windows hold window + stride rows and less than one block (64 rows) more.
    let len = store.window_len("m", "a").await.unwrap();
    assert!((7..7 + 64).contains(&len), "{len}");
}

/// Once the lists no longer hold a job's own window (the workers are behind), the job
/// reads the newest window instead.
#[tokio::test]
async fn a_job_whose_window_is_gone_reads_the_newest() {
    let (_redis, store, cfg) = registered("g", small(50, 10, Correction::Bonferroni)).await;
    let cfg = &cfg;
    let rows = |from: u64, n: u64| -> Vec<Vec<f64>> {
        (0..5)
            .map(|f| (from..from + n).map(|r| (r * 10 + f) as f64).collect())
            .collect()
    };
    store.ingest(cfg, &rows(1, 60)).await.unwrap();
    let jobs = read_jobs(&store, "g").await;
    assert!(jobs.iter().all(|j| j.seq == 60));
    // 70 more rows in one call: the list keeps its newest 60 (rows 71..=130).
    store.ingest(cfg, &rows(61, 70)).await.unwrap();
    assert_eq!(store.window_len("g", "a").await.unwrap(), 60);
    let (seq, w) = window(&store, cfg, &jobs[0]).await;
    let want: Vec<f64> = (81..=130).rev().map(|r| (r * 10) as f64).collect();
    assert_eq!((seq, w), (130, want));
}

/// A tiny deterministic generator, so that failures reproduce.
fn next(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

/// An evaluation of p-value `p`, without signals: the feature p-value is `p` itself.
fn evaluation(p: f64) -> Evaluation {
    Evaluation {
        p_value: p,
        statistic: 0.5,
        statistic_location: 1.0,
        statistic_sign: 1,
        window_rows: 2,
        method: "exact",
        p_feature: p,
        threshold: None,
        details: Details::default(),
    }
}

#[tokio::test]
async fn stored_flags_and_counts_are_the_alarms_decision_for_every_correction() {
    let redis = RedisServer::start();
    let store = store(&redis);
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
            let jobs = read_jobs(&store, name).await;
            assert_eq!(jobs.len(), 5);
            for (i, job) in jobs.iter().enumerate() {
                // Mix of tiny, borderline and large p-values, and ties.
                let u = next(&mut rng);
                let p = match round % 4 {
                    0 => u * 0.02,
                    1 => [0.001, 0.01, 0.0125, 0.02, 0.03][i],
                    2 => u,
                    _ => 0.01,
                };
                let e = evaluation(p);
                let rec = evaluate(&store, cfg, std::slice::from_ref(job), |_| e.clone()).await;
                assert_eq!(rec, evaluated(1), "{name}: job {job:?}");
                latest[job.feature] = Some(p);
                let status = store.status(cfg).await.unwrap();
                let want = decide(&latest, cfg.params.alpha, corr);
                assert_eq!(status.flags(), want, "{name} round {round}: p = {latest:?}");
                assert_eq!(status.p_values(), latest);
                let n = want.iter().filter(|d| **d).count() as u64;
                assert_eq!(status.state.features_drifting, n);
                assert_eq!(status.state.dataset_drifted, n >= 3, "half of 5 features");
                flagged_rounds += (n > 0) as u32;
                // A second delivery of the same job changes nothing.
                let again = evaluate(&store, cfg, std::slice::from_ref(job), |_| e.clone()).await;
                assert_eq!(again.duplicate, 1, "{again:?}");
                assert_eq!(store.status(cfg).await.unwrap().p_values(), latest);
            }
        }
        assert!(
            flagged_rounds > 0,
            "{name}: the test never exercised a flag"
        );
    }
}

#[tokio::test]
async fn a_decision_over_every_feature_on_an_old_snapshot_is_refused() {
    let (_redis, store, cfg) = registered("bh", small(2, 1, Correction::Bh)).await;
    let cfg = &cfg;
    store.ingest(cfg, &vec![vec![1.0, 2.0]; 5]).await.unwrap();
    let jobs = read_jobs(&store, "bh").await;
    // Two workers read their snapshots before either records.
    let s0 = read(&store, cfg, &jobs[..1]).await.snapshot.unwrap();
    let s1 = read(&store, cfg, &jobs[1..2]).await.snapshot.unwrap();
    assert_eq!(s0, s1);
    let one = |i: usize, p: f64| Evaluated {
        job: jobs[i].clone(),
        seq: 2,
        evaluation: evaluation(p),
    };
    let e0 = [one(0, 0.001)];
    let rec = store
        .record_batch(cfg, 1.0, &[], &e0, &Flags::decide(cfg, &e0, Some(&s0)))
        .await;
    assert_eq!(rec.unwrap(), Recorded::Done(evaluated(1)));
    let e1 = [one(1, 0.02)];
    let rec = store
        .record_batch(cfg, 1.0, &[], &e1, &Flags::decide(cfg, &e1, Some(&s1)))
        .await;
    let Recorded::Conflict(fresh) = rec.unwrap() else {
        panic!("a decision on an old snapshot was stored");
    };
    assert_eq!(fresh.p_values[0], Some(0.001));
    assert_eq!(
        store.unacknowledged("bh").await.unwrap(),
        4,
        "a refused record must leave its job pending"
    );
    let rec = store
        .record_batch(cfg, 1.0, &[], &e1, &Flags::decide(cfg, &e1, Some(&fresh)))
        .await;
    assert_eq!(rec.unwrap(), Recorded::Done(evaluated(1)));
    // BH over (0.001, 0.02, -, -, -) with m = 5: 0.001 <= 0.01, 0.02 <= 0.02: both flagged.
    let status = store.status(cfg).await.unwrap();
    assert_eq!(status.flags(), vec![true, true, false, false, false]);
}

#[tokio::test]
async fn ert_flags_statistics_at_the_threshold_and_counts_episodes_as_the_alarm_rule_says() {
    let redis = RedisServer::start();
    let store = store(&redis);
    // Two features with 200 reference rows; window 50, stride 10: a lookback of 5 rounds.
    let mut csv = String::from("a,b\n");
    for i in 0..200 {
        csv.push_str(&format!("{i},{}\n", 200 - i));
    }
    let params = Params {
        window: 50,
        stride: 10,
        ert: 10.0,
        ..Params::default()
    };
    let s = spec("ert", &csv, params);
    store.register(&s).await.unwrap();
    let cfg = &s.config;
    let c = cfg.threshold(0).unwrap();
    assert_eq!(cfg.threshold(1), Some(c));
    let lookback = episode_lookback(50, 10);
    // Feature 0's statistic per round: above (A) or below (b) its threshold.
    let pattern = "AAbAbbbbbAAAbbbbbbAbA";
    let (mut last, mut episodes, mut alarm) = (None::<u64>, 0u64, false);
    store.ingest(cfg, &vec![vec![0.0; 40]; 2]).await.unwrap();
    for (round, ch) in pattern.chars().enumerate() {
        store.ingest(cfg, &vec![vec![0.0; 10]; 2]).await.unwrap();
        let jobs = read_jobs(&store, "ert").await;
        assert_eq!(jobs.len(), 2, "round {round}");
        let above = |job: &Job| job.feature == 0 && ch == 'A';
        let eval = |job: &Job| {
            let mut e = evaluation(0.5);
            // Exactly at the threshold counts as an exceedance; just below does not.
            e.statistic = if above(job) { c } else { c * (1.0 - 1e-12) };
            e.threshold = Some(c);
            e.details.signals = vec![Signal {
                signal: SignalKind::Distribution,
                test: "ks".into(),
                statistic: Some(e.statistic),
                threshold: Some(c),
                p_value: Some(0.5),
                fired: false,
            }];
            e
        };
        let batch: Vec<Evaluated> = jobs
            .iter()
            .map(|j| Evaluated {
                job: j.clone(),
                seq: j.seq,
                evaluation: eval(j),
            })
            .collect();
        let want: Vec<bool> = jobs.iter().map(above).collect();
        assert_eq!(
            Flags::decide(cfg, &batch, None),
            Flags::Own(want),
            "round {round}"
        );
        assert_eq!(evaluate(&store, cfg, &jobs, eval).await, evaluated(2));
        let r = round as u64;
        if ch == 'A' {
            let starts = starts_episode(last, r, lookback);
            episodes += starts as u64;
            alarm = starts || alarm;
            last = Some(r);
        } else {
            alarm = false;
        }
        let status = store.status(cfg).await.unwrap();
        let f0 = status.results[0].as_ref().unwrap();
        assert_eq!(f0.drifted, ch == 'A', "round {round}");
        assert_eq!(f0.threshold, Some(c));
        assert_eq!((f0.episodes, f0.alarm), (episodes, alarm), "round {round}");
        assert_eq!(status.state.episodes, episodes);
        let f1 = status.results[1].as_ref().unwrap();
        assert!(!f1.drifted && !f1.alarm && f1.episodes == 0);
    }
    // AA|b A|bbbbb AAA|bbbbbb A|b A: the 2nd A is 2 rounds after the first (same episode);
    // the run starting at round 9 is 6 rounds after round 3 (new); round 18 is 7 after 11 (new);
    // round 20 is 2 after 18 (same, and alarm stays off after round 19's dip).
    assert_eq!(episodes, 3);
    assert!(!alarm);
    let history = store.history(cfg, None, 1000).await.unwrap();
    let starts: Vec<u64> = history
        .iter()
        .filter(|h| h.feature == "a" && h.episode)
        .map(|h| (h.seq - 50) / 10)
        .collect();
    assert_eq!(starts, vec![0, 9, 18]);
    assert!(history.iter().all(|h| h.threshold == Some(c)));
}

#[tokio::test]
async fn an_invalid_stored_config_fails_the_ingest_before_any_write() {
    let (_redis, store, cfg) = registered("m", small(2, 1, Correction::Bonferroni)).await;
    store.ingest(&cfg, &vec![vec![1.0, 2.0]; 5]).await.unwrap();
    for (field, value) in [
        ("window", "100000000000000000"),
        ("stride", "1e17"),
        ("window", "2.5"),
    ] {
        store.tamper_config("m", field, value).await.unwrap();
        let err = store.ingest(&cfg, &vec![vec![1.0; 3]; 5]).await;
        assert!(err.is_err(), "{field}={value} accepted");
        assert_eq!(store.rows("m").await.unwrap(), 2, "{field}={value}");
        for f in ["a", "b", "c", "d", "e"] {
            // Window of 2 plus one stride of 1.
            assert_eq!(
                store.window_len("m", f).await.unwrap(),
                2,
                "{field}={value}: {f}"
            );
        }
        store
            .tamper_config("m", field, if field == "window" { "2" } else { "1" })
            .await
            .unwrap();
    }
}

/// A new reference starts from zero, and coming back to an earlier reference (the same
/// hash) does not bring its results, counters or history back.
#[tokio::test]
async fn a_new_version_starts_from_zero_and_history_never_mixes_registrations() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let a = spec("m", CSV5, small(2, 1, Correction::Bonferroni));
    let b = spec(
        "m",
        "a,b,c,d,e\n9,9,9,9,9\n8,8,8,8,8\n",
        small(2, 1, Correction::Bonferroni),
    );
    let run = |cfg: MonitorConfig| {
        let store = store.clone();
        async move {
            store.ingest(&cfg, &vec![vec![1.0, 2.0]; 5]).await.unwrap();
            let jobs = read_jobs(&store, "m").await;
            let rec = evaluate(&store, &cfg, &jobs, |_| evaluation(0.001)).await;
            assert_eq!(rec, evaluated(5));
        }
    };
    store.register(&a).await.unwrap();
    run(a.config.clone()).await;
    let st = store.status(&a.config).await.unwrap();
    assert_eq!(
        (st.state.rounds, st.state.evaluations, st.state.detections),
        (1, 5, 5)
    );
    assert_eq!(store.history(&a.config, None, 100).await.unwrap().len(), 5);
    for next in [&b, &a] {
        assert_eq!(store.register(next).await.unwrap(), Registered::NewVersion);
        let st = store.status(&next.config).await.unwrap();
        let s = &st.state;
        assert_eq!(
            (
                s.rows,
                s.rounds,
                s.evaluations,
                s.detections,
                s.episodes,
                s.features_drifting
            ),
            (0, 0, 0, 0, 0, 0),
            "{s:?}"
        );
        assert!(st.results.iter().all(Option::is_none));
        assert!(store
            .history(&next.config, None, 100)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.window_len("m", "a").await.unwrap(), 0);
    }
}

#[tokio::test]
async fn the_events_stream_is_capped_by_bytes_and_by_entries() {
    let redis = RedisServer::start();
    // Five features, two rows a batch: 80 bytes of values per batch; room for three.
    let caps = Caps {
        events_bytes: 240,
        events: 5,
        ..Caps::DEFAULT
    };
    let store = RedisArgs::new(&redis.url(), "x").connect(4, caps).unwrap();
    let s = spec("m", CSV5, small(2, 1, Correction::Bonferroni));
    store.register(&s).await.unwrap();
    for _ in 0..10 {
        store
            .ingest(&s.config, &vec![vec![1.0, 2.0]; 5])
            .await
            .unwrap();
    }
    assert_eq!(store.stream_lens("m").await.unwrap().0, 3, "byte budget");
    // Smaller batches: the entry cap binds first.
    for _ in 0..10 {
        store.ingest(&s.config, &vec![vec![1.0]; 5]).await.unwrap();
    }
    assert_eq!(store.stream_lens("m").await.unwrap().0, 5, "entry cap");
    // One batch over the whole budget is still logged, alone.
    store
        .ingest(&s.config, &vec![vec![1.0; 10]; 5])
        .await
        .unwrap();
    assert_eq!(store.stream_lens("m").await.unwrap().0, 1);
    assert_eq!(store.rows("m").await.unwrap(), 40);
}

/// The memory bound the API checks against `maxmemory` holds for a monitor filled to its
/// caps: windows full, every stream at its cap.
#[tokio::test]
async fn a_monitor_filled_to_its_caps_stays_within_its_memory_bound() {
    let redis = RedisServer::start();
    let caps = Caps {
        events: 40,
        events_bytes: 64 * 1024,
        jobs: 300,
        dead: 10,
        history: 200,
    };
    let store = RedisArgs::new(&redis.url(), "x").connect(4, caps).unwrap();
    let mut csv = String::from("a,b,c,d,e\n");
    for i in 0..300 {
        let x = i as f64 * 0.37;
        csv.push_str(&format!(
            "{x},{},{},{},{}\n",
            x * 2.0,
            x.sin(),
            x.cos(),
            x / 3.0
        ));
    }
    let s = spec("m", &csv, small(50, 10, Correction::Bonferroni));
    store.register(&s).await.unwrap();
    let cfg = &s.config;
    let mut i = 0.0f64;
    for _ in 0..120 {
        let col: Vec<f64> = (0..10)
            .map(|_| {
                i += 1.0;
                (i * 0.618).fract()
            })
            .collect();
        store.ingest(cfg, &vec![col; 5]).await.unwrap();
        let jobs = read_jobs(&store, "m").await;
        evaluate(&store, cfg, &jobs, |_| evaluation(0.5)).await;
    }
    let (events, _, _) = store.stream_lens("m").await.unwrap();
    assert_eq!(events, 40, "the events stream is at its cap");
    let used = store.memory_of("m").await.unwrap();
    let bound = store.memory_bound(cfg);
    assert!(
        used > 0 && used <= bound,
        "{used} bytes used, bound {bound}"
    );
}

#[tokio::test]
async fn a_limit_of_zero_monitors_admits_none_and_no_limit_admits_any() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let a = spec("a", CSV5, small(2, 1, Correction::Bonferroni));
    let err = store.register_within(&a, Some(0)).await.unwrap_err();
    assert_eq!(err, drift_store::StoreError::TooManyMonitors(0));
    assert!(store.monitors().await.unwrap().is_empty());
    let (outcome, created) = store.register_within(&a, None).await.unwrap();
    assert_eq!((outcome, created), (Registered::NewVersion, true));
    // Already registered: replacing it is allowed at the limit.
    let (outcome, created) = store.register_within(&a, Some(1)).await.unwrap();
    assert_eq!((outcome, created), (Registered::Unchanged, false));
}

/// One round trip records a whole batch: evaluations (with a compare-and-set on seq),
/// skipped jobs acknowledged and counted, and a second delivery of the batch changes
/// nothing; under a rule over every feature the batch is decided together.
#[tokio::test]
async fn a_batch_is_recorded_once_with_every_job_counted() {
    for corr in [Correction::Bonferroni, Correction::Bh] {
        let (_redis, store, cfg) = registered("m", small(2, 1, corr)).await;
        let cfg = &cfg;
        store.ingest(cfg, &vec![vec![1.0, 2.0]; 5]).await.unwrap();
        store.ingest(cfg, &vec![vec![3.0]; 5]).await.unwrap();
        let jobs = read_jobs(&store, "m").await;
        assert_eq!(jobs.len(), 10, "two rounds");
        let (old, new) = jobs.split_at(5);
        // Round 1's jobs are superseded by round 2's: acknowledged unread.
        let skipped: Vec<(String, SkipKind)> = old
            .iter()
            .map(|j| (j.id.clone(), SkipKind::Superseded))
            .collect();
        let r = read(&store, cfg, new).await;
        let ps = [0.001, 0.009, 0.02, 0.5, 0.9];
        let batch: Vec<Evaluated> = new
            .iter()
            .zip(&r.reads)
            .map(|(j, read)| {
                let JobRead::Window { seq, .. } = read else {
                    panic!("{read:?}");
                };
                Evaluated {
                    job: j.clone(),
                    seq: *seq,
                    evaluation: evaluation(ps[j.feature]),
                }
            })
            .collect();
        let flags = Flags::decide(cfg, &batch, r.snapshot.as_ref());
        let rec = store.record_batch(cfg, 1.0, &skipped, &batch, &flags).await;
        let want = Tally {
            evaluated: 5,
            superseded: 5,
            ..Tally::default()
        };
        assert_eq!(rec.unwrap(), Recorded::Done(want), "{corr:?}");
        let st = store.status(cfg).await.unwrap();
        let latest: Vec<Option<f64>> = ps.iter().map(|p| Some(*p)).collect();
        assert_eq!(st.p_values(), latest);
        assert_eq!(
            st.flags(),
            decide(&latest, cfg.params.alpha, corr),
            "{corr:?}"
        );
        let s = &st.state;
        assert_eq!(
            (s.rounds, s.evaluations, s.stale, s.superseded),
            (2, 5, 5, 5)
        );
        assert!(st.results.iter().all(|r| r.as_ref().unwrap().seq == 3));
        assert_eq!(store.history(cfg, None, 100).await.unwrap().len(), 5);
        // Delivered again: every job was acknowledged already.
        let snap = read(&store, cfg, &[]).await.snapshot;
        let flags = Flags::decide(cfg, &batch, snap.as_ref());
        let again = store.record_batch(cfg, 1.0, &skipped, &batch, &flags).await;
        let dup = Tally {
            duplicate: 10,
            ..Tally::default()
        };
        assert_eq!(again.unwrap(), Recorded::Done(dup), "{corr:?}");
        assert_eq!(store.status(cfg).await.unwrap().state.evaluations, 5);
        assert_eq!(store.unacknowledged("m").await.unwrap(), 0);
        // An evaluation of an older window than the stored one is never stored.
        store.ingest(cfg, &vec![vec![4.0]; 5]).await.unwrap();
        let late = read_jobs(&store, "m").await;
        let stale = [Evaluated {
            job: late[0].clone(),
            seq: 2,
            evaluation: evaluation(0.7),
        }];
        let snap = read(&store, cfg, &[]).await.snapshot;
        let flags = Flags::decide(cfg, &stale, snap.as_ref());
        let rec = store.record_batch(cfg, 1.0, &[], &stale, &flags).await;
        assert_eq!(
            rec.unwrap(),
            Recorded::Done(Tally {
                superseded: 1,
                ..Tally::default()
            })
        );
        assert_eq!(store.status(cfg).await.unwrap().p_values(), latest);
    }
}
