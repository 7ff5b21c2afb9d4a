//! The route registry: every `#[ws_route]`, `#[ws_connect]`, `#[ws_disconnect]` and
//! `#[ws_default]` in the linked crates, collected at link time with `inventory`.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::consumer::{BoxedConsumer, ConsumerDef};
use crate::handler::BoxedHandler;

/// What kind of route a definition is: a custom route key or one of the reserved ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteKind {
    /// `$connect`: runs during the WebSocket upgrade.
    Connect,
    /// `$disconnect`: runs after the socket closed, for any reason.
    Disconnect,
    /// `$default`: frames that match no route key.
    Default,
    /// A custom route key, selected by the route selection expression.
    Custom,
}

impl RouteKind {
    /// The reserved route key of this kind, if it has one.
    pub fn reserved_key(self) -> Option<&'static str> {
        match self {
            Self::Connect => Some("$connect"),
            Self::Disconnect => Some("$disconnect"),
            Self::Default => Some("$default"),
            Self::Custom => None,
        }
    }
}

/// Per-route options given in the attribute, e.g. `#[ws_route("x", memory = 512, timeout = 10)]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteOptions {
    /// Lambda memory in MB for the function serving this route (`memory = 512`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// Lambda timeout in seconds for the function serving this route (`timeout = 10`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
    /// The queue this route forwards its message to once the handler succeeds
    /// (`forward = "orders"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward: Option<&'static str>,
    /// Further queues the handler may send to itself with
    /// [`Ctx::forward`](crate::Ctx::forward) (`queues = ["audit"]`). The route's
    /// `forward` queue is always allowed too.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub queues: &'static [&'static str],
    /// Whether a caller needs an API key (`api_key = true`), sent in the
    /// [`x-api-key`](crate::names::headers::API_KEY) header.
    ///
    /// API Gateway checks a WebSocket API's keys on `$connect` only (a message never
    /// carries headers), so a key on any route makes the *connection* need one: the
    /// deploy program sets `apiKeyRequired` on the `$connect` route (and puts the
    /// stage in a usage plan), and the local gateway refuses an upgrade without a
    /// valid key with 403, as API Gateway does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub api_key: bool,
    /// This route's steady-state throttle, requests per second (`throttle_rate = 50`):
    /// the stage's `routeSettings` for the route key. Over it, API Gateway answers the
    /// message with a 429-style error and the connection stays open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_rate: Option<u32>,
    /// This route's burst (`throttle_burst = 20`): the token bucket's size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_burst: Option<u32>,
}

impl RouteOptions {
    /// Every queue this route may send to: `forward` first, then `queues`, without
    /// repeats.
    pub fn send_queues(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self.forward.into_iter().collect();
        for q in self.queues {
            if !out.contains(q) {
                out.push(q);
            }
        }
        out
    }
}

/// Where a route was declared, for error messages and the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SourceLocation {
    /// `file!()` of the declaration.
    pub file: &'static str,
    /// `line!()` of the function name.
    pub line: u32,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One registered route, as submitted by the attribute macros.
///
/// Built by generated code only; read it through [`routes`] or [`Registry`].
#[derive(Clone, Copy)]
pub struct RouteDef {
    /// The route key (`"sendMessage"`, or `"$connect"` etc. for the reserved kinds).
    pub key: &'static str,
    /// Custom route or one of the reserved overrides.
    pub kind: RouteKind,
    /// The handler function's name.
    pub function: &'static str,
    /// `module_path!()` of the handler.
    pub module: &'static str,
    /// Where it was declared.
    pub location: SourceLocation,
    /// Options from the attribute.
    pub options: RouteOptions,
    /// The handler's doc comment (first paragraph), for manifests and API documents.
    pub doc: &'static str,
    /// Builds the type-erased handler.
    pub handler: fn() -> BoxedHandler,
}

impl fmt::Debug for RouteDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteDef")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("function", &self.function)
            .field("module", &self.module)
            .field("location", &self.location)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

inventory::collect!(RouteDef);

/// A route of a validated registry, with its handler built.
#[derive(Clone)]
pub struct Route {
    /// The definition from the attribute (or the built-in one).
    pub def: RouteDef,
    /// The handler, built once.
    pub handler: BoxedHandler,
    /// Whether this is Switchboard's built-in behaviour (no app handler for the key).
    pub builtin: bool,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.def.fmt(f)
    }
}

/// Errors found when the registry is validated at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// Two handlers claim the same route key.
    #[error(
        "route key `{key}` is registered twice: by `{first_fn}` at {first} and by `{second_fn}` at {second}; route keys must be unique"
    )]
    DuplicateKey {
        /// The contested key.
        key: String,
        /// The function registered first (in stable order).
        first_fn: String,
        /// Where it is.
        first: SourceLocation,
        /// The other function.
        second_fn: String,
        /// Where that one is.
        second: SourceLocation,
    },
    /// A custom route uses a reserved (`$`) key or an empty key. The macros reject this at
    /// compile time; this catches hand-built definitions.
    #[error("route key `{key}` of `{function}` at {location} is not a valid custom route key")]
    InvalidKey {
        /// The key.
        key: String,
        /// The function.
        function: String,
        /// Where it is.
        location: SourceLocation,
    },
    /// A queue name (in `forward`, `queues` or `#[queue_consumer]`) is not 1 to 40 ASCII
    /// letters, digits, `-` or `_`.
    #[error(
        "queue name `{queue}` used by `{function}` at {location} is invalid: use 1 to 40 ASCII letters, digits, `-` or `_`"
    )]
    InvalidQueueName {
        /// The name.
        queue: String,
        /// The function.
        function: String,
        /// Where it is.
        location: SourceLocation,
    },
    /// Two consumers for one queue.
    #[error(
        "queue `{queue}` has two consumers: `{first_fn}` at {first} and `{second_fn}` at {second}; a queue has at most one"
    )]
    DuplicateConsumer {
        /// The queue.
        queue: String,
        /// The first consumer (in stable order).
        first_fn: String,
        /// Where it is.
        first: SourceLocation,
        /// The other.
        second_fn: String,
        /// Where that one is.
        second: SourceLocation,
    },
}

/// A registered queue consumer, built.
#[derive(Clone)]
pub struct RegisteredConsumer {
    /// The definition from the attribute.
    pub def: ConsumerDef,
    /// The consumer, built once.
    pub consumer: BoxedConsumer,
}

impl fmt::Debug for RegisteredConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.def.fmt(f)
    }
}

/// A queue the registry knows of: who sends to it and who consumes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueDecl {
    /// The logical name.
    pub name: &'static str,
    /// The route keys that may send to it (`forward` or `queues`), in stable order.
    pub producers: Vec<&'static str>,
    /// The index of its consumer in [`Registry::consumers`], if it has one.
    pub consumer: Option<usize>,
}

/// The validated set of routes: unique keys, in a stable order (reserved routes first,
/// then custom keys alphabetically), with Switchboard's built-ins (`$connect`,
/// `$disconnect`, `$default`, `ping`) for every key the app does not handle itself.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    routes: Vec<Route>,
    by_key: HashMap<&'static str, usize>,
    consumers: Vec<RegisteredConsumer>,
    queues: Vec<QueueDecl>,
}

impl Registry {
    /// Validates definitions: sorts them into a stable order and rejects duplicate keys,
    /// naming both places.
    pub fn from_defs(defs: impl IntoIterator<Item = RouteDef>) -> Result<Self, RegistryError> {
        Self::from_parts(defs, [])
    }

    /// Validates route and consumer definitions: [`from_defs`](Self::from_defs) for the
    /// routes, plus valid queue names and at most one consumer per queue.
    pub fn from_parts(
        defs: impl IntoIterator<Item = RouteDef>,
        consumers: impl IntoIterator<Item = ConsumerDef>,
    ) -> Result<Self, RegistryError> {
        let mut registry = Self::routes_only(defs)?;
        let mut consumers: Vec<ConsumerDef> = consumers.into_iter().collect();
        consumers.sort_by(|a, b| {
            (a.queue, a.location.file, a.location.line).cmp(&(
                b.queue,
                b.location.file,
                b.location.line,
            ))
        });
        let mut queues: std::collections::BTreeMap<&'static str, QueueDecl> =
            std::collections::BTreeMap::new();
        for route in &registry.routes {
            for queue in route.def.options.send_queues() {
                if !crate::queue::valid_queue_name(queue) {
                    return Err(RegistryError::InvalidQueueName {
                        queue: queue.to_owned(),
                        function: route.def.function.to_owned(),
                        location: route.def.location,
                    });
                }
                let decl = queues.entry(queue).or_insert_with(|| QueueDecl {
                    name: queue,
                    ..QueueDecl::default()
                });
                decl.producers.push(route.def.key);
            }
        }
        let mut built: Vec<RegisteredConsumer> = Vec::with_capacity(consumers.len());
        for def in consumers {
            if !crate::queue::valid_queue_name(def.queue) {
                return Err(RegistryError::InvalidQueueName {
                    queue: def.queue.to_owned(),
                    function: def.function.to_owned(),
                    location: def.location,
                });
            }
            let decl = queues.entry(def.queue).or_insert_with(|| QueueDecl {
                name: def.queue,
                ..QueueDecl::default()
            });
            if let Some(i) = decl.consumer {
                let first: &ConsumerDef = &built[i].def;
                return Err(RegistryError::DuplicateConsumer {
                    queue: def.queue.to_owned(),
                    first_fn: format!("{}::{}", first.module, first.function),
                    first: first.location,
                    second_fn: format!("{}::{}", def.module, def.function),
                    second: def.location,
                });
            }
            decl.consumer = Some(built.len());
            built.push(RegisteredConsumer {
                def,
                consumer: (def.consumer)(),
            });
        }
        registry.consumers = built;
        registry.queues = queues.into_values().collect();
        Ok(registry)
    }

    fn routes_only(defs: impl IntoIterator<Item = RouteDef>) -> Result<Self, RegistryError> {
        let mut defs: Vec<RouteDef> = defs.into_iter().collect();
        defs.sort_by(|a, b| {
            (a.kind, a.key, a.location.file, a.location.line).cmp(&(
                b.kind,
                b.key,
                b.location.file,
                b.location.line,
            ))
        });
        let mut by_key: HashMap<&'static str, usize> = HashMap::with_capacity(defs.len());
        let mut routes = Vec::with_capacity(defs.len());
        for def in defs {
            let valid = match def.kind.reserved_key() {
                Some(reserved) => def.key == reserved,
                None => !def.key.is_empty() && !def.key.starts_with('$'),
            };
            if !valid {
                return Err(RegistryError::InvalidKey {
                    key: def.key.to_owned(),
                    function: def.function.to_owned(),
                    location: def.location,
                });
            }
            if let Some(&i) = by_key.get(def.key) {
                let first: &Route = &routes[i];
                return Err(RegistryError::DuplicateKey {
                    key: def.key.to_owned(),
                    first_fn: format!("{}::{}", first.def.module, first.def.function),
                    first: first.def.location,
                    second_fn: format!("{}::{}", def.module, def.function),
                    second: def.location,
                });
            }
            by_key.insert(def.key, routes.len());
            routes.push(Route {
                def,
                handler: (def.handler)(),
                builtin: false,
            });
        }
        for def in crate::builtins::BUILTINS {
            if !by_key.contains_key(def.key) {
                by_key.insert(def.key, routes.len());
                routes.push(Route {
                    def,
                    handler: (def.handler)(),
                    builtin: true,
                });
            }
        }
        routes.sort_by(|a, b| (a.def.kind, a.def.key).cmp(&(b.def.kind, b.def.key)));
        let by_key = routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.def.key, i))
            .collect();
        Ok(Self {
            routes,
            by_key,
            consumers: Vec::new(),
            queues: Vec::new(),
        })
    }

    /// Adds a built-in route unless the app handles its key itself (`resume`, when the
    /// app keeps room history).
    pub(crate) fn add_builtin(&mut self, def: RouteDef) {
        if self.by_key.contains_key(def.key) {
            return;
        }
        self.routes.push(Route {
            def,
            handler: (def.handler)(),
            builtin: true,
        });
        self.routes
            .sort_by(|a, b| (a.def.kind, a.def.key).cmp(&(b.def.kind, b.def.key)));
        self.by_key = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.def.key, i))
            .collect();
    }

    /// Every registered queue consumer, by queue name.
    pub fn consumers(&self) -> &[RegisteredConsumer] {
        &self.consumers
    }

    /// Every queue a route sends to or a consumer reads, by name.
    pub fn queues(&self) -> &[QueueDecl] {
        &self.queues
    }

    /// The consumer of a queue, if it has one.
    pub fn consumer(&self, queue: &str) -> Option<&RegisteredConsumer> {
        self.queues
            .iter()
            .find(|q| q.name == queue)
            .and_then(|q| q.consumer)
            .map(|i| &self.consumers[i])
    }

    /// Every registered route, in stable order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route registered for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Route> {
        self.by_key.get(key).map(|&i| &self.routes[i])
    }

    /// The custom route keys, in stable order.
    pub fn custom_keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.routes
            .iter()
            .filter(|r| r.def.kind == RouteKind::Custom)
            .map(|r| r.def.key)
    }
}

/// The registry of every route in the linked crates, validated.
///
/// Order is stable: `$connect`, `$disconnect`, `$default` overrides first, then custom
/// keys in alphabetical order. Duplicate keys are an error naming both declarations.
pub fn routes() -> Result<Registry, RegistryError> {
    Registry::from_parts(
        inventory::iter::<RouteDef>.into_iter().copied(),
        inventory::iter::<ConsumerDef>.into_iter().copied(),
    )
}
