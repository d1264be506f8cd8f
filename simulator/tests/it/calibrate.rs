//! `--mode calibrate` end to end: a real stack (Redis, one API with an admin token, two
//! workers), small settings, fixed seeds.

use drift_sim::calibrate::{self, poisson_quantile};
use drift_sim::Args;
use drift_testkit::Stack;
use std::time::Instant;

const TOKEN: &str = "calibration-admin-token";
const ERT: f64 = 200.0;
/// A window of 200 rather than 500: a debug build's exact KS p-value costs about
/// window × 569 steps per feature, which dominates the test's time.
const WINDOW: u64 = 200;
/// No-drift rounds per reference (two references).
const ROUNDS: u64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calibration_counts_false_alarm_rounds_and_detects_a_one_sd_shift() {
    let stack = Stack::builder()
        .prefix("cal")
        .apis(1)
        .workers(2)
        .api_config(|c| c.admin_token = Some(TOKEN.parse().unwrap()))
        .start()
        .await;
    let url = stack.api(0).url();
    let args = Args::parse_from_iter([
        "--mode",
        "calibrate",
        "--target",
        &url,
        "--admin-token",
        TOKEN,
        "--seed",
        "7",
        "--references",
        "2",
        "--rounds",
        &ROUNDS.to_string(),
        "--ert",
        "200",
        "--shifts",
        "1",
        "--scale",
        "1",
        "--detect-runs",
        "2",
        "--max-delay-rows",
        "1000",
        "--window",
        &WINDOW.to_string(),
        "--stride",
        "100",
        "--progress",
        "none",
    ])
    .unwrap();
    let started = Instant::now();
    let report = calibrate::run(args, "drift-sim --mode calibrate (test)".into())
        .await
        .unwrap();
    let text = report.render_text();
    eprintln!("{text}\n(took {:.1} s)", started.elapsed().as_secs_f64());

    assert_eq!(report.plan.reference_rows, 569);
    assert_eq!(report.plan.features, 30);
    assert!(report.cleanup_errors.is_empty(), "{text}");
    let rule = |r: &str| {
        report
            .no_drift
            .iter()
            .find(|n| n.rule.as_str() == r)
            .unwrap_or_else(|| panic!("no {r} in {text}"))
    };
    for r in ["ert", "bonferroni"] {
        let n = rule(r);
        // Every round evaluated, none superseded.
        assert_eq!(n.rounds_planned, 2 * ROUNDS, "{text}");
        assert_eq!(n.rounds_evaluated, 2 * ROUNDS, "{text}");
        assert_eq!(n.stale_jobs, 0, "{text}");
        // Consistent numbers.
        assert!(n.false_alarm_rounds <= n.rounds_evaluated, "{text}");
        assert!(n.streams_with_false_alarms <= n.streams);
        assert_eq!(
            n.per_stream
                .iter()
                .map(|s| s.false_alarm_rounds)
                .sum::<u64>(),
            n.false_alarm_rounds
        );
        assert!(n.rate_upper95 >= n.rate && n.rate_upper95 <= 1.0, "{text}");
        assert!(n.rate_upper95_exact <= n.rate_upper95 + 1e-12);
        if n.false_alarm_rounds == 0 {
            assert_eq!(n.rate_upper95_method, "rule_of_three");
            assert!((n.rate_upper95 - 3.0 / (2 * ROUNDS) as f64).abs() < 1e-12);
        }
        // Episodes never outnumber flagged evaluations (counted rounds plus the warm-up
        // boundary, where any of the 30 features may be flagged).
        let flagged: u64 = n.flagged_rounds_by_feature.values().sum();
        assert!(n.episodes <= flagged + 30 * n.streams, "{text}");
        assert!(flagged >= n.false_alarm_rounds, "{text}");
        let between = n.rounds_between_false_alarms_lower95.unwrap();
        assert!((between * n.rate_upper95 - 1.0).abs() < 1e-9);
    }
    // The ert guarantee: at most rounds / ert false-alarm rounds in expectation; a generous
    // bound is the 99.9 % Poisson quantile of that mean.
    let ert = rule("ert");
    let rounds = (2 * ROUNDS) as f64;
    let bound = poisson_quantile(rounds / ERT, 0.999);
    assert!(
        ert.false_alarm_rounds <= bound,
        "{} > {bound}: {text}",
        ert.false_alarm_rounds
    );
    assert_eq!(ert.guaranteed_false_alarm_rounds, Some(rounds / ERT));
    let ert_params = report
        .rules
        .iter()
        .find(|r| r.rule.as_str() == "ert")
        .unwrap();
    assert_eq!(ert_params.ert, ERT);
    let t = ert_params.statistic_threshold_min.unwrap();
    assert!((0.1..0.3).contains(&t), "{text}");
    let bonf = report
        .rules
        .iter()
        .find(|r| r.rule.as_str() == "bonferroni")
        .unwrap();
    assert!((bonf.p_value_threshold.unwrap() - 0.05 / 30.0).abs() < 1e-12);

    // Detection: a 1-sd shift of mean_radius is seen under ert within two windows.
    assert_eq!(report.plan.window, WINDOW);
    assert_eq!(report.detection.len(), 2, "{text}");
    for d in &report.detection {
        assert_eq!(d.runs, 2);
        assert_eq!(d.rounds_not_evaluated, 0, "{text}");
        assert!(d.other_feature_flag_rounds <= d.rounds);
        if d.rule.as_str() == "ert" {
            assert_eq!(d.detected, 2, "{text}");
            for delay in &d.delays_rows {
                let delay = delay.unwrap();
                assert!(
                    delay % 100 == 0 && (100..=2 * WINDOW).contains(&delay),
                    "{text}"
                );
            }
            assert!(d.median_delay_rows.unwrap() <= d.p90_delay_rows.unwrap());
        }
    }

    // The JSON report carries the same.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["no_drift"][0]["rule"], "ert");
    assert_eq!(json["detection"][0]["case"]["kind"], "shift");
    assert_eq!(json["plan"]["rounds"], ROUNDS);

    // Every calibration monitor is gone.
    let list: serde_json::Value = reqwest::get(format!("{url}/v1/monitors"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["breast_cancer"], "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibration_needs_the_admin_token() {
    let args = Args::parse_from_iter([
        "--mode",
        "calibrate",
        "--target",
        "http://127.0.0.1:9",
        "--progress",
        "none",
    ])
    .unwrap();
    let args = Args {
        admin_token: None,
        ..args
    };
    let e = calibrate::run(args, String::new()).await.unwrap_err();
    assert!(format!("{e:#}").contains("admin token"), "{e:#}");
}
