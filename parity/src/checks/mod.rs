//! Every parity check, in the order the report lists them. Each probe is bounded
//! ([`Check::timeout`](crate::Check::timeout)); every user and room name is unique to the
//! run ([`Target::unique`](crate::Target::unique)), so runs against a shared stage do not
//! meet.
//!
//! The local gateway's value for each observation is stated here, once.

use std::sync::Arc;

use crate::run::{Check, CheckFuture, Kind, Verdict};
use crate::target::Target;

/// `return Err(format!(..))` unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

mod auth;
mod history;
mod http_api;
mod idle;
mod lifecycle;
mod limits;
mod management;
mod routes;
mod util;

/// A probe's result before it becomes a [`Verdict`]: `Err` is a failure detail.
type Probe = Result<Verdict, String>;

fn finish(probe: Probe) -> Verdict {
    probe.unwrap_or_else(Verdict::Fail)
}

macro_rules! check {
    ($name:literal, $kind:expr, $about:literal, $f:path) => {
        check!(@ $name, $kind, $about, false, $f)
    };
    (slow $name:literal, $kind:expr, $about:literal, $f:path) => {
        check!(@ $name, $kind, $about, true, $f)
    };
    (@ $name:literal, $kind:expr, $about:literal, $slow:expr, $f:path) => {
        Check {
            name: $name,
            kind: $kind,
            about: $about,
            slow: $slow,
            run: |t: Arc<Target>| -> CheckFuture { Box::pin(async move { finish($f(&t).await) }) },
        }
    };
}

const C: Kind = Kind::Contract;

/// What the local gateway does for each observation.
pub mod local {
    /// The close code a client sees after `DELETE @connections/{id}`.
    pub const DELETE_CLOSE_CODE: &str = "1000";
    /// The close code after the idle timeout.
    pub const IDLE_CLOSE_CODE: &str = "1001";
    /// Whether protocol-level pings reset the idle timer.
    pub const PROTOCOL_PING_RESETS_IDLE: &str = "no";
    /// What a route whose handler returns nothing sends back (its route response).
    pub const EMPTY_ROUTE_RESPONSE: &str = "nothing";
    /// The shape of connection ids.
    pub const CONNECTION_ID_SHAPE: &str = "16 chars base64url =";
    /// The `User-Agent` `GET @connections` reports.
    pub const GET_USER_AGENT: &str = "the client's";
}

/// Every check, in report order.
pub fn all() -> Vec<Check> {
    [connection(), routes(), management(), services(), idle()].concat()
}

/// The upgrade: tokens, subprotocols, connection ids.
fn connection() -> Vec<Check> {
    vec![
        check!(
            "auth.no_token_401",
            C,
            "an upgrade without a token is refused with 401",
            auth::no_token
        ),
        check!(
            "auth.bad_token_403",
            C,
            "forged, truncated, garbage and alg-none tokens are refused with 403",
            auth::bad_tokens
        ),
        check!(
            "auth.token_identifies",
            C,
            "a valid token opens a connection; whoami names its user",
            auth::token_identifies
        ),
        check!(
            "connect.subprotocol",
            C,
            "the first offered subprotocol is echoed; none offered, none echoed",
            auth::subprotocol
        ),
    ]
}

/// Route selection, route responses, error frames, request ids, limits.
fn routes() -> Vec<Check> {
    vec![
        check!(
            "ids.connection_id_shape",
            Kind::Observation {
                local: local::CONNECTION_ID_SHAPE
            },
            "what connection ids look like",
            auth::connection_id_shape
        ),
        check!(
            "route.selection",
            C,
            "$request.body.action selects the route; the return value is the route response",
            routes::selection
        ),
        check!(
            "route.default_unknown",
            C,
            "no route matches: $default answers an unknown_route error frame, the connection stays",
            routes::unknown
        ),
        check!(
            "route.default_not_json",
            C,
            "non-JSON and action-less frames reach $default",
            routes::not_json
        ),
        check!(
            "route.error_frames",
            C,
            "a payload that does not fit is bad_payload; a handler error is its own code with the route",
            routes::error_frames
        ),
        check!(
            "route.empty_response",
            Kind::Observation {
                local: local::EMPTY_ROUTE_RESPONSE
            },
            "a route that returns nothing sends nothing back",
            routes::empty_response
        ),
        check!(
            "ids.concurrent_requests",
            C,
            "150 requests in flight on one socket each get their own id back",
            routes::concurrent_ids
        ),
        check!(
            "ids.invalid_ids",
            C,
            "invalid request ids are bad_payload without an id; 64 characters is the limit",
            routes::invalid_ids
        ),
        check!(
            "limits.frame_over_32k_1009",
            C,
            "a frame just under 32 KB is routed; over 32 KB closes with 1009; a bystander is unaffected",
            limits::frame_over_32k
        ),
        check!(
            "limits.message_over_128k_1009",
            C,
            "a 130 KB message in 26 KB fragments closes with 1009",
            limits::message_over_128k
        ),
        check!(
            "limits.message_100k_fragments_ok",
            C,
            "a 100 KB message in fragments under 32 KB is delivered whole",
            limits::message_100k_ok
        ),
        check!(
            "limits.binary_frame_1003",
            C,
            "a binary frame closes with 1003; a bystander is unaffected",
            limits::binary_frame
        ),
    ]
}

/// `@connections` and `$disconnect`.
fn management() -> Vec<Check> {
    vec![
        check!(
            "mgmt.post_get",
            C,
            "@connections POST delivers verbatim; GET has connectedAt, lastActiveAt, identity",
            management::post_get
        ),
        check!(
            "mgmt.get_user_agent",
            Kind::Observation {
                local: local::GET_USER_AGENT
            },
            "the userAgent GET @connections reports",
            management::user_agent
        ),
        check!(
            "mgmt.post_413",
            C,
            "POST of 128 KB is delivered; 129 KB is 413 PayloadTooLargeException, the socket stays",
            management::post_413
        ),
        check!(
            "mgmt.delete_410",
            C,
            "DELETE closes the socket and removes the record; then POST/GET/DELETE are 410 GoneException",
            management::delete_410
        ),
        check!(
            "mgmt.delete_close_code",
            Kind::Observation {
                local: local::DELETE_CLOSE_CODE
            },
            "the close code a client sees after DELETE @connections",
            management::delete_close_code
        ),
        check!(
            "mgmt.unknown_410",
            C,
            "POST to an unknown connection id is 410 GoneException",
            management::unknown_410
        ),
        check!(
            "disconnect.client_close",
            C,
            "a client close runs $disconnect: the room sees a leave, the member list drops it",
            lifecycle::client_close
        ),
        check!(
            "disconnect.abrupt_drop",
            C,
            "a TCP drop without a close frame runs $disconnect",
            lifecycle::abrupt_drop
        ),
        check!(
            "disconnect.delete",
            C,
            "DELETE @connections runs $disconnect: the exact presence leave, the record gone",
            lifecycle::delete_runs_disconnect
        ),
    ]
}

/// The HTTP API, queues and room history.
fn services() -> Vec<Check> {
    vec![
        check!(
            "http.unauthorized_401",
            C,
            "the HTTP API refuses a missing or bad token with API Gateway's 401, before the app",
            http_api::unauthorized
        ),
        check!(
            "http.sees_websocket",
            C,
            "/http/me and /http/rooms/{room}/members show the WebSocket side",
            http_api::sees_websocket
        ),
        check!(
            "http.errors_json",
            C,
            "HTTP API errors are JSON: 404 not_found, 400 invalid_room, 405 method_not_allowed",
            http_api::errors_json
        ),
        check!(
            "queue.forward_consume",
            C,
            "placeOrder is accepted, queued, and its consumer tells every connection of the customer",
            http_api::queue_forward
        ),
        check!(
            "history.seq_epoch",
            C,
            "room frames carry a gap-free seq and the room's epoch",
            history::seq_epoch
        ),
        check!(
            "history.resume",
            C,
            "a reader that reconnects resumes: every missed frame in order, then resumed recovered:true",
            history::resume
        ),
        check!(
            "history.stale_epoch",
            C,
            "a stale epoch is not recovered and nothing is replayed; live frames follow",
            history::stale_epoch
        ),
        check!(
            "history.no_epoch",
            C,
            "resume without an epoch replays every kept frame",
            history::no_epoch
        ),
        check!(
            "history.refused_rooms",
            C,
            "resume refuses what the room guard refuses (invalid_room) and joins the rest",
            history::refused_rooms
        ),
    ]
}

/// The idle timeout (slow: they wait for it).
fn idle() -> Vec<Check> {
    vec![
        check!(slow "idle.timeout_close", Kind::Observation { local: local::IDLE_CLOSE_CODE }, "the close code after the idle timeout", idle::timeout_close),
        check!(slow "idle.app_ping_keeps_open", C, "application messages (ping) keep a connection open past the idle timeout", idle::app_ping),
        check!(slow "idle.protocol_ping_resets", Kind::Observation { local: local::PROTOCOL_PING_RESETS_IDLE }, "whether protocol ping frames reset the idle timer", idle::protocol_ping),
    ]
}

/// The checks whose name contains `pattern` (all when `None`).
pub fn matching(pattern: Option<&str>) -> Vec<Check> {
    all()
        .into_iter()
        .filter(|c| pattern.is_none_or(|p| c.name.contains(p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_filter() {
        let checks = all();
        let mut names: Vec<_> = checks.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), checks.len());
        assert!(
            matching(Some("mgmt."))
                .iter()
                .all(|c| c.name.starts_with("mgmt."))
        );
        assert_eq!(matching(Some("nothing-matches")).len(), 0);
    }
}
