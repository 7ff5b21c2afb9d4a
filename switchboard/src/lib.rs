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

mod app;
#[cfg(feature = "local")]
mod cli;
#[cfg(feature = "aws")]
mod runtime;

pub use switchboard_core::{
    auth, backend, consumer, context, dispatch, extract, fanout, handler, http, identity, ids,
    manifest, metrics, names, origin, queue, registry, request, request_id, response, rooms,
    select, spec,
};

/// The contract: the registry's schemas ([`switchboard_core::contract`]) and, with the
/// `contract` feature, the AsyncAPI and TypeScript generators.
pub mod contract {
    #[cfg(feature = "contract")]
    pub use switchboard_contract::{asyncapi, typescript};
    pub use switchboard_core::contract::*;
}

/// AWS: the DynamoDB store, the `@connections` client, SQS, the Lambda roles, JWT
/// verification (`switchboard-aws`).
#[cfg(feature = "aws")]
pub use switchboard_aws as aws;

/// The local gateway, its token issuer and `TestGateway` (`switchboard-local`).
#[cfg(feature = "local")]
pub use switchboard_local as local;

/// Test support (feature `testing`, for dev-dependencies): `TestGateway` and its
/// connections, the fake Lambda Runtime API, proxies, moto helpers, event builders.
#[cfg(feature = "testing")]
pub mod testing {
    pub use switchboard_local::{
        RECV_TIMEOUT, TestConnection, TestError, TestGateway, encode_segment,
    };
    pub use switchboard_testing::*;
}

pub use app::App;
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
pub use spec::{StartError, WebAsset};
pub use switchboard_core::backend::history::HistoryRule;
pub use switchboard_core::rooms::RoomGuard;
pub use switchboard_macros::{queue_consumer, ws_connect, ws_default, ws_disconnect, ws_route};

/// Everything a handler module needs: `use switchboard::prelude::*;`.
pub mod prelude {
    pub use crate::{
        App, ConnectionId, Ctx, Delivery, Frame, HistoryRule, Identity, Json, Message, QueueCtx,
        State, WsError, queue_consumer, ws_connect, ws_default, ws_disconnect, ws_route,
    };
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use switchboard_core::backend::Member;
}

/// Used by the code the attribute macros generate. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use switchboard_core::consumer::{
        BoxedConsumer, ConsumerDef, ConsumerOptions, erase_consumer,
    };
    pub use switchboard_core::contract::{
        Contract, ContractDef, ContractOwner, Probe, ReplySchema, Undescribed, ViaJsonSchema,
    };
    pub use switchboard_core::handler::{BoxedHandler, erase};
    pub use switchboard_core::registry::{RouteDef, RouteKind, RouteOptions, SourceLocation};
}
