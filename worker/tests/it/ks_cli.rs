//! `drift-worker ks` matches scipy on every public test vector, through the binary.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../core/tests/data/ks_public.json"
);

fn close(a: f64, b: f64) -> bool {
    (a <= 1e-300 && b <= 1e-300) || ((a - b).abs() <= 1e-9 * b.abs().max(a.abs()))
}

fn check(out: &str, cases: &[Value]) {
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert_eq!(lines.len(), cases.len());
    let mut bad = Vec::new();
    for (got, want) in lines.iter().zip(cases) {
        assert_eq!(got["name"], want["name"]);
        let ok = (got["statistic"].as_f64().unwrap() - want["statistic"].as_f64().unwrap()).abs()
            <= 1e-15
            && close(
                got["pvalue"].as_f64().unwrap(),
                want["pvalue"].as_f64().unwrap(),
            )
            && got["statistic_location"].as_f64() == want["statistic_location"].as_f64()
            && got["statistic_sign"] == want["statistic_sign"]
            && got["effective_method"] == want["effective_method"];
        if !ok {
            bad.push(format!("{}: got {got}", want["name"]));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn every_public_vector_matches_through_the_cli() {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drift-worker"))
        .args(["ks", "--cases", VECTORS, "--timing"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(&String::from_utf8(out.stdout).unwrap(), cases);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    let secs: f64 = last
        .strip_prefix("compute_seconds=")
        .unwrap_or_else(|| panic!("last stderr line is `{last}`"))
        .parse()
        .unwrap();
    assert!(secs >= 0.0 && secs.is_finite());
}

#[test]
fn reads_cases_from_standard_input() {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    let first: Vec<Value> = doc["cases"].as_array().unwrap()[..5].to_vec();
    let input = serde_json::json!({"meta": {}, "cases": first}).to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drift-worker"))
        .args(["ks", "--cases", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    check(&String::from_utf8(out.stdout).unwrap(), &first);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_drift-worker"))
        .args(["ks", "--cases", "/nonexistent/cases.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cases.json"));
}
