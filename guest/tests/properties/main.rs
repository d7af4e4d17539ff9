//! Property tests of the component's pure parsers and renderers, natively: arbitrary input never
//! panics, and what comes out keeps the promises each module makes. Request translation against
//! OpenRouter's spec is checked where the spec validator lives (`tests/tests/translation.rs`).
//!
//! The default case counts keep the whole run to a few seconds; `PROPTEST_CASES=N` runs more.

mod markers;
mod templates;
mod translation;

/// The default configuration (`PROPTEST_CASES` still applies), without a regressions file:
/// failures found are kept as named unit tests next to the code instead.
fn config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
