//! Property-based fuzzing of the ingest body parser and validator: no input panics, every
//! rejection is a 4xx with a code, and what is accepted is complete: finite numbers, or NaN
//! where the batch had a missing value (`null`, or a key left out of a row object).
//! `FUZZ_CASES=200000 cargo test -p drift-api --test fuzz_batch` runs it for minutes.

use drift_api::batch::parse_rows_body;
use drift_api::routes::datadrift::snake;
use drift_core::{Correction, Dataset, MonitorConfig, MonitorSpec, Params};
use proptest::prelude::*;
use serde_json::{json, Value};

fn cfg() -> MonitorConfig {
    let ds = Dataset::from_csv("a,b_c,d\n1,2,3\n".as_bytes(), &[]).unwrap();
    // One reference row: no ert threshold is reachable, a per-evaluation rule is.
    let params = Params {
        correction: Correction::Bonferroni,
        ..Params::default()
    };
    MonitorSpec::new("m", &ds, params, 10).unwrap().config
}

fn check(body: &[u8]) {
    let cfg = cfg();
    let out = parse_rows_body(body).and_then(|b| b.into_feature_columns(&cfg, 50, snake));
    match out {
        Ok(cols) => {
            assert_eq!(cols.len(), 3);
            let n = cols[0].len();
            assert!((1..=50).contains(&n));
            // Every feature is numeric here: a value is finite or missing (NaN), never
            // infinite.
            assert!(cols
                .iter()
                .all(|c| c.len() == n && c.iter().all(|v| v.is_finite() || v.is_nan())));
            let text = std::str::from_utf8(body).unwrap_or("");
            if cols.iter().flatten().any(|v| v.is_nan()) {
                assert!(
                    text.contains("null") || text.contains("\"rows\""),
                    "a missing value without a null or a row object: {text}"
                );
            }
        }
        Err(e) => {
            assert!(e.status().is_client_error(), "{:?}", e);
            assert!(!e.code.as_str().is_empty() && !e.message.is_empty());
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just("a"),
            Just("b c"),
            Just("b_c"),
            Just("d"),
            Just("x"),
            Just("")
        ]
        .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("columns".to_string()),
                    Just("data".to_string()),
                    Just("rows".to_string()),
                    Just("features".to_string()),
                    Just("a".to_string()),
                    Just("d".to_string()),
                    ".{0,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies close to valid: right keys, mostly right columns, rows of varying arity and type.
fn near_valid() -> impl Strategy<Value = Value> {
    let col = prop_oneof![Just("a"), Just("b c"), Just("b_c"), Just("d"), Just("zz")];
    let cell = prop_oneof![
        8 => (-1e6f64..1e6).prop_map(|f| json!(f)),
        1 => Just(Value::Null),
        1 => Just(json!("1.5")),
        1 => Just(json!([1.0])),
    ];
    (
        prop::collection::vec(col, 0..5),
        prop::collection::vec(prop::collection::vec(cell, 0..5), 0..60),
    )
        .prop_map(|(c, d)| json!({"columns": c, "data": d}))
}

drift_testkit::fuzz_inputs! {
    check;
    arbitrary_bytes_never_panic: drift_testkit::fuzz::bytes();
    arbitrary_json_never_panics: json_value().prop_map(|v| v.to_string().into_bytes());
    near_valid_batches_are_accepted_whole_or_rejected:
        near_valid().prop_map(|v| v.to_string().into_bytes());
}

proptest! {
    #![proptest_config(drift_testkit::fuzz::config())]

    #[test]
    fn valid_batches_are_accepted(rows in prop::collection::vec(prop::array::uniform3(-1e9f64..1e9), 1..50)) {
        let body = json!({"columns": ["d", "a", "b c"], "data": rows});
        let cols = parse_rows_body(body.to_string().as_bytes())
            .and_then(|b| b.into_feature_columns(&cfg(), 50, snake))
            .unwrap();
        for (i, r) in rows.iter().enumerate() {
            prop_assert_eq!(cols[0][i], r[1]);
            prop_assert_eq!(cols[1][i], r[2]);
            prop_assert_eq!(cols[2][i], r[0]);
        }
    }
}
