//! Room membership checks ([`RoomGuard`]) and the built-in `resume` route.
//!
//! `resume` is how a client that reconnected (with a new connection id, so without its
//! old memberships) gets back into its rooms and catches up:
//!
//! ```text
//! client -> {"action":"resume","rooms":[{"room":"R","since":N,"epoch":"E"}, ...],"id":"opt"}
//!           (each frame of R with seq > N, in order, exactly as delivered live)
//! client <- {"action":"resumed","id":"opt","rooms":[{"room":"R","epoch":"E","seq":LAST,"recovered":true}]}
//! ```
//!
//! For each room: the same check a `join` runs ([`Ctx::join`], which asks the app's
//! [`RoomGuard`]), membership again, and only then the history read, so a frame
//! published during the resume reaches the client in the replay or live (maybe both:
//! clients drop duplicates by `seq`), never neither. `recovered` is `false` when the
//! client's epoch is not the room's or the history no longer holds every frame after
//! `since`; then nothing is replayed and the app reloads its state. An `epoch` of
//! `null` (or none) means "I have nothing": every kept frame after `since` is replayed
//! and `recovered` says whether that was all of them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::identity::Identity;
use crate::names::history::{MAX_RESUME_ROOMS, RESUMED_ACTION};
use crate::response::{Frame, WsError};

/// Decides whether a connection may be in a room: asked by every [`Ctx::join`] and by
/// the built-in `resume`, so an app states its rule once (`App::room_guard`).
///
/// Implemented for closures `Fn(&Identity, &str) -> Result<(), WsError>`.
#[async_trait]
pub trait RoomGuard: Send + Sync + 'static {
    /// `Ok(())` to let `who` (on `connection_id`) into `room`; an error (e.g.
    /// [`WsError::forbidden`]) refuses it.
    async fn check(&self, who: &Identity, connection_id: &str, room: &str) -> Result<(), WsError>;
}

#[async_trait]
impl<F> RoomGuard for F
where
    F: Fn(&Identity, &str) -> Result<(), WsError> + Send + Sync + 'static,
{
    async fn check(&self, who: &Identity, _connection_id: &str, room: &str) -> Result<(), WsError> {
        self(who, room)
    }
}

/// One room of a `resume`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ResumeRoom {
    /// The room.
    pub room: String,
    /// The last `seq` the client has of this room (0: none).
    #[serde(default)]
    pub since: u64,
    /// The epoch that `since` belongs to; `null` or absent: the client has nothing.
    #[serde(default)]
    pub epoch: Option<String>,
}

/// `{"action":"resume","rooms":[..]}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ResumeRequest {
    /// The rooms to resume.
    pub rooms: Vec<ResumeRoom>,
}

/// One room of the `resumed` answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ResumedRoom {
    /// The caller is a member again.
    Ok {
        /// The room.
        room: String,
        /// The room's epoch.
        epoch: String,
        /// The room's latest `seq` (0 if nothing was ever sent).
        seq: u64,
        /// Whether every frame after `since` was replayed; `false`: nothing was, reload.
        recovered: bool,
    },
    /// The room was refused (the guard said no, or it keeps no history).
    Refused {
        /// The room.
        room: String,
        /// Why.
        error: RoomError,
    },
}

/// Why a room of a `resume` was refused.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RoomError {
    /// The code (`forbidden`, `no_history`, or the guard's own).
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

/// `{"action":"resumed","rooms":[..]}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Resumed {
    /// Always `"resumed"`.
    #[schemars(extend("const" = "resumed"))]
    pub action: &'static str,
    /// One entry per room asked for, in order.
    pub rooms: Vec<ResumedRoom>,
}

/// How many replayed frames are posted between yields to the runtime.
const REPLAY_YIELD_EVERY: usize = 128;

/// The error code of a room that keeps no history.
pub const NO_HISTORY: &str = "no_history";

/// The built-in `resume` route.
pub(crate) async fn resume(ctx: Ctx, req: ResumeRequest) -> Result<Frame, WsError> {
    if req.rooms.len() > MAX_RESUME_ROOMS {
        return Err(WsError::bad_payload(format!(
            "a resume names at most {MAX_RESUME_ROOMS} rooms"
        )));
    }
    let mut rooms = Vec::with_capacity(req.rooms.len());
    for room in req.rooms {
        let entry = match resume_room(&ctx, &room).await {
            Ok(entry) => entry,
            Err(e) if e.status() >= 500 => return Err(e),
            Err(e) => ResumedRoom::Refused {
                room: room.room,
                error: RoomError {
                    code: e.code().to_owned(),
                    message: e.message().to_owned(),
                },
            },
        };
        rooms.push(entry);
    }
    Frame::json(&Resumed {
        action: RESUMED_ACTION,
        rooms,
    })
}

async fn resume_room(ctx: &Ctx, req: &ResumeRoom) -> Result<ResumedRoom, WsError> {
    let services = ctx.services();
    let history = services.history.as_ref();
    let Some((history, rule)) = history.and_then(|h| h.rule_for(&req.room).map(|r| (h, r))) else {
        return Err(WsError::new(
            NO_HISTORY,
            format!("room `{}` keeps no history", req.room),
        ));
    };
    // Member first, then read: a frame stored after the read is sent live to us.
    ctx.join(&req.room).await?;
    let read = history
        .store
        .read_since(&req.room, rule, req.since)
        .await
        .map_err(WsError::from)?;
    let same_epoch = req.epoch.as_deref().is_none_or(|e| e == read.epoch);
    let recovered = same_epoch && req.since <= read.last && read.complete_after(req.since);
    // With an epoch the client either gets everything or nothing; with none it gets
    // whatever is kept.
    let replay = recovered || (req.epoch.is_none() && req.since <= read.last);
    if replay {
        let me = ctx.connection_id().to_owned();
        for (i, (_, frame)) in read.frames.into_iter().enumerate() {
            ctx.connection(me.clone()).send_frame(frame).await?;
            if i % REPLAY_YIELD_EVERY == REPLAY_YIELD_EVERY - 1 {
                // Lets a transport polled on the same task (the local gateway's socket
                // task) write what is queued, so a long replay never fills its buffer.
                tokio::task::yield_now().await;
            }
        }
    }
    Ok(ResumedRoom::Ok {
        room: req.room.clone(),
        epoch: read.epoch,
        seq: read.last,
        recovered,
    })
}
