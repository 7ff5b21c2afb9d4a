//! Dispatch: one API Gateway WebSocket event in, the integration's answer out.
//!
//! Events are routed on `requestContext.eventType` and `requestContext.routeKey`, never
//! by guessing the event's shape. The same code serves Lambda and the local gateway.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use futures_util::FutureExt;

use crate::backend::ConnectionRecord;
use crate::registry::{Route, RouteKind};
use crate::request::{Services, WsRequest};
use crate::response::{Frame, WsError};
use crate::select::Selected;

pub use crate::names::limits::{MAX_CONNECTION_AGE_SECS, RECORD_TTL_MARGIN_SECS};

/// What dispatch answers: the integration response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The status. On `$connect`, non-2xx refuses the upgrade with this status.
    pub status: u16,
    /// The route response body (a reply or an error frame), if any.
    pub body: Option<Frame>,
    /// Response headers (on `$connect`: the chosen `Sec-WebSocket-Protocol`).
    pub headers: Vec<(&'static str, String)>,
    /// The error, if the handler or the framework failed.
    pub error: Option<WsError>,
}

impl Outcome {
    fn ok(body: Option<Frame>) -> Self {
        Self {
            status: 200,
            body,
            headers: Vec::new(),
            error: None,
        }
    }

    fn failed(err: WsError, route: &str) -> Self {
        Self {
            status: err.status(),
            body: Some(err.to_frame(route)),
            headers: Vec::new(),
            error: Some(err),
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Routes events to handlers, with the built-in bookkeeping around `$connect` and
/// `$disconnect`.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    services: Arc<Services>,
}

impl Dispatcher {
    /// A dispatcher over validated services.
    pub fn new(services: Arc<Services>) -> Self {
        Self { services }
    }

    /// The services handlers use.
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Route selection for a frame, as API Gateway does it: the registered custom route
    /// key the frame selects, or `$default`.
    pub fn route_for(&self, body: &str) -> &'static str {
        if let Selected::Key(key) = self.services.selection.select(body)
            && let Some(route) = self.services.registry.get(&key)
            && route.def.kind == RouteKind::Custom
        {
            return route.def.key;
        }
        "$default"
    }

    /// Handles one event, and counts it in the route's metrics.
    pub async fn dispatch(&self, event: ApiGatewayWebsocketProxyRequest) -> Outcome {
        let started = std::time::Instant::now();
        let route = event.request_context.route_key.clone().unwrap_or_default();
        let outcome = self.dispatch_event(event).await;
        let failed = outcome.error.is_some();
        (self.services.metrics).route(&route, started.elapsed(), failed);
        outcome
    }

    async fn dispatch_event(&self, event: ApiGatewayWebsocketProxyRequest) -> Outcome {
        let req = Arc::new(WsRequest::new(event, Arc::clone(&self.services)));
        // Borrowed from the request rather than copied out of the event first.
        let rc = &req.event().request_context;
        let route_key = rc.route_key.as_deref().unwrap_or_default();
        match rc.event_type.as_deref().unwrap_or_default() {
            "CONNECT" => self.connect(Arc::clone(&req)).await,
            "DISCONNECT" => self.disconnect(Arc::clone(&req)).await,
            "MESSAGE" => self.message_with_id(Arc::clone(&req), route_key).await,
            other => {
                tracing::error!(event_type = other, "event with an unknown eventType");
                Outcome::failed(
                    WsError::new("bad_event", format!("unknown eventType `{other}`")),
                    route_key,
                )
            }
        }
    }

    async fn connect(&self, req: Arc<WsRequest>) -> Outcome {
        let record = record_for(&req);
        let store = &self.services.store;
        if let Err(e) = store.put_connection(&record).await {
            return Outcome::failed(WsError::from(e), "$connect");
        }
        let route = self.services.registry.get("$connect");
        let result = match route {
            Some(route) if !route.builtin => run(route, Arc::clone(&req)).await,
            _ => Ok(None),
        };
        match result {
            Ok(body) => {
                let mut outcome = Outcome::ok(body);
                if let Some(protocol) = chosen_subprotocol(&req) {
                    outcome
                        .headers
                        .push(("Sec-WebSocket-Protocol", protocol.to_owned()));
                }
                outcome
            }
            Err(err) => {
                if let Err(e) = store.remove_record(&record).await {
                    tracing::warn!(error = %e, "could not remove a refused connection");
                }
                Outcome::failed(err, "$connect")
            }
        }
    }

    async fn disconnect(&self, req: Arc<WsRequest>) -> Outcome {
        if let Some(route) = self.services.registry.get("$disconnect")
            && !route.builtin
            && let Err(e) = run(route, Arc::clone(&req)).await
        {
            tracing::warn!(
                code = e.code(),
                message = e.message(),
                "$disconnect handler failed"
            );
        }
        // The record's key is rebuilt from the event (user name, `connectedAt`): a store
        // can delete by key without looking the connection id up first.
        match self.services.store.remove_record(&record_for(&req)).await {
            Ok(()) => Outcome::ok(None),
            Err(e) => Outcome::failed(WsError::from(e), "$disconnect"),
        }
    }

    /// A message, with its request id: checked first (an invalid one is a
    /// `bad_payload` error frame without an id), then echoed on the answer.
    async fn message_with_id(&self, req: Arc<WsRequest>, route_key: &str) -> Outcome {
        let id = match crate::request_id::request_id(req.body()) {
            Ok(id) => id,
            Err(err) => return Outcome::failed(err, route_key),
        };
        let mut outcome = self.message(req, route_key).await;
        if let Some(id) = id {
            outcome.body = outcome
                .body
                .map(|body| crate::request_id::with_request_id(body, &id));
        }
        outcome
    }

    async fn message(&self, req: Arc<WsRequest>, route_key: &str) -> Outcome {
        if self.services.close_on_token_expiry {
            let now = req.event().request_context.request_time_epoch / 1000;
            if token_expiry(req.identity()).is_some_and(|exp| exp < now) {
                // API Gateway checks the token only at $connect: close the connection
                // now that it has expired.
                if let Err(e) = self.services.client.delete(req.connection_id()).await {
                    tracing::debug!(error = %e, "closing a connection with an expired token");
                }
                return Outcome::failed(
                    WsError::new(
                        "token_expired",
                        "your token expired: reconnect with a fresh one",
                    )
                    .with_status(401),
                    route_key,
                );
            }
        }
        let Some(route) = self.services.registry.get(route_key) else {
            return Outcome::failed(
                WsError::unknown_route(format!(
                    "this function has no handler for route `{route_key}`"
                )),
                route_key,
            );
        };
        match run(route, Arc::clone(&req)).await {
            Ok(body) => match route.def.options.forward {
                Some(queue) => match forward_frame(&req, queue).await {
                    Ok(()) => Outcome::ok(body),
                    Err(err) => Outcome::failed(err, route_key),
                },
                None => Outcome::ok(body),
            },
            Err(err) => Outcome::failed(err, route_key),
        }
    }
}

/// `forward = "queue"`: the frame, as the client sent it, goes to the queue once the
/// handler accepted it. If it cannot be queued the caller gets the error instead of the
/// handler's reply, so a reply always means "queued".
async fn forward_frame(req: &WsRequest, queue: &str) -> Result<(), WsError> {
    let body = req.body().unwrap_or_default();
    let payload: &serde_json::value::RawValue = serde_json::from_str(body)
        .map_err(|e| WsError::bad_payload(format!("the message is not JSON: {e}")))?;
    crate::request::forward(req, queue, payload, None, None)
        .await
        .map(|_| ())
}

/// Runs a handler, turning a panic into an internal error.
async fn run(route: &Route, req: Arc<WsRequest>) -> Result<Option<Frame>, WsError> {
    let fut = route.handler.call(Arc::clone(&req));
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(Some(body))) => Ok(Some(body)),
        Ok(Ok(None)) => Ok(req.take_reply()),
        Ok(Err(e)) => Err(e),
        Err(panic) => Err(WsError::internal(format!(
            "handler `{}` panicked: {}",
            route.def.function,
            panic_message(&*panic)
        ))),
    }
}

/// What a caught panic said (its `&str` or `String` payload), for logs and errors.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// The subprotocol a `$connect` echoes: the first one the client offered that is not a
/// token (browsers pass tokens as a subprotocol, and it should not be echoed), else the
/// first one.
fn chosen_subprotocol(req: &WsRequest) -> Option<&str> {
    let value = req
        .event()
        .headers
        .get("sec-websocket-protocol")?
        .to_str()
        .ok()?;
    let offered = || value.split(',').map(str::trim).filter(|p| !p.is_empty());
    offered()
        .find(|p| !crate::auth::looks_like_jwt(p))
        .or_else(|| offered().next())
}

/// When the connection's token expires, from the authorizer context's `expiresAt`
/// (epoch seconds).
pub fn token_expiry(identity: &crate::identity::Identity) -> Option<i64> {
    identity.claim("expiresAt").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
}

fn record_for(req: &WsRequest) -> ConnectionRecord {
    let rc = &req.event().request_context;
    let connection_id = req.connection_id().to_owned();
    let connected_at = rc.connected_at;
    ConnectionRecord {
        session_key: ConnectionRecord::session_key_for(connected_at, &connection_id),
        connection_id,
        username: req.identity().username().to_owned(),
        connected_at,
        expires: connected_at / 1000 + MAX_CONNECTION_AGE_SECS + RECORD_TTL_MARGIN_SECS,
        source_ip: rc.identity.source_ip.clone(),
        user_agent: rc.identity.user_agent.clone(),
        claims: req.identity().context().clone(),
    }
}
