//! What an app declares — name, routes, state, backends, settings, web assets, HTTP API,
//! authorizer — and the one place that turns it into running [`Services`], a
//! [`Dispatcher`], a [`Manifest`] or a [`ServiceContract`].
//!
//! The facade's `App` is a builder over an [`AppSpec`]; every mode (Lambda in
//! `switchboard-aws`, the local gateway in `switchboard-local`) reads the same spec, so a
//! route, a state type or a queue is wired the same way wherever it runs.

use std::sync::Arc;

use crate::auth::{Authorizer, DevAuthorizer};
use crate::backend::history::{HistoryConfig, HistoryStore, MemoryHistory, RoomHistory};
use crate::backend::memory::MemoryStore;
use crate::backend::{ConnectionStore, ConnectionsClient};
use crate::consumer::ConsumerDef;
use crate::contract::{ServiceContract, TypeSchema};
use crate::dispatch::Dispatcher;
use crate::manifest::Manifest;
use crate::queue::memory::MemoryQueue;
use crate::queue::{Queue, QueueSettings};
use crate::registry::{Registry, RegistryError, RouteDef};
use crate::request::{SendSettings, Services, StateMap};
use crate::rooms::RoomGuard;
use crate::select::{RouteSelection, SelectionError};

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The registry is invalid (duplicate keys, bad queue names, two consumers of a
    /// queue). Boxed: it is large and rare.
    #[error(transparent)]
    Registry(Box<RegistryError>),
    /// The route selection expression is invalid.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// A handler reads a state type the app did not provide.
    #[error(
        "route `{route}` (`{function}`) takes State<{type_name}>, but no value of that type was provided: add App::state(..)"
    )]
    MissingState {
        /// The route.
        route: String,
        /// Its handler.
        function: String,
        /// The state type.
        type_name: String,
    },
    /// The authorizer could not be built.
    #[error("authorizer: {0}")]
    Auth(String),
    /// A web asset's path is unusable (`App::web_asset`).
    #[error("web asset `{path}`: {problem}")]
    WebAsset {
        /// The path given.
        path: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl From<RegistryError> for StartError {
    fn from(e: RegistryError) -> Self {
        Self::Registry(Box::new(e))
    }
}

/// Who vouches for callers on `$connect`.
#[derive(Clone, Default)]
pub enum AuthMode {
    /// Cognito-shaped JWTs: locally from the local issuer, in Lambda the JWT authorizer
    /// configured from the environment.
    #[default]
    Jwt,
    /// `?user=NAME`, no proof (the development authorizer).
    Dev,
    /// The app's own.
    Custom(Arc<dyn Authorizer>),
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Jwt => "Jwt",
            Self::Dev => "Dev",
            Self::Custom(_) => "Custom",
        })
    }
}

impl AuthMode {
    /// The authorizer to run when it is not the JWT one: the app's own or the
    /// development one; `None` for [`AuthMode::Jwt`], which each mode builds itself.
    pub fn explicit(&self) -> Option<Arc<dyn Authorizer>> {
        match self {
            Self::Custom(a) => Some(Arc::clone(a)),
            Self::Dev => Some(Arc::new(DevAuthorizer)),
            Self::Jwt => None,
        }
    }
}

/// A static file of the site (see `App::web_asset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebAsset {
    /// Its path, `/chat.js`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its content.
    pub content: &'static str,
}

/// Everything an app declares. The facade's `App` builds it; modes read it.
#[derive(Clone)]
pub struct AppSpec {
    /// The service's name (resource names, the manifest).
    pub name: String,
    /// Values for the `State<S>` extractor.
    pub states: StateMap,
    /// The route selection expression (checked at start).
    pub selection: String,
    /// The page served at `/`.
    pub web_page: Option<&'static str>,
    /// Files served next to the page.
    pub web_assets: Vec<WebAsset>,
    /// The service's version (the AsyncAPI document).
    pub version: String,
    /// Messages pushed from places no attribute covers.
    pub emits: Vec<TypeSchema>,
    /// Who vouches for callers on `$connect`.
    pub auth: AuthMode,
    /// The connection store (default: embedded).
    pub store: Option<Arc<dyn ConnectionStore>>,
    /// Hand-picked routes instead of the linked registry (tests).
    pub defs: Option<Vec<RouteDef>>,
    /// Hand-picked consumers instead of the linked ones (tests).
    pub consumer_defs: Option<Vec<ConsumerDef>>,
    /// The queues routes forward to (default: embedded, every registered queue declared).
    pub queue: Option<Arc<dyn Queue>>,
    /// How the embedded queues behave.
    pub queue_settings: QueueSettings,
    /// Fan-out settings.
    pub send: SendSettings,
    /// Close connections once their token expires.
    pub close_on_token_expiry: bool,
    /// The HTTP API, served under `/http`.
    pub http: Option<axum::Router>,
    /// Which rooms keep history (none unless the app opts in).
    pub history: HistoryConfig,
    /// Where history is kept (default: embedded, in memory).
    pub history_store: Option<Arc<dyn HistoryStore>>,
    /// Who may be in which room.
    pub room_guard: Option<Arc<dyn RoomGuard>>,
}

impl std::fmt::Debug for AppSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSpec")
            .field("name", &self.name)
            .field("selection", &self.selection)
            .field("states", &self.states)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Default for AppSpec {
    fn default() -> Self {
        Self {
            name: "switchboard".to_owned(),
            states: StateMap::default(),
            selection: crate::select::DEFAULT_EXPRESSION.to_owned(),
            web_page: None,
            web_assets: Vec::new(),
            version: "0.0.0".to_owned(),
            emits: Vec::new(),
            auth: AuthMode::default(),
            store: None,
            defs: None,
            consumer_defs: None,
            queue: None,
            queue_settings: QueueSettings::default(),
            send: SendSettings::default(),
            close_on_token_expiry: true,
            http: None,
            history: HistoryConfig::default(),
            history_store: None,
            room_guard: None,
        }
    }
}

impl AppSpec {
    /// The validated registry: the linked `#[ws_route]`s and `#[queue_consumer]`s, or the
    /// hand-picked ones.
    pub fn registry(&self) -> Result<Registry, StartError> {
        let routes: Vec<RouteDef> = match &self.defs {
            Some(defs) => defs.clone(),
            None => inventory::iter::<RouteDef>.into_iter().copied().collect(),
        };
        let consumers: Vec<ConsumerDef> = match (&self.defs, &self.consumer_defs) {
            (_, Some(c)) => c.clone(),
            // Hand-picked routes: no linked consumers unless asked for.
            (Some(_), None) => Vec::new(),
            (None, None) => inventory::iter::<ConsumerDef>
                .into_iter()
                .copied()
                .collect(),
        };
        let mut registry = Registry::from_parts(routes, consumers)?;
        if !self.history.is_empty() {
            registry.add_builtin(crate::builtins::RESUME);
        }
        Ok(registry)
    }

    /// The web assets, checked (see `App::web_asset`).
    pub fn web_assets(&self) -> Result<&[WebAsset], StartError> {
        for asset in &self.web_assets {
            if let Err(problem) = check_asset_path(asset.path) {
                return Err(StartError::WebAsset {
                    path: asset.path.to_owned(),
                    problem,
                });
            }
        }
        Ok(&self.web_assets)
    }

    /// The manifest (`app manifest`).
    pub fn manifest(&self) -> Result<Manifest, StartError> {
        let selection = RouteSelection::parse(&self.selection)?;
        self.manifest_of(selection.expression(), &self.registry()?)
    }

    /// The manifest for an already parsed selection and built registry.
    pub fn manifest_of(
        &self,
        selection: &str,
        registry: &Registry,
    ) -> Result<Manifest, StartError> {
        Ok(Manifest::new(&self.name, selection, registry)
            .with_http(self.http.is_some())
            .with_history(!self.history.is_empty())
            .with_web_assets(self.web_assets()?))
    }

    /// The service's contract: routes, replies and pushed messages with their schemas.
    pub fn contract(&self) -> Result<ServiceContract, StartError> {
        let selection = RouteSelection::parse(&self.selection)?;
        Ok(ServiceContract::new(
            &self.name,
            &self.version,
            selection.expression(),
            &self.registry()?,
            &self.emits,
        ))
    }

    /// The services handlers run with, sending through `client`: the registry checked
    /// against the provided state, the store (embedded unless given), and the queue
    /// (embedded with every registered queue declared, unless given).
    pub fn services(
        &self,
        client: Arc<dyn ConnectionsClient>,
    ) -> Result<Arc<Services>, StartError> {
        let registry = self.registry()?;
        let selection = RouteSelection::parse(&self.selection)?;
        self.check_states(&registry)?;
        let store = self
            .store
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let metrics = Arc::new(self.metrics_for(&registry));
        Ok(Arc::new(Services {
            metrics,
            queue: self.queue_for(&registry),
            store,
            client,
            states: self.states.clone(),
            registry: Arc::new(registry),
            selection,
            send: self.send.clone(),
            close_on_token_expiry: self.close_on_token_expiry,
            history: self.room_history(),
            room_guard: self.room_guard.clone(),
        }))
    }

    /// A dispatcher over this app's routes, sending through `client`.
    pub fn dispatcher(&self, client: Arc<dyn ConnectionsClient>) -> Result<Dispatcher, StartError> {
        Ok(Dispatcher::new(self.services(client)?))
    }

    /// The history the services keep: `None` when no rule is declared; the given store,
    /// or an embedded one.
    pub fn room_history(&self) -> Option<Arc<RoomHistory>> {
        if self.history.is_empty() {
            return None;
        }
        let store = self
            .history_store
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryHistory::new()));
        Some(Arc::new(RoomHistory {
            config: self.history.clone(),
            store,
        }))
    }

    /// The counters of this app: the `Service` dimension from
    /// [`env::SERVICE`](crate::names::env::SERVICE) (`{app}-{stage}`, set by the deploy
    /// program), else the app's name; every route key and queue of `registry`.
    pub fn metrics_for(&self, registry: &Registry) -> crate::metrics::Metrics {
        let service = std::env::var(crate::names::env::SERVICE)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| self.name.clone());
        let routes: Vec<&str> = registry.routes().iter().map(|r| r.def.key).collect();
        let queues: Vec<&str> = registry.consumers().iter().map(|c| c.def.queue).collect();
        crate::metrics::Metrics::new(service, routes, queues)
    }

    fn check_states(&self, registry: &Registry) -> Result<(), StartError> {
        for route in registry.routes() {
            for type_name in route.handler.capabilities().state {
                if !self.states.type_names().contains(&type_name) {
                    return Err(StartError::MissingState {
                        route: route.def.key.to_owned(),
                        function: route.def.function.to_owned(),
                        type_name: type_name.to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    fn queue_for(&self, registry: &Registry) -> Option<Arc<dyn Queue>> {
        match (&self.queue, registry.queues().is_empty()) {
            (Some(q), _) => Some(Arc::clone(q)),
            (None, true) => None,
            (None, false) => {
                let memory = MemoryQueue::new();
                for q in registry.queues() {
                    memory.declare(q.name, self.queue_settings.clone());
                }
                Some(Arc::new(memory) as Arc<dyn Queue>)
            }
        }
    }
}

/// Checks a web asset's path.
fn check_asset_path(path: &str) -> Result<(), &'static str> {
    let rest = path.strip_prefix('/').ok_or("it must start with `/`")?;
    if rest.is_empty() {
        return Err("`/` is the web page (App::web_page)");
    }
    if !rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
    {
        return Err("only ASCII letters, digits, `.`, `_`, `/` and `-` are allowed");
    }
    if rest
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err("empty, `.` and `..` segments are not allowed");
    }
    let first = rest.split('/').next().unwrap_or("");
    if matches!(first, "ws" | "http" | "local" | "@connections") {
        return Err("`/ws`, `/http` and `/local` belong to the gateway");
    }
    Ok(())
}
