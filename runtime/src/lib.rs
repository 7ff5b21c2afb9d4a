//! # Switchboard
//!
//! Realtime WebSocket services on AWS API Gateway v2, written as plain async Rust
//! functions:
//!
//! ```no_run
//! use switchboard::prelude::*;
//!
//! #[derive(Deserialize)]
//! struct SendMessage { room: String, text: String }
//!
//! #[derive(Serialize)]
//! struct Chat<'a> { action: &'static str, from: &'a str, text: String }
//!
//! /// Relays a chat line to everyone in a room.
//! #[ws_route("sendMessage")]
//! async fn send_message(ctx: Ctx, Json(msg): Json<SendMessage>) -> Result<(), WsError> {
//!     let from = ctx.identity().username();
//!     ctx.room(&msg.room).send(&Chat { action: "message", from, text: msg.text }).await?;
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     switchboard::App::new().main()
//! }
//! ```
//!
//! The runtime dispatches every frame by the route selection expression
//! (`$request.body.action`), keeps connection bookkeeping, answers `ping` with `pong`,
//! and runs the same handlers in AWS Lambda or in the local gateway (`cargo run`).

pub mod app;
pub mod auth;
pub mod aws;
pub mod backend;
mod builtins;
pub mod consumer;
pub mod context;
pub mod contract;
pub mod dispatch;
pub mod extract;
pub mod handler;
pub mod http;
pub mod identity;
pub mod jwt;
pub mod lambda;
pub mod local;
pub mod manifest;
pub mod queue;
pub mod registry;
pub mod request;
pub mod response;
pub mod select;
pub mod testing;

pub use app::{App, WebAsset};
pub use consumer::{Message, QueueCtx};
pub use context::{Ctx, Delivery, Forward, Target};
pub use extract::{ConnectionId, FromEvent, FromMessage, Json, State};
pub use handler::Handler;
pub use identity::Identity;
pub use registry::{Registry, RegistryError, RouteDef, RouteKind, RouteOptions, routes};
pub use response::{Frame, IntoWsResponse, WsError};
/// `schemars`, for `#[derive(JsonSchema)]` (`#[schemars(crate = "switchboard::schemars")]`)
/// without a direct dependency.
pub use schemars;
pub use switchboard_macros::{queue_consumer, ws_connect, ws_default, ws_disconnect, ws_route};

/// Everything a handler module needs: `use switchboard::prelude::*;`.
pub mod prelude {
    pub use crate::backend::Member;
    pub use crate::{
        App, ConnectionId, Ctx, Delivery, Frame, Identity, Json, Message, QueueCtx, State, WsError,
        queue_consumer, ws_connect, ws_default, ws_disconnect, ws_route,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
}

/// Used by the code the attribute macros generate. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::consumer::{BoxedConsumer, ConsumerDef, ConsumerOptions, erase_consumer};
    pub use crate::contract::{
        Contract, ContractDef, ContractOwner, Probe, ReplySchema, Undescribed, ViaJsonSchema,
    };
    pub use crate::handler::{BoxedHandler, erase};
    pub use crate::registry::{RouteDef, RouteKind, RouteOptions, SourceLocation};
    pub use inventory;
}
