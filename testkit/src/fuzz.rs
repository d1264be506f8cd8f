//! Shared settings of the property-based fuzz tests: how many cases (2,000 unless
//! `FUZZ_CASES` says otherwise, e.g. 200000 for a run of minutes) and the rawest input.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// The proptest configuration of every fuzz test.
pub fn config() -> Config {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    Config::with_cases(cases)
}

/// Arbitrary bytes, up to 512 of them: what a careless or hostile client can send.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

#[doc(hidden)]
pub use proptest as __proptest;

/// Property tests that feed each strategy's byte strings to `check`, which must never
/// panic (and asserts whatever the input promises):
/// `drift_testkit::fuzz_inputs! { check; arbitrary_bytes_never_panic: fuzz::bytes(); }`.
#[macro_export]
macro_rules! fuzz_inputs {
    ($check:path; $($(#[$doc:meta])* $name:ident: $input:expr;)*) => {
        $crate::fuzz::__proptest::proptest! {
            #![proptest_config($crate::fuzz::config())]
            $($(#[$doc])* #[test] fn $name(input in $input) { $check(&input); })*
        }
    };
}
