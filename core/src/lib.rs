//! # switchboard-core
//!
//! The layer every Switchboard mode shares, with no AWS SDK, no WebSocket server, no RSA
//! and no command line in its dependencies:
//!
//! - the route registry ([`registry`]) that `#[ws_route]` and `#[queue_consumer]` submit to,
//! - handlers and extractors ([`handler`], [`extract`]), responses and frames
//!   ([`response`]), route selection ([`select`]) and [`dispatch`],
//! - the context API handlers send through ([`context`], [`consumer`], [`http`]),
//! - the backend traits with their embedded implementations ([`backend`], [`queue`]),
//! - what an app declares ([`spec`]) and the manifest the deploy program reads
//!   ([`manifest`]),
//! - [`metrics`] (counters and their CloudWatch EMF lines) and [`origin`] (the
//!   CloudFront origin-secret check),
//! - [`names`]: every environment variable, table, index, attribute, queue naming rule and
//!   API Gateway limit, stated once.
//!
//! App developers use the `switchboard` facade, which re-exports what they need; the
//! backend and mode crates (`switchboard-aws`, `switchboard-local`,
//! `switchboard-contract`) and the deploy program build on this crate.

pub mod auth;
pub mod backend;
mod builtins;
pub mod clock;
pub mod consumer;
pub mod context;
pub mod contract;
pub mod dispatch;
pub mod extract;
pub mod fanout;
pub mod handler;
pub mod http;
pub mod identity;
pub mod ids;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod origin;
pub mod queue;
pub mod registry;
pub mod request;
pub mod request_id;
pub mod response;
pub mod rooms;
pub mod select;
pub mod spec;

pub use consumer::{Message, QueueCtx};
pub use context::{Ctx, Delivery, Forward, Target};
pub use extract::{ConnectionId, FromEvent, FromMessage, Json, State};
pub use handler::Handler;
pub use identity::Identity;
pub use registry::{Registry, RegistryError, RouteDef, RouteKind, RouteOptions, routes};
pub use response::{Frame, IntoWsResponse, WsError};
pub use spec::{AppSpec, StartError, WebAsset};
