//! The Redis pipeline end to end: API replicas, workers and exporter on a real Redis.

use drift_testkit::rows::*;
use drift_testkit::{spawn_exporter, spawn_worker, Client, RedisServer, Stack};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

const P: &str = "t";

/// A window of 50 rows evaluated every 10: many rounds from few rows.
fn small(c: &mut drift_api::ApiConfig) {
    c.window = 50;
    c.stride = 10;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_drift_then_mean_radius_shift_is_detected_alone() {
    let stack = Stack::builder().prefix(P).apis(2).workers(3).start().await;
    let apis = &stack.apis;
    let mut rng = rng(7);

    // 1. 3000 rows resampled from the reference, alternating between the two APIs.
    for i in 0..60 {
        let (status, body) = post_rows(&apis[i % 2].client(), &rows(&mut rng, 50, None)).await;
        assert_eq!(status, 202, "{body}");
    }
    let view = wait_evaluated(&apis[0].client(), 3000, Duration::from_secs(30)).await;
    assert_eq!(view["rows"], 3000);
    assert_eq!(drifted(&view), Vec::<String>::new(), "false alarm: {view}");
    assert_eq!(view["features_drifting"], 0);
    for (f, r) in view["results"].as_object().unwrap() {
        assert_eq!(r["window_rows"], 500, "{f} evaluated on a partial window");
        assert!(r["p_value"].as_f64().unwrap() > 0.05 / 30.0, "{f}: {r}");
    }

    // 2. 1000 rows with mean_radius shifted by one standard deviation.
    for i in 0..20 {
        let body = rows(&mut rng, 50, Some(("mean_radius", 1.0)));
        let (status, _) = post_rows(&apis[i % 2].client(), &body).await;
        assert_eq!(status, 202);
    }
    let view = wait_evaluated(&apis[1].client(), 4000, Duration::from_secs(30)).await;
    assert_eq!(drifted(&view), vec!["mean_radius".to_string()], "{view}");
    assert_eq!(view["features_drifting"], 1);
    assert!(view["last_detected_at"].as_f64().is_some());
    assert!(view["results"]["mean_radius"]["p_value"].as_f64().unwrap() < 1e-6);
    assert!(view["counters"]["detections"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ingest_evaluates_each_boundary_once_and_loses_none() {
    let stack = Stack::builder()
        .prefix(P)
        .apis(2)
        .workers(3)
        .api_config(small)
        .start()
        .await;
    let (apis, workers) = (&stack.apis, &stack.workers);
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let target = apis[(t % 2) as usize].url();
        tasks.push(tokio::spawn(async move {
            let mut rng = rng(100 + t);
            let mut sent = 0u64;
            for i in 0..25 {
                let n = 1 + (i * 7 + t as usize * 3) % 23;
                let (status, body) =
                    post_rows(&Client::new(&target), &rows(&mut rng, n, None)).await;
                assert_eq!(status, 202, "{body}");
                sent += n as u64;
            }
            sent
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total += 10;
    assert_eq!(final_round(&apis[0].client(), 10).await, total);
    let view = wait_evaluated(&apis[0].client(), total, Duration::from_secs(60)).await;
    // Let the last stale skips be recorded.
    let counters = drift_testkit::eventually(Duration::from_secs(20), || {
        let api = apis[1].url();
        async move {
            let v = monitor(&Client::new(&api)).await;
            let c = v["counters"].clone();
            let rounds = c["rounds"].as_u64()?;
            let done = c["evaluations"].as_u64()? + c["stale"].as_u64()?;
            (done == rounds * 30).then_some(c)
        }
    })
    .await;
    let counters = counters.unwrap_or_else(|| {
        panic!(
            "evaluated + stale never matched rounds * features: {}",
            view["counters"]
        )
    });
    assert_eq!(pending(&stack.redis, P).await, 0);
    assert_eq!(counters["dead_letters"], 0);
    // No boundary evaluated twice for a feature.
    let h = history(&stack.redis, P).await;
    assert_eq!(h.len() as u64, counters["evaluations"].as_u64().unwrap());
    let unique: HashSet<_> = h.iter().cloned().collect();
    assert_eq!(unique.len(), h.len(), "a boundary was evaluated twice");
    // The final boundary was evaluated for every feature.
    let finals = h.iter().filter(|(_, s)| *s == total.to_string()).count();
    assert_eq!(finals, 30);
    let processed: f64 = {
        let mut sum = 0.0;
        for w in workers {
            let text = w.metrics().await;
            for line in text.lines() {
                if line.starts_with("drift_worker_jobs_total{outcome=\"evaluated\"}") {
                    sum += line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
                }
            }
        }
        sum
    };
    assert_eq!(processed as u64, counters["evaluations"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_of_a_consumer_that_died_are_taken_over() {
    let stack = Stack::builder().prefix(P).apis(1).start().await;
    let a = stack.api(0).client();
    let mut rng = rng(3);
    let (status, _) = post_rows(&a, &rows(&mut rng, 500, None)).await;
    assert_eq!(status, 202);
    // A consumer reads every job and dies without acknowledging.
    let mut ghost = stack
        .store()
        .job_reader("ghost", Duration::from_millis(100));
    let got = ghost
        .read(&[MONITOR.to_string()], false, 100)
        .await
        .unwrap();
    assert_eq!(got.len(), 30);
    assert_eq!(pending(&stack.redis, P).await, 30);
    let _w = spawn_worker(&stack.redis.url(), P, |c| c.claim_idle_ms = 300).await;
    let view = wait_evaluated(&a, 500, Duration::from_secs(20)).await;
    assert_eq!(view["counters"]["evaluations"], 30);
    assert!(
        drift_testkit::eventually(Duration::from_secs(5), || async {
            (pending(&stack.redis, P).await == 0).then_some(())
        })
        .await
        .is_some(),
        "jobs left pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_under_load_leaves_nothing_pending() {
    let stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .api_config(small)
        .start()
        .await;
    let (url, a) = (stack.redis.url(), stack.api(0).client());
    let victim_port = drift_testkit::free_port();
    let mut victim = std::process::Command::new(drift_testkit::cargo_bin("drift-worker"))
        .args(["run", "--listen", &format!("127.0.0.1:{victim_port}")])
        .args(["--redis-url", &url, "--key-prefix", P, "--block-ms", "100"])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let _survivor = spawn_worker(&stack.redis.url(), P, |c| c.claim_idle_ms = 300).await;
    let mut rng = rng(11);
    let mut total = 0u64;
    for i in 0..80 {
        let n = 5 + i % 9;
        let (status, _) = post_rows(&a, &rows(&mut rng, n, None)).await;
        assert_eq!(status, 202);
        total += n as u64;
        if i == 40 {
            victim.kill().unwrap(); // SIGKILL
            victim.wait().unwrap();
        }
    }
    let _ = victim.kill();
    let _ = victim.wait();
    total += 10;
    assert_eq!(final_round(&a, 10).await, total);
    wait_evaluated(&a, total, Duration::from_secs(30)).await;
    let settled = drift_testkit::eventually(Duration::from_secs(20), || {
        let (redis, a) = (&stack.redis, a.clone());
        async move {
            let c = monitor(&a).await["counters"].clone();
            let done = c["evaluations"].as_u64()? + c["stale"].as_u64()?;
            (pending(redis, P).await == 0 && done == c["rounds"].as_u64()? * 30).then_some(())
        }
    })
    .await;
    assert!(
        settled.is_some(),
        "jobs left pending after a worker was killed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_gives_503_then_recovers_without_restarting_anything() {
    let mut stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .workers(1)
        .exporter()
        .start()
        .await;
    let a = stack.api(0).client();
    let e = stack.exporter().client();
    let mut rng = rng(5);
    let (status, _) = post_rows(&a, &rows(&mut rng, 500, None)).await;
    assert_eq!(status, 202);
    wait_evaluated(&a, 500, Duration::from_secs(20)).await;

    stack.redis.kill();
    let req = a
        .http()
        .post(a.url(&format!("/v1/monitors/{MONITOR}/rows")))
        .json(&rows(&mut rng, 10, None));
    a.assert_store_unavailable(req, Duration::from_secs(2))
        .await;
    let text = e.metrics().await;
    assert!(text.contains("drift_redis_up 0"), "{text}");
    assert!(!text.contains("drift_feature_p_value"), "{text}");

    // Redis comes back empty: the API registers the monitor again by itself, scripts are
    // reloaded, the worker recreates its group, the exporter reads again.
    stack.redis.restart();
    let mut accepted = 0;
    for _ in 0..6 {
        let (status, body) = post_rows(&a, &rows(&mut rng, 100, None)).await;
        if status == 202 {
            accepted += 100;
        } else {
            assert_eq!(status, 503, "{body}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    while accepted < 600 {
        let (status, body) = post_rows(&a, &rows(&mut rng, 100, None)).await;
        assert_eq!(status, 202, "{body}");
        accepted += 100;
    }
    wait_evaluated(&a, accepted, Duration::from_secs(30)).await;
    let text = e.metrics().await;
    assert!(text.contains("drift_redis_up 1"), "{text}");
    assert!(
        text.contains("drift_feature_p_value{feature=\"mean_radius\",monitor=\"breast_cancer\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exporter_publishes_one_series_per_feature_with_global_counters() {
    let stack = Stack::builder().prefix(P).apis(1).workers(2).start().await;
    let a = stack.api(0).client();
    let mut rng = rng(9);
    for _ in 0..6 {
        post_rows(&a, &rows(&mut rng, 100, Some(("worst_area", 2.0)))).await;
    }
    wait_evaluated(&a, 600, Duration::from_secs(20)).await;
    let e1 = spawn_exporter(&stack.redis.url(), P).await;
    let e2 = spawn_exporter(&stack.redis.url(), P).await;
    let t1 = e1.metrics().await;
    let t2 = e2.metrics().await;
    let series = |t: &str, name: &str| {
        t.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .count()
    };
    for name in [
        "drift_feature_p_value",
        "drift_feature_statistic",
        "drift_feature_drifted",
        "drift_feature_last_evaluated_timestamp_seconds",
        "drift_evaluations_total",
        "drift_detections_total",
    ] {
        assert_eq!(series(&t1, name), 30, "{name}");
    }
    for name in [
        "drift_features_drifting",
        "drift_share",
        "drift_dataset_drifted",
        "drift_last_detected_timestamp_seconds",
        "drift_rows_ingested_total",
        "drift_window_rows",
        "drift_jobs_pending",
        "drift_jobs_dead_letter_total",
    ] {
        assert_eq!(series(&t1, name), 1, "{name}");
    }
    let line = |t: &str, prefix: &str| {
        t.lines()
            .find(|l| l.starts_with(prefix))
            .map(|l| l.to_string())
            .unwrap_or_else(|| panic!("no {prefix} in {t}"))
    };
    assert_eq!(
        line(&t1, "drift_rows_ingested_total{"),
        "drift_rows_ingested_total{monitor=\"breast_cancer\"} 600"
    );
    assert_eq!(
        line(&t1, "drift_feature_drifted{feature=\"worst_area\""),
        "drift_feature_drifted{feature=\"worst_area\",monitor=\"breast_cancer\"} 1"
    );
    assert!(t1.contains("drift_redis_up 1"));
    // Two exporters agree: the state is global, not per process.
    assert_eq!(
        line(&t1, "drift_evaluations_total{feature=\"mean_radius\""),
        line(&t2, "drift_evaluations_total{feature=\"mean_radius\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_and_poison_jobs_go_to_the_dead_letter_stream() {
    let stack = Stack::builder().prefix(P).apis(1).exporter().start().await;
    // Registered (the stack is ready): break one feature's reference, so that its job
    // can never succeed (and is dead-lettered at once, alone).
    let store = stack.store();
    store
        .corrupt_reference(MONITOR, "mean_area", b"not-8-bytes")
        .await
        .unwrap();
    // A job that a dead consumer failed 3 times: the janitor gives up on it.
    let version = store.config(MONITOR).await.unwrap().unwrap().version;
    store
        .append_foreign_job(MONITOR, &[("f", "1"), ("s", "1"), ("v", &version)])
        .await
        .unwrap();
    let stranded = store.strand_next_job(MONITOR, 3).await.unwrap();
    assert!(stranded.is_some());
    // A poison entry that is not a job at all.
    store
        .append_foreign_job(MONITOR, &[("garbage", "1")])
        .await
        .unwrap();
    let a = stack.api(0).client();
    let (s, _) = post_rows(&a, &rows(&mut rng(17), 500, None)).await;
    assert_eq!(s, 202);
    let w = spawn_worker(&stack.redis.url(), P, |c| {
        c.claim_idle_ms = 200;
        c.max_deliveries = 3;
    })
    .await;
    let e = stack.exporter();
    let dead = drift_testkit::eventually(Duration::from_secs(20), || async {
        let n = store.dead_letters(MONITOR).await.ok()?.len();
        (n == 3 && pending(&stack.redis, P).await == 0).then_some(n)
    })
    .await;
    assert!(
        dead.is_some(),
        "dead letters: {:?}",
        store.dead_letters(MONITOR).await
    );
    let entries = store.dead_letters(MONITOR).await.unwrap();
    assert!(
        entries.iter().any(|d| d.reason.contains("not a job")),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|d| d.reason.contains("delivered 3 times")
                && d.deliveries == 3
                && Some(&d.job) == stranded.as_ref()),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|d| d.reason.contains("corrupt reference for mean_area") && d.deliveries == 1),
        "{entries:?}"
    );
    let view = monitor(&a).await;
    assert_eq!(view["counters"]["dead_letters"], 3);
    assert!(view["results"]["mean_area"].is_null());
    assert_eq!(view["results"]["mean_radius"]["seq"], 500);
    let text = e.metrics().await;
    assert!(
        text.contains(&format!(
            "drift_jobs_dead_letter_total{{monitor=\"{MONITOR}\"}} 3"
        )),
        "{text}"
    );
    let wm = w.metrics().await;
    assert!(
        wm.contains("drift_worker_jobs_total{outcome=\"dead_letter\"} 3"),
        "{wm}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_reference_is_picked_up_and_results_are_not_mixed() {
    let stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .workers(1)
        .api_config(|c| c.admin_token = Some(drift_api::config::Secret("tok".into())))
        .start()
        .await;
    let a = stack.api(0);
    let csv = |shift: f64| {
        let mut s = String::from("u\n");
        for i in 0..400 {
            s.push_str(&format!("{}\n", (i as f64 * 0.618).fract() + shift));
        }
        s
    };
    let c = a.client();
    // A PUT of the reference shifted by `shift`, expecting `status`.
    let put = |shift: f64, status: u16| {
        let req = c
            .http()
            .put(c.url("/v1/monitors/m?window=100&stride=100"))
            .bearer_auth("tok")
            .body(csv(shift));
        c.call::<Value>(req, status)
    };
    let rows = |n: usize, from: usize| {
        let data: Vec<[f64; 1]> = (from..from + n)
            .map(|i| [(i as f64 * 0.377).fract()])
            .collect();
        serde_json::json!({"columns": ["u"], "data": data})
    };
    let post = |body: Value| {
        let c = c.clone();
        async move {
            let _: Value = c.post("/v1/monitors/m/rows", &body, 202).await;
        }
    };
    let view = || c.get::<Value>("/v1/monitors/m", 200);
    let v1 = put(0.0, 201).await;
    post(rows(100, 0)).await;
    // The view once feature u's latest result is at row `seq`.
    let at = |seq: u64| {
        drift_testkit::eventually(Duration::from_secs(10), move || async move {
            let v = view().await;
            (v["results"]["u"]["seq"] == seq).then_some(v)
        })
    };
    let first = at(100).await.expect("first evaluation");
    assert_eq!(first["results"]["u"]["drifted"], false, "{first}");
    // The same live data against a reference shifted by 5: a new version, old results gone.
    let v2 = put(5.0, 200).await;
    assert_ne!(v1["monitor"]["version"], v2["monitor"]["version"]);
    let cleared = view().await;
    assert!(cleared["results"]["u"].is_null(), "{cleared}");
    // A new version starts from zero: the row counter too.
    assert_eq!(cleared["rows"], 0, "{cleared}");
    post(rows(100, 100)).await;
    let second = at(100).await.expect("evaluation against the new reference");
    assert_eq!(second["results"]["u"]["drifted"], true, "{second}");
    assert_eq!(second["version"], v2["monitor"]["version"]);
    assert_eq!(second["results"]["u"]["evaluations"], 1);
}

#[test]
fn sigterm_lets_a_worker_finish_and_exit_zero() {
    let redis = RedisServer::start();
    let port = drift_testkit::free_port();
    let mut child = std::process::Command::new(drift_testkit::cargo_bin("drift-worker"))
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--redis-url",
            &redis.url(),
        ])
        .args(["--block-ms", "500"])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "worker did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
}

/// Workers learn of a new monitor from the registry notice its registration writes, not
/// from their periodic refresh (set to a minute here): a monitor fed right after its `PUT`
/// has every boundary evaluated from the first, none skipped as stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_monitor_is_evaluated_from_its_first_boundary() {
    let stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .workers(2)
        .api_config(|c| c.admin_token = Some(drift_api::config::Secret("tok".into())))
        .worker_config(|c| c.refresh_ms = 60_000)
        .start()
        .await;
    let c = stack.api(0).client();
    // Let both workers finish their first listing and block in their read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut csv = String::from("u,v,w\n");
    for i in 0..300 {
        let x = i as f64;
        let row = [
            (x * 0.618).fract(),
            (x * 0.377).fract(),
            (x * 0.271).fract(),
        ];
        csv.push_str(&format!("{},{},{}\n", row[0], row[1], row[2]));
    }
    let req = c
        .http()
        .put(c.url("/v1/monitors/fresh?window=50&stride=10"))
        .bearer_auth("tok")
        .body(csv);
    let _: Value = c.call(req, 201).await;
    let mut from = 0;
    for n in [50, 10, 10, 10, 10, 10] {
        let data: Vec<[f64; 3]> = (from..from + n)
            .map(|i| {
                let x = i as f64 + 0.5;
                [
                    (x * 0.618).fract(),
                    (x * 0.377).fract(),
                    (x * 0.271).fract(),
                ]
            })
            .collect();
        from += n;
        let body = serde_json::json!({"columns": ["u", "v", "w"], "data": data});
        let (status, b) = c
            .send(c.http().post(c.url("/v1/monitors/fresh/rows")).json(&body))
            .await;
        assert_eq!(status, 202, "{b}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = c.get("/v1/monitors/fresh", 200).await;
        let counters = &v["counters"];
        if counters["evaluations"].as_u64().unwrap_or(0) + counters["stale"].as_u64().unwrap_or(0)
            >= 18
        {
            assert_eq!(counters["rounds"], 6, "{v}");
            assert_eq!(counters["evaluations"], 18, "every boundary evaluated: {v}");
            assert_eq!(counters["stale"], 0, "{v}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new monitor's jobs were not all handled: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A worker far behind ingest does not work through the backlog boundary by boundary:
/// it evaluates each feature once, on the newest window, and acknowledges every older job
/// unread (superseded), so the results are current as soon as it catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_behind_evaluates_the_newest_window_of_each_feature_once() {
    let stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .api_config(small)
        .exporter()
        .start()
        .await;
    let a = stack.api(0).client();
    let mut rng = rng(41);
    // No worker yet: 2000 rows in batches of 10 cross 196 boundaries (5880 jobs).
    for _ in 0..200 {
        let (s, _) = post_rows(&a, &rows(&mut rng, 10, None)).await;
        assert_eq!(s, 202);
    }
    let w = spawn_worker(&stack.redis.url(), P, |_| {}).await;
    let view = wait_evaluated(&a, 2000, Duration::from_secs(30)).await;
    let settled = drift_testkit::eventually(Duration::from_secs(20), || async {
        let v = monitor(&a).await;
        let c = &v["counters"];
        let done = c["evaluations"].as_u64()? + c["stale"].as_u64()?;
        (done == 196 * 30 && pending(&stack.redis, P).await == 0).then_some(v)
    })
    .await;
    let Some(v) = settled else {
        panic!("the backlog was not worked off: {}", monitor(&a).await);
    };
    let c = &v["counters"];
    assert_eq!(c["rounds"], 196, "{c}");
    assert_eq!(c["evaluations"], 30, "one evaluation per feature: {c}");
    assert_eq!(c["superseded"], 196 * 30 - 30, "{c}");
    assert_eq!(c["stale"], c["superseded"], "{c}");
    for (f, r) in view["results"].as_object().unwrap() {
        assert_eq!(
            (r["seq"].as_u64(), r["window_rows"].as_u64()),
            (Some(2000), Some(50)),
            "{f}"
        );
    }
    let text = stack.exporter().metrics().await;
    let lag =
        format!("drift_feature_result_lag_rows{{feature=\"mean_radius\",monitor=\"{MONITOR}\"}} 0");
    assert!(text.contains(&lag), "{text}");
    assert!(text.contains("drift_feature_result_age_seconds{"), "{text}");
    assert!(
        text.contains(&format!(
            "drift_jobs_superseded_total{{monitor=\"{MONITOR}\"}} 5850"
        )),
        "{text}"
    );
    let wm = w.metrics().await;
    assert!(
        wm.contains("drift_worker_jobs_total{outcome=\"evaluated\"} 30"),
        "{wm}"
    );
}
