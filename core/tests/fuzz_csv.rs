//! Property-based fuzzing of the reference CSV loader: no input panics; valid tables load
//! exactly; every error names what is wrong.
//! `FUZZ_CASES=200000 cargo test -p drift-core --test fuzz_csv` runs it for minutes.

use drift_core::{CsvSchema, Dataset, DatasetError, FeatureKind};
use proptest::prelude::*;

fn check(bytes: &[u8]) {
    match Dataset::from_csv(bytes, &["target"]) {
        Ok(ds) => {
            assert!(!ds.names().is_empty());
            assert!(ds.n_rows() > 0);
            assert!(ds.columns().iter().all(|c| c.len() == ds.n_rows()));
            // Numbers are finite, categories are codes of their list; missing is NaN.
            for ((c, kind), cats) in ds.columns().iter().zip(ds.kinds()).zip(ds.categories()) {
                for v in c.iter().filter(|v| !v.is_nan()) {
                    match kind {
                        FeatureKind::Numeric => assert!(v.is_finite()),
                        FeatureKind::Categorical => {
                            assert!(v.fract() == 0.0 && *v >= 0.0 && (*v as usize) < cats.len())
                        }
                    }
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Text that looks like CSV: separators, quotes, numbers, special values, newlines.
fn csvish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just(",".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\"".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-0".to_string()),
        Just("1e999".to_string()),
        Just("target".to_string()),
        Just(" ".to_string()),
        (-1e6f64..1e6).prop_map(|f| f.to_string()),
        "[a-z]{1,3}",
    ];
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

drift_testkit::fuzz_inputs! {
    check;
    arbitrary_bytes_never_panic: drift_testkit::fuzz::bytes();
    csv_like_text_never_panics: csvish().prop_map(String::into_bytes);
}

proptest! {
    #![proptest_config(drift_testkit::fuzz::config())]

    #[test]
    fn valid_tables_load_exactly(
        cols in 1usize..6,
        rows in prop::collection::vec(prop::collection::vec(-1e12f64..1e12, 6), 1..40),
    ) {
        let names: Vec<String> = (0..cols).map(|i| format!("f{i}")).collect();
        let mut text = names.join(",") + ",target\n";
        for r in &rows {
            let cells: Vec<String> = r[..cols].iter().map(|v| format!("{v:?}")).collect();
            text += &(cells.join(",") + ",1\n");
        }
        let ds = Dataset::from_csv(text.as_bytes(), &["target"]).unwrap();
        prop_assert_eq!(ds.names(), &names[..]);
        for (j, c) in ds.columns().iter().enumerate() {
            for (i, v) in c.iter().enumerate() {
                prop_assert_eq!(*v, rows[i][j]);
            }
        }
    }

    #[test]
    fn one_odd_cell_is_missing_a_category_or_reported_with_its_place(
        rows in 2usize..20, bad_row in 0usize..20, bad_col in 0usize..3,
        bad in prop_oneof![Just(""), Just("abc"), Just("NaN"), Just("NA"), Just("-inf")],
        strict in any::<bool>(),
    ) {
        let bad_row = bad_row % rows;
        let mut text = String::from("a,b,c\n");
        for i in 0..rows {
            let cells: Vec<String> = (0..3)
                .map(|j| if i == bad_row && j == bad_col { bad.to_string() } else { format!("{}", i * 3 + j) })
                .collect();
            text += &(cells.join(",") + "\n");
        }
        // Strict: every column declared numeric.
        let schema = CsvSchema {
            numeric: if strict { vec!["a".into(), "b".into(), "c".into()] } else { Vec::new() },
            ..CsvSchema::default()
        };
        let col = ["a", "b", "c"][bad_col].to_string();
        let line = bad_row as u64 + 2;
        match (bad, Dataset::from_csv_with(text.as_bytes(), &schema)) {
            ("" | "NaN" | "NA", Ok(ds)) => {
                prop_assert!(ds.columns()[bad_col][bad_row].is_nan());
                prop_assert_eq!(ds.kinds()[bad_col], FeatureKind::Numeric);
            }
            ("abc", Ok(ds)) if !strict => {
                prop_assert_eq!(ds.kinds()[bad_col], FeatureKind::Categorical);
                prop_assert_eq!(ds.categories()[bad_col].len(), rows);
            }
            (_, Err(DatasetError::NotNumeric { line: l, column, .. })) if bad == "abc" && strict => {
                prop_assert!(l == line && column == col);
            }
            ("-inf", Err(DatasetError::NonFinite { line: l, column, .. })) => {
                prop_assert!(l == line && column == col);
            }
            (bad, other) => prop_assert!(false, "{bad:?} strict={strict}: {other:?}"),
        }
    }
}
