//! Fault injection under load: workers SIGKILLed at random, Redis restarted (append-only on)
//! and frozen, a backlog larger than the jobs stream. Nothing acknowledged may be lost and
//! no boundary may be evaluated twice.

use drift_testkit::rows::*;
use drift_testkit::{Client, RedisOptions, RedisServer, Stack};
use std::collections::HashSet;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const P: &str = "f";

fn small(c: &mut drift_api::ApiConfig) {
    c.window = 50;
    c.stride = 10;
}

/// One API with a small window, `workers` workers that take over idle jobs after 500 ms,
/// and the exporter.
fn small_stack(workers: usize) -> drift_testkit::StackBuilder {
    Stack::builder()
        .prefix(P)
        .apis(1)
        .api_config(small)
        .workers(workers)
        .worker_config(|c| c.claim_idle_ms = 500)
        .exporter()
}

/// Worker processes, killed when the test ends, even when it fails.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.0 {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

fn worker_process(url: &str) -> Child {
    let port = drift_testkit::free_port();
    Command::new(drift_testkit::cargo_bin("drift-worker"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--redis-url", url, "--key-prefix", P])
        .args([
            "--block-ms",
            "100",
            "--refresh-ms",
            "200",
            "--claim-idle-ms",
            "500",
        ])
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap()
}

/// What a steady load did: rows acknowledged with 202, other answers, and the rows of
/// those other answers (a request whose answer was lost in a Redis restart may still have
/// been applied: these rows may or may not be stored).
struct Load {
    accepted: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    unsure_rows: Arc<AtomicU64>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

/// Steady load from `tasks` clients until `stop`.
fn load(api: String, tasks: u64, stop: Arc<AtomicBool>, pace: Duration) -> Load {
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let unsure_rows = Arc::new(AtomicU64::new(0));
    let handles = (0..tasks)
        .map(|t| {
            let (api, stop, accepted, failed, unsure) = (
                api.clone(),
                stop.clone(),
                accepted.clone(),
                failed.clone(),
                unsure_rows.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let mut rng = rng(1000 + t);
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let n = 1 + (i * 5 + t as usize) % 17;
                    i += 1;
                    let body = rows(&mut rng, n, None);
                    let r = client
                        .post(format!("{api}/v1/monitors/{MONITOR}/rows"))
                        .json(&body)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 202 => {
                            accepted.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            unsure.fetch_add(n as u64, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    tokio::time::sleep(pace).await;
                }
            })
        })
        .collect();
    Load {
        accepted,
        failed,
        unsure_rows,
        handles,
    }
}

/// Waits until every job is accounted for: the final boundary evaluated for every feature,
/// evaluated + stale == rounds * features, nothing pending, no boundary evaluated twice.
async fn assert_settled(redis: &RedisServer, api: &str, rows: u64) -> serde_json::Value {
    let view = wait_evaluated(&Client::new(api), rows, Duration::from_secs(60)).await;
    let settled = drift_testkit::eventually(Duration::from_secs(30), || async move {
        let c = monitor(&Client::new(api)).await["counters"].clone();
        let done = c["evaluations"].as_u64()? + c["stale"].as_u64()?;
        (pending(redis, P).await == 0 && done == c["rounds"].as_u64()? * 30).then_some(c)
    })
    .await;
    let Some(c) = settled else {
        panic!(
            "not settled: pending {} counters {}",
            pending(redis, P).await,
            view["counters"]
        )
    };
    let h = history(redis, P).await;
    println!(
        "faults: settled: rounds {} x 30 features = evaluated {} + stale {}; pending {}",
        c["rounds"],
        c["evaluations"],
        c["stale"],
        pending(redis, P).await
    );
    assert_eq!(h.len() as u64, c["evaluations"].as_u64().unwrap());
    let unique: HashSet<_> = h.iter().collect();
    assert_eq!(unique.len(), h.len(), "a boundary was evaluated twice");
    assert_eq!(c["dead_letters"], 0);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_killed_at_random_lose_nothing_and_repeat_nothing() {
    // Paced so that workers evaluate many boundaries (not only skip superseded ones):
    // that is what exercises "never evaluated twice" while workers die mid-job.
    let stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .api_config(|c| (c.window, c.stride) = (100, 50))
        .start()
        .await;
    let (redis, url, a) = (&stack.redis, stack.redis.url(), stack.api(0));
    let mut workers = Workers((0..3).map(|_| worker_process(&url)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let Load {
        accepted,
        failed: _failed,
        handles,
        ..
    } = load(a.url(), 4, stop.clone(), Duration::from_millis(40));
    let mut kills = 0;
    let mut seed = 12345u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let victim = (seed >> 33) as usize % workers.0.len();
        workers.0[victim].kill().unwrap(); // SIGKILL
        workers.0[victim].wait().unwrap();
        kills += 1;
        workers.0[victim] = worker_process(&url);
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.unwrap();
    }
    let rows = accepted.load(Ordering::Relaxed) + 50;
    let store = stack.store();
    assert_eq!(final_round(&a.client(), 50).await, rows);
    println!(
        "faults: {kills} worker SIGKILLs; rows acknowledged {rows}, stored {}; other answers {}",
        store.rows(MONITOR).await.unwrap(),
        _failed.load(Ordering::Relaxed)
    );
    assert!(kills >= 8, "only {kills} kills");
    assert_eq!(
        store.rows(MONITOR).await.unwrap(),
        rows,
        "rows acknowledged with 202 != rows stored"
    );
    let c = assert_settled(redis, &a.url(), rows).await;
    assert!(
        c["evaluations"].as_u64() >= Some(300),
        "too few evaluations to exercise double work: {c}"
    );
    drop(workers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_under_load_keeps_acknowledged_rows_and_counters() {
    let persistent = RedisOptions {
        appendonly: true,
        ..RedisOptions::default()
    };
    let mut stack = small_stack(2).redis(persistent).start().await;
    let (a, e) = (stack.api(0).client(), stack.exporter().client());
    let stop = Arc::new(AtomicBool::new(false));
    let Load {
        accepted,
        failed,
        unsure_rows,
        handles,
    } = load(
        a.base().to_string(),
        3,
        stop.clone(),
        Duration::from_millis(5),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = monitor(&a).await;
    stack.redis.restart(); // SIGTERM (append-only file written) and start again on the same port
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.unwrap();
    }
    assert!(
        failed.load(Ordering::Relaxed) > 0,
        "the restart was not noticed"
    );
    let acknowledged = accepted.load(Ordering::Relaxed) + 10;
    let unsure = unsure_rows.load(Ordering::Relaxed);
    // Every acknowledged row is kept; beyond them, at most the rows of requests whose answer
    // the restart cut off (Redis ran the script, the reply never left).
    let rows = final_round(&a, 10).await;
    assert!(
        (acknowledged..=acknowledged + unsure).contains(&rows),
        "acknowledged rows lost, or rows stored that no request sent: stored {rows}, \
         acknowledged {acknowledged}, unanswered {unsure}"
    );
    let store = stack.store();
    let seq = store.rows(MONITOR).await.unwrap();
    assert_eq!(
        seq, rows,
        "the row counter moved after the last acknowledgement"
    );
    // Window + stride rows at least, and less than one block (64 rows) more.
    let len = store.window_len(MONITOR, "mean_radius").await.unwrap();
    assert!((60..60 + 64).contains(&len), "window not kept: {len} rows");
    println!(
        "faults: Redis restarted under load; rows acknowledged {acknowledged}, stored {seq}; requests refused while down {} ({unsure} rows)",
        failed.load(Ordering::Relaxed)
    );
    assert_settled(&stack.redis, a.base(), rows).await;
    let after = monitor(&a).await;
    for k in ["rounds", "evaluations"] {
        assert!(
            after["counters"][k].as_u64() >= before["counters"][k].as_u64(),
            "{k} went backwards: {} -> {}",
            before["counters"],
            after["counters"]
        );
    }
    let text = e.metrics().await;
    assert!(text.contains("drift_redis_up 1"));
    assert!(
        text.contains(&format!(
            "drift_rows_ingested_total{{monitor=\"{MONITOR}\"}} {rows}"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frozen_redis_gives_503_within_2s_and_everything_recovers() {
    let stack = small_stack(1).start().await;
    let (redis, a, e) = (&stack.redis, stack.api(0), stack.exporter());
    let mut rng = rng(21);
    let (s, _) = post_rows(&a.client(), &rows(&mut rng, 100, None)).await;
    assert_eq!(s, 202);
    redis.pause(); // SIGSTOP for 5 s
    let frozen = Instant::now();
    let mut answers = Vec::new();
    while frozen.elapsed() < Duration::from_secs(5) {
        let t = Instant::now();
        let (status, body) = post_rows(&a.client(), &rows(&mut rng, 5, None)).await;
        answers.push((status, t.elapsed()));
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "request hung {:?}",
            t.elapsed()
        );
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "redis_unavailable");
    }
    let t = Instant::now();
    let text = e.metrics().await;
    assert!(t.elapsed() < Duration::from_secs(4), "scrape hung");
    assert!(text.contains("drift_redis_up 0"));
    redis.resume();
    assert!(answers.len() >= 3);
    let ok = drift_testkit::eventually(Duration::from_secs(10), || {
        let api = a.url();
        let body = rows(&mut rng, 100, None);
        async move { (post_rows(&Client::new(&api), &body).await.0 == 202).then_some(()) }
    })
    .await;
    assert!(ok.is_some(), "no recovery");
    wait_evaluated(&a.client(), 200, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backlog_is_capped_visible_and_workers_catch_up() {
    let mut stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .api_config(|c| {
            small(c);
            c.jobs_maxlen = 1000;
        })
        .exporter()
        .start()
        .await;
    let (a, e) = (stack.api(0).client(), stack.exporter().client());
    let mut rng = rng(31);
    // No worker yet: 4000 rows in batches of 10 cross 396 boundaries (11880 jobs).
    for _ in 0..399 {
        let (s, _) = post_rows(&a, &rows(&mut rng, 10, None)).await;
        assert_eq!(s, 202);
    }
    let total = final_round(&a, 10).await;
    let (_, len, _) = stack.store().stream_lens(MONITOR).await.unwrap();
    assert!(len < 1200, "jobs stream not capped: {len}");
    let text = e.metrics().await;
    let lag: f64 = text
        .lines()
        .find(|l| l.starts_with("drift_jobs_pending{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(lag > 0.0, "lag not visible: {text}");
    stack.add_worker().await;
    stack.add_worker().await;
    let view = wait_evaluated(&a, total, Duration::from_secs(60)).await;
    let c = &view["counters"];
    assert!(c["stale"].as_u64().unwrap() > 0, "no stale skips: {c}");
    let drained = drift_testkit::eventually(Duration::from_secs(20), || async {
        (pending(&stack.redis, P).await == 0).then_some(())
    })
    .await;
    assert!(drained.is_some());
    let text = e.metrics().await;
    assert!(
        text.contains(&format!("drift_jobs_pending{{monitor=\"{MONITOR}\"}} 0")),
        "{text}"
    );
}
