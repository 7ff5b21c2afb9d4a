//! The manifest: the registry as JSON (`app manifest`). The deploy program reads the same
//! data by linking the app; this is the form for people and other tools.

use serde::Serialize;

use crate::extract::Capabilities;
use crate::registry::{Registry, RouteKind, RouteOptions};

/// The file next to the Lambda artifact that holds the manifest hash the artifact was
/// built from ([`Manifest::manifest_hash`]).
pub const MANIFEST_HASH_FILE: &str = "manifest.sha256";

/// Everything the deploy step needs to know about a service's routes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The app's name.
    pub app: String,
    /// The route selection expression.
    pub route_selection_expression: String,
    /// Every route, in the registry's stable order.
    pub routes: Vec<RouteEntry>,
    /// The HTTP API, `null` when the app has none: the deploy program creates the HTTP
    /// API (JWT authorizer on `$default`), the `http` function and CloudFront's
    /// `/http/*` behaviour only when it is present.
    pub http: Option<HttpEntry>,
    /// Every queue a route sends to or a consumer reads: the deploy program creates a
    /// FIFO queue and its dead-letter queue for each.
    pub queues: Vec<QueueEntry>,
    /// Static files of the site besides the page (`App::web_asset`): the deploy program
    /// uploads each to the site's bucket.
    pub web_assets: Vec<crate::spec::WebAsset>,
    /// Whether some rooms keep history (`App::history`): the deploy program creates the
    /// history table and grants it to every function that can send.
    pub history: bool,
}

/// One queue of the manifest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry {
    /// The logical name (the deployed SQS name is `{app}-{stage}-{name}.fifo`).
    pub name: &'static str,
    /// The route keys that send to it (`forward` or `queues`): their functions get
    /// `sqs:SendMessage` on it and its URL in `SWITCHBOARD_QUEUE_URL_<NAME>`.
    pub producers: Vec<&'static str>,
    /// The environment variable that carries its URL.
    pub url_env: String,
    /// Its consumer (Lambda role `queue:<name>`), if the app has one.
    pub consumer: Option<ConsumerEntry>,
}

/// A queue's consumer in the manifest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerEntry {
    /// The function.
    #[serde(rename = "fn")]
    pub function: &'static str,
    /// Its module path.
    pub module: &'static str,
    /// Its file.
    pub file: &'static str,
    /// Its line.
    pub line: u32,
    /// The Lambda handler string: `queue:<name>`.
    pub role: String,
    /// Options from the attribute.
    pub options: crate::consumer::ConsumerOptions,
    /// What it may use: consumers send to connections and read the store.
    pub capabilities: Capabilities,
    /// Its doc comment.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub doc: &'static str,
}

/// The HTTP API of the manifest.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HttpEntry {
    /// Always `true` (the entry is `null` otherwise).
    pub enabled: bool,
    /// Where CloudFront forwards it, unchanged, to the `$default` stage: `/http`.
    pub base_path: &'static str,
    /// The Lambda handler string of its function: `http`.
    pub role: &'static str,
    /// Who checks tokens: `jwt` (API Gateway's JWT authorizer on every route).
    pub authorizer: &'static str,
    /// What its handlers may use (an axum router declares nothing, so: everything).
    pub capabilities: Capabilities,
}

impl HttpEntry {
    /// The entry of an app with an HTTP API.
    pub fn enabled() -> Self {
        Self {
            enabled: true,
            base_path: crate::http::BASE_PATH,
            role: crate::http::ROLE,
            authorizer: "jwt",
            capabilities: Capabilities {
                connections: true,
                store: true,
                state: Vec::new(),
            },
        }
    }
}

/// One route of the manifest.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteEntry {
    /// The route key.
    pub key: &'static str,
    /// Custom or reserved.
    pub kind: RouteKind,
    /// The handler function.
    #[serde(rename = "fn")]
    pub function: &'static str,
    /// Its module path.
    pub module: &'static str,
    /// Its file.
    pub file: &'static str,
    /// Its line.
    pub line: u32,
    /// Whether this is Switchboard's built-in behaviour.
    pub builtin: bool,
    /// Options from the attribute.
    pub options: RouteOptions,
    /// Whether the handler's return type carries a route response.
    pub returns_value: bool,
    /// What the handler needs from the platform.
    pub capabilities: Capabilities,
    /// The handler's doc comment.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub doc: &'static str,
}

impl Manifest {
    /// The manifest of a validated registry.
    pub fn new(app: &str, selection: &str, registry: &Registry) -> Self {
        Self {
            app: app.to_owned(),
            route_selection_expression: selection.to_owned(),
            routes: registry
                .routes()
                .iter()
                .map(|r| RouteEntry {
                    key: r.def.key,
                    kind: r.def.kind,
                    function: r.def.function,
                    module: r.def.module,
                    file: r.def.location.file,
                    line: r.def.location.line,
                    builtin: r.builtin,
                    options: r.def.options,
                    returns_value: r.handler.returns_value(),
                    capabilities: {
                        let mut caps = r.handler.capabilities();
                        // The built-in bookkeeping of $connect/$disconnect writes the store.
                        caps.store |=
                            matches!(r.def.kind, RouteKind::Connect | RouteKind::Disconnect);
                        caps
                    },
                    doc: r.def.doc,
                })
                .collect(),
            http: None,
            web_assets: Vec::new(),
            history: false,
            queues: registry
                .queues()
                .iter()
                .map(|q| QueueEntry {
                    name: q.name,
                    producers: q.producers.clone(),
                    url_env: crate::queue::queue_url_env_var(q.name),
                    consumer: q.consumer.map(|i| {
                        let c = &registry.consumers()[i].def;
                        ConsumerEntry {
                            function: c.function,
                            module: c.module,
                            file: c.location.file,
                            line: c.location.line,
                            role: format!("queue:{}", c.queue),
                            options: c.options,
                            capabilities: Capabilities {
                                connections: true,
                                store: true,
                                ..Capabilities::default()
                            },
                            doc: c.doc,
                        }
                    }),
                })
                .collect(),
        }
    }

    /// Records whether the app has an HTTP API.
    pub fn with_http(mut self, enabled: bool) -> Self {
        self.http = enabled.then(HttpEntry::enabled);
        self
    }

    /// Records whether some rooms keep history.
    pub fn with_history(mut self, enabled: bool) -> Self {
        self.history = enabled;
        self
    }

    /// Records the site's static files.
    pub fn with_web_assets(mut self, assets: &[crate::spec::WebAsset]) -> Self {
        self.web_assets = assets.to_vec();
        self
    }

    /// The manifest's SHA-256, in lowercase hex: the digest of its compact JSON form.
    ///
    /// The app prints it (`app manifest --sha256`); the documented build step writes it
    /// next to the Lambda artifact as [`MANIFEST_HASH_FILE`], and the deploy program,
    /// which links the same app, refuses to deploy an artifact whose file differs from
    /// its own manifest's hash (a stale program would deploy the old routes).
    pub fn manifest_hash(&self) -> String {
        use sha2::Digest;
        let json = serde_json::to_vec(self).unwrap_or_default();
        sha2::Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
