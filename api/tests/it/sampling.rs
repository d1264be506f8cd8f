//! Per-monitor sampling (`sample_rate`): rows of a valid batch kept with that probability
//! before Redis, the rest counted in `drift_rows_sampled_out_total{monitor}`; a bad batch
//! refused whole as without sampling; invalid rates refused; a new rate is a parameter
//! update that reaches every replica.

use drift_api::config::Secret;
use drift_testkit::{spawn_api, Client, RedisServer, Server};
use serde_json::{json, Value};
use std::time::Duration;

const P: &str = "s";
const TOKEN: &str = "admin-sampling-token";

/// A reference of two numeric features, 200 rows.
fn csv() -> String {
    let mut s = String::from("x,y\n");
    for i in 0..200 {
        s.push_str(&format!("{},{}\n", (i as f64 * 0.37).sin(), i % 7));
    }
    s
}

async fn admin_api(redis: &RedisServer) -> Server {
    let srv = spawn_api(&redis.url(), P, |c| {
        c.admin_token = Some(Secret(TOKEN.into()));
    })
    .await;
    srv.wait_ready().await;
    srv
}

/// `PUT /v1/monitors/{name}?{query}` with the reference CSV; returns (status, body).
async fn put(c: &Client, name: &str, query: &str) -> (u16, Value) {
    let req = c
        .http()
        .put(c.url(&format!("/v1/monitors/{name}?{query}")))
        .bearer_auth(TOKEN)
        .body(csv());
    c.send(req).await
}

/// The sum of a metric's samples whose line starts with `prefix`.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn sampled_out(text: &str, monitor: &str) -> u64 {
    metric(
        text,
        &format!("drift_rows_sampled_out_total{{monitor=\"{monitor}\"}}"),
    ) as u64
}

fn stored_metric(text: &str, monitor: &str) -> u64 {
    metric(
        text,
        &format!("drift_api_rows_accepted_total{{monitor=\"{monitor}\"}}"),
    ) as u64
}

fn rows(n: usize, offset: usize) -> Value {
    let data: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            [
                ((i + offset) as f64 * 0.13).cos(),
                ((i + offset) % 5) as f64,
            ]
        })
        .collect();
    json!({"columns": ["x", "y"], "data": data})
}

/// Sends `n` rows in batches of `batch`; returns (rows accepted, rows sampled, answers).
async fn ingest(c: &Client, monitor: &str, n: usize, batch: usize) -> (u64, u64, Vec<Value>) {
    let (mut accepted, mut sampled, mut answers) = (0, 0, Vec::new());
    let path = format!("/v1/monitors/{monitor}/rows");
    for start in (0..n).step_by(batch) {
        let v: Value = c.post(&path, &rows(batch.min(n - start), start), 202).await;
        accepted += v["accepted"].as_u64().unwrap();
        sampled += v["sampled"].as_u64().unwrap();
        answers.push(v);
    }
    (accepted, sampled, answers)
}

/// Within 6 standard deviations of Binomial(n, p)'s mean.
fn within_six_sigma(kept: u64, n: u64, p: f64) -> bool {
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (kept as f64 - n as f64 * p).abs() <= 6.0 * sd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarter_of_the_rows_is_stored_and_the_rest_counted() {
    let redis = RedisServer::start();
    let srv = admin_api(&redis).await;
    let c = srv.client();
    let store = redis.store(P);
    let (status, v) = put(&c, "hot", "window=50&stride=25&sample_rate=0.25").await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["monitor"]["sample_rate"], 0.25, "{v}");
    let m: Value = c.get("/v1/monitors/hot", 200).await;
    assert_eq!(m["params"]["sample_rate"], 0.25, "{m}");

    let n = 4000;
    let (accepted, sampled, answers) = ingest(&c, "hot", n, 100).await;
    assert_eq!(accepted, n as u64);
    let stored = store.rows("hot").await.unwrap();
    assert_eq!(
        stored, sampled,
        "the 202s' `sampled` add up to what Redis holds"
    );
    assert!(
        within_six_sigma(stored, n as u64, 0.25),
        "{stored} of {n} rows stored at sample_rate 0.25"
    );
    // Each answer's seq is the row count after its stored rows.
    let last = answers.last().unwrap();
    assert_eq!(last["seq"], stored, "{last}");
    let text = c.metrics().await;
    assert_eq!(sampled_out(&text, "hot"), n as u64 - stored, "{text}");
    assert_eq!(stored_metric(&text, "hot"), stored, "{text}");

    // Single rows: most are sampled out; such a batch is still a 202, with no seq (nothing
    // was written, no Redis call made) and no jobs.
    let (accepted, sampled, answers) = ingest(&c, "hot", 40, 1).await;
    assert_eq!(accepted, 40);
    let out: Vec<&Value> = answers.iter().filter(|a| a["sampled"] == 0).collect();
    assert!(!out.is_empty(), "40 single rows at 0.25 were all kept");
    for a in &out {
        assert_eq!(a["accepted"], 1, "{a}");
        assert!(a["seq"].is_null(), "{a}");
        assert_eq!(a["jobs_enqueued"], 0, "{a}");
    }
    for a in answers.iter().filter(|a| a["sampled"] == 1) {
        assert!(a["seq"].as_u64().is_some(), "{a}");
    }
    assert_eq!(store.rows("hot").await.unwrap(), stored + sampled);
    let text = c.metrics().await;
    assert_eq!(
        sampled_out(&text, "hot") + stored_metric(&text, "hot"),
        n as u64 + 40,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_of_one_stores_every_row_and_keeps_the_config_as_it_was() {
    let redis = RedisServer::start();
    let srv = admin_api(&redis).await;
    let c = srv.client();
    let (status, v) = put(&c, "all", "window=50&stride=25").await;
    assert_eq!(status, 201, "{v}");
    // Without sampling the stored definition has no sample_rate (as before it existed)...
    assert!(v["monitor"].get("sample_rate").is_none(), "{v}");
    let version = v["monitor"]["version"].clone();
    // ...so saying 1 explicitly is the same registration, and the views show the 1.
    let (status, v) = put(&c, "all", "window=50&stride=25&sample_rate=1").await;
    assert_eq!(
        (status, v["outcome"].as_str()),
        (200, Some("unchanged")),
        "{v}"
    );
    assert_eq!(v["monitor"]["version"], version);
    let m: Value = c.get("/v1/monitors/all", 200).await;
    assert_eq!(m["params"]["sample_rate"], 1.0, "{m}");

    let n = 4000;
    let (accepted, sampled, answers) = ingest(&c, "all", n, 100).await;
    assert_eq!((accepted, sampled), (n as u64, n as u64));
    assert!(answers.iter().all(|a| a["sampled"] == a["accepted"]));
    assert_eq!(answers.last().unwrap()["seq"], n);
    assert_eq!(redis.store(P).rows("all").await.unwrap(), n as u64);
    let text = c.metrics().await;
    assert_eq!(sampled_out(&text, "all"), 0, "{text}");
    assert_eq!(stored_metric(&text, "all"), n as u64, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_rates_are_refused_and_change_nothing() {
    let redis = RedisServer::start();
    let srv = admin_api(&redis).await;
    let c = srv.client();
    for rate in ["0", "1.5", "NaN", "-1", "inf", "0.0"] {
        let req = c
            .http()
            .put(c.url(&format!("/v1/monitors/new?sample_rate={rate}")))
            .bearer_auth(TOKEN)
            .body(csv());
        let msg = c.error(req, 422, "invalid_monitor").await;
        assert!(msg.contains("sample_rate"), "{rate}: {msg}");
    }
    let req = c
        .http()
        .put(c.url("/v1/monitors/new?sample_rate=half"))
        .bearer_auth(TOKEN)
        .body(csv());
    c.error(req, 422, "invalid_parameters").await;
    let req = c.http().get(c.url("/v1/monitors/new"));
    c.error(req, 404, "unknown_monitor").await;

    // An existing monitor keeps its parameters and rows.
    let (status, _) = put(&c, "kept", "window=50&stride=25&sample_rate=0.5").await;
    assert_eq!(status, 201);
    let _ = ingest(&c, "kept", 200, 100).await;
    let before: Value = c.get("/v1/monitors/kept", 200).await;
    for rate in ["0", "1.5", "NaN", "-1"] {
        let req = c
            .http()
            .put(c.url(&format!(
                "/v1/monitors/kept?window=50&stride=25&sample_rate={rate}"
            )))
            .bearer_auth(TOKEN)
            .body(csv());
        c.error(req, 422, "invalid_monitor").await;
    }
    let after: Value = c.get("/v1/monitors/kept", 200).await;
    assert_eq!(after["params"], before["params"]);
    assert_eq!(after["rows"], before["rows"]);
    assert_eq!(after["params"]["sample_rate"], 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_batch_is_refused_whole_whatever_sampling_would_keep() {
    let redis = RedisServer::start();
    let srv = admin_api(&redis).await;
    let c = srv.client();
    let store = redis.store(P);
    let (status, _) = put(&c, "hot", "window=50&stride=25&sample_rate=0.1").await;
    assert_eq!(status, 201);
    let _ = ingest(&c, "hot", 500, 100).await;
    let rows_before = store.rows("hot").await.unwrap();
    let text = c.metrics().await;
    let out_before = sampled_out(&text, "hot");
    let mut bad = rows(100, 0);
    bad["data"][99] = json!([0.5, "seven"]);
    let mut short = rows(100, 0);
    short["data"][50] = json!([0.5]);
    // A number beyond f64, which JSON can carry and serde_json cannot build.
    let infinite = serde_json::to_string(&rows(99, 1)).unwrap().replacen(
        "\"data\":[",
        "\"data\":[[1e400,1.0],",
        1,
    );
    for (body, code) in [
        (bad.to_string(), "invalid_value"),
        (short.to_string(), "wrong_arity"),
        (infinite, "non_finite_value"),
    ] {
        let req = c
            .http()
            .post(c.url("/v1/monitors/hot/rows"))
            .header("content-type", "application/json")
            .body(body);
        c.error(req, 422, code).await;
    }
    assert_eq!(store.rows("hot").await.unwrap(), rows_before);
    let text = c.metrics().await;
    assert_eq!(sampled_out(&text, "hot"), out_before, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rate_is_a_parameter_update_that_reaches_every_replica() {
    let redis = RedisServer::start();
    let a = admin_api(&redis).await;
    let b = spawn_api(&redis.url(), P, |_| {}).await;
    b.wait_ready().await;
    let (ca, cb) = (a.client(), b.client());
    let (status, v) = put(&ca, "hot", "window=50&stride=25").await;
    assert_eq!(status, 201, "{v}");
    let version = v["monitor"]["version"].clone();
    // Replica b caches the config (every row kept).
    let (_, sampled, _) = ingest(&cb, "hot", 300, 100).await;
    assert_eq!(sampled, 300);
    let (status, v) = put(&ca, "hot", "window=50&stride=25&sample_rate=0.1").await;
    assert_eq!(
        (status, v["outcome"].as_str()),
        (200, Some("params_updated")),
        "{v}"
    );
    assert_eq!(
        v["monitor"]["version"], version,
        "the reference did not change"
    );
    // Rows and results are kept by a parameter update.
    let m: Value = ca.get("/v1/monitors/hot", 200).await;
    assert_eq!(m["rows"], 300, "{m}");
    // Replica b reads its cached config again once it is `CONFIG_MAX_AGE` old, in the
    // background of the first request after that: within a few requests its batches are
    // sampled.
    tokio::time::sleep(drift_api::state::CONFIG_MAX_AGE).await;
    let switched = drift_testkit::eventually(Duration::from_secs(5), || async {
        let v: Value = cb.post("/v1/monitors/hot/rows", &rows(100, 0), 202).await;
        (v["sampled"].as_u64() < Some(60)).then_some(())
    })
    .await;
    assert!(switched.is_some(), "replica b never applied the new rate");
    let out_before = sampled_out(&cb.metrics().await, "hot");
    let (accepted, sampled, _) = ingest(&cb, "hot", 1000, 100).await;
    assert_eq!(accepted, 1000);
    assert!(
        within_six_sigma(sampled, 1000, 0.1),
        "{sampled} of 1000 kept at 0.1"
    );
    assert_eq!(
        sampled_out(&cb.metrics().await, "hot") - out_before,
        1000 - sampled,
        "replica b counts what it left out"
    );
}

/// The default monitor's rate (`--sample-rate`) applies to `/datadrift` and to the rows
/// logged by predictions as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadrift_and_predictions_are_sampled_too() {
    let redis = RedisServer::start();
    let srv = spawn_api(&redis.url(), P, |c| c.sample_rate = 0.25).await;
    srv.wait_ready().await;
    let c = srv.client();
    let store = redis.store(P);
    let ds = drift_core::Dataset::breast_cancer().unwrap();
    let names: Vec<String> = ds.names().iter().map(|n| n.replace('_', " ")).collect();
    let row = |i: usize| -> Vec<f64> { ds.columns().iter().map(|col| col[i]).collect() };
    let n = 400;
    for i in 0..n {
        let body = json!({"features": {"columns": names, "data": [row(i % ds.n_rows())]}});
        let v: Value = c.post("/datadrift", &body, 200).await;
        assert!(v["seq"].as_u64().is_some(), "{v}");
    }
    let stored = store.rows("breast_cancer").await.unwrap();
    assert!(within_six_sigma(stored, n as u64, 0.25), "{stored} of {n}");
    let text = c.metrics().await;
    assert_eq!(
        sampled_out(&text, "breast_cancer"),
        n as u64 - stored,
        "{text}"
    );
    assert_eq!(stored_metric(&text, "breast_cancer"), stored, "{text}");

    let rows: Vec<Vec<f64>> = (0..n).map(row).collect();
    let body = json!({"columns": ds.names(), "data": rows});
    let _: Value = c.post("/v1/predict", &body, 200).await;
    let done = drift_testkit::eventually(Duration::from_secs(10), || async {
        let text = c.metrics().await;
        let counted = sampled_out(&text, "breast_cancer") + stored_metric(&text, "breast_cancer");
        (counted == 2 * n as u64).then_some(text)
    })
    .await;
    let text = done.expect("every logged prediction row is stored or counted as sampled out");
    let all = store.rows("breast_cancer").await.unwrap();
    assert_eq!(stored_metric(&text, "breast_cancer"), all, "{text}");
    assert!(
        within_six_sigma(all - stored, n as u64, 0.25),
        "{} of {n}",
        all - stored
    );
}
