//! The local console at `/local/`: the running service in a browser — connections,
//! rooms, a live frame log, routes with a send form, queues with their dead letters, and
//! charts of the last 15 minutes.
//!
//! Its page is three hand-written files (`local/console/`), served from the binary: no
//! build step, no external requests. It reads JSON from `/local/api/*` and one live
//! stream, `/local/stream` (server-sent events, bounded per console: see [`feed`]).
//!
//! Who may use it is one decision, [`allowed`]: loopback callers always; others only
//! with the gateway's admin secret.

mod api;
pub(crate) mod feed;
pub(crate) mod metrics;
mod stream;

use crate::exposure::{AdminSecret, Exposure, LocalAccess, is_loopback};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub(crate) use feed::Feed;
use serde_json::{Value, json};
use switchboard_core::contract::{ServiceContract, Shape};
use switchboard_core::spec::AppSpec;

use crate::Gateway;

/// The console's page.
const INDEX_HTML: &str = include_str!("../../console/index.html");
/// Its script.
const CONSOLE_JS: &str = include_str!("../../console/console.js");
/// Its styles.
const CONSOLE_CSS: &str = include_str!("../../console/console.css");

/// The header every console request that changes something carries: a cross-site form
/// or `fetch` cannot send it without a CORS preflight, which the gateway never grants.
pub(crate) const ACTION_HEADER: &str = "x-switchboard-console";

/// Whether a request from `peer` to a gateway bound to `bind` may use the console.
///
/// Loopback callers may. Other callers (the gateway bound to a non-loopback address)
/// only as the exposure rules allow any `/local/*` request
/// ([`Exposure::local_endpoint_access`]): with `Authorization: Bearer <admin_secret>`, and
/// never when the gateway has no admin secret. A gateway bound to loopback serves
/// loopback callers only.
pub(crate) fn allowed(
    peer: SocketAddr,
    bind: SocketAddr,
    headers: &HeaderMap,
    admin_secret: Option<&str>,
) -> bool {
    if is_loopback(bind.ip()) {
        return is_loopback(peer.ip());
    }
    let exposure = Exposure {
        admin_secret: admin_secret.map(|s| AdminSecret::from(s.to_owned())),
        ..Exposure::new(bind.ip())
    };
    matches!(
        exposure.local_endpoint_access(peer.ip(), headers),
        LocalAccess::Allowed
    )
}

/// The console's routes (page, API, stream) behind [`allowed`], for the gateway's
/// router. Starts the sampler that records a chart sample every second while the
/// gateway lives.
pub(crate) fn router(gateway: Arc<Gateway>) -> Router {
    spawn_sampler(Arc::downgrade(&gateway));
    let page = |body: &'static str, content_type: &'static str| {
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
        })
    };
    Router::new()
        .route("/local", get(|| async { Redirect::permanent("/local/") }))
        .route("/local/", page(INDEX_HTML, "text/html; charset=utf-8"))
        .route(
            "/local/console.js",
            page(CONSOLE_JS, "text/javascript; charset=utf-8"),
        )
        .route(
            "/local/console.css",
            page(CONSOLE_CSS, "text/css; charset=utf-8"),
        )
        .route("/local/stream", get(stream::stream))
        .route("/local/api/overview", get(api::overview))
        .route("/local/api/samples", get(api::samples))
        .route("/local/api/connections", get(api::connections))
        .route("/local/api/connections/{id}/close", post(api::close))
        .route("/local/api/connections/{id}/send", post(api::send))
        .route("/local/api/connections/{id}/frame", post(api::frame))
        .route("/local/api/rooms", get(api::rooms))
        .route("/local/api/rooms/{room}/send", post(api::send_to_room))
        .route("/local/api/queues/{name}/messages", get(api::messages))
        .route("/local/api/queues/{name}/redrive", post(api::redrive))
        .route("/local/api/queues/{name}/purge", post(api::purge))
        .layer(from_fn_with_state(Arc::clone(&gateway), guard))
        .with_state(gateway)
}

/// Refuses callers [`allowed`] refuses (403), and changes without [`ACTION_HEADER`].
async fn guard(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let config = &gateway.config;
    if !allowed(
        peer,
        config.addr,
        request.headers(),
        config.admin_secret.as_ref().map(AdminSecret::expose),
    ) {
        return api::error(
            StatusCode::FORBIDDEN,
            "the console is for loopback callers, or needs the admin secret (Authorization: Bearer …)",
        );
    }
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes && !request.headers().contains_key(ACTION_HEADER) {
        return api::error(
            StatusCode::FORBIDDEN,
            "console actions need the x-switchboard-console header",
        );
    }
    next.run(request).await.into_response()
}

/// What the console's route form needs of the contract: each route's payload schema
/// (and doc), and the named schemas they refer to.
pub(crate) fn contract_json(app: &AppSpec, gateway: &Gateway) -> Value {
    let services = gateway.dispatcher.services();
    let contract = ServiceContract::new(
        &app.name,
        &app.version,
        services.selection.expression(),
        &services.registry,
        &app.emits,
    );
    let routes: serde_json::Map<String, Value> = contract
        .routes
        .iter()
        .map(|r| {
            let reply = r
                .reply
                .and_then(|i| contract.messages.get(i))
                .map(|m| &m.name);
            let entry = json!({
                "payload": r.payload.as_ref().map(Shape::to_schema),
                "reply": reply,
                "replyOptional": r.reply_optional,
                "doc": r.doc,
            });
            (r.key.to_owned(), entry)
        })
        .collect();
    json!({ "routes": routes, "schemas": contract.schemas })
}

/// Records a chart sample every second and sends it to the consoles, until the
/// gateway is gone.
fn spawn_sampler(gateway: Weak<Gateway>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut previous = Default::default();
        loop {
            tick.tick().await;
            let Some(gateway) = gateway.upgrade() else {
                break;
            };
            let (frames_in, frames_out) = gateway.hub.stats.frame_totals();
            let totals = metrics::Totals {
                connections: gateway.hub.len(),
                frames_in,
                frames_out,
            };
            let feed = &gateway.console;
            feed.prune();
            let sample = feed.metrics.sample(crate::now(), totals, &mut previous);
            feed.publish(|| {
                serde_json::json!({
                    "type": "tick", "sample": sample,
                    "consoles": feed.subscribers(), "droppedAll": feed.dropped(),
                })
            });
        }
    });
}

#[cfg(test)]
mod tests;
