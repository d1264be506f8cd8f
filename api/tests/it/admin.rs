//! Admin and ingest tokens, and monitors created, replaced, reset and deleted over HTTP.

use drift_api::config::Secret;
use drift_testkit::{spawn_api, Client, RedisServer, Server};
use serde_json::{json, Value};
use std::time::Duration;

const P: &str = "a";
const TOKEN: &str = "admin-s3cret-token";

fn csv(shift: f64) -> String {
    let mut s = String::from("x,y,label\n");
    for i in 0..200 {
        let v = (i as f64 * 0.37).sin() + shift;
        s.push_str(&format!("{v},{},{}\n", (i as f64 * 0.11).cos(), i % 2));
    }
    s
}

/// An API with the admin token and at most `max_monitors` monitors, ready.
async fn admin_api(redis: &RedisServer, max_monitors: usize) -> Server {
    let srv = spawn_api(&redis.url(), P, |c| {
        c.admin_token = Some(Secret(TOKEN.into()));
        c.max_monitors = max_monitors;
    })
    .await;
    srv.wait_ready().await;
    srv
}

/// `PUT path` with a reference CSV, with or without a bearer token.
fn put(c: &Client, path: &str, token: Option<&str>, body: String) -> reqwest::RequestBuilder {
    let req = c.http().put(c.url(path)).body(body);
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_are_disabled_without_a_token() {
    let redis = RedisServer::start();
    let srv = spawn_api(&redis.url(), P, |_| {}).await;
    srv.wait_ready().await;
    let c = srv.client();
    let req = put(&c, "/v1/monitors/m", Some("anything"), csv(0.0));
    c.error(req, 403, "admin_disabled").await;
    let req = c.http().delete(c.url("/v1/monitors/breast_cancer"));
    c.error(req, 403, "admin_disabled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_replace_reset_and_delete_a_monitor() {
    let redis = RedisServer::start();
    let srv = admin_api(&redis, 2).await;
    let c = srv.client();
    let url = "/v1/monitors/custom?window=20&stride=10&exclude=label&correction=bh";
    c.error(put(&c, url, None, csv(0.0)), 401, "unauthorized")
        .await;
    c.error(put(&c, url, Some("wrong"), csv(0.0)), 403, "forbidden")
        .await;
    // Empty; a column declared numeric with a word in it; a column without values;
    // duplicate names.
    let strict = format!("{url}&numeric=y");
    for (url, body) in [
        (url, ""),
        (strict.as_str(), "x,y\n1,oops\n"),
        (url, "x,y\n1,\n2,NA\n"),
        (url, "x,x\n1,2\n"),
    ] {
        let req = put(&c, url, Some(TOKEN), body.to_string());
        c.error(req, 422, "invalid_reference").await;
    }
    for (path, code) in [
        ("/v1/monitors/bad%20name", "invalid_monitor"),
        ("/v1/monitors/custom?window=1", "invalid_monitor"),
        (
            "/v1/monitors/custom?window=100000000000000000&stride=1",
            "invalid_monitor",
        ),
        (
            "/v1/monitors/custom?stride=100000000000000000",
            "invalid_monitor",
        ),
        ("/v1/monitors/custom?nonsense=1", "invalid_parameters"),
    ] {
        c.error(put(&c, path, Some(TOKEN), csv(0.0)), 422, code)
            .await;
    }
    // Nothing above registered anything.
    let list: Value = c.get("/v1/monitors", 200).await;
    assert_eq!(list["monitors"].as_array().unwrap().len(), 1, "{list}");

    let v: Value = c.call(put(&c, url, Some(TOKEN), csv(0.0)), 201).await;
    assert_eq!(v["outcome"], "new_version");
    assert_eq!(v["monitor"]["features"], json!(["x", "y"]));
    let v1 = v["monitor"]["version"].as_str().unwrap().to_string();
    let v: Value = c.call(put(&c, url, Some(TOKEN), csv(0.0)), 200).await;
    assert_eq!(v["outcome"], "unchanged");
    // The limit on monitors: breast_cancer + custom = 2.
    let req = put(&c, "/v1/monitors/third", Some(TOKEN), csv(0.0));
    c.error(req, 409, "too_many_monitors").await;

    let rows = json!({"columns": ["x", "y"], "data": vec![[0.5, 0.5]; 25]});
    let v: Value = c.post("/v1/monitors/custom/rows", &rows, 202).await;
    assert_eq!(v["jobs_enqueued"], 2);

    let v: Value = c.call(put(&c, url, Some(TOKEN), csv(3.0)), 200).await;
    assert_eq!(v["outcome"], "new_version");
    assert_ne!(v["monitor"]["version"], v1.as_str());

    let req = c
        .http()
        .post(c.url("/v1/monitors/custom/reset"))
        .bearer_auth(TOKEN);
    let _: Value = c.call(req, 200).await;
    let m: Value = c.get("/v1/monitors/custom", 200).await;
    assert_eq!(m["rows"], 0);
    // Still accepts rows after a reset (its group exists again).
    let _: Value = c.post("/v1/monitors/custom/rows", &rows, 202).await;

    let req = c
        .http()
        .delete(c.url("/v1/monitors/custom"))
        .bearer_auth(TOKEN);
    let _: Value = c.call(req, 200).await;
    let req = c.http().get(c.url("/v1/monitors/custom"));
    c.error(req, 404, "unknown_monitor").await;
    let req = c.http().post(c.url("/v1/monitors/custom/rows")).json(&rows);
    c.error(req, 404, "unknown_monitor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_tokens_guard_rows_and_predictions() {
    let redis = RedisServer::start();
    let srv = spawn_api(&redis.url(), P, |c| {
        c.ingest_tokens = vec![Secret("ing-1".into()), Secret("ing-2".into())];
    })
    .await;
    srv.wait_ready().await;
    let c = srv.client();
    let ds = drift_core::Dataset::breast_cancer().unwrap();
    let row: Vec<f64> = ds.columns().iter().map(|c| c[0]).collect();
    let body = json!({"columns": ds.names(), "data": [row]});
    for path in [
        "/v1/monitors/breast_cancer/rows",
        "/v1/predict",
        "/get-prediction",
    ] {
        let req = c.http().post(c.url(path)).json(&body);
        c.error(req, 401, "unauthorized").await;
        let req = c.http().post(c.url(path)).bearer_auth("nope").json(&body);
        c.error(req, 403, "forbidden").await;
    }
    let ok = drift_testkit::eventually(Duration::from_secs(5), || async {
        let req = c
            .http()
            .post(c.url("/v1/monitors/breast_cancer/rows"))
            .bearer_auth("ing-2")
            .json(&body);
        (c.send(req).await.0 == 202).then_some(())
    })
    .await;
    assert!(ok.is_some());
    // Reads stay open.
    let _: Value = c.get("/v1/monitors/breast_cancer", 200).await;
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
        let c = Client::new(&format!("http://127.0.0.1:{port}"));
        let up = drift_testkit::eventually(Duration::from_secs(10), || async {
            c.status("/healthz").await.map(|_| ())
        })
        .await;
        assert!(up.is_some());
        for tok in [TOKEN, "ingest-s3cret", "wrong-s3cret"] {
            let _ = put(&c, "/v1/monitors/m", Some(tok), "x\n1\n2\n".into())
                .send()
                .await;
            let req = c.http().post(c.url("/v1/monitors/breast_cancer/rows"));
            let _ = req.bearer_auth(tok).body("{}").send().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ert_rule_and_its_parameters_are_set_per_monitor() {
    let redis = RedisServer::start();
    let srv = admin_api(&redis, 100).await;
    let c = srv.client();
    // The default monitor runs the ert rule with its thresholds fixed at registration.
    let m: Value = c.get("/v1/monitors/breast_cancer", 200).await;
    assert_eq!(m["params"]["correction"], "ert");
    assert_eq!(m["params"]["ert"], 10000.0);
    assert_eq!(m["params"]["reference_confidence"], 0.95);
    // Two signals per feature: 60 tests a round.
    let c0 = drift_core::alarm::ert_threshold(569, 500, 60, 10_000.0, 0.95);
    assert_eq!(m["thresholds"]["mean_radius"].as_f64(), Some(c0));
    assert_eq!(m["thresholds"].as_object().map(|t| t.len()), Some(30));

    let url = "/v1/monitors/e?window=100&stride=20&exclude=label&ert=500&reference_confidence=0.9";
    let v: Value = c.call(put(&c, url, Some(TOKEN), csv(0.0)), 201).await;
    let want = drift_core::alarm::ert_threshold(200, 100, 4, 500.0, 0.9);
    assert_eq!(v["monitor"]["thresholds"], json!([want, want]));
    let m: Value = c.get("/v1/monitors/e", 200).await;
    assert_eq!(m["thresholds"]["x"].as_f64(), Some(want));
    // A per-evaluation rule has no statistic threshold.
    let url = "/v1/monitors/e?window=100&stride=20&exclude=label&correction=bonferroni";
    let v: Value = c.call(put(&c, url, Some(TOKEN), csv(0.0)), 200).await;
    assert_eq!(v["outcome"], "params_updated");
    assert!(v["monitor"].get("thresholds").is_none(), "{v}");
    let m: Value = c.get("/v1/monitors/e", 200).await;
    assert!(m.get("thresholds").is_none(), "{m}");
    // Out-of-range parameters, and a window too short for any statistic to reach the
    // threshold, are refused and change nothing.
    for q in [
        "ert=0.5",
        "ert=1e13",
        "reference_confidence=1",
        "reference_confidence=0",
        "window=2&stride=1",
    ] {
        let url = format!("/v1/monitors/e?exclude=label&{q}");
        let msg = c
            .error(put(&c, &url, Some(TOKEN), csv(0.0)), 422, "invalid_monitor")
            .await;
        assert!(!msg.is_empty(), "{q}");
    }
    let m: Value = c.get("/v1/monitors/e", 200).await;
    assert_eq!(m["params"]["correction"], "bonferroni", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_never_exceed_the_monitor_limit() {
    let redis = RedisServer::start();
    let srv = admin_api(&redis, 2).await;
    let c = srv.client();
    let puts = (0..10).map(|i| {
        let c = c.clone();
        async move {
            let url = format!("/v1/monitors/new{i}?exclude=label&correction=bonferroni");
            c.send(put(&c, &url, Some(TOKEN), csv(0.0))).await
        }
    });
    let answers = futures::future::join_all(puts).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s != 201).collect();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        refused
            .iter()
            .all(|(s, b)| *s == 409 && b["error"]["code"] == "too_many_monitors"),
        "{refused:?}"
    );
    let list: Value = c.get("/v1/monitors", 200).await;
    assert_eq!(list["monitors"].as_array().unwrap().len(), 2, "{list}");
}

/// `.` and `..` (also percent-encoded) are refused as monitor names. Sent over a raw
/// socket: HTTP client libraries resolve dot segments before sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_are_not_monitor_names() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = RedisServer::start();
    let srv = admin_api(&redis, 100).await;
    let addr = srv.url().trim_start_matches("http://").to_string();
    for name in ["%2e%2e", "..", "%2E", "."] {
        let body = csv(0.0);
        let req = format!(
            "PUT /v1/monitors/{name}?exclude=label HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 422"), "{name}: {out}");
        assert!(out.contains("invalid_monitor"), "{name}: {out}");
    }
    let list: Value = srv.client().get("/v1/monitors", 200).await;
    assert_eq!(list["monitors"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_listed_without_a_config_is_not_shown_and_can_be_deleted() {
    let redis = RedisServer::start();
    let srv = admin_api(&redis, 10).await;
    let c = srv.client();
    let store = redis.store(P);
    // What a registration interrupted after enlisting leaves behind.
    store.list_without_config("ghost").await.unwrap();
    assert!(store
        .monitors()
        .await
        .unwrap()
        .contains(&"ghost".to_string()));
    let list: Value = c.get("/v1/monitors", 200).await;
    let names: Vec<&str> = list["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(!names.contains(&"ghost"), "{list}");
    c.error(
        c.http().get(c.url("/v1/monitors/ghost")),
        404,
        "unknown_monitor",
    )
    .await;
    // Reset needs a config; delete takes the name out of the set.
    let reset = c
        .http()
        .post(c.url("/v1/monitors/ghost/reset"))
        .bearer_auth(TOKEN);
    c.error(reset, 404, "unknown_monitor").await;
    let delete = c
        .http()
        .delete(c.url("/v1/monitors/ghost"))
        .bearer_auth(TOKEN);
    let v: Value = c.call(delete, 200).await;
    assert_eq!(v["deleted"], "ghost");
    assert!(!store
        .monitors()
        .await
        .unwrap()
        .contains(&"ghost".to_string()));
    let again = c
        .http()
        .delete(c.url("/v1/monitors/ghost"))
        .bearer_auth(TOKEN);
    c.error(again, 404, "unknown_monitor").await;
}
