//! The parity suite: the end-to-end checks the local gateway's tests make over real
//! sockets, written once against a [`Target`] (a WebSocket URL and an HTTP base URL), so
//! that the same run can be made against the local gateway and against a deployed API
//! Gateway stage behind CloudFront.
//!
//! Every [`Check`] is either part of the contract ([`Kind::Contract`]: API Gateway's
//! documented behaviour, or the framework's own — the target must do it) or an
//! observation of a behaviour AWS does not document ([`Kind::Observation`]: the probe
//! records what the target does, and the report compares it with what the local
//! gateway does, stated once in [`checks::all`]). The runner ([`run`]) bounds every
//! check with a timeout and produces a [`Report`]: a table and JSON.
//!
//! Safety: a [`Target`] is only ever built from URLs the user gave ([`Options`]); the
//! runner reaches no other host, except Cognito's `InitiateAuth` endpoint in the region
//! the user named when asked for Cognito tokens.

mod client;
mod error;
mod options;
mod report;
mod run;
mod target;
mod wire;

pub mod checks;

pub use client::Client;
pub use error::ParityError;
pub use options::{LOCAL_IDLE_WAIT, Options, TokenFrom, env};
pub use report::{Report, Row};
pub use run::{Check, CheckFuture, Kind, Verdict, run};
pub use target::{Target, USER_AGENT};
pub use wire::HttpResponse;
