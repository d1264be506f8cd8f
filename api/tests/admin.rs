//! Admin and ingest tokens, and monitors created, replaced, reset and deleted over HTTP.

mod common;

use drift_api::config::Secret;
use drift_api::ApiConfig;
use drift_testkit::RedisServer;
use serde_json::{json, Value};
use std::time::Duration;

const P: &str = "a";
const TOKEN: &str = "admin-s3cret-token";

async fn start(
    url: &str,
    tweak: impl FnOnce(&mut ApiConfig),
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let api = common::start(url, P, tweak).await;
    common::wait_ready(&api.url).await;
    (api.url, api.stop)
}

fn csv(shift: f64) -> String {
    let mut s = String::from("x,y,label\n");
    for i in 0..200 {
        let v = (i as f64 * 0.37).sin() + shift;
        s.push_str(&format!("{v},{},{}\n", (i as f64 * 0.11).cos(), i % 2));
    }
    s
}

async fn code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_are_disabled_without_a_token() {
    let redis = RedisServer::start();
    let (api, _s) = start(&redis.url(), |_| {}).await;
    let c = reqwest::Client::new();
    let r = c
        .put(format!("{api}/v1/monitors/m"))
        .bearer_auth("anything")
        .body(csv(0.0))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (403, "admin_disabled".into()));
    let r = c
        .delete(format!("{api}/v1/monitors/breast_cancer"))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (403, "admin_disabled".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_replace_reset_and_delete_a_monitor() {
    let redis = RedisServer::start();
    let (api, _s) = start(&redis.url(), |c| {
        c.admin_token = Some(Secret(TOKEN.into()));
        c.max_monitors = 2;
    })
    .await;
    let c = reqwest::Client::new();
    let url = format!("{api}/v1/monitors/custom?window=20&stride=10&exclude=label&correction=bh");
    let r = c.put(&url).body(csv(0.0)).send().await.unwrap();
    assert_eq!(code(r).await, (401, "unauthorized".into()));
    let r = c
        .put(&url)
        .bearer_auth("wrong")
        .body(csv(0.0))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (403, "forbidden".into()));
    for (body, want) in [
        ("".to_string(), "invalid_reference"),
        ("x,y\n1,oops\n".to_string(), "invalid_reference"),
        ("x,x\n1,2\n".to_string(), "invalid_reference"),
    ] {
        let r = c
            .put(&url)
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(code(r).await, (422, want.into()));
    }
    let r = c
        .put(format!("{api}/v1/monitors/bad%20name"))
        .bearer_auth(TOKEN)
        .body(csv(0.0))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (422, "invalid_monitor".into()));
    let r = c
        .put(format!("{api}/v1/monitors/custom?window=1"))
        .bearer_auth(TOKEN)
        .body(csv(0.0))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (422, "invalid_monitor".into()));
    let r = c
        .put(format!("{api}/v1/monitors/custom?nonsense=1"))
        .bearer_auth(TOKEN)
        .body(csv(0.0))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (422, "invalid_parameters".into()));
    // Nothing above registered anything.
    let list: Value = c
        .get(format!("{api}/v1/monitors"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["monitors"].as_array().unwrap().len(), 1, "{list}");

    let r = c
        .put(&url)
        .bearer_auth(TOKEN)
        .body(csv(0.0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["outcome"], "new_version");
    assert_eq!(v["monitor"]["features"], json!(["x", "y"]));
    let v1 = v["monitor"]["version"].as_str().unwrap().to_string();
    let r = c
        .put(&url)
        .bearer_auth(TOKEN)
        .body(csv(0.0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["outcome"], "unchanged");
    // The limit on monitors: breast_cancer + custom = 2.
    let r = c
        .put(format!("{api}/v1/monitors/third"))
        .bearer_auth(TOKEN)
        .body(csv(0.0))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (409, "too_many_monitors".into()));

    let rows = json!({"columns": ["x", "y"], "data": vec![[0.5, 0.5]; 25]});
    let r = c
        .post(format!("{api}/v1/monitors/custom/rows"))
        .json(&rows)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["jobs_enqueued"], 2);

    let r = c
        .put(&url)
        .bearer_auth(TOKEN)
        .body(csv(3.0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["outcome"], "new_version");
    assert_ne!(v["monitor"]["version"], v1.as_str());

    let r = c
        .post(format!("{api}/v1/monitors/custom/reset"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m: Value = c
        .get(format!("{api}/v1/monitors/custom"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["rows"], 0);
    // Still accepts rows after a reset (its group exists again).
    let r = c
        .post(format!("{api}/v1/monitors/custom/rows"))
        .json(&rows)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let r = c
        .delete(format!("{api}/v1/monitors/custom"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{api}/v1/monitors/custom"))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (404, "unknown_monitor".into()));
    let r = c
        .post(format!("{api}/v1/monitors/custom/rows"))
        .json(&rows)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (404, "unknown_monitor".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_tokens_guard_rows_and_predictions() {
    let redis = RedisServer::start();
    let (api, _s) = start(&redis.url(), |c| {
        c.ingest_tokens = vec![Secret("ing-1".into()), Secret("ing-2".into())];
    })
    .await;
    let c = reqwest::Client::new();
    let ds = drift_core::Dataset::breast_cancer().unwrap();
    let row: Vec<f64> = ds.columns().iter().map(|c| c[0]).collect();
    let body = json!({"columns": ds.names(), "data": [row]});
    for path in [
        "/v1/monitors/breast_cancer/rows",
        "/v1/predict",
        "/get-prediction",
    ] {
        let r = c
            .post(format!("{api}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(code(r).await, (401, "unauthorized".into()), "{path}");
        let r = c
            .post(format!("{api}{path}"))
            .bearer_auth("nope")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(code(r).await, (403, "forbidden".into()), "{path}");
    }
    let ok = drift_testkit::eventually(Duration::from_secs(5), || {
        let r = c
            .post(format!("{api}/v1/monitors/breast_cancer/rows"))
            .bearer_auth("ing-2")
            .json(&body)
            .send();
        async move { (r.await.ok()?.status() == 202).then_some(()) }
    })
    .await;
    assert!(ok.is_some());
    // Reads stay open.
    let r = c
        .get(format!("{api}/v1/monitors/breast_cancer"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn tokens_never_reach_the_logs() {
    let redis = RedisServer::start();
    let port = drift_testkit::free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_drift-api"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--redis-url",
            &redis.url(),
        ])
        .args(["--key-prefix", P])
        .env("DRIFT_ADMIN_TOKEN", TOKEN)
        .env("DRIFT_INGEST_TOKENS", "ingest-s3cret")
        .env("RUST_LOG", "trace")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let up = drift_testkit::eventually(Duration::from_secs(10), || {
            let r = c.get(format!("{base}/healthz")).send();
            async move { r.await.ok().map(|_| ()) }
        })
        .await;
        assert!(up.is_some());
        for tok in [TOKEN, "ingest-s3cret", "wrong-s3cret"] {
            let _ = c
                .put(format!("{base}/v1/monitors/m"))
                .bearer_auth(tok)
                .body("x\n1\n2\n")
                .send()
                .await;
            let _ = c
                .post(format!("{base}/v1/monitors/breast_cancer/rows"))
                .bearer_auth(tok)
                .body("{}")
                .send()
                .await;
        }
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("drift-api listening"),
        "no logs captured: {logs}"
    );
    assert!(!logs.contains("s3cret"), "a token was logged:\n{logs}");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_drift-api"))
        .arg("--help")
        .env("DRIFT_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("s3cret"));
}
