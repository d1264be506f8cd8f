//! The pipeline on a real Redis Cluster (3 masters, 3 replicas of `redis-server`): monitors
//! that live on different masters each work end to end (ingest, evaluation, exporter,
//! history, admin routes), a master SIGKILLed under ingest load is replaced by its replica
//! while APIs and workers carry on, and with `--redis-ack-replicas 1` no acknowledged row
//! is lost. Also `--redis-ack-replicas` on one Redis with a replica.

use drift_api::config::Secret;
use drift_api::ApiConfig;
use drift_contract::IngestAccepted;
use drift_testkit::rows::{drifted, rng as seeded, rows as reference_rows, MONITOR};
use drift_testkit::{
    eventually, spawn_api, spawn_exporter_with, spawn_worker, Client, RedisCluster, RedisServer,
    Server,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const P: &str = "c";
const TOKEN: &str = "cluster-admin";
const FEATURES: [&str; 3] = ["x", "y", "z"];

fn normal(rng: &mut StdRng) -> f64 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `n` rows of three independent standard normals, `shifted` (if any) moved by 1.5.
fn model_rows(rng: &mut StdRng, n: usize, shifted: Option<usize>) -> Vec<Vec<f64>> {
    (0..n)
        .map(|_| {
            (0..FEATURES.len())
                .map(|f| normal(rng) + if shifted == Some(f) { 1.5 } else { 0.0 })
                .collect()
        })
        .collect()
}

fn csv(rows: &[Vec<f64>]) -> String {
    let mut s = FEATURES.join(",") + "\n";
    for r in rows {
        let line: Vec<String> = r.iter().map(f64::to_string).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

fn on_cluster(seeds: &str) -> impl Fn(&mut drift_store::RedisArgs) + '_ {
    move |r| {
        r.redis_url = seeds.to_string();
        r.redis_cluster = true;
    }
}

async fn api_on(cluster: &RedisCluster, tweak: impl FnOnce(&mut ApiConfig)) -> Server {
    let seeds = cluster.seeds();
    let api = spawn_api(&seeds, P, |c| {
        on_cluster(&seeds)(&mut c.redis);
        c.admin_token = Some(Secret(TOKEN.into()));
        tweak(c);
    })
    .await;
    api.wait_ready().await;
    api
}

async fn worker_on(cluster: &RedisCluster) -> Server {
    let seeds = cluster.seeds();
    spawn_worker(&seeds, P, |c| on_cluster(&seeds)(&mut c.redis)).await
}

async fn post(c: &Client, monitor: &str, rows: &[Vec<f64>]) -> (u16, Value) {
    let body = json!({"columns": FEATURES, "data": rows});
    let path = format!("/v1/monitors/{monitor}/rows");
    c.send(c.http().post(c.url(&path)).json(&body)).await
}

/// Waits until every feature of `monitor` has its latest result at row `seq`.
async fn evaluated_at(c: &Client, monitor: &str, seq: u64) -> Value {
    let path = format!("/v1/monitors/{monitor}");
    let done = eventually(Duration::from_secs(30), || async {
        let (status, v) = c.send(c.http().get(c.url(&path))).await;
        let all = status == 200
            && v["results"]
                .as_object()
                .is_some_and(|r| r.values().all(|f| f["seq"].as_u64() == Some(seq)));
        all.then_some(v)
    })
    .await;
    done.unwrap_or_else(|| panic!("{monitor} was not evaluated at row {seq} within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_monitor_works_on_the_master_that_holds_it() {
    let cluster = RedisCluster::start();
    let names = cluster.monitors_on_distinct_masters(P, "model", 3);
    let masters: Vec<usize> = names
        .iter()
        .map(|m| cluster.master_of_monitor(P, m).unwrap_or(usize::MAX))
        .collect();
    assert!(
        masters[0] != masters[1] && masters[1] != masters[2] && masters[0] != masters[2],
        "{masters:?}"
    );
    let api = api_on(&cluster, |_| {}).await;
    let _workers = [worker_on(&cluster).await, worker_on(&cluster).await];
    let seeds = cluster.seeds();
    let exporter = spawn_exporter_with(&seeds, P, |c| on_cluster(&seeds)(&mut c.redis)).await;
    let c = api.client();

    let mut rng = StdRng::seed_from_u64(41);
    for m in &names {
        let path = format!("/v1/monitors/{m}?window=200&stride=50");
        let req = c
            .http()
            .put(c.url(&path))
            .bearer_auth(TOKEN)
            .body(csv(&model_rows(&mut rng, 1000, None)));
        let (status, body) = c.send(req).await;
        assert_eq!(status, 201, "{body}");
    }
    // Monitor i drifts in feature i alone, after 400 rows of the reference's model.
    for (i, m) in names.iter().enumerate() {
        for _ in 0..8 {
            let (status, body) = post(&c, m, &model_rows(&mut rng, 50, None)).await;
            assert_eq!(status, 202, "{m}: {body}");
        }
        let view = evaluated_at(&c, m, 400).await;
        assert_eq!(drifted(&view), Vec::<String>::new(), "{m}: {view}");
        for _ in 0..6 {
            let (status, body) = post(&c, m, &model_rows(&mut rng, 50, Some(i))).await;
            assert_eq!(status, 202, "{m}: {body}");
        }
        let view = evaluated_at(&c, m, 700).await;
        assert_eq!(drifted(&view), vec![FEATURES[i].to_string()], "{m}: {view}");
    }
    // History and counters, read from each master through the API.
    for (i, m) in names.iter().enumerate() {
        let view: Value = c.get(&format!("/v1/monitors/{m}"), 200).await;
        let evaluations = view["counters"]["evaluations"].as_u64().unwrap_or(0);
        let page: Value = c
            .get(&format!("/v1/monitors/{m}/history?limit=10000"), 200)
            .await;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        assert_eq!(entries.len() as u64, evaluations, "{m}: {view}");
        assert!(
            entries
                .iter()
                .any(|e| e["feature"] == FEATURES[i] && e["drifted"] == true),
            "{m}: no drifted evaluation of {} in the history",
            FEATURES[i]
        );
    }
    // The exporter reads every master.
    let text = eventually(Duration::from_secs(10), || async {
        let text = exporter.metrics().await;
        names
            .iter()
            .enumerate()
            .all(|(i, m)| {
                let want = format!(
                    "drift_feature_drifted{{feature=\"{}\",monitor=\"{m}\"}} 1",
                    FEATURES[i]
                );
                text.lines().any(|l| l == want)
            })
            .then_some(text)
    })
    .await;
    let text = text.unwrap_or_else(|| panic!("the exporter does not show every drift"));
    for m in &names {
        let want = format!("drift_rows_ingested_total{{monitor=\"{m}\"}} 700");
        assert!(text.lines().any(|l| l == want), "no `{want}`");
    }
    // Admin routes: reset one monitor, delete another.
    let reset = c
        .http()
        .post(c.url(&format!("/v1/monitors/{}/reset", names[0])))
        .bearer_auth(TOKEN);
    let (status, body) = c.send(reset).await;
    assert!(status == 200 || status == 204, "{status}: {body}");
    let view: Value = c.get(&format!("/v1/monitors/{}", names[0]), 200).await;
    assert_eq!(view["rows"], 0, "{view}");
    let delete = c
        .http()
        .delete(c.url(&format!("/v1/monitors/{}", names[1])))
        .bearer_auth(TOKEN);
    let (status, body) = c.send(delete).await;
    assert!(status == 200 || status == 204, "{status}: {body}");
    let (status, _) = c
        .send(c.http().get(c.url(&format!("/v1/monitors/{}", names[1]))))
        .await;
    assert_eq!(status, 404);
    let list: Value = c.get("/v1/monitors", 200).await;
    let listed: Vec<&str> = list["monitors"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(listed.contains(&names[0].as_str()) && listed.contains(&names[2].as_str()));
    assert!(!listed.contains(&names[1].as_str()), "{list}");
    // The reset monitor takes rows again.
    let (status, body) = post(&c, &names[0], &model_rows(&mut rng, 10, None)).await;
    assert_eq!(status, 202, "{body}");
}

/// What a load client saw: (time since start at the answer, status, rows, whether the
/// answer says the rows may be stored all the same, time since start at the request) of
/// every request.
type Log = Arc<Mutex<Vec<(Duration, u16, u64, bool, Duration)>>>;

/// Posts batches of 10 default-monitor rows, one request at a time, until `stop`.
fn load(
    api: &Server,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> (tokio::task::JoinHandle<()>, Log) {
    let log: Log = Arc::default();
    let c = Client::new(&api.url());
    let out = log.clone();
    let task = tokio::spawn(async move {
        let mut rng = seeded(5);
        let path = format!("/v1/monitors/{MONITOR}/rows");
        while !stop.load(Ordering::Relaxed) {
            let body = reference_rows(&mut rng, 10, None);
            let sent = started.elapsed();
            let (status, answer) = c.send(c.http().post(c.url(&path)).json(&body)).await;
            let maybe_stored = answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("may be stored"));
            if let Ok(mut l) = out.lock() {
                l.push((started.elapsed(), status, 10, maybe_stored, sent));
            }
            if status != 202 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    (task, log)
}

/// Posts batches of 100 default-monitor rows until one enqueues an evaluation round (the
/// window full and a boundary crossed); returns its row count.
async fn next_round(c: &Client) -> u64 {
    let mut rng = seeded(999);
    let path = format!("/v1/monitors/{MONITOR}/rows");
    for _ in 0..20 {
        let done: IngestAccepted = c
            .post(&path, &reference_rows(&mut rng, 100, None), 202)
            .await;
        if done.jobs_enqueued > 0 {
            return done.seq.unwrap_or(0);
        }
    }
    panic!("2,000 rows and no evaluation round");
}

struct Failover {
    acked_rows: u64,
    /// Rows of the refused requests whose answer said they may be stored.
    maybe_stored_rows: u64,
    refused: Vec<u16>,
    /// Seconds from the kill to the first refusal and to the first 202 after the kill.
    first_refused: Option<f64>,
    resumed: Option<f64>,
    stored_rows: u64,
}

/// Kills the master of the default monitor under load; `restart_after` brings the node
/// back (as its supervisor would) that long after the kill, once its replica took over.
async fn kill_master_under_load(ack_replicas: u32, restart_after: Option<Duration>) -> Failover {
    let mut cluster = RedisCluster::start();
    let api = api_on(&cluster, |c| c.redis.redis_ack_replicas = ack_replicas).await;
    let _worker = worker_on(&cluster).await;
    let victim = cluster
        .master_of_monitor(P, MONITOR)
        .unwrap_or_else(|| panic!("no master holds {MONITOR}"));
    // A monitor on another master, which the kill must not touch.
    let other = (0..1000)
        .map(|i| format!("other{i}"))
        .find(|m| cluster.master_of_monitor(P, m).is_some_and(|o| o != victim))
        .unwrap_or_else(|| panic!("no monitor name on another master"));
    let c = api.client();
    let mut rng = StdRng::seed_from_u64(17);
    let path = format!("/v1/monitors/{other}?window=200&stride=50");
    let req = c
        .http()
        .put(c.url(&path))
        .bearer_auth(TOKEN)
        .body(csv(&model_rows(&mut rng, 500, None)));
    let (status, body) = c.send(req).await;
    assert_eq!(status, 201, "{body}");
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (task, log) = load(&api, stop.clone(), started);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = started.elapsed();
    cluster.kill(victim);
    // While the victim's slots have no master, the other master's monitor takes rows.
    let mut others = Vec::new();
    for _ in 0..10 {
        let sent = Instant::now();
        let (status, body) = post(&c, &other, &model_rows(&mut rng, 10, None)).await;
        others.push((status, sent.elapsed()));
        assert_eq!(status, 202, "{other} during the failover: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still ready: the other masters answer.
    assert_eq!(c.status("/readyz").await, Some(200));
    let slowest = others.iter().map(|o| o.1).max().unwrap_or_default();
    eprintln!(
        "{other} on another master during the failover: 10 of 10 accepted, slowest {slowest:?}"
    );
    if let Some(after) = restart_after {
        // Not before the replica took over: a node without persistence that came back
        // sooner would still be the master, empty.
        let promoted = eventually(Duration::from_secs(15), || async {
            cluster
                .master_of_monitor(P, MONITOR)
                .filter(|&m| m != victim)
                .map(|_| ())
        })
        .await;
        assert!(promoted.is_some(), "no replica took over within 15 s");
        tokio::time::sleep(after.saturating_sub(started.elapsed() - killed_at)).await;
        cluster.restart(victim);
    }
    // Ingest must resume within 15 s of the kill (a 202 to a request sent after the
    // outage was first seen); then 2 s more of load.
    let resumed = eventually(Duration::from_secs(15), || async {
        let l = log.lock().ok()?;
        let outage = l
            .iter()
            .find(|e| e.4 >= killed_at && e.1 != 202)
            .map_or(killed_at, |e| e.4);
        l.iter().find(|e| e.4 > outage && e.1 == 202).map(|e| e.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = task.await;
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    let acked_rows = log.iter().filter(|e| e.1 == 202).map(|e| e.2).sum();
    let maybe_stored_rows = log.iter().filter(|e| e.3).map(|e| e.2).sum();
    let refused: Vec<u16> = log.iter().filter(|e| e.1 != 202).map(|e| e.1).collect();
    let since_kill = |t: Duration| t.saturating_sub(killed_at).as_secs_f64();
    let first_refused = log.iter().find(|e| e.1 != 202).map(|e| since_kill(e.0));
    // Every row the load stored, then a round after the failover, evaluated: the worker
    // carried on too.
    let view: Value = c.get(&format!("/v1/monitors/{MONITOR}"), 200).await;
    let stored_rows = view["rows"].as_u64().unwrap_or(0);
    let seq = next_round(&c).await;
    evaluated_at(&c, MONITOR, seq).await;
    let f = Failover {
        acked_rows,
        maybe_stored_rows,
        refused,
        first_refused,
        resumed: resumed.map(since_kill),
        stored_rows,
    };
    eprintln!(
        "failover (ack replicas {ack_replicas}): {} requests, {} refused ({:?}), first refused {:?} s \
         and ingest resumed {:?} s after the kill; {} rows acknowledged, {} stored, {} refused \
         as maybe stored",
        log.len(),
        f.refused.len(),
        f.refused.iter().collect::<std::collections::BTreeSet<_>>(),
        f.first_refused,
        f.resumed,
        f.acked_rows,
        f.stored_rows,
        f.maybe_stored_rows
    );
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_is_replaced_and_ingest_resumes_without_restarting_anything() {
    let f = kill_master_under_load(0, None).await;
    let resumed = f
        .resumed
        .unwrap_or_else(|| panic!("ingest did not resume within 15 s"));
    assert!(resumed < 15.0, "{resumed}");
    assert!(f.refused.iter().all(|&s| s == 503), "{:?}", f.refused);
    assert!(f.acked_rows > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_ack_replicas_no_acknowledged_row_is_lost_in_a_failover() {
    // The promoted replica has no replica of its own until the killed node comes back
    // (as its supervisor restarts it): until then writes are refused, not risked.
    let f = kill_master_under_load(1, Some(Duration::from_secs(3))).await;
    let resumed = f
        .resumed
        .unwrap_or_else(|| panic!("ingest did not resume within 15 s"));
    assert!(resumed < 15.0, "{resumed}");
    assert!(f.refused.iter().all(|&s| s == 503), "{:?}", f.refused);
    assert!(
        f.stored_rows >= f.acked_rows,
        "acknowledged rows were lost: {} acknowledged, {} stored",
        f.acked_rows,
        f.stored_rows
    );
    // Rows stored without a 202 are those whose 503 said they may be stored, and the one
    // request in flight at the kill (its answer was lost with the node).
    assert!(
        f.stored_rows - f.acked_rows <= f.maybe_stored_rows + 10,
        "{} acknowledged, {} stored, {} answered as maybe stored",
        f.acked_rows,
        f.stored_rows,
        f.maybe_stored_rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_replicas_on_one_redis_waits_for_its_replica() {
    let primary = RedisServer::start();
    let mut replica = RedisServer::start();
    let api = spawn_api(&primary.url(), P, |c| c.redis.redis_ack_replicas = 1).await;
    api.wait_ready().await;
    let c = api.client();
    let mut rng = seeded(3);
    let path = format!("/v1/monitors/{MONITOR}/rows");
    // No replica: refused before anything is written.
    let req = c
        .http()
        .post(c.url(&path))
        .json(&reference_rows(&mut rng, 5, None));
    c.error(req, 503, "redis_unavailable").await;
    let store = primary.store(P);
    assert_eq!(store.footprint_seq(MONITOR).await, 0);
    // With a replica in sync, every 202 comes after the replica has the rows.
    let cli = drift_testkit::require_binary("redis-cli", "redis-tools");
    let ok = std::process::Command::new(cli)
        .args(["-p", &replica.port().to_string(), "replicaof", "127.0.0.1"])
        .arg(primary.port().to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "REPLICAOF failed");
    let accepted = eventually(Duration::from_secs(10), || async {
        let req = c
            .http()
            .post(c.url(&path))
            .json(&reference_rows(&mut seeded(4), 5, None));
        (c.send(req).await.0 == 202).then_some(())
    })
    .await;
    assert!(accepted.is_some(), "no 202 once the replica is in sync");
    // Whatever the primary has by the 202 (also rows of 503s while the replica was
    // loading, which said they may be stored), the replica has.
    let replica_store = replica.store(P);
    let stored = store.footprint_seq(MONITOR).await;
    assert!(stored >= 5);
    assert_eq!(replica_store.footprint_seq(MONITOR).await, stored);
    // The replica gone: 503 again, within the operation deadline.
    replica.kill();
    let refused = eventually(Duration::from_secs(10), || async {
        let req = c
            .http()
            .post(c.url(&path))
            .json(&reference_rows(&mut seeded(6), 5, None));
        (c.send(req).await.0 == 503).then_some(())
    })
    .await;
    assert!(refused.is_some(), "still acknowledged without a replica");
}

/// The row counter of a monitor, read through the store.
trait SeqOf {
    async fn footprint_seq(&self, monitor: &str) -> u64;
}

impl SeqOf for drift_store::Store {
    async fn footprint_seq(&self, monitor: &str) -> u64 {
        let cfg = self
            .config(monitor)
            .await
            .unwrap_or_else(|e| panic!("config of {monitor}: {e}"))
            .unwrap_or_else(|| panic!("{monitor} is not registered"));
        self.footprint(&cfg)
            .await
            .unwrap_or_else(|e| panic!("footprint of {monitor}: {e}"))
            .seq
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_protected_cluster_works_and_a_wrong_password_is_a_503() {
    let cluster = RedisCluster::start_with_password(Some("s3cret-pw"));
    assert!(
        cluster.seeds().contains(":s3cret-pw@"),
        "{}",
        cluster.seeds()
    );
    let api = api_on(&cluster, |_| {}).await;
    let _worker = worker_on(&cluster).await;
    let c = api.client();
    let mut rng = seeded(8);
    for _ in 0..6 {
        let (status, body) =
            drift_testkit::rows::post_rows(&c, &reference_rows(&mut rng, 100, None)).await;
        assert_eq!(status, 202, "{body}");
    }
    evaluated_at(&c, MONITOR, 600).await;
    // The same seeds with a wrong password: not ready, and ingest is a 503, not a hang.
    let wrong = cluster.seeds().replace(":s3cret-pw@", ":wrong@");
    let bad = spawn_api(&wrong, P, |c| on_cluster(&wrong)(&mut c.redis)).await;
    let bc = bad.client();
    assert_eq!(bc.status("/readyz").await, Some(503));
    let req = bc
        .http()
        .post(bc.url(&format!("/v1/monitors/{MONITOR}/rows")))
        .json(&reference_rows(&mut rng, 5, None));
    bc.assert_store_unavailable(req, Duration::from_secs(5))
        .await;
}
