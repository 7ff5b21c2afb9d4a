//! # switchboard-testing
//!
//! Test support for Switchboard and for services built on it (a dev-dependency; nothing
//! here is compiled into a production build):
//!
//! - [`lambda::FakeRuntimeApi`]: the Lambda Runtime API on 127.0.0.1, to run a service's
//!   real binary in Lambda mode;
//! - [`proxy::RecordingProxy`]: names every AWS operation it forwards, and can be cut,
//!   made to refuse or stall, and restored;
//! - [`moto_endpoint`]: the moto server a test needs, or a loud failure;
//! - [`conformance`]: the connection store contract, one suite for every backend;
//! - [`events`]: API Gateway events in AWS's shape, built once for every test;
//! - [`fuzz`]: proptest configuration, corpora and mutations for the fuzz targets.

pub mod conformance;
pub mod events;
pub mod fuzz;
pub mod lambda;
pub mod proxy;
#[cfg(feature = "tokens")]
pub mod tokens;

/// The environment variable holding a moto server's endpoint for tests
/// (`.ci/run` and `scripts/moto.sh start` export it).
pub const MOTO_ENV: &str = "SWITCHBOARD_TEST_MOTO";

/// Set to `1` to skip tests that need moto when no server is running.
pub const SKIP_MOTO_ENV: &str = "SWITCHBOARD_SKIP_MOTO";

/// The moto endpoint for a test that needs one (no trailing slash).
///
/// `None` (the test should return early) only when `SWITCHBOARD_SKIP_MOTO=1`; otherwise a
/// missing endpoint panics with how to start moto, so a forgotten server fails loudly
/// instead of skipping silently.
pub fn moto_endpoint(test: &str) -> Option<String> {
    if let Ok(endpoint) = std::env::var(MOTO_ENV)
        && !endpoint.trim().is_empty()
    {
        return Some(endpoint.trim().trim_end_matches('/').to_owned());
    }
    if std::env::var(SKIP_MOTO_ENV).is_ok_and(|v| v.trim() == "1") {
        eprintln!("note: {test} skipped: {SKIP_MOTO_ENV}=1 and {MOTO_ENV} is not set");
        return None;
    }
    panic!(
        "{MOTO_ENV} is not set: {test} needs a moto server. Start one from the repository \
         root with\n\n    eval \"$(bash scripts/moto.sh start)\"\n\nwhich exports {MOTO_ENV} \
         (stop it with `bash scripts/moto.sh stop`), or set {SKIP_MOTO_ENV}=1 to skip it."
    );
}
