//! A mixed-type monitor end to end, through the API and the workers: created by `PUT` from
//! a CSV with numeric columns, string categories, an integer column declared categorical
//! and empty cells; fed rows with strings, integers and nulls. A long no-drift stream
//! raises at most one flagged round in 500, and each kind of drift a categorical or
//! missing-value feature can show (a category's share, a new category, a missing share,
//! a shift between integer codes) flags exactly its feature within 1,500 rows.
//!
//! Reference and stream are drawn from the same known model, so the null truly holds.

use drift_testkit::Stack;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const TOKEN: &str = "mixed-admin";
const WINDOW: u64 = 500;
const STRIDE: u64 = 100;
const FEATURES: [&str; 5] = ["amount", "latency", "plan", "device", "region"];

/// What the stream of one run changes from the onset on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Drift {
    None,
    /// `plan = team` from 20% to 45% of rows (the others shrink in proportion).
    PlanShare,
    /// `device = tv`, a value the reference never had, in 20% of rows.
    NewDevice,
    /// `latency` missing in 35% of rows instead of 5%.
    LatencyMissing,
    /// `region` 1 no longer sent, its quarter of the rows going to region 4.
    RegionShift,
}

fn pick<'a>(rng: &mut StdRng, items: &[(&'a str, f64)]) -> &'a str {
    let mut u: f64 = rng.random();
    for (name, p) in items {
        if u < *p {
            return name;
        }
        u -= p;
    }
    items[items.len() - 1].0
}

/// One row of the model: amount lognormal with 5% missing, latency normal with 5%
/// missing, plan and device string categories, region an integer code (sent as a JSON
/// integer, or as its string for every other row: the same category).
fn row(rng: &mut StdRng, drift: Drift, i: usize) -> Vec<Value> {
    let normal = |rng: &mut StdRng| -> f64 {
        // Box-Muller
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let amount = if rng.random::<f64>() < 0.05 {
        Value::Null
    } else {
        json!((3.0 + 0.8 * normal(rng)).exp())
    };
    let latency_missing = if drift == Drift::LatencyMissing {
        0.35
    } else {
        0.05
    };
    let latency = if rng.random::<f64>() < latency_missing {
        Value::Null
    } else {
        json!(120.0 + 15.0 * normal(rng))
    };
    let plan = if drift == Drift::PlanShare {
        pick(rng, &[("basic", 0.34375), ("pro", 0.20625), ("team", 0.45)])
    } else {
        pick(rng, &[("basic", 0.5), ("pro", 0.3), ("team", 0.2)])
    };
    let device = if drift == Drift::NewDevice {
        pick(
            rng,
            &[("ios", 0.32), ("android", 0.32), ("web", 0.16), ("tv", 0.2)],
        )
    } else {
        pick(rng, &[("ios", 0.4), ("android", 0.4), ("web", 0.2)])
    };
    let region: u64 = if drift == Drift::RegionShift {
        [2, 3, 4, 4][rng.random_range(0..4)]
    } else {
        rng.random_range(1..=4)
    };
    let region = if i % 2 == 0 {
        json!(region)
    } else {
        json!(region.to_string())
    };
    vec![amount, latency, json!(plan), json!(device), region]
}

/// The reference CSV: 2,000 rows of the no-drift model, missing values as empty cells
/// and `NA`, and a label column to exclude.
fn reference_csv(rng: &mut StdRng) -> String {
    let mut s = format!("{},label\n", FEATURES.join(","));
    for i in 0..2000 {
        let cells: Vec<String> = row(rng, Drift::None, i)
            .into_iter()
            .enumerate()
            .map(|(j, v)| match v {
                Value::Null if j == 0 => String::new(),
                Value::Null => "NA".into(),
                Value::String(s) => s,
                v => v.to_string(),
            })
            .collect();
        s.push_str(&format!("{},{}\n", cells.join(","), i % 2));
    }
    s
}

fn batch(rng: &mut StdRng, drift: Drift, n: u64) -> Value {
    let data: Vec<Vec<Value>> = (0..n as usize).map(|i| row(rng, drift, i)).collect();
    json!({"columns": FEATURES, "data": data})
}

struct Monitor {
    client: drift_testkit::Client,
    name: String,
}

impl Monitor {
    async fn post(&self, body: &Value) -> u64 {
        let path = format!("/v1/monitors/{}/rows", self.name);
        let done: Value = self.client.post(&path, body, 202).await;
        done["seq"].as_u64().unwrap_or_default()
    }

    async fn view(&self) -> Value {
        self.client
            .get(&format!("/v1/monitors/{}", self.name), 200)
            .await
    }

    /// Waits until every feature's latest result is for row `seq`.
    async fn wait(&self, seq: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.view().await;
            let done = v["results"]
                .as_object()
                .is_some_and(|r| r.values().all(|r| r["seq"].as_u64() == Some(seq)));
            if done {
                return v;
            }
            assert!(Instant::now() < deadline, "seq {seq} not evaluated: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The recorded evaluations: (feature, seq, drifted).
    async fn history(&self) -> Vec<(String, u64, bool)> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/monitors/{}/history?after={a}", self.name),
                None => format!("/v1/monitors/{}/history", self.name),
            };
            let page: Value = self.client.get(&path, 200).await;
            let entries = page["entries"].as_array().cloned().unwrap_or_default();
            let Some(last) = entries.last() else {
                return out;
            };
            after = last["id"].as_str().map(str::to_string);
            for e in &entries {
                out.push((
                    e["feature"].as_str().unwrap_or_default().to_string(),
                    e["seq"].as_u64().unwrap_or_default(),
                    e["drifted"].as_bool() == Some(true),
                ));
            }
        }
    }
}

async fn create(stack: &Stack, name: &str, csv: &str) -> Monitor {
    let client = stack.client();
    let url = format!(
        "/v1/monitors/{name}?window={WINDOW}&stride={STRIDE}&exclude=label&categorical=region"
    );
    let req = client
        .http()
        .put(client.url(&url))
        .bearer_auth(TOKEN)
        .body(csv.to_string());
    let put: Value = client.call(req, 201).await;
    assert_eq!(put["outcome"], "new_version", "{put}");
    Monitor {
        client,
        name: name.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mixed_monitor_detects_each_kind_of_drift_on_its_feature_only() {
    let stack = Stack::builder()
        .prefix("mixed")
        .apis(1)
        .workers(2)
        .exporter()
        .api_config(|c| c.admin_token = Some(drift_api::config::Secret(TOKEN.into())))
        .start()
        .await;
    let mut rng = StdRng::seed_from_u64(13);
    let csv = reference_csv(&mut rng);

    // Kinds as inferred and declared, with the reference's missing shares.
    let quiet = create(&stack, "mixed_null", &csv).await;
    let v = quiet.view().await;
    let kinds: BTreeMap<String, String> = serde_json::from_value(v["kinds"].clone()).unwrap();
    let want: BTreeMap<String, String> = [
        ("amount", "numeric"),
        ("latency", "numeric"),
        ("plan", "categorical"),
        ("device", "categorical"),
        ("region", "categorical"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds, want, "{v}");
    assert_eq!(v["categories"]["region"], json!(["1", "2", "3", "4"]));
    assert_eq!(v["categories"]["plan"], json!(["basic", "pro", "team"]));

    // Bad mixed input: 422 naming the column, and nothing stored.
    let path = "/v1/monitors/mixed_null/rows";
    let mut bad = batch(&mut rng, Drift::None, 3);
    bad["data"][2][1] = json!("fast");
    let req = quiet.client.http().post(quiet.client.url(path)).json(&bad);
    let msg = quiet.client.error(req, 422, "invalid_value").await;
    assert!(msg.contains("row 2, column `latency`"), "{msg}");
    for (cell, value) in [(2, json!(1.5)), (3, json!(true)), (4, json!([1]))] {
        let mut bad = batch(&mut rng, Drift::None, 2);
        bad["data"][1][cell] = value;
        let req = quiet.client.http().post(quiet.client.url(path)).json(&bad);
        let msg = quiet.client.error(req, 422, "invalid_value").await;
        assert!(msg.contains(FEATURES[cell]), "{msg}");
    }
    assert_eq!(
        quiet.view().await["rows"],
        0,
        "a rejected batch stored rows"
    );

    // No drift: at least 500 evaluated rounds, at most one of them flagged.
    let mut seq = 0;
    let mut rounds = 0;
    let mut flagged = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while rounds < 500 {
        assert!(Instant::now() < deadline, "only {rounds} rounds evaluated");
        for _ in 0..50 {
            seq = quiet.post(&batch(&mut rng, Drift::None, STRIDE)).await;
        }
        quiet.wait(seq).await;
        let history = quiet.history().await;
        let mut per_feature: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
        flagged.clear();
        for (f, s, d) in &history {
            per_feature.entry(f.as_str()).or_default().insert(*s);
            if *d {
                flagged.insert(*s);
            }
        }
        rounds = per_feature.values().map(BTreeSet::len).min().unwrap_or(0);
    }
    let v = quiet.view().await;
    assert!(
        flagged.len() <= 1,
        "{} flagged rounds in {rounds} without drift: {flagged:?}",
        flagged.len()
    );
    // The latest results carry every field a user reads.
    let lat = &v["results"]["latency"];
    assert_eq!(lat["kind"], "numeric");
    assert_eq!(lat["signals"][0]["signal"], "distribution");
    assert_eq!(lat["signals"][1]["signal"], "missing");
    assert!(lat["reference_missing_share"].as_f64().unwrap() > 0.03);
    assert!(
        lat["effects"]["wasserstein_normed"].as_f64().is_some(),
        "{lat}"
    );
    let dev = &v["results"]["device"];
    assert_eq!(dev["kind"], "categorical");
    assert_eq!(dev["signals"][0]["test"], "tv");
    assert_eq!(dev["unseen_share"], 0.0);
    assert!(dev["effects"]["psi"].as_f64().is_some(), "{dev}");

    // Each drift on a monitor of its own: flagged within 1,500 rows, on its feature only.
    let mut delays = Vec::new();
    for (drift, feature, signal) in [
        (Drift::PlanShare, "plan", "distribution"),
        (Drift::NewDevice, "device", "distribution"),
        (Drift::LatencyMissing, "latency", "missing"),
        (Drift::RegionShift, "region", "distribution"),
    ] {
        let name = format!("mixed_{feature}");
        let m = create(&stack, &name, &csv).await;
        let onset = m.post(&batch(&mut rng, Drift::None, WINDOW)).await;
        m.wait(onset).await;
        let mut found = None;
        for _ in 0..15 {
            let s = m.post(&batch(&mut rng, drift, STRIDE)).await;
            let v = m.wait(s).await;
            if v["results"][feature]["drifted"] == true {
                let r = &v["results"][feature];
                let fired: Vec<&str> = r["signals"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| s["fired"] == true)
                    .filter_map(|s| s["signal"].as_str())
                    .collect();
                assert!(fired.contains(&signal), "{drift:?}: fired {fired:?}: {r}");
                if drift == Drift::NewDevice {
                    assert!(r["unseen_share"].as_f64().unwrap() > 0.1, "{r}");
                }
                found = Some(s - onset);
                break;
            }
        }
        let delay = found.unwrap_or_else(|| panic!("{drift:?} not flagged within 1,500 rows"));
        let others: BTreeSet<String> = m
            .history()
            .await
            .into_iter()
            .filter(|(f, _, d)| *d && f != feature)
            .map(|(f, _, _)| f)
            .collect();
        assert!(others.is_empty(), "{drift:?} also flagged {others:?}");
        delays.push((drift, delay));
    }
    eprintln!(
        "no-drift: {} flagged rounds in {rounds}; delays (rows): {delays:?}",
        flagged.len()
    );
}
