//! [`Ctx`]: what a handler can do besides returning a reply — send to connections, users,
//! rooms and everyone, manage room membership, close connections, see who is connected.
//!
//! What every context shares — sends ([`Target`]), connection, room and member lookups,
//! application state — is written once, in `Outbox`; [`Ctx`],
//! [`QueueCtx`](crate::QueueCtx) and [`HttpCtx`](crate::http::HttpCtx) expose it with
//! their own idea of "me".

use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;

use crate::backend::history::{STAMP_OVERHEAD_BYTES, object_of};
use crate::backend::{
    ConnectionRecord, MAX_MESSAGE_BYTES, Member, PostError, RoomSummary, StoreError,
};
use crate::identity::Identity;
use crate::queue::SendReceipt;
use crate::request::{Services, WsRequest};
use crate::response::{Frame, WsError};

/// The handler's context: the event, the caller, and the platform's services.
///
/// Cheap to clone; clones share the event.
#[derive(Clone)]
pub struct Ctx {
    req: Arc<WsRequest>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("connection_id", &self.connection_id())
            .field("route", &self.route())
            .finish_non_exhaustive()
    }
}

/// The outcome of a send: how many connections got the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Frames accepted by `@connections`.
    pub delivered: usize,
    /// Connections that were gone (410); their records were removed.
    pub gone: usize,
    /// Sends that failed otherwise (logged).
    pub failed: usize,
    /// Recipients handed to the sharded fan-out ([`crate::fanout`]): the send was
    /// larger than the threshold, so consumers post to them after the call returns
    /// (not counted in the fields above). Omitted from JSON when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub queued: usize,
    /// Whether the fan-out's consumers read further pages of recipients after the call
    /// returned (a large room or broadcast): then `queued` counts only the recipients
    /// the caller read, and the total is not known yet. Omitted from JSON when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Delivery {
    fn add(&mut self, other: Delivery) {
        self.delivered += other.delivered;
        self.gone += other.gone;
        self.failed += other.failed;
        self.queued += other.queued;
        self.more |= other.more;
    }
}

impl Ctx {
    pub(crate) fn new(req: Arc<WsRequest>) -> Self {
        Self { req }
    }

    /// The caller's connection id.
    pub fn connection_id(&self) -> &str {
        self.req.connection_id()
    }

    /// The route key being handled (`sendMessage`, `$connect`, ...).
    pub fn route(&self) -> &str {
        self.req.route_key()
    }

    /// The caller's identity, as the authorizer vouched for it.
    pub fn identity(&self) -> &Identity {
        self.req.identity()
    }

    /// The raw API Gateway event.
    pub fn event(&self) -> &aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest {
        self.req.event()
    }

    /// `requestContext.requestId`.
    pub fn request_id(&self) -> &str {
        self.req
            .event()
            .request_context
            .request_id
            .as_deref()
            .unwrap_or_default()
    }

    /// Application state of type `S`, if the app provided one.
    pub fn state<S: Clone + Send + Sync + 'static>(&self) -> Option<S> {
        self.outbox().state()
    }

    pub(crate) fn services(&self) -> &Arc<Services> {
        self.req.services()
    }

    /// Sets the route response (the frame API Gateway returns to the caller) from inside
    /// a handler. A value the handler returns takes precedence.
    pub fn reply<T: Serialize + ?Sized>(&self, msg: &T) -> Result<(), WsError> {
        let frame = Frame::json(msg)?;
        if let Ok(mut slot) = self.req.reply.lock() {
            *slot = Some(frame);
        }
        Ok(())
    }

    /// Sends to one connection.
    pub fn connection(&self, connection_id: impl Into<String>) -> Target<'_> {
        self.outbox().connection(connection_id)
    }

    /// Sends to every connection of a user.
    pub fn user(&self, username: impl Into<String>) -> Target<'_> {
        self.outbox().user(username)
    }

    /// Sends to every member of a room.
    pub fn room(&self, room: impl Into<String>) -> Target<'_> {
        self.outbox().room(room)
    }

    /// Sends to every open connection.
    pub fn broadcast(&self) -> Target<'_> {
        self.outbox().broadcast()
    }

    /// The shared operations, as the caller: "me" is the caller's connection, which a
    /// send during its own `$connect` must not forget.
    fn outbox(&self) -> Outbox<'_> {
        Outbox::new(self.services())
            .me(Some(self.connection_id()))
            .protect(self.connecting())
    }

    /// The caller's id during its own `$connect`: its socket is not open yet, so a send
    /// to it is gone without meaning the record is stale.
    fn connecting(&self) -> Option<&str> {
        (self.route() == "$connect").then(|| self.connection_id())
    }

    /// Sends `msg` to a queue, wrapped in an [envelope](crate::queue::envelope) that says
    /// who sent it and when; `.await` it. The route must declare the queue
    /// (`forward = "orders"` or `queues = ["orders"]` in its attribute), so that the
    /// deploy program grants exactly the queues each function uses.
    ///
    /// Defaults that keep meaning: the message group is the sender's username (each
    /// user's messages are processed in order; set another with [`Forward::group`],
    /// e.g. a room), and the deduplication id is API Gateway's `messageId` of the frame
    /// (a retried Lambda does not enqueue twice; a second forward in one handler gets
    /// `messageId-1`, and so on).
    ///
    /// ```ignore
    /// #[ws_route("placeOrder", queues = ["orders"])]
    /// async fn place_order(ctx: Ctx, Json(order): Json<Order>) -> Result<(), WsError> {
    ///     ctx.forward("orders", &order).group(&order.shop).await?;
    ///     Ok(())
    /// }
    /// ```
    pub fn forward<'a, T: Serialize + Sync + ?Sized>(
        &'a self,
        queue: &'a str,
        msg: &'a T,
    ) -> Forward<'a, T> {
        Forward {
            ctx: self,
            queue,
            msg,
            group: None,
            dedup: None,
        }
    }

    /// Adds the caller to a room, if the app's [`RoomGuard`](crate::rooms::RoomGuard)
    /// (`App::room_guard`) lets it: the same check the built-in `resume` runs. `false`
    /// if it was already in it.
    pub async fn join(&self, room: &str) -> Result<bool, WsError> {
        if let Some(guard) = &self.services().room_guard {
            guard
                .check(self.identity(), self.connection_id(), room)
                .await?;
        }
        let member = Member {
            connection_id: self.connection_id().to_owned(),
            username: self.identity().username().to_owned(),
        };
        self.services()
            .store
            .join_room(room, &member)
            .await
            .map_err(WsError::from)
    }

    /// Removes the caller from a room. `false` if it was not in it.
    pub async fn leave(&self, room: &str) -> Result<bool, WsError> {
        self.services()
            .store
            .leave_room(room, self.connection_id())
            .await
            .map_err(WsError::from)
    }

    /// The rooms the caller is in.
    pub async fn rooms(&self) -> Result<Vec<String>, WsError> {
        self.outbox().rooms_of(self.connection_id()).await
    }

    /// The members of a room.
    pub async fn members(&self, room: &str) -> Result<Vec<Member>, WsError> {
        self.outbox().members(room).await
    }

    /// Every open connection's record.
    pub async fn connections(&self) -> Result<Vec<ConnectionRecord>, WsError> {
        self.outbox().connections().await
    }

    /// The connections of one user.
    pub async fn connections_of(&self, username: &str) -> Result<Vec<ConnectionRecord>, WsError> {
        self.outbox().connections_of(username).await
    }

    /// Closes a connection (`DELETE @connections/{id}`); its `$disconnect` follows.
    /// `false` if it was already gone.
    pub async fn close(&self, connection_id: &str) -> Result<bool, WsError> {
        match self.services().client.delete(connection_id).await {
            Ok(()) => Ok(true),
            Err(PostError::Gone(_)) => {
                forget(self.services(), connection_id, self.connecting()).await;
                Ok(false)
            }
            Err(e) if e.is_unavailable() => Err(connections_unavailable(&e)),
            Err(e) => Err(WsError::internal(e)),
        }
    }
}

/// `@connections` failed (network, 5xx, throttling after retries): 503, "try again".
fn connections_unavailable(e: &PostError) -> WsError {
    tracing::warn!(error = %e, "@connections unavailable");
    WsError::new(
        crate::backend::CONNECTIONS_UNAVAILABLE,
        "@connections is unavailable; no recipient confirmed the message, try again",
    )
    .with_status(503)
}

/// Removes the record of a connection `@connections` called gone, unless it is
/// `protect` (the caller during its own `$connect`).
async fn forget(services: &Services, connection_id: &str, protect: Option<&str>) {
    if protect == Some(connection_id) {
        return;
    }
    if let Err(e) = services.store.remove_connection(connection_id).await {
        tracing::warn!(connection_id, error = %e, "could not remove a gone connection");
    } else {
        tracing::debug!(connection_id, "removed a gone connection");
    }
}

/// A pending [`Ctx::forward`]: set the group or deduplication id, then `.await` it.
#[must_use = "a forward does nothing until you .await it"]
pub struct Forward<'a, T: ?Sized> {
    ctx: &'a Ctx,
    queue: &'a str,
    msg: &'a T,
    group: Option<String>,
    dedup: Option<String>,
}

impl<T: ?Sized> Forward<'_, T> {
    /// The message group (default: the sender's username). Messages of one group are
    /// processed in order, one at a time; groups proceed independently. A value SQS
    /// would refuse (over 128 characters, or other than printable ASCII) is replaced by
    /// a stable hash of it, so the same value always means the same group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The deduplication id (default: the frame's `messageId`). Sends with an id already
    /// sent in the last 5 minutes are accepted but not enqueued. Hashed like
    /// [`group`](Self::group) when SQS would refuse it.
    pub fn dedup_id(mut self, id: impl Into<String>) -> Self {
        self.dedup = Some(id.into());
        self
    }
}

impl<'a, T: Serialize + Sync + ?Sized> std::future::IntoFuture for Forward<'a, T> {
    type Output = Result<SendReceipt, WsError>;
    type IntoFuture =
        std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let payload = serde_json::value::to_raw_value(self.msg)
                .map_err(|e| WsError::internal(format!("forward: cannot serialise: {e}")))?;
            crate::request::forward(&self.ctx.req, self.queue, &payload, self.group, self.dedup)
                .await
        })
    }
}

enum TargetKind {
    Connection(String),
    User(String),
    Room(String),
    Everyone,
}

/// The one home of what [`Ctx`], [`QueueCtx`](crate::QueueCtx) and
/// [`HttpCtx`](crate::http::HttpCtx) share: sends, lookups in the connection store and
/// application state. Each context builds one (cheap: references and a function
/// pointer) and delegates its methods to it, so the contexts differ only in the
/// settings below.
#[derive(Clone, Copy)]
pub(crate) struct Outbox<'a> {
    services: &'a Arc<Services>,
    /// Who [`Target::except_me`] leaves out: the caller ([`Ctx`]), the connection that
    /// sent the message ([`QueueCtx`](crate::QueueCtx)), nobody
    /// ([`HttpCtx`](crate::http::HttpCtx)).
    me: Option<&'a str>,
    /// The connection whose record a gone send must not remove: the caller during its
    /// own `$connect` (its socket is not open yet). Only [`Ctx`] sets it.
    protect: Option<&'a str>,
    /// How a failed lookup (`members`, `connections_of`, ...) reaches the handler:
    /// [`WsError::from`] (`store_unavailable`, 503, when the store is down) unless a
    /// context says otherwise.
    lookup_error: fn(StoreError) -> WsError,
}

impl<'a> Outbox<'a> {
    /// The shared operations over `services`, with no "me" and nothing protected.
    pub(crate) fn new(services: &'a Arc<Services>) -> Self {
        Self {
            services,
            me: None,
            protect: None,
            lookup_error: WsError::from,
        }
    }

    /// Sets who "me" is (see [`Target::except_me`]).
    pub(crate) fn me(mut self, me: Option<&'a str>) -> Self {
        self.me = me;
        self
    }

    /// Sets the connection whose record a gone send must keep.
    pub(crate) fn protect(mut self, protect: Option<&'a str>) -> Self {
        self.protect = protect;
        self
    }

    /// Sets how a failed lookup is reported.
    pub(crate) fn lookup_error(mut self, map: fn(StoreError) -> WsError) -> Self {
        self.lookup_error = map;
        self
    }

    /// Application state of type `S`, if the app provided one.
    pub(crate) fn state<S: Clone + Send + Sync + 'static>(self) -> Option<S> {
        self.services.states.get::<S>()
    }

    /// Sends to one connection.
    pub(crate) fn connection(self, connection_id: impl Into<String>) -> Target<'a> {
        Target::new(self, TargetKind::Connection(connection_id.into()))
    }

    /// Sends to every connection of a user.
    pub(crate) fn user(self, username: impl Into<String>) -> Target<'a> {
        Target::new(self, TargetKind::User(username.into()))
    }

    /// Sends to every member of a room.
    pub(crate) fn room(self, room: impl Into<String>) -> Target<'a> {
        Target::new(self, TargetKind::Room(room.into()))
    }

    /// Sends to every open connection.
    pub(crate) fn broadcast(self) -> Target<'a> {
        Target::new(self, TargetKind::Everyone)
    }

    /// Every room with members, and how many connections are in each.
    pub(crate) async fn rooms(self) -> Result<Vec<RoomSummary>, WsError> {
        self.services.store.rooms().await.map_err(self.lookup_error)
    }

    /// The rooms one connection is in.
    pub(crate) async fn rooms_of(self, connection_id: &str) -> Result<Vec<String>, WsError> {
        self.services
            .store
            .rooms_of(connection_id)
            .await
            .map_err(self.lookup_error)
    }

    /// The members of a room.
    pub(crate) async fn members(self, room: &str) -> Result<Vec<Member>, WsError> {
        self.services
            .store
            .room_members(room)
            .await
            .map_err(self.lookup_error)
    }

    /// Every open connection's record.
    pub(crate) async fn connections(self) -> Result<Vec<ConnectionRecord>, WsError> {
        self.services
            .store
            .list_connections()
            .await
            .map_err(self.lookup_error)
    }

    /// The open connections of one user.
    pub(crate) async fn connections_of(
        self,
        username: &str,
    ) -> Result<Vec<ConnectionRecord>, WsError> {
        self.services
            .store
            .user_connections(username)
            .await
            .map_err(self.lookup_error)
    }
}

/// Recipients of a send: built by `connection(..)`, `user(..)`, `room(..)` or
/// `broadcast()` of a context ([`Ctx`], [`QueueCtx`](crate::QueueCtx),
/// [`HttpCtx`](crate::http::HttpCtx)).
#[must_use = "a target does nothing until you call .send(...)"]
pub struct Target<'a> {
    outbox: Outbox<'a>,
    kind: TargetKind,
    except: Option<String>,
}

impl<'a> Target<'a> {
    fn new(outbox: Outbox<'a>, kind: TargetKind) -> Self {
        Self {
            outbox,
            kind,
            except: None,
        }
    }

    /// Leaves one connection out (e.g. the sender).
    pub fn except(mut self, connection_id: impl Into<String>) -> Self {
        self.except = Some(connection_id.into());
        self
    }

    /// Leaves the caller out (in a queue consumer: the connection that sent the
    /// message).
    pub fn except_me(self) -> Self {
        match self.outbox.me {
            Some(me) => {
                let me = me.to_owned();
                self.except(me)
            }
            None => self,
        }
    }

    /// Serialises `msg` as JSON once and sends it to every recipient.
    pub async fn send<T: Serialize + ?Sized>(self, msg: &T) -> Result<Delivery, WsError> {
        let frame = Frame::json(msg)?;
        self.send_frame(frame).await
    }

    /// Sends a prepared frame to every recipient.
    ///
    /// To a room with history (`App::history`) the frame must be a JSON object: it is
    /// stored with `"seq"` and `"epoch"` added at the top level and delivered so;
    /// anything else is refused with a `not_an_object` error (nothing sent or stored).
    /// The frame is stored before the members are looked up, so a connection that
    /// joined (or resumed) before the lookup gets it live and one that joined later
    /// finds it in the history.
    ///
    /// Sends run with bounded concurrency; a gone recipient's record is removed (that
    /// recipient's, never the caller's). Errors only when the recipients cannot be
    /// looked up (`store_unavailable` when the store is down), the frame is over API
    /// Gateway's 128 KB limit, or `@connections` itself failed for every recipient
    /// (`connections_unavailable`, 503: no record is removed); a partial failure is
    /// counted in [`Delivery::failed`].
    pub async fn send_frame(self, frame: Frame) -> Result<Delivery, WsError> {
        if frame.len() > MAX_MESSAGE_BYTES {
            return Err(too_large_error(frame.len(), MAX_MESSAGE_BYTES));
        }
        let frame = self.stamped(frame).await?;
        if let Some(delivery) = self.paged(&frame).await? {
            return Ok(delivery);
        }
        let store = &self.outbox.services.store;
        let ids: Vec<String> = match self.kind {
            TargetKind::Connection(id) => vec![id],
            TargetKind::User(user) => store
                .user_connections(&user)
                .await
                .map_err(WsError::from)?
                .into_iter()
                .map(|r| r.connection_id)
                .collect(),
            TargetKind::Room(room) => store
                .room_members(&room)
                .await
                .map_err(WsError::from)?
                .into_iter()
                .map(|m| m.connection_id)
                .collect(),
            TargetKind::Everyone => store.connection_ids().await.map_err(WsError::from)?,
        };
        let except = self.except;
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|id| except.as_deref() != Some(id.as_str()))
            .collect();
        let services = self.outbox.services;
        if let Some(sharding) = &services.send.sharding {
            let queued = crate::fanout::enqueue(sharding, self.outbox.protect, &ids, &frame)
                .await
                .map_err(fanout_error)?;
            if let Some(queued) = queued {
                return Ok(Delivery {
                    queued,
                    ..Delivery::default()
                });
            }
        }
        deliver(services, self.outbox.protect, ids.into_iter(), &frame).await
    }
}

/// The caller's error when the fan-out could not queue a send.
fn fanout_error(e: crate::fanout::FanoutError) -> WsError {
    match e {
        crate::fanout::FanoutError::Store(e) => WsError::from(e),
        e => {
            tracing::warn!(error = %e, "fan-out: could not queue the shards");
            WsError::new(
                crate::backend::CONNECTIONS_UNAVAILABLE,
                "the fan-out queue is unavailable; try again",
            )
            .with_status(503)
        }
    }
}

impl Target<'_> {
    /// A room send or broadcast with sharding configured: the recipients are read in
    /// pages ([`crate::fanout`]); `None` when the target is another kind or sharding is
    /// off. Few recipients are still posted inline here.
    async fn paged(&self, frame: &Frame) -> Result<Option<Delivery>, WsError> {
        let services = self.outbox.services;
        let Some(sharding) = &services.send.sharding else {
            return Ok(None);
        };
        let sources = match &self.kind {
            TargetKind::Room(room) => vec![crate::fanout::Source::Room(room.clone())],
            TargetKind::Everyone => crate::fanout::Source::scan(sharding.segments),
            TargetKind::Connection(_) | TargetKind::User(_) => return Ok(None),
        };
        let protect = self.outbox.protect;
        let plan = crate::fanout::send_paged(
            sharding,
            &*services.store,
            sources,
            self.except.as_deref(),
            protect,
            frame,
        )
        .await
        .map_err(fanout_error)?;
        match plan {
            crate::fanout::Plan::Inline(ids) => deliver(services, protect, ids.into_iter(), frame)
                .await
                .map(Some),
            crate::fanout::Plan::Queued { recipients, more } => Ok(Some(Delivery {
                queued: recipients,
                more,
                ..Delivery::default()
            })),
        }
    }

    /// The frame as a room with history delivers it: stamped and stored. Other targets
    /// and rooms without history send it unchanged.
    async fn stamped(&self, frame: Frame) -> Result<Frame, WsError> {
        let TargetKind::Room(room) = &self.kind else {
            return Ok(frame);
        };
        let Some(history) = &self.outbox.services.history else {
            return Ok(frame);
        };
        let Some(rule) = history.rule_for(room) else {
            return Ok(frame);
        };
        let limit = MAX_MESSAGE_BYTES.saturating_sub(STAMP_OVERHEAD_BYTES);
        if frame.len() > limit {
            return Err(too_large_error(frame.len(), limit));
        }
        let body = object_of(&frame, room)?;
        Ok(history.store.append(room, rule, &body).await?)
    }
}

async fn deliver(
    services: &Services,
    protect: Option<&str>,
    ids: impl Iterator<Item = String>,
    frame: &Frame,
) -> Result<Delivery, WsError> {
    let client = &services.client;
    let concurrency = services.send.fanout_concurrency.max(1);
    let mut results = futures_util::stream::iter(ids)
        .map(|id| async move {
            let result = client.post(&id, frame).await;
            (id, result)
        })
        .buffer_unordered(concurrency);
    let mut total = Delivery::default();
    let mut too_large = None;
    let mut unavailable = None;
    while let Some((id, result)) = results.next().await {
        let mut one = Delivery::default();
        match result {
            Ok(()) => one.delivered = 1,
            Err(PostError::Gone(_)) => {
                one.gone = 1;
                forget(services, &id, protect).await;
            }
            Err(PostError::PayloadTooLarge { size, limit }) => {
                too_large = Some((size, limit));
                one.failed = 1;
            }
            Err(e) => {
                tracing::warn!(connection_id = %id, error = %e, "send failed");
                one.failed = 1;
                if e.is_unavailable() {
                    unavailable = Some(e);
                }
            }
        }
        total.add(one);
    }
    let recipients = total.delivered + total.gone + total.failed;
    (services.metrics).fanout(recipients, total.gone);
    if let Some((size, limit)) = too_large {
        return Err(too_large_error(size, limit));
    }
    // Not one recipient answered, because @connections itself failed: an outage, not
    // a partial delivery (gone records are kept: nothing said they were gone).
    if let Some(e) = unavailable
        && total.delivered == 0
        && total.gone == 0
    {
        return Err(connections_unavailable(&e));
    }
    Ok(total)
}

fn too_large_error(size: usize, limit: usize) -> WsError {
    WsError::new(
        "payload_too_large",
        format!("message of {size} bytes exceeds the {limit}-byte limit"),
    )
    .with_status(413)
}
