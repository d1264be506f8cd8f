//! The demo model endpoint: answers with or without Redis, logs rows off the response path,
//! flushes the buffer on shutdown.

mod common;

use drift_testkit::RedisServer;
use serde_json::{json, Value};
use std::time::Duration;

const P: &str = "p";

async fn start(
    url: &str,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let api = common::start(url, P, |_| {}).await;
    (api.url, api.stop, api.task)
}

fn reference_rows() -> (Vec<String>, Vec<Vec<f64>>, Vec<f64>) {
    let (ds, y) = drift_core::model::breast_cancer_xy().unwrap();
    let rows = (0..ds.n_rows())
        .map(|i| ds.columns().iter().map(|c| c[i]).collect())
        .collect();
    (ds.names().to_vec(), rows, y)
}

fn seq(redis: &RedisServer) -> u64 {
    redis
        .cmd(&["GET", &format!("{P}:{{breast_cancer}}:seq")])
        .parse()
        .unwrap_or(0)
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predicts_and_logs_rows_for_monitoring() {
    let redis = RedisServer::start();
    let (api, _stop, _task) = start(&redis.url()).await;
    let client = reqwest::Client::new();
    let (names, rows, y) = reference_rows();
    // Scikit-learn names (with spaces), as the prototype's clients send them.
    let sk: Vec<String> = names.iter().map(|n| n.replace('_', " ")).collect();
    let one: Value = client
        .post(format!("{api}/get-prediction"))
        .json(&json!({"columns": sk, "data": [rows[0]]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["prediction"], 0, "{one}");
    let p = one["probability"].as_f64().unwrap();
    assert!((0.0..0.5).contains(&p));
    let many: Value = client
        .post(format!("{api}/v1/predict"))
        .json(&json!({"columns": names, "data": rows[..100]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let preds = many["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 100);
    let correct = preds
        .iter()
        .zip(&y)
        .filter(|(p, y)| p["prediction"].as_f64() == Some(**y))
        .count();
    assert!(correct >= 95, "{correct}/100 correct");
    let logged = drift_testkit::eventually(Duration::from_secs(5), || async {
        (seq(&redis) == 101).then_some(())
    })
    .await;
    assert!(logged.is_some(), "logged rows: {}", seq(&redis));
    let bad = client
        .post(format!("{api}/v1/predict"))
        .json(&json!({"columns": ["mean_radius"], "data": [[1.0]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_answer_while_redis_is_down_and_drops_are_counted() {
    let mut redis = RedisServer::start();
    let (api, _stop, _task) = start(&redis.url()).await;
    let client = reqwest::Client::new();
    let (names, rows, _) = reference_rows();
    redis.kill();
    for row in rows.iter().take(20) {
        let r = client
            .post(format!("{api}/v1/predict"))
            .json(&json!({"columns": names, "data": [row]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let dropped = drift_testkit::eventually(Duration::from_secs(10), || {
        let client = client.clone();
        let api = api.clone();
        async move {
            let text = client
                .get(format!("{api}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let n = metric(&text, "drift_rows_dropped_total{");
            (n >= 20.0).then_some(n)
        }
    })
    .await;
    assert!(dropped.is_some(), "dropped rows were not counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_buffered_rows() {
    let redis = RedisServer::start();
    let (api, stop, task) = start(&redis.url()).await;
    let client = reqwest::Client::new();
    let (names, rows, _) = reference_rows();
    // Wait for registration so the flush is not racing it.
    drift_testkit::eventually(Duration::from_secs(5), || async {
        (redis.cmd(&["EXISTS", &format!("{P}:{{breast_cancer}}:config")]) == "1").then_some(())
    })
    .await
    .unwrap();
    for row in rows.iter().take(50) {
        let r = client
            .post(format!("{api}/v1/predict"))
            .json(&json!({"columns": names, "data": [row]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(seq(&redis), 50);
}
