//! Compile-time behaviour of the attribute macros, checked with `trybuild`.
//!
//! `ui/fail/*.rs` must fail to compile with exactly the messages in the `.stderr` files
//! next to them (regenerate with `TRYBUILD=overwrite cargo test -p switchboard-macros
//! --test ui`, then read every diff). `ui/pass/*.rs` must compile and run: their `main`
//! asserts on what the macros registered in `switchboard::routes()`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
