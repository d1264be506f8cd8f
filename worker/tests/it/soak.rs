//! Soak: steady load on a whole local stack (processes), memory sampled at start and end.
//! `SOAK_SECS=600 cargo nextest run -p drift-worker --test soak --no-capture` for the
//! 10-minute run; CI runs a short one. Memory is bounded by configuration (window + stride
//! per feature, stream MAXLENs), so after the caps fill up nothing may grow.

use drift_testkit::RedisServer;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    drift_testkit::cargo_bin(name)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn memory_stays_flat_under_steady_load() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let redis = RedisServer::start();
    let url = redis.url();
    let api_port = drift_testkit::free_port();
    let caps = ["--jobs-maxlen", "3000", "--events-maxlen", "200"];
    let mut procs = Procs(Vec::new());
    procs.0.push((
        "api".into(),
        Command::new(bin("drift-api"))
            .args([
                "--listen",
                &format!("127.0.0.1:{api_port}"),
                "--redis-url",
                &url,
            ])
            .args(["--window", "200", "--stride", "50"])
            .args(caps)
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    ));
    for i in 0..2 {
        procs.0.push((
            format!("worker{i}"),
            Command::new(bin("drift-worker"))
                .args([
                    "run",
                    "--listen",
                    &format!("127.0.0.1:{}", drift_testkit::free_port()),
                ])
                .args(["--redis-url", &url, "--history-maxlen", "3000"])
                .env("RUST_LOG", "warn")
                .spawn()
                .unwrap(),
        ));
    }
    let exp_port = drift_testkit::free_port();
    procs.0.push((
        "exporter".into(),
        Command::new(bin("drift-worker"))
            .args([
                "export",
                "--listen",
                &format!("127.0.0.1:{exp_port}"),
                "--redis-url",
                &url,
            ])
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    ));
    let ds = drift_core::Dataset::breast_cancer().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt.block_on(async {
        let c = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{api_port}");
        let up = drift_testkit::eventually(Duration::from_secs(20), || {
            let r = c.get(format!("{base}/readyz")).send();
            async move { (r.await.ok()?.status() == 200).then_some(()) }
        })
        .await;
        assert!(up.is_some(), "API did not come up");
        let names = ds.names().to_vec();
        let mut i = 0usize;
        let mut sent = 0u64;
        let mut send = |c: reqwest::Client| {
            let data: Vec<Vec<f64>> = (0..20)
                .map(|k| {
                    ds.columns()
                        .iter()
                        .map(|col| col[(i * 20 + k) % col.len()])
                        .collect()
                })
                .collect();
            i += 1;
            let body = json!({"columns": names, "data": data});
            let base = base.clone();
            async move {
                let r = c
                    .post(format!("{base}/v1/monitors/breast_cancer/rows"))
                    .json(&body)
                    .send()
                    .await;
                assert_eq!(r.unwrap().status(), 202);
            }
        };
        // Warm-up: fill the windows and the capped streams (about 3000 jobs).
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs.min(60) / 4 + 3) {
            send(c.clone()).await;
            sent += 20;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let scrape = |c: reqwest::Client| async move {
            c.get(format!("http://127.0.0.1:{exp_port}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        let _ = scrape(c.clone()).await;
        let store = redis.store("soak");
        let sample = |procs: &Procs, redis_used: u64| -> Vec<(String, u64)> {
            let mut v: Vec<(String, u64)> = procs
                .0
                .iter()
                .map(|(n, c)| (n.clone(), rss_kib(c.id())))
                .collect();
            v.push(("redis_used_memory_kib".into(), redis_used / 1024));
            v
        };
        let before = sample(&procs, store.memory_used().await.unwrap_or(0));
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(secs) {
            send(c.clone()).await;
            sent += 20;
            if sent % 2000 == 0 {
                let _ = scrape(c.clone()).await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let after = sample(&procs, store.memory_used().await.unwrap_or(0));
        (before, after, sent, t0.elapsed())
    });
    let (before, after, sent, took) = report;
    println!("soak: {sent} rows in {took:?} after warm-up; memory (KiB) start -> end:");
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        println!("  {name:<24} {b:>8} -> {a:>8}");
    }
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        assert!(
            *a <= b + b / 2 + 10 * 1024,
            "{name} grew from {b} KiB to {a} KiB"
        );
    }
}
