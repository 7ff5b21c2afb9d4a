//! Extractors: the types a handler's arguments may have.
//!
//! Every argument but the last implements [`FromEvent`]; the last one implements
//! [`FromMessage`]. [`Json<T>`] reads the frame's payload and so must come last.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::Ctx;
use crate::identity::Identity;
use crate::request::WsRequest;
use crate::response::WsError;

/// What a handler needs from the platform, derived from its extractors. The deploy
/// program turns this into IAM permissions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Sends to connections (`execute-api:ManageConnections`).
    pub connections: bool,
    /// Reads or writes the connection store (DynamoDB).
    pub store: bool,
    /// Application state types the handler reads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<&'static str>,
}

impl Capabilities {
    /// Adds what `other` needs.
    pub fn merge(&mut self, other: Capabilities) {
        self.connections |= other.connections;
        self.store |= other.store;
        for s in other.state {
            if !self.state.contains(&s) {
                self.state.push(s);
            }
        }
    }
}

/// An argument built from the event, without consuming the payload.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Switchboard extractor",
    label = "not an extractor",
    note = "handler arguments must be extractors: `Ctx`, `ConnectionId`, `Identity`, `State<S>`, or `Json<T>` (last argument only)"
)]
pub trait FromEvent: Sized {
    /// Builds the value, or rejects the event with an error frame.
    fn from_event(req: &Arc<WsRequest>) -> Result<Self, WsError>;
    /// What this extractor needs from the platform.
    fn capabilities() -> Capabilities {
        Capabilities::default()
    }
}

/// An argument built from the event that may read the payload; only the last argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Switchboard extractor",
    label = "not an extractor",
    note = "handler arguments must be extractors: `Ctx`, `ConnectionId`, `Identity`, `State<S>`, or `Json<T>` (last argument only)"
)]
pub trait FromMessage<M = private::ViaMessage>: Sized {
    /// Builds the value, or rejects the event with an error frame.
    fn from_message(req: &Arc<WsRequest>) -> Result<Self, WsError>;
    /// What this extractor needs from the platform.
    fn capabilities() -> Capabilities {
        Capabilities::default()
    }
}

/// Markers that let the last argument be either kind of extractor.
pub mod private {
    /// The last argument reads the payload.
    #[derive(Debug, Clone, Copy)]
    pub enum ViaMessage {}
    /// The last argument is an ordinary [`FromEvent`](super::FromEvent) extractor.
    #[derive(Debug, Clone, Copy)]
    pub enum ViaEvent {}
}

impl<T: FromEvent> FromMessage<private::ViaEvent> for T {
    fn from_message(req: &Arc<WsRequest>) -> Result<Self, WsError> {
        T::from_event(req)
    }
    fn capabilities() -> Capabilities {
        <T as FromEvent>::capabilities()
    }
}

/// The frame's JSON payload, deserialised into `T` (the whole frame, `action` included:
/// unknown fields are ignored unless `T` denies them). As a return value, `Json(x)`
/// serialises `x` as the route response.
///
/// A payload that does not fit `T` is answered with a `bad_payload` error frame naming
/// the problem; the handler does not run and the connection stays open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromMessage for Json<T> {
    fn from_message(req: &Arc<WsRequest>) -> Result<Self, WsError> {
        let Some(body) = req.body() else {
            return Err(WsError::bad_payload("this route expects a JSON payload"));
        };
        serde_json::from_str(body)
            .map(Json)
            .map_err(|e| WsError::bad_payload(format!("invalid payload: {e}")))
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// The caller's connection id (`requestContext.connectionId`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ConnectionId(pub String);

impl FromEvent for ConnectionId {
    fn from_event(req: &Arc<WsRequest>) -> Result<Self, WsError> {
        let id = req.connection_id();
        if id.is_empty() {
            return Err(WsError::internal(
                "event has no requestContext.connectionId",
            ));
        }
        Ok(Self(id.to_owned()))
    }
}

impl Deref for ConnectionId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromEvent for Identity {
    fn from_event(req: &Arc<WsRequest>) -> Result<Self, WsError> {
        Ok(req.identity().clone())
    }
}

/// Application state provided with `App::state`, looked up by type.
///
/// A handler asking for a state type the app did not provide is reported at start-up,
/// naming the route and the type.
#[derive(Clone, Copy, Debug, Default)]
pub struct State<S>(pub S);

impl<S: Clone + Send + Sync + 'static> FromEvent for State<S> {
    fn from_event(req: &Arc<WsRequest>) -> Result<Self, WsError> {
        req.services().states.get::<S>().map(State).ok_or_else(|| {
            WsError::internal(format!(
                "no state of type `{}` was provided: add it with App::state",
                std::any::type_name::<S>()
            ))
        })
    }
    fn capabilities() -> Capabilities {
        Capabilities {
            state: vec![std::any::type_name::<S>()],
            ..Capabilities::default()
        }
    }
}

impl<S> Deref for State<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}

impl FromEvent for Ctx {
    fn from_event(req: &Arc<WsRequest>) -> Result<Self, WsError> {
        Ok(Ctx::new(Arc::clone(req)))
    }
    fn capabilities() -> Capabilities {
        Capabilities {
            connections: true,
            store: true,
            state: Vec::new(),
        }
    }
}
