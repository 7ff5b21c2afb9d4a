//! Built-in routes: `ping` -> `pong`, the `$default` error frame, and the reserved
//! routes' default (bookkeeping-only) handlers. An app overrides any of them by
//! registering the same key.

use crate::context::Ctx;
use crate::extract::Json;
use crate::handler::{BoxedHandler, erase};
use crate::registry::{RouteDef, RouteKind, RouteOptions, SourceLocation};
use crate::response::{Frame, WsError};
use crate::select::Selected;

const LOCATION: SourceLocation = SourceLocation {
    file: "<switchboard built-in>",
    line: 0,
};

/// The heartbeat: `{"action":"ping"}` -> `{"action":"pong"}`, as a route response.
async fn ping() -> Frame {
    Frame::from_static(r#"{"action":"pong"}"#)
}

/// `$default`: an error frame naming the unknown action and the known ones.
async fn default_route(ctx: Ctx) -> WsError {
    let body = ctx.event().body.as_deref().unwrap_or_default();
    let registry = &ctx.services().registry;
    let selection = &ctx.services().selection;
    let known: Vec<&str> = registry.custom_keys().collect();
    let known = known.join(", ");
    let field = selection.expression().trim_start_matches("$request.body.");
    let message = match selection.select(body) {
        Selected::Key(action) => {
            format!("unknown action `{action}`; known actions: {known}")
        }
        Selected::NotJson => {
            format!("frames must be JSON objects with an `{field}` field; known actions: {known}")
        }
        Selected::Missing | Selected::NotScalar => {
            format!("the frame has no `{field}` string; known actions: {known}")
        }
    };
    WsError::unknown_route(message)
}

async fn bookkeeping_only() {}

/// `resume`: rejoin rooms and replay what was missed (see [`crate::rooms`]).
async fn resume(ctx: Ctx, Json(req): Json<crate::rooms::ResumeRequest>) -> Result<Frame, WsError> {
    crate::rooms::resume(ctx, req).await
}

fn make_resume() -> BoxedHandler {
    erase(resume)
}

/// The built-in `resume`, registered when the app keeps room history.
pub(crate) const RESUME: RouteDef = def(
    crate::names::history::RESUME_ROUTE,
    RouteKind::Custom,
    "resume",
    "Rejoins rooms after a reconnect and replays the frames missed since a `seq`; answers `{\"action\":\"resumed\",..}`.",
    make_resume,
);

fn make_ping() -> BoxedHandler {
    erase(ping)
}
fn make_default() -> BoxedHandler {
    erase(default_route)
}
fn make_noop() -> BoxedHandler {
    erase(bookkeeping_only)
}

const fn def(
    key: &'static str,
    kind: RouteKind,
    function: &'static str,
    doc: &'static str,
    handler: fn() -> BoxedHandler,
) -> RouteDef {
    RouteDef {
        key,
        kind,
        function,
        module: "switchboard::builtins",
        location: LOCATION,
        options: RouteOptions {
            memory_mb: None,
            timeout_secs: None,
            forward: None,
            queues: &[],
            api_key: false,
            throttle_rate: None,
            throttle_burst: None,
        },
        doc,
        handler,
    }
}

/// The built-in definitions, used for keys the app does not register itself.
pub(crate) const BUILTINS: [RouteDef; 4] = [
    def(
        "$connect",
        RouteKind::Connect,
        "bookkeeping_only",
        "Records the connection.",
        make_noop,
    ),
    def(
        "$disconnect",
        RouteKind::Disconnect,
        "bookkeeping_only",
        "Removes the connection's record and room memberships.",
        make_noop,
    ),
    def(
        "$default",
        RouteKind::Default,
        "default_route",
        "Answers frames that match no route with an `unknown_route` error frame.",
        make_default,
    ),
    def(
        "ping",
        RouteKind::Custom,
        "ping",
        "Heartbeat: answers `{\"action\":\"pong\"}`.",
        make_ping,
    ),
];
