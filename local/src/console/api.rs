//! `/local/api/*`: what the console reads and does. Everything here is a thin layer over
//! the hub (`@connections`), the store, the queue and the dispatcher the gateway
//! already has.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::rejection::StringRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use switchboard_core::backend::history::{HistoryError, object_of};
use switchboard_core::backend::{ConnectionsClient, PostError};
use switchboard_core::queue::{Queue, dead_letter_queue_name};
use switchboard_core::response::Frame;

use super::feed::{preview, redact_tokens};
use crate::{Gateway, Live};

/// Messages a queue listing shows at most.
const MAX_LISTED: usize = 200;

/// A JSON error `{"message": ..}`.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

fn post_error(e: &PostError) -> Response {
    match e {
        PostError::Gone(_) => error(StatusCode::GONE, "the connection is gone"),
        PostError::PayloadTooLarge { .. } => error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string()),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A refusal to answer with [`error`] (small, unlike a `Response`).
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

/// The request body as text, or why not.
fn text_body(body: Result<String, StringRejection>) -> Result<String, Refused> {
    let text = body.map_err(|e| Refused(StatusCode::BAD_REQUEST, e.body_text()))?;
    if text.is_empty() {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            "the frame is empty".into(),
        ));
    }
    Ok(text)
}

/// `GET /local/api/overview`: the manifest, the contract's schemas, the settings.
pub(super) async fn overview(State(gateway): State<Arc<Gateway>>) -> Response {
    let mut manifest: Value = serde_json::from_str(&gateway.manifest).unwrap_or(Value::Null);
    // The page's files are not the console's business: their paths are enough.
    if let Some(Value::Array(assets)) = manifest.get_mut("webAssets") {
        for asset in assets.iter_mut() {
            if let Some(a) = asset.as_object_mut() {
                a.remove("content");
            }
        }
    }
    let config = &gateway.config;
    Json(json!({
        "manifest": manifest,
        "contract": gateway.contract,
        "stage": config.stage,
        "maxMessageBytes": config.max_message_bytes,
        "consoles": gateway.console.subscribers(),
        "consoleQueues": gateway.console.queues().iter()
            .map(|(queued, dropped)| json!({ "queued": queued, "dropped": dropped }))
            .collect::<Vec<_>>(),
        "consoleBuffer": super::feed::SUBSCRIBER_BUFFER,
        "dropped": gateway.console.dropped(),
        "history": false,
    }))
    .into_response()
}

/// `GET /local/api/samples`: the last 15 minutes, one sample a second.
pub(super) async fn samples(State(gateway): State<Arc<Gateway>>) -> Response {
    Json(gateway.console.metrics.history()).into_response()
}

/// `GET /local/api/connections`: every open connection.
pub(super) async fn connections(State(gateway): State<Arc<Gateway>>) -> Response {
    let store = &gateway.dispatcher.services().store;
    let mut rows = Vec::new();
    for live in gateway.hub.snapshot() {
        let rooms = store.rooms_of(&live.id).await.unwrap_or_default();
        rows.push(connection_row(&live, rooms));
    }
    rows.sort_by_key(|r| r["connectedAt"].as_i64().unwrap_or_default());
    Json(rows).into_response()
}

fn connection_row(live: &Live, rooms: Vec<String>) -> Value {
    // Claims come from a verified token, never the token itself; redacted regardless.
    let claims: Value = serde_json::from_str(&redact_tokens(
        &Value::Object(live.identity.context().clone()).to_string(),
    ))
    .unwrap_or(Value::Null);
    json!({
        "id": live.id,
        "user": live.identity.username(),
        "claims": claims,
        "sourceIp": live.source_ip,
        "userAgent": live.user_agent,
        "rooms": rooms,
        "connectedAt": live.connected_at,
        "lastActiveAt": live.last_active.load(Ordering::Relaxed),
        "framesIn": live.frames_in.load(Ordering::Relaxed),
        "framesOut": live.frames_out.load(Ordering::Relaxed),
    })
}

/// `POST /local/api/connections/{id}/close`: as `DELETE @connections/{id}`.
pub(super) async fn close(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    match gateway.hub.delete(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => post_error(&e),
    }
}

/// `POST /local/api/connections/{id}/send`: the body, as a frame, to the client (as
/// `POST @connections/{id}`).
pub(super) async fn send(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    body: Result<String, StringRejection>,
) -> Response {
    let text = match text_body(body) {
        Ok(text) => text,
        Err(refused) => return refused.into_response(),
    };
    match gateway.hub.post(&id, &Frame::text(text)).await {
        Ok(()) => Json(json!({ "sent": 1 })).into_response(),
        Err(e) => post_error(&e),
    }
}

/// `POST /local/api/connections/{id}/frame`: the body handled as if the client had
/// sent it (route selection, the handler, the route response back to the client).
pub(super) async fn frame(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    body: Result<String, StringRejection>,
) -> Response {
    let text = match text_body(body) {
        Ok(text) => text,
        Err(refused) => return refused.into_response(),
    };
    if text.len() > gateway.config.max_message_bytes {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the frame is over the message limit",
        );
    }
    let Some(live) = gateway.hub.live(&id) else {
        return error(StatusCode::GONE, "the connection is gone");
    };
    let route = gateway.dispatcher.route_for(&text);
    let reply = gateway.on_message(&live, text).await;
    let shown = reply.as_ref().map(|f| match f.as_text() {
        Some(t) => preview(t),
        None => format!("({} bytes of binary)", f.len()),
    });
    if let Some(reply) = reply
        && let Err(e) = gateway.hub.post(&id, &reply).await
    {
        return post_error(&e);
    }
    Json(json!({ "route": route, "reply": shown })).into_response()
}

/// `GET /local/api/rooms`: every room, its members, and its history position
/// (`{"seq": latest, "epoch": ..}`, or `null` when the room keeps no history).
pub(super) async fn rooms(State(gateway): State<Arc<Gateway>>) -> Response {
    let store = &gateway.dispatcher.services().store;
    let summaries = match store.rooms().await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let mut rows = Vec::new();
    for s in summaries {
        let members = store.room_members(&s.room).await.unwrap_or_default();
        let history = history_position(&gateway, &s.room).await;
        rows.push(json!({ "room": s.room, "members": members, "history": history }));
    }
    Json(rows).into_response()
}

/// The room's latest `seq` and its epoch, if it keeps history (`null` otherwise;
/// `{"seq": 0, "epoch": null}` before its first send; `{"error": ..}` when the history
/// backend fails). A read only: listing rooms creates nothing.
async fn history_position(gateway: &Gateway, room: &str) -> Value {
    let Some(history) = gateway.dispatcher.services().history.clone() else {
        return Value::Null;
    };
    if history.rule_for(room).is_none() {
        return Value::Null;
    }
    match history.store.position(room).await {
        Ok(Some(at)) => json!({ "seq": at.last, "epoch": at.epoch }),
        Ok(None) => json!({ "seq": 0, "epoch": null }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// The frame a console send to `room` delivers: as written, or, when the room keeps
/// history, stamped with its next `seq` and stored, exactly as `ctx.room(r).send(..)`
/// does (a non-object is refused: it cannot carry `seq`).
async fn room_frame(gateway: &Gateway, room: &str, text: String) -> Result<Frame, Refused> {
    let frame = Frame::text(text);
    let Some(history) = gateway.dispatcher.services().history.clone() else {
        return Ok(frame);
    };
    let Some(rule) = history.rule_for(room) else {
        return Ok(frame);
    };
    let refused = |e: HistoryError| match e {
        HistoryError::NotAnObject { .. } => Refused(StatusCode::BAD_REQUEST, e.to_string()),
        _ => Refused(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let body = object_of(&frame, room).map_err(refused)?;
    history
        .store
        .append(room, rule, &body)
        .await
        .map_err(refused)
}

/// `POST /local/api/rooms/{room}/send`: the body, as a frame ([`room_frame`]), to every
/// member.
pub(super) async fn send_to_room(
    State(gateway): State<Arc<Gateway>>,
    Path(room): Path<String>,
    body: Result<String, StringRejection>,
) -> Response {
    let text = match text_body(body) {
        Ok(text) => text,
        Err(refused) => return refused.into_response(),
    };
    let store = &gateway.dispatcher.services().store;
    let members = match store.room_members(&room).await {
        Ok(m) => m,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let frame = match room_frame(&gateway, &room, text).await {
        Ok(frame) => frame,
        Err(refused) => return refused.into_response(),
    };
    let (mut sent, mut gone) = (0, 0);
    for m in members {
        match gateway.hub.post(&m.connection_id, &frame).await {
            Ok(()) => sent += 1,
            Err(_) => gone += 1,
        }
    }
    Json(json!({ "sent": sent, "gone": gone })).into_response()
}

/// Query of the queue calls.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct QueueQuery {
    /// The dead-letter queue instead of the queue.
    #[serde(default)]
    dlq: bool,
    /// One message (redrive).
    message_id: Option<String>,
}

/// The queue backend and the queue's name, if the app declares `name`.
fn queue_of(gateway: &Gateway, name: &str, dlq: bool) -> Result<(Arc<dyn Queue>, String), Refused> {
    let services = gateway.dispatcher.services();
    if !services.registry.queues().iter().any(|q| q.name == name) {
        return Err(Refused(StatusCode::NOT_FOUND, "no such queue".into()));
    }
    let queue = services
        .queue
        .clone()
        .ok_or_else(|| Refused(StatusCode::NOT_FOUND, "no queue backend".into()))?;
    let target = if dlq {
        dead_letter_queue_name(name)
    } else {
        name.to_owned()
    };
    Ok((queue, target))
}

fn queue_error(e: &switchboard_core::queue::QueueError) -> Response {
    use switchboard_core::queue::QueueError;
    let status = match e {
        QueueError::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
        QueueError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
        QueueError::UnknownQueue(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, &e.to_string())
}

/// `GET /local/api/queues/{name}/messages[?dlq=true]`: the messages, oldest first.
pub(super) async fn messages(
    State(gateway): State<Arc<Gateway>>,
    Path(name): Path<String>,
    Query(query): Query<QueueQuery>,
) -> Response {
    let (queue, target) = match queue_of(&gateway, &name, query.dlq) {
        Ok(q) => q,
        Err(refused) => return refused.into_response(),
    };
    match queue.peek(&target, MAX_LISTED).await {
        Ok(list) => {
            let rows: Vec<Value> = list
                .into_iter()
                .map(|p| {
                    let m = p.message;
                    json!({
                        "messageId": m.message_id, "body": preview(&m.body),
                        "groupId": m.group_id, "dedupId": m.dedup_id,
                        "sequence": m.sequence.to_string(), "receiveCount": m.receive_count,
                        "sentAt": m.sent_at_ms, "inFlight": p.in_flight,
                    })
                })
                .collect();
            Json(json!({ "queue": target, "messages": rows })).into_response()
        }
        Err(e) => queue_error(&e),
    }
}

/// `POST /local/api/queues/{name}/redrive[?messageId=ID]`: dead letters back to the
/// queue (one, or all).
pub(super) async fn redrive(
    State(gateway): State<Arc<Gateway>>,
    Path(name): Path<String>,
    Query(query): Query<QueueQuery>,
) -> Response {
    let (queue, target) = match queue_of(&gateway, &name, false) {
        Ok(q) => q,
        Err(refused) => return refused.into_response(),
    };
    match queue.redrive(&target, query.message_id.as_deref()).await {
        Ok(moved) => Json(json!({ "moved": moved })).into_response(),
        Err(e) => queue_error(&e),
    }
}

/// `POST /local/api/queues/{name}/purge[?dlq=true]`: deletes every message.
pub(super) async fn purge(
    State(gateway): State<Arc<Gateway>>,
    Path(name): Path<String>,
    Query(query): Query<QueueQuery>,
) -> Response {
    let (queue, target) = match queue_of(&gateway, &name, query.dlq) {
        Ok(q) => q,
        Err(refused) => return refused.into_response(),
    };
    match queue.purge(&target).await {
        Ok(purged) => Json(json!({ "purged": purged })).into_response(),
        Err(e) => queue_error(&e),
    }
}
