//! One handler invocation: the API Gateway event plus the services handlers use.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::value::RawValue;

use crate::backend::history::RoomHistory;
use crate::backend::{ConnectionStore, ConnectionsClient};
use crate::identity::Identity;
use crate::queue::envelope::{ENVELOPE_VERSION, Envelope, Sender};
use crate::queue::{OutgoingMessage, Queue, QueueError, SendReceipt};
use crate::registry::Registry;
use crate::response::{Frame, WsError};
use crate::rooms::RoomGuard;
use crate::select::RouteSelection;

/// Application state values, looked up by type by the [`State`](crate::State) extractor.
#[derive(Clone, Default)]
pub struct StateMap {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    names: Vec<&'static str>,
}

impl StateMap {
    /// Adds (or replaces) the value of type `S`.
    pub fn insert<S: Clone + Send + Sync + 'static>(&mut self, value: S) {
        if self
            .values
            .insert(TypeId::of::<S>(), Arc::new(value))
            .is_none()
        {
            self.names.push(std::any::type_name::<S>());
        }
    }

    /// The value of type `S`, if one was provided.
    pub fn get<S: Clone + Send + Sync + 'static>(&self) -> Option<S> {
        self.values
            .get(&TypeId::of::<S>())
            .and_then(|v| v.downcast_ref::<S>())
            .cloned()
    }

    /// Type names of the values provided.
    pub fn type_names(&self) -> &[&'static str] {
        &self.names
    }
}

impl std::fmt::Debug for StateMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.names).finish()
    }
}

/// Tunables that handlers' sends obey.
#[derive(Clone, Debug)]
pub struct SendSettings {
    /// How many `@connections` posts a fan-out keeps in flight at once.
    pub fanout_concurrency: usize,
    /// Sharded fan-out: sends to more recipients than its threshold go through the
    /// internal fan-out queue ([`crate::fanout`]). `None`: every send runs inline.
    pub sharding: Option<crate::fanout::Sharding>,
}

impl Default for SendSettings {
    fn default() -> Self {
        Self {
            fanout_concurrency: 64,
            sharding: None,
        }
    }
}

/// What handlers reach through [`Ctx`](crate::Ctx): the connection store, the
/// `@connections` client, the registry, application state.
#[derive(Clone)]
pub struct Services {
    /// Connection bookkeeping.
    pub store: Arc<dyn ConnectionStore>,
    /// The `@connections` management API.
    pub client: Arc<dyn ConnectionsClient>,
    /// Application state.
    pub states: StateMap,
    /// The validated routes.
    pub registry: Arc<Registry>,
    /// The route selection expression.
    pub selection: RouteSelection,
    /// Fan-out settings.
    pub send: SendSettings,
    /// Close connections whose token (`expiresAt` in the authorizer context) expired.
    pub close_on_token_expiry: bool,
    /// The queues routes forward to, if the app has any.
    pub queue: Option<Arc<dyn Queue>>,
    /// Room history, if the app keeps any.
    pub history: Option<Arc<RoomHistory>>,
    /// The app's check of who may be in which room ([`Ctx::join`](crate::Ctx::join),
    /// `resume`).
    pub room_guard: Option<Arc<dyn RoomGuard>>,
    /// The counters dispatch, fan-outs and consumers record into
    /// ([`metrics`](crate::metrics)).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("states", &self.states)
            .field("send", &self.send)
            .finish_non_exhaustive()
    }
}

/// One event being handled: what extractors read.
pub struct WsRequest {
    pub(crate) event: ApiGatewayWebsocketProxyRequest,
    pub(crate) identity: Identity,
    pub(crate) services: Arc<Services>,
    pub(crate) reply: Mutex<Option<Frame>>,
    /// How many forwards this event made (for distinct deduplication ids).
    pub(crate) forwards: AtomicU32,
}

impl WsRequest {
    /// Wraps an event for dispatch.
    pub fn new(event: ApiGatewayWebsocketProxyRequest, services: Arc<Services>) -> Self {
        let identity = Identity::from_authorizer(&event.request_context.authorizer.fields);
        Self {
            event,
            identity,
            services,
            reply: Mutex::new(None),
            forwards: AtomicU32::new(0),
        }
    }

    /// The API Gateway event.
    pub fn event(&self) -> &ApiGatewayWebsocketProxyRequest {
        &self.event
    }

    /// `requestContext.connectionId`.
    pub fn connection_id(&self) -> &str {
        self.event
            .request_context
            .connection_id
            .as_deref()
            .unwrap_or_default()
    }

    /// `requestContext.routeKey`.
    pub fn route_key(&self) -> &str {
        self.event
            .request_context
            .route_key
            .as_deref()
            .unwrap_or_default()
    }

    /// The frame's text, for MESSAGE events.
    pub fn body(&self) -> Option<&str> {
        self.event.body.as_deref()
    }

    /// The caller's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The services.
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    pub(crate) fn take_reply(&self) -> Option<Frame> {
        self.reply.lock().ok().and_then(|mut r| r.take())
    }
}

/// Sends `payload` to `queue` in an envelope on behalf of `req`'s caller (see
/// [`Ctx::forward`](crate::Ctx::forward) for the defaults).
pub(crate) async fn forward(
    req: &WsRequest,
    queue: &str,
    payload: &RawValue,
    group: Option<String>,
    dedup: Option<String>,
) -> Result<SendReceipt, WsError> {
    let services = req.services();
    let route = req.route_key();
    let declared = services
        .registry
        .get(route)
        .is_some_and(|r| r.def.options.send_queues().contains(&queue));
    if !declared {
        return Err(WsError::internal(format!(
            "route `{route}` forwards to queue `{queue}`, which its attribute does not declare: add `queues = [\"{queue}\"]` (or `forward = \"{queue}\"`) to its #[ws_route]"
        )));
    }
    let Some(backend) = services.queue.as_ref() else {
        return Err(WsError::internal(format!(
            "route `{route}` forwards to queue `{queue}`, but the app has no queue backend"
        )));
    };
    let rc = &req.event().request_context;
    let n = req.forwards.fetch_add(1, Ordering::Relaxed);
    let dedup = dedup.unwrap_or_else(|| {
        let base = rc
            .message_id
            .clone()
            .or_else(|| rc.request_id.clone())
            .unwrap_or_else(|| format!("{}-{}", req.connection_id(), rc.request_time_epoch));
        if n == 0 { base } else { format!("{base}-{n}") }
    });
    let group = group.unwrap_or_else(|| {
        let user = req.identity().username();
        if user.is_empty() {
            req.connection_id().to_owned()
        } else {
            user.to_owned()
        }
    });
    let envelope = Envelope {
        v: ENVELOPE_VERSION,
        queue: queue.to_owned(),
        route: Some(route.to_owned()),
        request_id: rc.request_id.clone(),
        sent_at: crate::queue::envelope::now_rfc3339(),
        sender: Sender {
            connection_id: req.connection_id().to_owned(),
            identity: req.identity().clone(),
        },
        payload,
    };
    let body = serde_json::to_string(&envelope)
        .map_err(|e| WsError::internal(format!("forward: cannot serialise the envelope: {e}")))?;
    let message = OutgoingMessage::new(
        body,
        crate::queue::sqs_safe_id(&group),
        crate::queue::sqs_safe_id(&dedup),
    );
    match backend.send(queue, &message).await {
        Ok(receipt) => {
            tracing::debug!(queue, message_id = %receipt.message_id, duplicate = receipt.duplicate, "forwarded");
            Ok(receipt)
        }
        Err(QueueError::InvalidMessage(why)) => Err(WsError::new(
            "forward_rejected",
            format!("the message cannot be queued: {why}"),
        )
        .with_status(if message.body.len() > crate::queue::MAX_BODY_BYTES {
            413
        } else {
            400
        })),
        Err(e @ (QueueError::Throttled { .. } | QueueError::Backend { .. })) => {
            tracing::warn!(queue, error = %e, "forward failed");
            Err(WsError::new(
                "queue_unavailable",
                format!(
                    "queue `{queue}` is unavailable; the message was not acknowledged, try again"
                ),
            )
            .with_status(503))
        }
        Err(e) => Err(WsError::internal(format!("forward to `{queue}`: {e}"))),
    }
}
