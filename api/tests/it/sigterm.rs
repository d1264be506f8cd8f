//! An API replica SIGTERMed under load: in-flight requests finish, and every row that got a
//! 202 is in Redis (and no row without one).

use drift_testkit::RedisServer;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn sigterm_under_load_keeps_every_acknowledged_row() {
    let redis = RedisServer::start();
    let port = drift_testkit::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_drift-api"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--redis-url",
            &redis.url(),
        ])
        .args(["--key-prefix", "s"])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ds = drift_core::Dataset::breast_cancer().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (accepted, other) = rt.block_on(async {
        let c = reqwest::Client::new();
        let up = drift_testkit::eventually(Duration::from_secs(10), || {
            let r = c.get(format!("{base}/readyz")).send();
            async move { (r.await.ok()?.status() == 200).then_some(()) }
        })
        .await;
        assert!(up.is_some(), "API did not come up");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let other = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for t in 0..6usize {
            let (c, base, stop, accepted, other) = (
                c.clone(),
                base.clone(),
                stop.clone(),
                accepted.clone(),
                other.clone(),
            );
            let names = ds.names().to_vec();
            let cols = ds.columns().to_vec();
            tasks.push(tokio::spawn(async move {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let n = 1 + i % 20;
                    let data: Vec<Vec<f64>> = (0..n)
                        .map(|k| {
                            cols.iter()
                                .map(|col| col[(i * 7 + k) % col.len()])
                                .collect()
                        })
                        .collect();
                    i += 6;
                    let r = c
                        .post(format!("{base}/v1/monitors/breast_cancer/rows"))
                        .json(&json!({"columns": names, "data": data}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 202 => {
                            accepted.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        // Refused or closed before the request was read: nothing stored.
                        Err(_) => {
                            other.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        (
            accepted.load(Ordering::Relaxed),
            other.load(Ordering::Relaxed),
        )
    });
    let status = child.wait().unwrap();
    assert!(status.success(), "drift-api exited with {status}");
    assert!(
        accepted > 0 && other > 0,
        "accepted {accepted}, refused {other}"
    );
    let stored = rt.block_on(redis.store("s").rows("breast_cancer")).unwrap();
    println!("sigterm: rows acknowledged {accepted}, stored {stored}; requests refused after shutdown {other}");
    assert_eq!(stored, accepted, "rows with a 202 != rows in Redis");
}
