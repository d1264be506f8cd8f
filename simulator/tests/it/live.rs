//! Whole runs against a live API and two workers on a real Redis.

use drift_core::SignalKind;
use drift_sim::{run, Args};
use drift_testkit::Stack;
use std::time::{Duration, Instant};

/// A seed whose population draw sits well inside the reference's sampling noise: its
/// no-drift windows never come near the Bonferroni level (min p about 0.04 over 3000 rows),
/// so the no-drift run is clean whatever order concurrent batches land in.
const SEED: &str = "36";

/// Slow enough for two debug-build workers sharing two cores with the API and the test to
/// evaluate most boundaries before the next one supersedes them.
const RATE: &str = "500";

/// Redis, one API (default monitor: window 500, stride 100) and two workers.
async fn stack() -> Stack {
    Stack::builder()
        .prefix("sim")
        .apis(1)
        .workers(2)
        .start()
        .await
}

fn args(target: &str, extra: &[&str]) -> Args {
    let mut all = vec![
        "--target",
        target,
        "--seed",
        SEED,
        "--batch",
        "50",
        "--concurrency",
        "2",
        "--progress",
        "none",
        "--watch-interval-ms",
        "100",
        "--watch-timeout",
        "30",
    ];
    all.extend_from_slice(extra);
    Args::parse_from_iter(all).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_drift_raises_no_false_alarm() {
    let stack = stack().await;
    let summary = run(args(
        &stack.api(0).url(),
        &[
            "--drift", "false", "--rows", "3000", "--rate", RATE, "--watch",
        ],
    ))
    .await
    .unwrap();
    eprintln!("{}", summary.render_text());
    let counts = &summary.counts;
    assert_eq!(counts.rows_accepted, 3000, "{}", summary.render_text());
    assert!(counts.errors.is_empty(), "{:?}", counts.errors);
    assert_eq!(summary.seq_last, Some(3000));
    let w = summary.watch.as_ref().unwrap();
    assert_eq!(w.false_alarms, 0, "{}", summary.render_text());
    assert!(!w.detection.detected);
    // Most of the 26 boundaries were evaluated (a few may be superseded on a busy machine),
    // so "no false alarm" covers the run, not just its last window.
    assert!(w.boundaries_evaluated >= 10, "{}", summary.render_text());
    assert_eq!(w.final_boundary, Some(3000));
    assert!(w.final_boundary_evaluated, "{}", summary.render_text());
    assert!(summary.latency_ms.p50.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_sd_shift_is_detected_and_the_delay_reported() {
    let stack = stack().await;
    let summary = run(args(
        &stack.api(0).url(),
        &[
            "--drift",
            "true",
            "--drift-kind",
            "shift",
            "--drift-features",
            "mean_radius",
            "--drift-magnitude",
            "1",
            "--drift-after",
            "1000",
            "--rows",
            "2500",
            "--rate",
            RATE,
            "--watch",
        ],
    ))
    .await
    .unwrap();
    let text = summary.render_text();
    eprintln!("{text}");
    assert_eq!(summary.counts.rows_accepted, 2500, "{text}");
    let w = summary.watch.as_ref().unwrap();
    // Batches of 50 land whole, so the first drifted row is server row 1001 whatever the
    // order of the two concurrent requests.
    assert_eq!(w.onset_seq, Some(1001), "{text}");
    let d = &w.detection;
    assert!(d.detected, "{text}");
    assert_eq!(d.feature.as_deref(), Some("mean_radius"));
    let delay = d.delay_rows.unwrap();
    assert!((1..=1500).contains(&delay), "{text}");
    assert_eq!(d.delay_rows, d.seq.map(|s| s - 1001 + 1));
    assert!(d.delay_seconds.unwrap() > -1.0, "{text}");
    assert_eq!(w.false_alarms, 0, "{text}");
    // The JSON summary carries the delay.
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["watch"]["delay_rows"].as_u64(), Some(delay));
    assert_eq!(json["watch"]["detected"], true);
    assert_eq!(json["drift"]["features"][0], "mean_radius");
    assert_eq!(json["rows_accepted"], 2500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_monitor_and_feature_are_errors() {
    let stack = stack().await;
    let url = stack.api(0).url();
    let e = run(args(&url, &["--monitor", "nope", "--rows", "10"]))
        .await
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("unknown monitor \"nope\""), "{msg}");
    assert!(
        msg.contains("breast_cancer"),
        "lists the known monitors: {msg}"
    );

    let e = run(args(
        &url,
        &[
            "--drift",
            "true",
            "--drift-features",
            "mean_radius,tumour_colour",
            "--rows",
            "10",
        ],
    ))
    .await
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("unknown feature \"tumour_colour\""), "{msg}");

    let e = run(args(
        &url,
        &["--drift", "true", "--drift-kind", "swap", "--rows", "10"],
    ))
    .await
    .unwrap_err();
    assert!(format!("{e:#}").contains("exactly 2"), "{e:#}");

    // Nothing was sent by the failed runs.
    let view: serde_json::Value = reqwest::get(format!("{url}/v1/monitors/breast_cancer"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["rows"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_fails_fast() {
    let port = drift_testkit::free_port();
    let started = Instant::now();
    let e = run(args(&format!("http://127.0.0.1:{port}"), &["--rows", "10"]))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let msg = format!("{e:#}");
    assert!(msg.contains("cannot reach the target"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn predict_mode_streams_to_the_model_and_errors_are_counted() {
    let stack = Stack::builder()
        .prefix("sim")
        .apis(1)
        .workers(2)
        .api_config(|c| c.max_batch_rows = 100)
        .start()
        .await;
    let url = stack.api(0).url();
    let summary = run(args(
        &url,
        &["--mode", "predict", "--rows", "200", "--batch", "20"],
    ))
    .await
    .unwrap();
    let counts = &summary.counts;
    assert_eq!(counts.rows_accepted, 200, "{}", summary.render_text());
    assert_eq!(counts.requests_ok, 10);
    // The predicted rows are logged to the default monitor off the response path.
    let logged = drift_testkit::eventually(Duration::from_secs(10), || async {
        let view: serde_json::Value = reqwest::get(format!("{url}/v1/monitors/breast_cancer"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (view["rows"] == 200).then_some(())
    })
    .await;
    assert!(logged.is_some(), "predicted rows were not logged");

    // With --watch, the onset is estimated from the rows accepted (answers carry no seq):
    // 200 rows at start + 100 before the drift + 1, exact with one request at a time.
    let summary = run(args(
        &url,
        &[
            "--mode",
            "predict",
            "--drift",
            "true",
            "--drift-after",
            "100",
            "--rows",
            "700",
            "--batch",
            "20",
            "--concurrency",
            "1",
            "--rate",
            "500",
            "--watch",
        ],
    ))
    .await
    .unwrap();
    let text = summary.render_text();
    eprintln!("{text}");
    let w = summary.watch.as_ref().unwrap();
    assert_eq!(w.onset_seq, Some(301), "{text}");
    assert!(w.onset_estimated);
    assert_eq!(w.final_boundary, Some(900), "{text}");
    assert!(w.final_boundary_evaluated, "{text}");
    assert!(w.detection.detected, "{text}");
    assert!(w.detection.delay_rows.unwrap() <= 600, "{text}");

    // Batches above the API's limit are rejected whole and counted by kind.
    let summary = run(args(&url, &["--rows", "300", "--batch", "150"]))
        .await
        .unwrap();
    assert_eq!(summary.counts.rows_accepted, 0);
    assert_eq!(
        summary.counts.errors.get("http_413_payload_too_large"),
        Some(&2),
        "{:?}",
        summary.counts.errors
    );
}

/// The example monitors config (data/monitors.toml: the penguins monitor, window 300,
/// stride 50) on one API and two workers.
async fn penguins_stack() -> Stack {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/monitors.toml");
    Stack::builder()
        .prefix("sim")
        .apis(1)
        .workers(2)
        .api_config(move |c| c.monitors_config = Some(config.clone()))
        .start()
        .await
}

fn penguins_args(target: &str, extra: &[&str]) -> Args {
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/penguins.csv");
    let mut all = vec!["--monitor", "penguins", "--reference", reference];
    all.extend_from_slice(extra);
    args(target, &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn penguins_rows_stream_with_categories_and_missing_values_and_their_drift_is_flagged() {
    let stack = penguins_stack().await;
    let url = stack.api(0).url();
    // No drift: every row accepted (strings for the categories, null for missing values:
    // a value of the wrong kind would be a 422), no alarm.
    let summary = run(penguins_args(
        &url,
        &[
            "--drift", "false", "--rows", "1500", "--rate", RATE, "--watch",
        ],
    ))
    .await
    .unwrap();
    let text = summary.render_text();
    eprintln!("{text}");
    assert_eq!(summary.counts.rows_accepted, 1500, "{text}");
    assert!(summary.counts.errors.is_empty(), "{text}");
    let w = summary.watch.as_ref().unwrap();
    assert_eq!(w.false_alarms, 0, "{text}");
    assert!(w.final_boundary_evaluated, "{text}");
    // The window holds the generated shares: missing values reached the monitor.
    let view: serde_json::Value = reqwest::get(format!("{url}/v1/monitors/penguins"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sex = &view["results"]["sex"];
    assert_eq!(sex["kind"], "categorical", "{sex}");
    assert!(sex["missing_share"].as_f64().unwrap() > 0.0, "{sex}");

    // Chinstrap's share 0.2 -> 0.6 from the 300th row on: flagged on species only.
    let summary = run(penguins_args(
        &url,
        &[
            "--drift",
            "true",
            "--drift-kind",
            "category-share",
            "--drift-features",
            "species",
            "--drift-category",
            "Chinstrap",
            "--drift-magnitude",
            "0.6",
            "--drift-after",
            "300",
            "--rows",
            "1200",
            "--rate",
            RATE,
            "--watch",
        ],
    ))
    .await
    .unwrap();
    let text = summary.render_text();
    eprintln!("{text}");
    assert_eq!(summary.counts.rows_accepted, 1200, "{text}");
    let w = summary.watch.as_ref().unwrap();
    assert!(w.detection.detected, "{text}");
    assert_eq!(w.detection.feature.as_deref(), Some("species"), "{text}");
    assert!(w.detection.delay_rows.unwrap() <= 300, "{text}");

    // Missing body masses 0.006 -> 0.3, and an island the reference never had.
    for extra in [
        &[
            "--drift-kind",
            "missing",
            "--drift-features",
            "body_mass_g",
            "--drift-magnitude",
            "0.3",
        ][..],
        &[
            "--drift-kind",
            "new-category",
            "--drift-features",
            "island",
            "--drift-magnitude",
            "0.3",
        ],
    ] {
        let mut all = vec![
            "--drift",
            "true",
            "--drift-after",
            "300",
            "--rows",
            "1200",
            "--rate",
            RATE,
            "--watch",
        ];
        all.extend_from_slice(extra);
        let summary = run(penguins_args(&url, &all)).await.unwrap();
        let text = summary.render_text();
        eprintln!("{text}");
        assert_eq!(summary.counts.rows_accepted, 1200, "{text}");
        let w = summary.watch.as_ref().unwrap();
        assert!(w.detection.detected, "{text}");
        assert_eq!(w.detection.feature.as_deref(), Some(extra[3]), "{text}");
        let signal = if extra[1] == "missing" {
            SignalKind::Missing
        } else {
            SignalKind::Distribution
        };
        assert_eq!(w.detection.signals, [signal], "{text}");
    }
}
