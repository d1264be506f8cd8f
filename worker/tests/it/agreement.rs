//! One decision rule, read the same everywhere: after a run with drift on some features,
//! the API status, the exporter's gauges and the evaluation history all show exactly what
//! `drift_core::alarm` decides on the stored p-values (statistics and thresholds under
//! `ert`), for every rule, and agree on alarm episodes.

use drift_core::alarm::{dataset_drift_min_features, decide, feature_p_value};
use drift_core::Correction;
use drift_testkit::rows::*;
use drift_testkit::Stack;
use std::collections::HashMap;
use std::time::Duration;

/// `name{labels} value` lines of one metric family, keyed by the feature label (or "" when
/// the series has none).
fn series(text: &str, name: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| {
            let (head, value) = l.rsplit_once(' ')?;
            let feature = head
                .split_once("feature=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or("", |(f, _)| f);
            Some((feature.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn check(correction: Correction) {
    let stack = Stack::builder()
        .prefix("agree")
        .apis(1)
        .workers(2)
        .exporter()
        .api_config(move |c| {
            c.window = 100;
            c.stride = 50;
            c.correction = correction;
            c.dataset_drift_share = 0.05;
        })
        .start()
        .await;
    let client = stack.client();
    let mut rng = rng(21);
    // A strong and a faint shift, so that rules differ at the margin, over several rounds.
    // The strong one stays over the ert threshold (0.33 at window 100) when the final round
    // tops the window up with unshifted rows.
    for _ in 0..6 {
        let mut body = rows(&mut rng, 50, Some(("mean_radius", 3.0)));
        let faint = rows(&mut rng, 50, Some(("mean_texture", 0.6)));
        let i = body["columns"]
            .as_array()
            .and_then(|c| c.iter().position(|n| n == "mean_texture"))
            .unwrap_or_default();
        if let (Some(data), Some(other)) = (body["data"].as_array_mut(), faint["data"].as_array()) {
            for (row, o) in data.iter_mut().zip(other) {
                row[i] = o[i].clone();
            }
        }
        let (status, b) = post_rows(&client, &body).await;
        assert_eq!(status, 202, "{b}");
    }
    let seq = final_round(&client, 50).await;
    wait_evaluated(&client, seq, Duration::from_secs(30)).await;
    let view = monitor_view(&client).await;
    let cfg = stack
        .store()
        .config(MONITOR)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{MONITOR} not registered"));
    let features = &cfg.features;
    let result = |f: &String| view.results.get(f).cloned().flatten();
    let p: Vec<Option<f64>> = features
        .iter()
        .map(|f| result(f).map(|r| r.p_value))
        .collect();
    // What the per-evaluation rules rank: each feature's p-value over its signals.
    let pf: Vec<Option<f64>> = features
        .iter()
        .map(|f| result(f).map(|r| feature_p_value(r.details.signals.iter().map(|s| s.p_value))))
        .collect();
    let api_flags: Vec<bool> = features
        .iter()
        .map(|f| result(f).is_some_and(|r| r.drifted))
        .collect();
    let want = match correction {
        Correction::Ert => features
            .iter()
            .enumerate()
            .map(|(i, f)| {
                result(f).is_some_and(|r| {
                    // No value is missing: the window's threshold is the full window's.
                    assert_eq!(r.threshold, cfg.threshold(i), "stored threshold of {f}");
                    assert_eq!(r.details.signals[0].threshold, cfg.threshold(i));
                    assert_eq!(r.details.signals[0].statistic, Some(r.statistic));
                    r.details.signals.iter().any(|s| s.exceeds())
                })
            })
            .collect(),
        _ => decide(&pf, cfg.params.alpha, correction),
    };
    assert_eq!(
        api_flags, want,
        "{correction}: API flags differ from the rule"
    );
    let n = want.iter().filter(|f| **f).count();
    assert!(
        n >= 1,
        "{correction}: nothing flagged, the test proves nothing"
    );
    assert_eq!(view.features_drifting, n as u64, "{correction}");
    assert_eq!(
        view.dataset_drifted,
        n >= dataset_drift_min_features(cfg.params.dataset_drift_share, features.len()),
        "{correction}"
    );

    let text = stack.exporter().metrics().await;
    let drifted = series(&text, "drift_feature_drifted");
    let pvals = series(&text, "drift_feature_p_value");
    for (i, f) in features.iter().enumerate() {
        assert_eq!(
            drifted.get(f),
            Some(&f64::from(u8::from(want[i]))),
            "{correction}: exporter {f}"
        );
        assert_eq!(
            pvals.get(f).copied(),
            p[i],
            "{correction}: exporter p of {f}"
        );
    }
    assert_eq!(
        series(&text, "drift_features_drifting").get(""),
        Some(&(n as f64))
    );
    let thresholds = series(&text, "drift_feature_threshold");
    let alarms = series(&text, "drift_feature_alarm");
    let episodes = series(&text, "drift_alarm_episodes_total");
    let history_all = stack.store().history(&cfg, None, 100_000).await.unwrap();
    let mut total_episodes = 0;
    for (i, f) in features.iter().enumerate() {
        assert_eq!(
            thresholds.get(f).copied(),
            cfg.threshold(i),
            "{correction}: exporter threshold of {f}"
        );
        let r = result(f);
        let (api_alarm, api_episodes) = r.as_ref().map_or((false, 0), |r| (r.alarm, r.episodes));
        assert_eq!(
            alarms.get(f),
            Some(&f64::from(u8::from(api_alarm))),
            "{correction}: alarm of {f}"
        );
        assert_eq!(
            episodes.get(f),
            Some(&(api_episodes as f64)),
            "{correction}: episodes of {f}"
        );
        let started = history_all
            .iter()
            .filter(|h| &h.feature == f && h.episode)
            .count() as u64;
        let exceeded = history_all
            .iter()
            .filter(|h| &h.feature == f && h.drifted)
            .count() as u64;
        assert_eq!(
            started, api_episodes,
            "{correction}: history's episodes of {f}"
        );
        assert!(
            api_episodes <= exceeded,
            "{correction}: more episodes than exceedances for {f}"
        );
        if correction.is_local() && want[i] {
            assert!(
                api_episodes >= 1,
                "{correction}: {f} flagged without an episode"
            );
        }
        total_episodes += api_episodes;
    }
    assert_eq!(
        view.counters.episodes, total_episodes,
        "{correction}: monitor episodes"
    );

    let history = stack.store().history(&cfg, None, 100_000).await.unwrap();
    let last = history
        .last()
        .unwrap_or_else(|| panic!("{correction}: empty history"));
    assert_eq!(
        last.features_drifting, n as u64,
        "{correction}: history's last count"
    );
    let mut last_of: HashMap<&str, bool> = HashMap::new();
    for h in &history {
        last_of.insert(h.feature.as_str(), h.drifted);
    }
    if correction.is_local() {
        for (i, f) in features.iter().enumerate() {
            assert_eq!(
                last_of.get(f.as_str()),
                Some(&want[i]),
                "{correction}: history of {f}"
            );
        }
    } else {
        let i = cfg.feature_index(&last.feature).unwrap_or_default();
        assert_eq!(last.drifted, want[i], "{correction}: history's last flag");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_exporter_and_history_agree_with_the_rule_under_ert() {
    check(Correction::Ert).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_exporter_and_history_agree_with_the_rule_under_bonferroni() {
    check(Correction::Bonferroni).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_exporter_and_history_agree_with_the_rule_under_bh() {
    check(Correction::Bh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_exporter_and_history_agree_with_the_rule_without_correction() {
    check(Correction::None).await;
}
