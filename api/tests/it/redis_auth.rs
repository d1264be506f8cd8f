//! Redis with a password, an ACL user and TLS, all from the URL.

use drift_testkit::{spawn_api, RedisOptions, RedisServer};
use serde_json::{json, Value};
use std::time::Duration;

const P: &str = "auth";

fn body() -> Value {
    let ds = drift_core::Dataset::breast_cancer().unwrap();
    let row: Vec<f64> = ds.columns().iter().map(|c| c[0]).collect();
    json!({"columns": ds.names(), "data": [row]})
}

/// Status of the first answer that is not a 503 "starting", or the last 503.
async fn ingest_status(api: &str) -> u16 {
    let c = reqwest::Client::new();
    let mut last = 0;
    for _ in 0..60 {
        let r = c
            .post(format!("{api}/v1/monitors/breast_cancer/rows"))
            .json(&body())
            .send()
            .await
            .unwrap();
        last = r.status().as_u16();
        if last == 202 {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_in_the_url() {
    let redis = RedisServer::start_opts(RedisOptions {
        password: Some("pa55word".into()),
        ..Default::default()
    });
    let srv = spawn_api(&redis.url(), P, |_| {}).await;
    let api = srv.url();
    assert_eq!(ingest_status(&api).await, 202);
    let wrong = redis.url().replace("pa55word", "nope");
    let srv = spawn_api(&wrong, P, |_| {}).await;
    let api = srv.url();
    let r = reqwest::get(format!("{api}/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "redis_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_in_the_url() {
    let redis = RedisServer::start_opts(RedisOptions {
        acl_user: Some(("drift".into(), "s3cret".into())),
        ..Default::default()
    });
    let url = redis.url().replace("redis://", "redis://drift:s3cret@");
    let srv = spawn_api(&url, P, |_| {}).await;
    let api = srv.url();
    assert_eq!(ingest_status(&api).await, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_rediss() {
    let redis = RedisServer::start_opts(RedisOptions {
        tls: true,
        ..Default::default()
    });
    assert!(redis.url().starts_with("rediss://"));
    let srv = spawn_api(&redis.url(), P, |_| {}).await;
    let api = srv.url();
    assert_eq!(ingest_status(&api).await, 202);
    let r = reqwest::get(format!("{api}/v1/monitors/breast_cancer"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["rows"], 1);
}
