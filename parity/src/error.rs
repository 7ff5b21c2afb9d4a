//! What can stop a parity run before any check runs.

use thiserror::Error;

/// Why the runner cannot run.
#[derive(Debug, Error)]
pub enum ParityError {
    /// No target was given: the runner never guesses one.
    #[error(
        "no target: give the WebSocket URL and the HTTP base URL (--ws ws://127.0.0.1:3000/ws \
         --http http://127.0.0.1:3000, or {ws} / {http}); the runner never picks a target itself",
        ws = crate::env::WS,
        http = crate::env::HTTP
    )]
    NoTarget,
    /// A URL that cannot be used.
    #[error("{what}: {url:?} is not usable: {reason}")]
    BadUrl {
        /// Which option.
        what: &'static str,
        /// The value given.
        url: String,
        /// Why.
        reason: String,
    },
    /// Cognito tokens need the app client id, a user name and a password.
    #[error("--token-from cognito needs {0}")]
    CognitoIncomplete(&'static str),
    /// The report could not be written.
    #[error("cannot write the JSON report to {path}: {source}")]
    Report {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up (no usable root certificates).
    #[error("TLS setup failed: {0}")]
    Tls(String),
}
