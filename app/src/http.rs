//! The chat's HTTP API, served under `/http` (locally and behind CloudFront):
//!
//! | request | answer |
//! |---|---|
//! | `GET /http/me` | who the caller is: `username`, `sub`, `groups`, and their open connections with their rooms |
//! | `GET /http/rooms` | every room with members, and how many connections are in it |
//! | `GET /http/rooms/{room}/members` | who is in a room |
//!
//! Every request needs `Authorization: Bearer <id token>` (401 otherwise); errors are
//! `{"error":{"code":..,"message":..}}`.

use serde::Serialize;
use switchboard::Identity;
use switchboard::backend::{Member, RoomSummary};
use switchboard::http::axum::Json;
use switchboard::http::axum::extract::Path;
use switchboard::http::axum::routing::get;
use switchboard::http::{HttpCtx, HttpError, Router};

use crate::check_room;

/// The chat's HTTP routes (paths without the `/http` prefix).
pub fn router() -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/rooms", get(rooms))
        .route("/rooms/{room}/members", get(room_members))
}

/// One open connection of the caller.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MyConnection {
    /// The connection id.
    pub connection_id: String,
    /// When it opened, epoch milliseconds.
    pub connected_at: i64,
    /// The rooms it is in.
    pub rooms: Vec<String>,
}

/// The answer to `GET /http/me`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The caller's user name.
    pub username: String,
    /// The user's stable id (the token's `sub`).
    pub sub: Option<String>,
    /// The user's groups.
    pub groups: Vec<String>,
    /// When the token expires, epoch seconds.
    pub expires_at: Option<i64>,
    /// The caller's open WebSocket connections.
    pub connections: Vec<MyConnection>,
}

/// `GET /http/me`: the caller and their open connections.
pub async fn me(identity: Identity, ctx: HttpCtx) -> Result<Json<Me>, HttpError> {
    let username = identity.username().to_owned();
    let mut records = ctx.connections_of(&username).await?;
    records.sort_by_key(|r| r.connected_at);
    let mut connections = Vec::with_capacity(records.len());
    for record in records {
        let mut rooms = ctx.rooms_of(&record.connection_id).await?;
        rooms.sort();
        connections.push(MyConnection {
            connection_id: record.connection_id,
            connected_at: record.connected_at,
            rooms,
        });
    }
    let groups = identity
        .claim("groups")
        .and_then(|g| g.as_str())
        .map(|g| {
            g.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(Me {
        sub: identity.principal_id().map(str::to_owned),
        expires_at: identity.claim("expiresAt").and_then(|v| v.as_i64()),
        username,
        groups,
        connections,
    }))
}

/// The answer to `GET /http/rooms`.
#[derive(Debug, Serialize)]
pub struct Rooms {
    /// Rooms by name, each with its member count.
    pub rooms: Vec<RoomSummary>,
}

/// `GET /http/rooms`: every room with members, by name.
pub async fn rooms(_caller: Identity, ctx: HttpCtx) -> Result<Json<Rooms>, HttpError> {
    let mut rooms = ctx.rooms().await?;
    rooms.sort_by(|a, b| a.room.cmp(&b.room));
    Ok(Json(Rooms { rooms }))
}

/// The answer to `GET /http/rooms/{room}/members`.
#[derive(Debug, Serialize)]
pub struct RoomMembers {
    /// The room.
    pub room: String,
    /// Its members, by user name then connection (empty when nobody is in it).
    pub members: Vec<Member>,
}

/// `GET /http/rooms/{room}/members`: who is in a room (400 for an invalid room name).
pub async fn room_members(
    _caller: Identity,
    ctx: HttpCtx,
    Path(room): Path<String>,
) -> Result<Json<RoomMembers>, HttpError> {
    check_room(&room)?;
    let mut members = ctx.members(&room).await?;
    members.sort_by(|a, b| (&a.username, &a.connection_id).cmp(&(&b.username, &b.connection_id)));
    Ok(Json(RoomMembers { room, members }))
}
