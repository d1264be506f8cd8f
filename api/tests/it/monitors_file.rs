//! Monitors declared in a TOML file are registered at start-up with their own references.

use drift_testkit::{spawn_api, RedisServer, TempDir};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_from_the_config_file_are_registered() {
    let redis = RedisServer::start();
    let dir = TempDir::new("monitors");
    std::fs::write(
        dir.path().join("ref.csv"),
        "a,b,label\n1,2,0\n3,4,1\n5,6,0\n",
    )
    .unwrap();
    let toml = dir.path().join("monitors.toml");
    std::fs::write(
        &toml,
        "[[monitor]]\nname = \"fraud\"\nreference = \"ref.csv\"\nexclude = [\"label\"]\nwindow = 20\nstride = 5\ncorrection = \"bh\"\nsample_rate = 0.5\n",
    )
    .unwrap();
    let srv = spawn_api(&redis.url(), "mf", |c| {
        c.monitors_config = Some(toml.clone())
    })
    .await;
    srv.wait_ready().await;
    let api = srv.client();
    let v: Value = api.get("/v1/monitors/fraud", 200).await;
    assert_eq!(v["features"], serde_json::json!(["a", "b"]));
    assert_eq!(v["params"]["window"], 20);
    assert_eq!(v["params"]["correction"], "bh");
    assert_eq!(v["params"]["sample_rate"], 0.5);
    assert_eq!(v["reference_rows"], 3);
    let list: Value = api.get("/v1/monitors", 200).await;
    assert_eq!(list["monitors"].as_array().unwrap().len(), 2, "{list}");
}

#[test]
fn a_bad_config_file_stops_start_up_with_a_clear_error() {
    let dir = TempDir::new("monitors-bad");
    let toml = dir.path().join("monitors.toml");
    std::fs::write(
        &toml,
        "[[monitor]]\nname = \"x\"\nreference = \"missing.csv\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drift-api"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--monitors-config",
            toml.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.csv"), "{err}");
}

#[test]
fn a_sample_rate_outside_zero_to_one_is_refused_with_the_monitor_named() {
    let dir = TempDir::new("monitors-rate");
    std::fs::write(dir.path().join("ref.csv"), "a\n1\n2\n3\n").unwrap();
    let toml = dir.path().join("monitors.toml");
    let defaults = drift_core::Params {
        correction: drift_core::Correction::Bonferroni,
        ..drift_core::Params::default()
    };
    for bad in ["0", "1.5", "-1", "nan"] {
        std::fs::write(
            &toml,
            format!("[[monitor]]\nname = \"hot\"\nreference = \"ref.csv\"\nsample_rate = {bad}\n"),
        )
        .unwrap();
        let err = drift_api::monitors_file::load(&toml, &defaults).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("`hot`") && msg.contains("sample_rate"),
            "{bad}: {msg}"
        );
    }
    std::fs::write(
        &toml,
        "[[monitor]]\nname = \"hot\"\nreference = \"ref.csv\"\n",
    )
    .unwrap();
    let specs = drift_api::monitors_file::load(&toml, &defaults).unwrap();
    assert_eq!(specs[0].config.params.sample_rate, 1.0);
}
