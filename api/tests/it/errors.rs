//! The error contract on a real Redis: every bad request gets a 4xx JSON error and changes
//! nothing; an unreachable or frozen Redis is a 503 within 2 s.

use drift_testkit::{spawn_api, RedisServer, Stack};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const P: &str = "e";

fn features() -> Vec<String> {
    drift_core::Dataset::breast_cancer()
        .unwrap()
        .names()
        .to_vec()
}

fn good_row() -> Vec<f64> {
    drift_core::Dataset::breast_cancer()
        .unwrap()
        .columns()
        .iter()
        .map(|c| c[0])
        .collect()
}

/// Everything the API may have written: the row counter, every window's length, the
/// events and jobs streams.
async fn redis_state(redis: &RedisServer) -> drift_store::inspect::Footprint {
    let store = redis.store(P);
    let cfg = store.config("breast_cancer").await.unwrap().unwrap();
    store.footprint(&cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_and_change_nothing() {
    let redis = RedisServer::start();
    let srv = spawn_api(&redis.url(), P, |c| c.max_body_bytes = 64 * 1024).await;
    let api = srv.url();
    let client = reqwest::Client::new();
    // Wait for registration, then put one good batch in so that "unchanged" is meaningful.
    let rows_url = format!("{api}/v1/monitors/breast_cancer/rows");
    let ok = json!({"columns": features(), "data": [good_row()]});
    let mut accepted = false;
    for _ in 0..100 {
        let r = client.post(&rows_url).json(&ok).send().await.unwrap();
        if r.status() == 202 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(accepted, "the API never accepted a good batch");
    let before = redis_state(&redis).await;

    let f = features();
    let mut short = good_row();
    short.pop();
    let mut renamed = f.clone();
    renamed[3] = "nope".into();
    let mut dup = f.clone();
    dup[1] = dup[0].clone();
    let mut text_cell: Vec<Value> = good_row().into_iter().map(|v| json!(v)).collect();
    text_cell[5] = json!("1.0");
    let mut bool_cell: Vec<Value> = good_row().into_iter().map(|v| json!(v)).collect();
    bool_cell[0] = json!(true);
    let row_obj: serde_json::Map<String, Value> = f
        .iter()
        .cloned()
        .zip(good_row().into_iter().map(|v| json!(v)))
        .collect();
    // A key left out is a missing value; an object where a number belongs is not.
    let mut row_wrong = row_obj.clone();
    row_wrong.remove("mean_radius");
    row_wrong.insert("mean_texture".into(), json!({"v": 1}));
    let huge = vec![good_row(); 2000];
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let inf_body = format!(
        "{{\"columns\": {}, \"data\": [[{}1e999]]}}",
        serde_json::to_string(&f).unwrap(),
        "1,".repeat(29)
    );
    let mixed_batch = json!({"columns": f, "data": [good_row(), short.clone()]});

    type Case = (
        &'static str,
        &'static str,
        String,
        Vec<u8>,
        u16,
        &'static str,
    );
    let j = |v: Value| serde_json::to_vec(&v).unwrap();
    let cases: Vec<Case> = vec![
        (
            "malformed json",
            "POST",
            rows_url.clone(),
            b"{\"columns\": [".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "not json",
            "POST",
            rows_url.clone(),
            b"hello".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "non-utf8",
            "POST",
            rows_url.clone(),
            vec![0xff, 0xfe, 0x00, 0x7b],
            400,
            "malformed_json",
        ),
        (
            "empty body",
            "POST",
            rows_url.clone(),
            Vec::new(),
            400,
            "malformed_json",
        ),
        (
            "deeply nested",
            "POST",
            rows_url.clone(),
            deep.into_bytes(),
            422,
            "invalid_batch",
        ),
        (
            "array body",
            "POST",
            rows_url.clone(),
            j(json!([1, 2])),
            422,
            "invalid_batch",
        ),
        (
            "unknown monitor",
            "POST",
            format!("{api}/v1/monitors/nope/rows"),
            j(ok.clone()),
            404,
            "unknown_monitor",
        ),
        (
            "very long monitor",
            "POST",
            format!("{api}/v1/monitors/{}/rows", "m".repeat(5000)),
            j(ok.clone()),
            404,
            "unknown_monitor",
        ),
        (
            "too large",
            "POST",
            rows_url.clone(),
            j(json!({"columns": f, "data": huge})),
            413,
            "payload_too_large",
        ),
        (
            "empty batch",
            "POST",
            rows_url.clone(),
            j(json!({"columns": f, "data": []})),
            422,
            "empty_batch",
        ),
        (
            "short row",
            "POST",
            rows_url.clone(),
            j(json!({"columns": f, "data": [short]})),
            422,
            "wrong_arity",
        ),
        (
            "one bad row in a batch",
            "POST",
            rows_url.clone(),
            j(mixed_batch),
            422,
            "wrong_arity",
        ),
        (
            "unknown column",
            "POST",
            rows_url.clone(),
            j(json!({"columns": renamed, "data": [good_row()]})),
            422,
            "unknown_feature",
        ),
        (
            "duplicate column",
            "POST",
            rows_url.clone(),
            j(json!({"columns": dup, "data": [good_row()]})),
            422,
            "duplicate_feature",
        ),
        (
            "missing columns",
            "POST",
            rows_url.clone(),
            j(json!({"columns": ["mean_radius"], "data": [[1.0]]})),
            422,
            "missing_features",
        ),
        (
            "string value",
            "POST",
            rows_url.clone(),
            j(json!({"columns": f, "data": [text_cell]})),
            422,
            "invalid_value",
        ),
        (
            "boolean value",
            "POST",
            rows_url.clone(),
            j(json!({"columns": f, "data": [bool_cell]})),
            422,
            "invalid_value",
        ),
        (
            "infinite value",
            "POST",
            rows_url.clone(),
            inf_body.into_bytes(),
            422,
            "non_finite_value",
        ),
        (
            "NaN literal",
            "POST",
            rows_url.clone(),
            b"{\"columns\": [\"a\"], \"data\": [[NaN]]}".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "rows with an object value",
            "POST",
            rows_url.clone(),
            j(json!({"rows": [row_obj.clone(), row_wrong]})),
            422,
            "invalid_value",
        ),
        (
            "both forms",
            "POST",
            rows_url.clone(),
            j(json!({"rows": [row_obj], "columns": f, "data": [good_row()]})),
            422,
            "invalid_batch",
        ),
        (
            "extra field",
            "POST",
            rows_url.clone(),
            j(json!({"columns": f, "data": [good_row()], "x": 1})),
            422,
            "invalid_batch",
        ),
        (
            "wrong method",
            "GET",
            rows_url.clone(),
            Vec::new(),
            405,
            "method_not_allowed",
        ),
        (
            "unknown route",
            "GET",
            format!("{api}/v2/nothing"),
            Vec::new(),
            404,
            "not_found",
        ),
        (
            "unknown monitor read",
            "GET",
            format!("{api}/v1/monitors/nope"),
            Vec::new(),
            404,
            "unknown_monitor",
        ),
        (
            "predict malformed",
            "POST",
            format!("{api}/v1/predict"),
            b"{".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "predict wrong columns",
            "POST",
            format!("{api}/get-prediction"),
            j(json!({"columns": ["x"], "data": [[1.0]]})),
            422,
            "unknown_feature",
        ),
        (
            "predict empty",
            "POST",
            format!("{api}/v1/predict"),
            j(json!({"columns": f, "data": []})),
            422,
            "empty_batch",
        ),
        (
            "predict string cell",
            "POST",
            format!("{api}/v1/predict"),
            j(json!({"columns": f, "data": [text_cell.clone()]})),
            422,
            "invalid_value",
        ),
        (
            "history bad cursor",
            "GET",
            format!("{api}/v1/monitors/breast_cancer/history?after=abc"),
            Vec::new(),
            400,
            "bad_query",
        ),
        (
            "history cursor out of range",
            "GET",
            format!("{api}/v1/monitors/breast_cancer/history?after=99999999999999999999-0"),
            Vec::new(),
            400,
            "bad_query",
        ),
        (
            "history empty page asked for",
            "GET",
            format!("{api}/v1/monitors/breast_cancer/history?limit=0"),
            Vec::new(),
            400,
            "bad_query",
        ),
        (
            "history bad limit",
            "GET",
            format!("{api}/v1/monitors/breast_cancer/history?limit=-1"),
            Vec::new(),
            400,
            "bad_query",
        ),
        (
            "put, admin disabled",
            "PUT",
            format!("{api}/v1/monitors/breast_cancer"),
            b"a\n1\n".to_vec(),
            403,
            "admin_disabled",
        ),
        (
            "delete, admin disabled",
            "DELETE",
            format!("{api}/v1/monitors/breast_cancer"),
            Vec::new(),
            403,
            "admin_disabled",
        ),
        (
            "reset, admin disabled",
            "POST",
            format!("{api}/v1/monitors/breast_cancer/reset"),
            Vec::new(),
            403,
            "admin_disabled",
        ),
        (
            "datadrift wrong shape",
            "POST",
            format!("{api}/datadrift"),
            j(json!({"columns": f})),
            422,
            "invalid_batch",
        ),
        (
            "datadrift unknown column",
            "POST",
            format!("{api}/datadrift"),
            j(json!({"features": {"columns": ["mean radiuss"], "data": [[1.0]]}})),
            422,
            "unknown_feature",
        ),
    ];
    for (name, method, url, body, status, code) in cases {
        let req = match method {
            "GET" => client.get(&url),
            "PUT" => client.put(&url).body(body),
            "DELETE" => client.delete(&url),
            _ => client
                .post(&url)
                .header("content-type", "application/json")
                .body(body),
        };
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{name}");
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(ct.as_deref(), Some("application/json"), "{name}");
        let v: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: body is not JSON: {e}"));
        assert_eq!(v["error"]["code"], code, "{name}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        assert_eq!(redis_state(&redis).await, before, "{name} changed Redis");
    }
    let r = client.get(format!("{api}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client.post(&rows_url).json(&ok).send().await.unwrap();
    assert_eq!(r.status(), 202, "still accepts good batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_is_a_fast_503() {
    let port = drift_testkit::free_port();
    let srv = spawn_api(&format!("redis://127.0.0.1:{port}"), P, |_| {}).await;
    let c = srv.client();
    let body = json!({"columns": features(), "data": [good_row()]});
    let req = c
        .http()
        .post(c.url("/v1/monitors/breast_cancer/rows"))
        .json(&body);
    c.assert_store_unavailable(req, Duration::from_secs(2))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_redis_is_a_503_within_2s_then_recovers() {
    let stack = Stack::builder().prefix(P).apis(1).start().await;
    let (redis, c) = (&stack.redis, stack.client());
    let body = json!({"columns": features(), "data": [good_row()]});
    let ingest = || {
        c.http()
            .post(c.url("/v1/monitors/breast_cancer/rows"))
            .json(&body)
    };
    let ok = c.until_status(ingest, 202, Duration::from_secs(5)).await;
    assert!(ok.is_some());
    redis.pause();
    let start = Instant::now();
    let (status, _) = c.send(ingest()).await;
    let took = start.elapsed();
    redis.resume();
    assert_eq!(status, 503);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let ok = c.until_status(ingest, 202, Duration::from_secs(5)).await;
    assert!(ok.is_some(), "no recovery after Redis resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadrift_answers_in_the_prototype_shape() {
    let stack = Stack::builder().prefix(P).apis(1).start().await;
    let (redis, c) = (&stack.redis, stack.client());
    let sk: Vec<String> = features().iter().map(|f| f.replace('_', " ")).collect();
    let body = json!({"features": {"columns": sk, "data": [good_row(), good_row()]}});
    let datadrift = || c.http().post(c.url("/datadrift")).json(&body);
    let v = c
        .until_status(datadrift, 200, Duration::from_secs(5))
        .await
        .expect("datadrift never answered 200");
    assert_eq!(v["status"], "accumulating");
    assert_eq!(v["samples_in_window"], 2);
    assert!(v["feature_pvalues"].is_object());
    assert!(v["drift_share"].is_number());
    let seq = redis
        .store(P)
        .rows("breast_cancer")
        .await
        .unwrap()
        .to_string();
    assert_eq!(seq, "2");
}
