//! The service as the deploy program sees it: the app's manifest turned into Lambda
//! functions (one per role string), queues and the optional HTTP API.
//!
//! The manifest is read through its JSON form (`Manifest` is `Serialize`), so fields
//! added to it later (queues, the HTTP API) are read when present and default to absent.

use std::collections::BTreeMap;

use serde::Deserialize;
use switchboard_core::manifest::Manifest;

use crate::DeployError;

/// Lambda memory when the route does not say (MB).
pub const DEFAULT_MEMORY_MB: u32 = 256;
/// Lambda timeout when the route does not say (s).
pub const DEFAULT_TIMEOUT_SECS: u32 = 10;
/// Messages per consumer invocation when the consumer does not say.
pub const DEFAULT_BATCH_SIZE: u32 = 10;

/// What a function's code needs from the platform (the manifest's `capabilities`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Capabilities {
    /// Sends to connections (`execute-api:ManageConnections` POST/GET/DELETE).
    pub connections: bool,
    /// Reads or writes the connection store (DynamoDB).
    pub store: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OptionsDoc {
    memory_mb: Option<u32>,
    timeout_secs: Option<u32>,
    forward: Option<String>,
    queues: Vec<String>,
    api_key: bool,
    throttle_rate: Option<u32>,
    throttle_burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RouteDoc {
    key: String,
    kind: String,
    #[serde(default)]
    options: OptionsDoc,
    #[serde(default)]
    returns_value: bool,
    #[serde(default)]
    capabilities: Capabilities,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerDoc {
    memory_mb: Option<u32>,
    timeout_secs: Option<u32>,
    batch_size: Option<u32>,
    #[serde(default)]
    options: ConsumerOptionsDoc,
    #[serde(default)]
    capabilities: Capabilities,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ConsumerOptionsDoc {
    memory_mb: Option<u32>,
    timeout_secs: Option<u32>,
    batch_size: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct QueueDoc {
    name: String,
    #[serde(default)]
    producers: Vec<String>,
    consumer: Option<ConsumerDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HttpDoc {
    memory_mb: Option<u32>,
    timeout_secs: Option<u32>,
    options: OptionsDoc,
    capabilities: Option<Capabilities>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    app: String,
    route_selection_expression: String,
    routes: Vec<RouteDoc>,
    #[serde(default)]
    queues: Vec<QueueDoc>,
    #[serde(default)]
    http: Option<serde_json::Value>,
    #[serde(default)]
    web_assets: Vec<WebAsset>,
    #[serde(default)]
    history: bool,
}

/// A static file of the site besides the page (the manifest's `webAssets`): uploaded
/// to the site's bucket at its path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebAsset {
    /// Its path (`/chat.js`); the object key is the path without the `/`.
    pub path: String,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its content.
    pub content: String,
}

/// What a function is deployed as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FunctionKind {
    /// A WebSocket route (`ws:<key>`).
    Route {
        /// The route key.
        key: String,
        /// `$connect`, `$disconnect` or a message route (`$default` and custom keys).
        reserved: Option<Reserved>,
    },
    /// The `$connect` REQUEST authorizer (`ws:authorizer`).
    Authorizer,
    /// Cognito's pre-sign-up trigger (`cognito:pre-signup`).
    PreSignup,
    /// A queue consumer (`queue:<name>`).
    Consumer {
        /// The queue.
        queue: String,
        /// Messages per invocation.
        batch_size: u32,
    },
    /// The HTTP API (`http`).
    Http,
}

/// The reserved routes that behave differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// `$connect`.
    Connect,
    /// `$disconnect`.
    Disconnect,
    /// `$default`.
    Default,
}

/// One Lambda function of the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// The handler string (`ws:sendMessage`, `ws:authorizer`, `queue:orders`, `http`).
    pub role: String,
    /// What it is.
    pub kind: FunctionKind,
    /// A name part unique in the service, valid in Lambda and IAM names.
    pub slug: String,
    /// Memory (MB).
    pub memory_mb: u32,
    /// Timeout (s).
    pub timeout_secs: u32,
    /// What its code uses.
    pub capabilities: Capabilities,
    /// Queues it may send to.
    pub sends_to: Vec<String>,
    /// Whether the route's handler returns a value (routes only).
    pub returns_value: bool,
    /// Whether the route needs an API key (routes only; enforced on `$connect`).
    pub api_key: bool,
    /// The route's own throttling, `(rate, burst)`, when it has any (routes only).
    pub throttle: Option<(Option<u32>, Option<u32>)>,
}

impl Function {
    /// Whether this function serves WebSocket messages (`$default` and custom routes):
    /// those may close a connection whose token expired (`DeleteConnection`).
    pub fn is_message_route(&self) -> bool {
        matches!(
            &self.kind,
            FunctionKind::Route { reserved, .. } if !matches!(reserved, Some(Reserved::Connect | Reserved::Disconnect))
        )
    }

    /// The route key, for route functions.
    pub fn route_key(&self) -> Option<&str> {
        match &self.kind {
            FunctionKind::Route { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// A queue of the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queue {
    /// Its logical name.
    pub name: String,
    /// The roles of the functions that send to it.
    pub producers: Vec<String>,
    /// The role of its consumer function, if it has one.
    pub consumer: Option<String>,
}

/// The service: everything the plan is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The app's name.
    pub app: String,
    /// The WebSocket API's route selection expression.
    pub route_selection_expression: String,
    /// Every function: routes (registry order), the authorizer, the pre-sign-up
    /// trigger, queue consumers, the HTTP function.
    pub functions: Vec<Function>,
    /// Every queue, by name.
    pub queues: Vec<Queue>,
    /// Whether the app has an HTTP API.
    pub http: bool,
    /// The site's static files besides the page.
    pub web_assets: Vec<WebAsset>,
    /// Whether some rooms keep history (the history table and its grants).
    pub history: bool,
}

impl Service {
    /// The service of an app's manifest.
    pub fn from_manifest(manifest: &Manifest) -> Result<Self, DeployError> {
        let value = serde_json::to_value(manifest).map_err(DeployError::Manifest)?;
        Self::from_manifest_json(value)
    }

    /// The service of a manifest in its JSON form (`app manifest`).
    pub fn from_manifest_json(value: serde_json::Value) -> Result<Self, DeployError> {
        let doc: ManifestDoc = serde_json::from_value(value).map_err(DeployError::Manifest)?;
        let mut functions: Vec<Function> = doc.routes.iter().map(route_function).collect();
        functions.push(plain(
            "ws:authorizer",
            "authorizer",
            FunctionKind::Authorizer,
        ));
        functions.push(plain(
            "cognito:pre-signup",
            "pre-signup",
            FunctionKind::PreSignup,
        ));
        let mut queues: BTreeMap<String, Queue> = BTreeMap::new();
        for q in &doc.queues {
            let consumer = q.consumer.as_ref().map(|c| consumer_function(&q.name, c));
            queues.insert(
                q.name.clone(),
                Queue {
                    name: q.name.clone(),
                    producers: q.producers.iter().map(|k| format!("ws:{k}")).collect(),
                    consumer: consumer.as_ref().map(|f| f.role.clone()),
                },
            );
            functions.extend(consumer);
        }
        let http = match &doc.http {
            None | Some(serde_json::Value::Null) => false,
            Some(v) => {
                functions.push(http_function(v));
                true
            }
        };
        add_fanout(&mut functions, &mut queues);
        link_producers(&mut functions, &mut queues)?;
        Ok(Self {
            app: doc.app,
            route_selection_expression: doc.route_selection_expression,
            functions,
            queues: queues.into_values().collect(),
            http,
            web_assets: doc.web_assets,
            history: doc.history,
        })
    }

    /// The function with this role.
    pub fn function(&self, role: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.role == role)
    }

    /// Whether a connection needs an API key: some route asks for one, and API Gateway
    /// checks keys on `$connect` only.
    pub fn api_key_required(&self) -> bool {
        self.functions.iter().any(|f| f.api_key)
    }
}

impl OptionsDoc {
    fn send_queues(&self) -> Vec<String> {
        let mut out: Vec<String> = self.forward.iter().cloned().collect();
        for q in &self.queues {
            if !out.contains(q) {
                out.push(q.clone());
            }
        }
        out
    }
}

/// The function of one route (`$connect`, `$disconnect`, `$default` or a custom key).
fn route_function(route: &RouteDoc) -> Function {
    let reserved = match route.kind.as_str() {
        "connect" => Some(Reserved::Connect),
        "disconnect" => Some(Reserved::Disconnect),
        "default" => Some(Reserved::Default),
        _ => None,
    };
    let mut sends_to: Vec<String> = route.options.forward.iter().cloned().collect();
    for q in &route.options.queues {
        if !sends_to.contains(q) {
            sends_to.push(q.clone());
        }
    }
    Function {
        role: format!("ws:{}", route.key),
        slug: match reserved {
            Some(Reserved::Connect) => "ws-connect".to_owned(),
            Some(Reserved::Disconnect) => "ws-disconnect".to_owned(),
            Some(Reserved::Default) => "ws-default".to_owned(),
            None => format!("route-{}", slug(&route.key)),
        },
        kind: FunctionKind::Route {
            key: route.key.clone(),
            reserved,
        },
        memory_mb: route.options.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
        timeout_secs: route.options.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
        capabilities: route.capabilities.clone(),
        sends_to,
        returns_value: route.returns_value,
        api_key: route.options.api_key,
        throttle: (route.options.throttle_rate.is_some() || route.options.throttle_burst.is_some())
            .then_some((route.options.throttle_rate, route.options.throttle_burst)),
    }
}

/// The consumer function of the queue `queue`.
fn consumer_function(queue: &str, c: &ConsumerDoc) -> Function {
    Function {
        role: format!("queue:{queue}"),
        slug: format!("queue-{}", slug(queue)),
        kind: FunctionKind::Consumer {
            queue: queue.to_owned(),
            batch_size: c
                .batch_size
                .or(c.options.batch_size)
                .unwrap_or(DEFAULT_BATCH_SIZE),
        },
        memory_mb: c
            .memory_mb
            .or(c.options.memory_mb)
            .unwrap_or(DEFAULT_MEMORY_MB),
        timeout_secs: c
            .timeout_secs
            .or(c.options.timeout_secs)
            .unwrap_or(DEFAULT_TIMEOUT_SECS),
        capabilities: c.capabilities.clone(),
        sends_to: Vec::new(),
        returns_value: false,
        api_key: false,
        throttle: None,
    }
}

/// The HTTP API's function, from the manifest's `http` section.
fn http_function(v: &serde_json::Value) -> Function {
    let h: HttpDoc = serde_json::from_value(v.clone()).unwrap_or_default();
    let mut f = plain("http", "http", FunctionKind::Http);
    f.memory_mb = h
        .memory_mb
        .or(h.options.memory_mb)
        .unwrap_or(DEFAULT_MEMORY_MB);
    f.timeout_secs = h
        .timeout_secs
        .or(h.options.timeout_secs)
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    // Without declared capabilities, the HTTP function gets the store and the connections
    // (it may push to sockets).
    f.capabilities = h.capabilities.unwrap_or(Capabilities {
        connections: true,
        store: true,
    });
    f.sends_to = h.options.send_queues();
    f
}

/// Every function that may send to a queue becomes one of its producers, and producers
/// named only by the queue get the send permission too. A producer that is no function
/// is an error.
fn link_producers(
    functions: &mut [Function],
    queues: &mut BTreeMap<String, Queue>,
) -> Result<(), DeployError> {
    for f in functions.iter() {
        for q in &f.sends_to {
            let queue = queues.entry(q.clone()).or_insert_with(|| Queue {
                name: q.clone(),
                producers: Vec::new(),
                consumer: None,
            });
            if !queue.producers.contains(&f.role) {
                queue.producers.push(f.role.clone());
            }
        }
    }
    for q in queues.values() {
        for p in &q.producers {
            if !functions.iter().any(|f| &f.role == p) {
                return Err(DeployError::UnknownProducer {
                    queue: q.name.clone(),
                    producer: p.clone(),
                });
            }
        }
    }
    for q in queues.values() {
        for f in functions.iter_mut() {
            if q.producers.contains(&f.role) && !f.sends_to.contains(&q.name) {
                f.sends_to.push(q.name.clone());
            }
        }
    }
    Ok(())
}

/// The sharded fan-out (issue 17): when some function both posts to connections and
/// reads the store (it may send to rooms, users or everyone), the internal fan-out
/// queue, its consumer `fanout` (which requeues owed recipients on it), and every such
/// function as its producer. The plan also gives `fanout` the queue's dead-letter queue.
fn add_fanout(functions: &mut Vec<Function>, queues: &mut BTreeMap<String, Queue>) {
    use switchboard_core::names::fanout::{QUEUE, ROLE};
    let senders: Vec<String> = functions
        .iter()
        .filter(|f| f.capabilities.connections && f.capabilities.store)
        .map(|f| f.role.clone())
        .collect();
    if senders.is_empty() {
        return;
    }
    for f in functions.iter_mut() {
        if senders.contains(&f.role) && !f.sends_to.iter().any(|q| q == QUEUE) {
            f.sends_to.push(QUEUE.to_owned());
        }
    }
    let mut fanout = plain(
        ROLE,
        ROLE,
        FunctionKind::Consumer {
            queue: QUEUE.to_owned(),
            batch_size: FANOUT_BATCH_SIZE,
        },
    );
    fanout.capabilities = Capabilities {
        connections: true,
        store: true,
    };
    fanout.sends_to = vec![QUEUE.to_owned()];
    queues.insert(
        QUEUE.to_owned(),
        Queue {
            name: QUEUE.to_owned(),
            producers: senders,
            consumer: Some(ROLE.to_owned()),
        },
    );
    functions.push(fanout);
}

/// Messages one `fanout` invocation receives (the most an SQS event source mapping
/// takes without a batching window).
const FANOUT_BATCH_SIZE: u32 = 10;

fn plain(role: &str, slug: &str, kind: FunctionKind) -> Function {
    Function {
        role: role.to_owned(),
        kind,
        slug: slug.to_owned(),
        memory_mb: DEFAULT_MEMORY_MB,
        timeout_secs: DEFAULT_TIMEOUT_SECS,
        capabilities: Capabilities::default(),
        sends_to: Vec::new(),
        returns_value: false,
        api_key: false,
        throttle: None,
    }
}

/// A name part from any string: ASCII letters, digits, `-` and `_` are kept, anything
/// else becomes `_`, and a changed or long name gets a hash of the original so that
/// two keys never share a slug.
pub fn slug(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == s && clean.len() <= 32 && !clean.is_empty() {
        clean
    } else {
        let short: String = clean.chars().take(23).collect();
        format!("{short}-{:08x}", fnv32(s))
    }
}

/// FNV-1a, 32 bits: a short stable hash for names and deployment triggers.
pub fn fnv32(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The environment variable holding a queue's URL: `SWITCHBOARD_QUEUE_URL_<NAME>`.
pub fn queue_url_env_var(name: &str) -> String {
    switchboard_core::names::env::queue_url(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_valid_and_distinct() {
        assert_eq!(slug("sendMessage"), "sendMessage");
        let a = slug("chat.send");
        let b = slug("chat_send");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!(slug(&"x".repeat(200)).len() <= 32);
    }

    #[test]
    fn queues_and_http_from_the_manifest_json() {
        let doc = serde_json::json!({
            "app": "shop", "routeSelectionExpression": "$request.body.action",
            "routes": [
                {"key": "$connect", "kind": "connect", "capabilities": {"store": true}},
                {"key": "placeOrder", "kind": "custom", "options": {"forward": "orders", "timeoutSecs": 5},
                 "capabilities": {"connections": false, "store": false}},
                {"key": "audit", "kind": "custom", "options": {"queues": ["audit-log"]}}
            ],
            "queues": [
                {"name": "orders", "producers": ["placeOrder"], "consumer": {"fn": "ship", "module": "m", "file": "f", "line": 1,
                  "options": {"timeoutSecs": 20, "batchSize": 5}, "capabilities": {"connections": true, "store": true}}},
                {"name": "audit-log", "producers": ["audit"], "consumer": null}
            ],
            "http": {"fn": "router"}
        });
        let s = Service::from_manifest_json(doc).unwrap();
        assert!(s.http);
        let place = s.function("ws:placeOrder").unwrap();
        assert_eq!(place.sends_to, vec!["orders"]);
        assert_eq!(place.timeout_secs, 5);
        let consumer = s.function("queue:orders").unwrap();
        assert_eq!(consumer.timeout_secs, 20);
        assert_eq!(
            consumer.kind,
            FunctionKind::Consumer {
                queue: "orders".into(),
                batch_size: 5
            }
        );
        // The consumer and the HTTP function post and read the store: they may shard
        // a send, so the fan-out queue and its `fanout` consumer exist (issue 17).
        assert_eq!(s.queues.len(), 3);
        assert_eq!(s.queues[0].name, "audit-log");
        assert_eq!(s.queues[0].consumer, None);
        assert_eq!(s.queues[1].consumer.as_deref(), Some("queue:orders"));
        let fanout = &s.queues[2];
        assert_eq!(fanout.name, "switchboard-fanout");
        assert_eq!(fanout.consumer.as_deref(), Some("fanout"));
        for producer in ["queue:orders", "http", "fanout"] {
            assert!(fanout.producers.iter().any(|p| p == producer), "{producer}");
        }
        assert!(!fanout.producers.iter().any(|p| p == "ws:placeOrder"));
        assert!(
            s.function("queue:orders")
                .unwrap()
                .sends_to
                .contains(&"switchboard-fanout".to_owned())
        );
        assert!(s.function("http").is_some());
        assert_eq!(
            queue_url_env_var("audit-log"),
            "SWITCHBOARD_QUEUE_URL_AUDIT_LOG"
        );
    }

    #[test]
    fn no_fanout_when_nothing_sends_to_connections() {
        let doc = serde_json::json!({
            "app": "a", "routeSelectionExpression": "$request.body.action",
            "routes": [{"key": "ping", "kind": "custom", "capabilities": {"connections": false, "store": true}}],
            "queues": []
        });
        let s = Service::from_manifest_json(doc).unwrap();
        assert!(s.queues.is_empty());
        assert!(s.function("fanout").is_none());
    }

    #[test]
    fn an_unknown_producer_is_an_error() {
        let doc = serde_json::json!({
            "app": "a", "routeSelectionExpression": "$request.body.action", "routes": [],
            "queues": [{"name": "q", "producers": ["ghost"], "consumer": null}]
        });
        assert!(matches!(
            Service::from_manifest_json(doc),
            Err(DeployError::UnknownProducer { .. })
        ));
    }
}
