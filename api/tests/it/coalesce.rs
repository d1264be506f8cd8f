//! Group commit on a real Redis: concurrent ingest requests share script calls, each keeps
//! its own rows and seq range, a failed call reaches every request in it, and a request
//! costs no Redis command besides its share of the script call.

use drift_core::{Dataset, MonitorSpec, Params};
use drift_testkit::{Client, RedisOptions, Stack};
use futures::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const P: &str = "c";
const MONITOR: &str = "breast_cancer";

fn names() -> Vec<String> {
    Dataset::breast_cancer().unwrap().names().to_vec()
}

/// A body of `n` rows whose first feature tells request `id` and row `i` apart
/// (`id * 1000 + i`); the other features hold reference values.
fn body(id: usize, n: usize) -> Value {
    let ds = Dataset::breast_cancer().unwrap();
    let data: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let mut row: Vec<f64> = ds.columns().iter().map(|c| c[i % c.len()]).collect();
            row[0] = (id * 1000 + i) as f64;
            row
        })
        .collect();
    json!({"columns": names(), "data": data})
}

/// Posts one body, returning (status, answer, time taken).
async fn post(c: &Client, body: &Value) -> (u16, Value, Duration) {
    let start = Instant::now();
    let req = c
        .http()
        .post(c.url(&format!("/v1/monitors/{MONITOR}/rows")))
        .json(body);
    let (status, answer) = c.send(req).await;
    (status, answer, start.elapsed())
}

/// The sum of a metric's samples whose line starts with `prefix`.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sends requests `sizes[i]` rows long (request i), all at once, while Redis is frozen
/// for `freeze`, so that they queue behind the calls in flight and share the next ones.
async fn burst(stack: &Stack, sizes: &[usize], freeze: Duration) -> Vec<(u16, Value, Duration)> {
    let c = stack.client();
    let bodies: Vec<Value> = sizes.iter().enumerate().map(|(i, &n)| body(i, n)).collect();
    stack.redis.pause();
    let sent = join_all(bodies.iter().map(|b| post(&c, b)));
    let resume = async {
        tokio::time::sleep(freeze).await;
        stack.redis.resume();
    };
    let (answers, ()) = tokio::join!(sent, resume);
    answers
}

/// Checks that the accepted requests' seq ranges are disjoint, contiguous from row
/// `after + 1`, and that the window holds each request's rows, in its order, at its range.
async fn assert_ranges_and_rows(
    stack: &Stack,
    sizes: &[usize],
    answers: &[(u16, Value, Duration)],
    after: u64,
) {
    let mut ranges: Vec<(u64, u64, usize)> = answers
        .iter()
        .enumerate()
        .map(|(i, (status, a, _))| {
            assert_eq!(*status, 202, "request {i}: {a}");
            assert_eq!(a["accepted"], sizes[i], "{a}");
            let seq = a["seq"].as_u64().unwrap();
            (seq + 1 - sizes[i] as u64, seq, i)
        })
        .collect();
    ranges.sort();
    let mut next = after + 1;
    for &(from, to, i) in &ranges {
        assert_eq!(
            from,
            next,
            "request {i}'s rows {from}..={to} do not follow row {}",
            next - 1
        );
        next = to + 1;
    }
    let total: u64 = sizes.iter().map(|&n| n as u64).sum();
    let store = stack.store();
    assert_eq!(store.rows(MONITOR).await.unwrap(), after + total);
    // Oldest first; the window holds these rows (and `after` before them) when short enough.
    let mut window = store.window_values(MONITOR, &names()[0]).await.unwrap();
    window.reverse();
    let window = &window[after as usize..];
    for &(from, _, i) in &ranges {
        let at = (from - after - 1) as usize;
        let want: Vec<f64> = (0..sizes[i]).map(|r| (i * 1000 + r) as f64).collect();
        assert_eq!(&window[at..at + sizes[i]], &want[..], "request {i}'s rows");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_calls_and_keep_their_own_rows_and_seqs() {
    let stack = Stack::builder().prefix(P).apis(1).start().await;
    let sizes: Vec<usize> = (0..40).map(|i| 1 + i % 7).collect();
    let answers = burst(&stack, &sizes, Duration::from_millis(300)).await;
    assert_ranges_and_rows(&stack, &sizes, &answers, 0).await;
    let text = stack.api(0).metrics().await;
    let calls = metric(&text, "drift_api_ingest_requests_per_call_count");
    assert_eq!(
        metric(&text, "drift_api_ingest_requests_per_call_sum"),
        40.0,
        "{text}"
    );
    assert!(calls < 40.0, "no request shared a call: {calls} calls");
    let rows: usize = sizes.iter().sum();
    assert_eq!(
        metric(&text, "drift_api_ingest_rows_per_call_sum"),
        rows as f64
    );
    let (_, _, jobs) = stack.store().stream_lens(MONITOR).await.unwrap();
    assert_eq!(jobs, 0, "{rows} rows: the window of 500 is not full yet");
    println!("coalesce: 40 requests, {rows} rows in {calls} script calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_carries_at_most_its_cap_and_a_larger_request_goes_alone() {
    // 6 rows of 30 features per call: two 3-row requests fit, an 8-row one only alone.
    let stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .api_config(|c| c.ingest_call_max_values = 6 * 30)
        .start()
        .await;
    let sizes = [3, 3, 8, 3, 3, 3, 8, 3, 3, 3, 3, 3];
    let answers = burst(&stack, &sizes, Duration::from_millis(300)).await;
    assert_ranges_and_rows(&stack, &sizes, &answers, 0).await;
    let text = stack.api(0).metrics().await;
    let calls = metric(&text, "drift_api_ingest_requests_per_call_count");
    let bucket = |name: &str, le: &str| metric(&text, &format!("{name}_bucket{{le=\"{le}\"}}"));
    let requests = "drift_api_ingest_requests_per_call";
    let rows = "drift_api_ingest_rows_per_call";
    assert!(calls < 12.0, "no request shared a call");
    assert_eq!(bucket(requests, "2"), calls, "a call of 3 requests: {text}");
    assert_eq!(bucket(rows, "10"), calls, "a call over 10 rows: {text}");
    // Calls of one request are a 3-row one (5 rows or less) or one of the two 8-row ones.
    assert_eq!(bucket(requests, "1") - bucket(rows, "5"), 2.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_mid_group_fails_every_request_and_stores_none_of_them() {
    let persistent = RedisOptions {
        appendonly: true,
        ..RedisOptions::default()
    };
    let mut stack = Stack::builder()
        .prefix(P)
        .apis(1)
        .redis(persistent)
        .start()
        .await;
    let c = stack.client();
    assert_eq!(post(&c, &body(99, 5)).await.0, 202);
    // The append-only file is fsynced every second: the 5 rows are on disk after this.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sizes: Vec<usize> = (0..20).map(|i| 1 + i % 4).collect();
    let bodies: Vec<Value> = sizes.iter().enumerate().map(|(i, &n)| body(i, n)).collect();
    stack.redis.pause();
    let sent = join_all(bodies.iter().map(|b| post(&c, b)));
    let crash = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stack.redis.kill(); // SIGKILL while frozen: nothing sent since the pause ran
    };
    let (answers, ()) = tokio::join!(sent, crash);
    for (i, (status, a, took)) in answers.iter().enumerate() {
        assert_eq!(*status, 503, "request {i}: {a}");
        assert_eq!(a["error"]["code"], "redis_unavailable", "{a}");
        assert!(*took < Duration::from_secs(2), "request {i} took {took:?}");
    }
    stack.redis.restart();
    assert_eq!(
        stack.store().rows(MONITOR).await.unwrap(),
        5,
        "a failed request's rows were stored"
    );
    assert_eq!(post(&c, &body(98, 2)).await.1["seq"], 7, "ingest recovers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_past_the_deadline_fails_every_request_and_stores_none_of_them() {
    let stack = Stack::builder().prefix(P).apis(1).start().await;
    let c = stack.client();
    assert_eq!(post(&c, &body(99, 5)).await.0, 202);
    let store = stack.store();
    let cfg = store.config(MONITOR).await.unwrap().unwrap();
    let before = store.footprint(&cfg).await.unwrap();
    let sizes: Vec<usize> = (0..20).map(|i| 1 + i % 4).collect();
    let bodies: Vec<Value> = sizes.iter().enumerate().map(|(i, &n)| body(i, n)).collect();
    stack.redis.pause();
    // The calls in flight are in the frozen Redis's socket; the other requests queue.
    let answers = join_all(bodies.iter().map(|b| post(&c, b))).await;
    for (i, (status, a, took)) in answers.iter().enumerate() {
        assert_eq!(*status, 503, "request {i}: {a}");
        assert_eq!(a["error"]["code"], "redis_unavailable", "{a}");
        assert!(*took < Duration::from_secs(2), "request {i} took {took:?}");
    }
    stack.redis.resume();
    // Redis now runs the calls it had received, past their deadline: they write nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.footprint(&cfg).await.unwrap(), before);
    let ok = c
        .until_status(
            || {
                c.http()
                    .post(c.url(&format!("/v1/monitors/{MONITOR}/rows")))
                    .json(&body(98, 2))
            },
            202,
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(ok.expect("no recovery")["seq"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reregistration_mid_group_reaches_every_request_of_the_group() {
    let stack = Stack::builder().prefix(P).apis(1).start().await;
    let c = stack.client();
    assert_eq!(post(&c, &body(99, 1)).await.0, 202); // the API caches the config
    let store = stack.store();
    let names = names();
    let ds = Dataset::breast_cancer().unwrap();
    // The reference's rows, each value times `scale`, over its first `features` columns.
    let reference = |scale: f64, features: usize| {
        let mut csv = names[..features].join(",") + "\n";
        for i in 0..ds.n_rows() {
            let row: Vec<String> = ds.columns()[..features]
                .iter()
                .map(|c| (c[i] * scale).to_string())
                .collect();
            csv += &(row.join(",") + "\n");
        }
        let ds = Dataset::from_csv(csv.as_bytes(), &[]).unwrap();
        MonitorSpec::new(MONITOR, &ds, Params::default(), 1000).unwrap()
    };
    // Same features, new reference: each request retries alone with the new config.
    store.register(&reference(2.0, names.len())).await.unwrap();
    let sizes: Vec<usize> = (0..16).map(|i| 1 + i % 3).collect();
    let answers = burst(&stack, &sizes, Duration::from_millis(200)).await;
    assert_ranges_and_rows(&stack, &sizes, &answers, 0).await;
    // Other features: every request of the group gets 409 and nothing is stored.
    let spec = reference(1.0, 5);
    store.register(&spec).await.unwrap();
    let before = store.footprint(&spec.config).await.unwrap();
    let answers = burst(&stack, &sizes, Duration::from_millis(200)).await;
    for (i, (status, a, _)) in answers.iter().enumerate() {
        assert_eq!(*status, 409, "request {i}: {a}");
        assert_eq!(a["error"]["code"], "monitor_reconfigured", "{a}");
    }
    assert_eq!(store.footprint(&spec.config).await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_send_no_ping_or_unwatch() {
    let stack = Stack::builder().prefix(P).apis(1).start().await;
    let c = stack.client();
    let inspect = stack.store();
    let one = body(1, 1);
    // Warm: the connections the bursts use below have just been used.
    join_all((0..8).map(|_| post(&c, &one))).await;
    inspect.reset_command_stats().await.unwrap();
    for _ in 0..20 {
        assert_eq!(post(&c, &one).await.0, 202);
    }
    for _ in 0..5 {
        let answers = join_all((0..8).map(|_| post(&c, &one))).await;
        assert!(answers.iter().all(|(s, _, _)| *s == 202));
    }
    let stats = inspect.command_calls().await.unwrap();
    let get = |n: &str| stats.get(n).copied().unwrap_or(0);
    assert_eq!((get("ping"), get("unwatch")), (0, 0), "{stats:?}");
    let calls = get("evalsha");
    assert!((1..=60).contains(&calls), "{stats:?}");
    // The script call is the only command of an ingest request: every other command
    // counted is one the script calls, the counting itself, or a new connection's set-up
    // (`CLIENT SETINFO`, `TIME`), should the pool open one.
    const SCRIPT: &[&str] = &[
        "hmget", "lpush", "lpop", "ltrim", "lrange", "lindex", "lset", "incrby", "xadd", "hget",
        "xlen", "rpush", "xtrim", "hset", "hincrby", "time",
    ];
    let other: Vec<&String> = stats
        .keys()
        .filter(|name| !SCRIPT.contains(&name.as_str()) && name.as_str() != "evalsha")
        .filter(|name| !name.starts_with("config|") && !name.starts_with("client|"))
        .filter(|name| name.as_str() != "info")
        .collect();
    assert!(other.is_empty(), "{other:?} in {stats:?}");
}
