//! The Switchboard example service: a chat with rooms.
//!
//! Routes: `join`, `leave`, `sendMessage`, `members`, `whoami`, plus the benchmark
//! contract `echo` and `broadcast`, Switchboard's built-in `ping`, and `placeOrder`
//! (forwarded to the `orders` queue, whose consumer answers `orderPlaced`: [`orders`]). Every frame is
//! JSON with an `action` field; replies are route responses. The HTTP API ([`http`]):
//! `GET /http/me`, `GET /http/rooms`, `GET /http/rooms/{room}/members`.

use serde_json::value::RawValue;
use switchboard::prelude::*;

pub mod http;
pub mod orders;

/// The chat page served at `/`.
pub const WEB_PAGE: &str = include_str!("../web/index.html");

/// The longest message text accepted.
pub const MAX_TEXT_CHARS: usize = 2000;

/// The chat service, ready for [`App::main`] or a test gateway.
pub fn app() -> App {
    App::new()
        .name("chat")
        .web_page(WEB_PAGE)
        .http(http::router())
}

/// A room name: 1-64 characters of letters, digits, `-`, `_`, `.`.
fn check_room(room: &str) -> Result<(), WsError> {
    let ok = (1..=64).contains(&room.len())
        && room
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(WsError::new(
            "invalid_room",
            "a room name is 1-64 characters of letters, digits, `-`, `_`, `.`",
        ))
    }
}

/// `{"room": R}`.
#[derive(Debug, Deserialize)]
pub struct RoomRequest {
    /// The room.
    pub room: String,
}

/// `{"room": R, "text": T}`.
#[derive(Debug, Deserialize)]
pub struct SendMessage {
    /// The room.
    pub room: String,
    /// The message.
    pub text: String,
}

/// Someone joined or left a room.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence<'a> {
    /// Always `"presence"`.
    pub action: &'static str,
    /// The room.
    pub room: &'a str,
    /// `"join"` or `"leave"`.
    pub event: &'static str,
    /// Who.
    pub username: &'a str,
    /// Their connection.
    pub connection_id: &'a str,
}

/// A chat line, as every member of the room receives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat<'a> {
    /// Always `"message"`.
    pub action: &'static str,
    /// The room.
    pub room: &'a str,
    /// The sender's user name.
    pub from: &'a str,
    /// The sender's connection.
    pub connection_id: &'a str,
    /// The text.
    pub text: &'a str,
    /// When the server relayed it, epoch milliseconds.
    pub sent_at: i64,
}

/// The reply to `join`: the room's members, the caller included.
#[derive(Debug, Serialize)]
pub struct Joined {
    /// Always `"joined"`.
    pub action: &'static str,
    /// The room.
    pub room: String,
    /// Its members.
    pub members: Vec<Member>,
}

/// Joins a room; its members (the caller included) get a `presence` frame.
#[ws_route("join")]
pub async fn join(ctx: Ctx, Json(req): Json<RoomRequest>) -> Result<Json<Joined>, WsError> {
    check_room(&req.room)?;
    if ctx.join(&req.room).await? {
        ctx.room(&req.room)
            .send(&Presence {
                action: "presence",
                room: &req.room,
                event: "join",
                username: ctx.identity().username(),
                connection_id: ctx.connection_id(),
            })
            .await?;
    }
    let members = ctx.members(&req.room).await?;
    Ok(Json(Joined {
        action: "joined",
        room: req.room,
        members,
    }))
}

/// Leaves a room; the remaining members get a `presence` frame.
#[ws_route("leave")]
pub async fn leave(ctx: Ctx, Json(req): Json<RoomRequest>) -> Result<serde_json::Value, WsError> {
    check_room(&req.room)?;
    if !ctx.leave(&req.room).await? {
        return Err(not_in_room(&req.room));
    }
    ctx.room(&req.room)
        .send(&Presence {
            action: "presence",
            room: &req.room,
            event: "leave",
            username: ctx.identity().username(),
            connection_id: ctx.connection_id(),
        })
        .await?;
    Ok(serde_json::json!({"action": "left", "room": req.room}))
}

fn not_in_room(room: &str) -> WsError {
    WsError::new(
        "not_in_room",
        format!("you are not in room `{room}`: join it first"),
    )
    .with_status(403)
}

/// Relays a chat line to everyone in a room (the sender included).
#[ws_route("sendMessage")]
pub async fn send_message(ctx: Ctx, Json(msg): Json<SendMessage>) -> Result<(), WsError> {
    check_room(&msg.room)?;
    let chars = msg.text.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        return Err(WsError::new(
            "invalid_text",
            format!("text must be 1-{MAX_TEXT_CHARS} characters"),
        ));
    }
    if !ctx.rooms().await?.contains(&msg.room) {
        return Err(not_in_room(&msg.room));
    }
    ctx.room(&msg.room)
        .send(&Chat {
            action: "message",
            room: &msg.room,
            from: ctx.identity().username(),
            connection_id: ctx.connection_id(),
            text: &msg.text,
            sent_at: now_ms(),
        })
        .await?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Lists who is in a room.
#[ws_route("members")]
pub async fn members(ctx: Ctx, Json(req): Json<RoomRequest>) -> Result<serde_json::Value, WsError> {
    check_room(&req.room)?;
    let members = ctx.members(&req.room).await?;
    Ok(serde_json::json!({"action": "members", "room": req.room, "members": members}))
}

/// Tells the caller who they are: connection id, identity and rooms.
#[ws_route("whoami")]
pub async fn whoami(ctx: Ctx) -> Result<serde_json::Value, WsError> {
    let rooms = ctx.rooms().await?;
    Ok(serde_json::json!({
        "action": "whoami",
        "connectionId": ctx.connection_id(),
        "username": ctx.identity().username(),
        "identity": ctx.identity(),
        "rooms": rooms,
    }))
}

/// `{"action": .., "data": S}` for the benchmark contract; `data` is kept verbatim.
#[derive(Debug, Deserialize)]
pub struct Data {
    /// Any JSON value, not re-parsed.
    pub data: Box<RawValue>,
}

/// The benchmark frame `{"action": A, "data": S}`.
#[derive(Debug, Serialize)]
pub struct DataFrame<'a> {
    /// `"echo"` or `"broadcast"`.
    pub action: &'static str,
    /// The sender's data, verbatim.
    pub data: &'a RawValue,
}

/// Benchmark contract: replies `{"action":"echo","data":S}` to the sender.
#[ws_route("echo")]
pub async fn echo(Json(msg): Json<Data>) -> Result<Frame, WsError> {
    Frame::json(&DataFrame {
        action: "echo",
        data: &msg.data,
    })
}

/// Benchmark contract: sends `{"action":"broadcast","data":S}` to every open connection.
#[ws_route("broadcast")]
pub async fn broadcast(ctx: Ctx, Json(msg): Json<Data>) -> Result<(), WsError> {
    ctx.broadcast()
        .send(&DataFrame {
            action: "broadcast",
            data: &msg.data,
        })
        .await?;
    Ok(())
}

/// Tells the rooms a closing connection was in that it left.
#[ws_disconnect]
pub async fn on_disconnect(ctx: Ctx) -> Result<(), WsError> {
    for room in ctx.rooms().await? {
        ctx.room(&room)
            .except_me()
            .send(&Presence {
                action: "presence",
                room: &room,
                event: "leave",
                username: ctx.identity().username(),
                connection_id: ctx.connection_id(),
            })
            .await?;
    }
    Ok(())
}
