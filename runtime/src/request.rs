//! One handler invocation: the API Gateway event plus the services handlers use.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;

use crate::backend::{ConnectionStore, ConnectionsClient};
use crate::identity::Identity;
use crate::registry::Registry;
use crate::response::Frame;
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
}

impl Default for SendSettings {
    fn default() -> Self {
        Self {
            fanout_concurrency: 64,
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
