//! The demo model endpoint: answers with or without Redis, logs rows off the response path,
//! flushes the buffer on shutdown.

use drift_testkit::{Client, RedisServer, Stack};
use serde_json::{json, Value};
use std::time::Duration;

const P: &str = "p";

fn reference_rows() -> (Vec<String>, Vec<Vec<f64>>, Vec<f64>) {
    let (ds, y) = drift_core::model::breast_cancer_xy().unwrap();
    let rows = (0..ds.n_rows())
        .map(|i| ds.columns().iter().map(|c| c[i]).collect())
        .collect();
    (ds.names().to_vec(), rows, y)
}

/// Rows stored for the default monitor, read through the store.
async fn seq(redis: &RedisServer) -> u64 {
    redis.store(P).rows("breast_cancer").await.unwrap_or(0)
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Posts each row alone to `/v1/predict` and expects an answer for each.
async fn predict_each(c: &Client, names: &[String], rows: &[Vec<f64>]) {
    for row in rows {
        let body = json!({"columns": names, "data": [row]});
        let _: Value = c.post("/v1/predict", &body, 200).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predicts_and_logs_rows_for_monitoring() {
    let stack = Stack::builder().prefix(P).apis(1).start().await;
    let (redis, c) = (&stack.redis, stack.client());
    let (names, rows, y) = reference_rows();
    // Scikit-learn names (with spaces), as the prototype's clients send them.
    let sk: Vec<String> = names.iter().map(|n| n.replace('_', " ")).collect();
    let body = json!({"columns": sk, "data": [rows[0]]});
    let one: Value = c.post("/get-prediction", &body, 200).await;
    assert_eq!(one["prediction"], 0, "{one}");
    let p = one["probability"].as_f64().unwrap();
    assert!((0.0..0.5).contains(&p));
    let body = json!({"columns": names, "data": rows[..100]});
    let many: Value = c.post("/v1/predict", &body, 200).await;
    let preds = many["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 100);
    let correct = preds
        .iter()
        .zip(&y)
        .filter(|(p, y)| p["prediction"].as_f64() == Some(**y))
        .count();
    assert!(correct >= 95, "{correct}/100 correct");
    let logged = drift_testkit::eventually(Duration::from_secs(5), || async {
        (seq(redis).await == 101).then_some(())
    })
    .await;
    assert!(logged.is_some(), "logged rows: {}", seq(redis).await);
    let bad = json!({"columns": ["mean_radius"], "data": [[1.0]]});
    let (status, _) = c.send(c.http().post(c.url("/v1/predict")).json(&bad)).await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_answer_while_redis_is_down_and_drops_are_counted() {
    let mut stack = Stack::builder().prefix(P).apis(1).start().await;
    let c = stack.client();
    let (names, rows, _) = reference_rows();
    stack.redis.kill();
    predict_each(&c, &names, &rows[..20]).await;
    let dropped = drift_testkit::eventually(Duration::from_secs(10), || async {
        let n = metric(&c.metrics().await, "drift_rows_dropped_total{");
        (n >= 20.0).then_some(n)
    })
    .await;
    assert!(dropped.is_some(), "dropped rows were not counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_buffered_rows() {
    // The stack is ready once the monitor is registered: the flush does not race it.
    let mut stack = Stack::builder().prefix(P).apis(1).start().await;
    let c = stack.client();
    let (names, rows, _) = reference_rows();
    predict_each(&c, &names, &rows[..50]).await;
    let api = stack.apis.pop().unwrap();
    api.stop().await.unwrap();
    assert_eq!(seq(&stack.redis).await, 50);
}

/// Logged prediction rows follow the monitor's current columns by name: after the default
/// monitor is re-registered with its columns reversed, each value still lands in its own
/// feature's window; re-registered with a feature the model does not send (`target`), the
/// rows are dropped and counted, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_rows_go_to_their_features_by_name_after_a_reregistration() {
    let stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .api_config(|c| c.admin_token = Some(drift_api::config::Secret("tok".into())))
        .start()
        .await;
    let (redis, c) = (&stack.redis, stack.client());
    let (names, rows, y) = reference_rows();
    let csv = |with_target: bool| {
        let mut cols: Vec<&str> = names.iter().rev().map(String::as_str).collect();
        if with_target {
            cols.push("target");
        }
        let mut s = cols.join(",") + "\n";
        for (row, label) in rows.iter().zip(&y) {
            let mut vals: Vec<String> = row.iter().rev().map(|v| v.to_string()).collect();
            if with_target {
                vals.push(label.to_string());
            }
            s.push_str(&(vals.join(",") + "\n"));
        }
        s
    };
    let put = |body: String| {
        c.http()
            .put(c.url("/v1/monitors/breast_cancer"))
            .bearer_auth("tok")
            .body(body)
    };
    let v: Value = c.call(put(csv(false)), 200).await;
    assert_eq!(
        v["monitor"]["features"][0], "worst_fractal_dimension",
        "{v}"
    );
    let mut marked = rows[0].clone();
    marked[0] = 17.125; // mean_radius, a value no other feature could take
    predict_each(&c, &names, &[marked]).await;
    let store = redis.store(P);
    let window = drift_testkit::eventually(Duration::from_secs(5), || async {
        let w = store
            .window_values("breast_cancer", "mean_radius")
            .await
            .ok()?;
        (!w.is_empty()).then_some(w)
    })
    .await;
    assert_eq!(
        window,
        Some(vec![17.125]),
        "the logged row never reached mean_radius"
    );
    let last = store
        .window_values("breast_cancer", "worst_fractal_dimension")
        .await
        .unwrap();
    assert_eq!(last, vec![rows[0][29]]);

    // `target` kept as a feature: the model's rows cannot fill it.
    let v: Value = c.call(put(csv(true)), 200).await;
    assert_eq!(v["outcome"], "new_version", "{v}");
    predict_each(&c, &names, &rows[..3]).await;
    drift_testkit::eventually(Duration::from_secs(5), || async {
        let text = c.metrics().await;
        (metric(
            &text,
            "drift_rows_dropped_total{reason=\"schema_mismatch\"}",
        ) >= 3.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        seq(redis).await,
        0,
        "rows written to a monitor they do not fit"
    );
    assert!(store
        .window_values("breast_cancer", "target")
        .await
        .unwrap()
        .is_empty());
}
