//! [`App`]: one service — its state, settings and routes — and the executable's entry
//! point (`cargo run` starts the local gateway; `manifest` prints the registry).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::auth::{Authorizer, DevAuthorizer};
use crate::backend::ConnectionStore;
use crate::backend::memory::MemoryStore;
use crate::consumer::ConsumerDef;
use crate::dispatch::Dispatcher;
use crate::http::{HttpService, LocalHttpAuth};
use crate::jwt::{JwtAuthorizer, JwtConfig, JwtVerifier, TokenUse};
use crate::local::issuer::{IssuerError, LocalIssuer};
use crate::local::{Gateway, GatewayError, Hub, LocalConfig, LocalGateway};
use crate::manifest::Manifest;
use crate::queue::Queue;
use crate::queue::memory::MemoryQueue;
use crate::registry::{Registry, RegistryError, RouteDef};
use crate::request::{SendSettings, Services, StateMap};
use crate::select::{RouteSelection, SelectionError};
use crate::testing::TestGateway;

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
    /// The local gateway could not start.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The local token issuer could not load or create its key.
    #[error(transparent)]
    Issuer(#[from] IssuerError),
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

/// The audience (`aud`) of the local issuer's id tokens: the local "app client id".
pub const LOCAL_AUDIENCE: &str = "switchboard-local";

/// A local gateway's authorizer, its token issuer when it has one, and how it checks
/// HTTP API requests.
struct LocalAuth {
    authorizer: Arc<dyn Authorizer>,
    issuer: Option<Arc<LocalIssuer>>,
    http: LocalHttpAuth,
}

/// Who vouches for callers on `$connect`.
#[derive(Clone)]
enum AuthMode {
    /// Locally: Cognito-shaped tokens from the local issuer, checked by the JWT
    /// authorizer. In Lambda: the JWT authorizer configured from the environment.
    LocalIssuer,
    /// `?user=NAME`, no proof.
    Dev,
    /// The app's own.
    Custom(Arc<dyn Authorizer>),
}

/// A Switchboard service: its routes (from the registry), state and settings.
#[derive(Clone)]
pub struct App {
    name: String,
    states: StateMap,
    selection: String,
    web_page: Option<&'static str>,
    web_assets: Vec<WebAsset>,
    version: String,
    emits: Vec<crate::contract::TypeSchema>,
    auth: AuthMode,
    store: Option<Arc<dyn ConnectionStore>>,
    defs: Option<Vec<RouteDef>>,
    consumer_defs: Option<Vec<ConsumerDef>>,
    queue: Option<Arc<dyn Queue>>,
    queue_settings: crate::queue::QueueSettings,
    send: SendSettings,
    close_on_token_expiry: bool,
    http: Option<axum::Router>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("selection", &self.selection)
            .field("states", &self.states)
            .finish_non_exhaustive()
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// A service with every registered route, the default route selection expression
    /// (`$request.body.action`), embedded backends, and Cognito-shaped JWTs on `$connect`
    /// (locally signed by the gateway's own issuer; [`dev_auth`](Self::dev_auth) switches
    /// to `?user=NAME` identities without tokens).
    pub fn new() -> Self {
        Self {
            name: "switchboard".to_owned(),
            states: StateMap::default(),
            selection: crate::select::DEFAULT_EXPRESSION.to_owned(),
            web_page: None,
            web_assets: Vec::new(),
            version: "0.0.0".to_owned(),
            emits: Vec::new(),
            auth: AuthMode::LocalIssuer,
            store: None,
            defs: None,
            consumer_defs: None,
            queue: None,
            queue_settings: crate::queue::QueueSettings::default(),
            send: SendSettings::default(),
            close_on_token_expiry: true,
            http: None,
        }
    }

    /// The service's name (used in resource names and the manifest).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Provides a value for the [`State<S>`](crate::State) extractor.
    pub fn state<S: Clone + Send + Sync + 'static>(mut self, value: S) -> Self {
        self.states.insert(value);
        self
    }

    /// Sets the route selection expression (`$request.body.<path>`); checked at start.
    pub fn route_selection(mut self, expression: impl Into<String>) -> Self {
        self.selection = expression.into();
        self
    }

    /// The service's HTTP API: an axum router whose paths (`/me`, `/rooms/{room}`) are
    /// served under `/http` (`/http/me`), by the local gateway and by the `http` Lambda
    /// function behind CloudFront. Handlers take [`Identity`](crate::Identity),
    /// [`HttpCtx`](crate::http::HttpCtx) and [`State<S>`](crate::State); see
    /// [`crate::http`].
    pub fn http(mut self, router: axum::Router) -> Self {
        self.http = Some(router);
        self
    }

    /// Whether the service has an HTTP API.
    pub fn has_http(&self) -> bool {
        self.http.is_some()
    }

    /// The HTTP API as the `http` Lambda function runs it (and tests with fixture events),
    /// sending through `client`; `None` when the app has no HTTP API.
    pub fn http_service(
        &self,
        client: Arc<dyn crate::backend::ConnectionsClient>,
    ) -> Result<Option<HttpService>, StartError> {
        let Some(router) = &self.http else {
            return Ok(None);
        };
        Ok(Some(HttpService::new(
            router.clone(),
            self.services(client)?,
        )))
    }

    /// The HTML page served at `/`.
    pub fn web_page(mut self, html: &'static str) -> Self {
        self.web_page = Some(html);
        self
    }

    /// A static file served next to the web page: at `path` by the local gateway, and
    /// uploaded to the site's bucket (key `path` without the `/`) by the deploy program,
    /// so the page can load it from its own origin (`<script type="module"
    /// src="/chat.js">`). `path` starts with `/`, uses `[A-Za-z0-9._/-]`, and is not
    /// under `/ws`, `/http` or `/local` (checked when the app starts).
    pub fn web_asset(
        mut self,
        path: &'static str,
        content_type: &'static str,
        content: &'static str,
    ) -> Self {
        self.web_assets.retain(|a| a.path != path);
        self.web_assets.push(WebAsset {
            path,
            content_type,
            content,
        });
        self
    }

    /// The web assets, checked (see [`web_asset`](Self::web_asset)).
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

    /// The service's version, for the AsyncAPI document (default `0.0.0`; apps pass
    /// `env!("CARGO_PKG_VERSION")`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Declares a message the service pushes to connections from somewhere no route or
    /// consumer attribute covers (an HTTP handler, a background task): it joins the
    /// AsyncAPI document and the TypeScript client. Routes and consumers declare theirs
    /// with `emits = [T, ..]`.
    pub fn emits<T: schemars::JsonSchema>(mut self) -> Self {
        self.emits.push(crate::contract::TypeSchema::of::<T>());
        self
    }

    /// The service's contract: routes, replies and pushed messages with their schemas.
    pub fn contract(&self) -> Result<crate::contract::ServiceContract, StartError> {
        let selection = RouteSelection::parse(&self.selection)?;
        Ok(crate::contract::ServiceContract::new(
            &self.name,
            &self.version,
            selection.expression(),
            &self.registry()?,
            &self.emits,
        ))
    }

    /// The AsyncAPI 3.0.0 document of the service (`app asyncapi`).
    pub fn asyncapi(&self) -> Result<serde_json::Value, StartError> {
        Ok(crate::contract::asyncapi::document(&self.contract()?))
    }

    /// The typed TypeScript client module of the service (`app client-ts`).
    pub fn client_ts(&self) -> Result<String, StartError> {
        Ok(crate::contract::typescript::module(
            &self.contract()?,
            "cargo run -- client-ts",
        ))
    }

    /// A `$connect` authorizer of your own, used locally and by the `ws:authorizer`
    /// Lambda (unless `SWITCHBOARD_JWT_ISSUER` configures the Cognito JWT authorizer).
    pub fn authorizer(mut self, authorizer: impl Authorizer) -> Self {
        self.auth = AuthMode::Custom(Arc::new(authorizer));
        self
    }

    /// The development authorizer: the identity is `?user=NAME`, no token. For tests,
    /// load generators and quick experiments; refused in Lambda unless explicitly allowed.
    pub fn dev_auth(mut self) -> Self {
        self.auth = AuthMode::Dev;
        self
    }

    /// The connection store (default: embedded, in memory).
    pub fn store(mut self, store: impl ConnectionStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Serve these route definitions instead of the linked registry (tests). Unless
    /// [`with_consumers`](Self::with_consumers) is called too, such an app has no queue
    /// consumers.
    pub fn with_routes(mut self, defs: impl IntoIterator<Item = RouteDef>) -> Self {
        self.defs = Some(defs.into_iter().collect());
        self
    }

    /// Run these queue consumers instead of the linked `#[queue_consumer]`s (tests).
    pub fn with_consumers(mut self, defs: impl IntoIterator<Item = ConsumerDef>) -> Self {
        self.consumer_defs = Some(defs.into_iter().collect());
        self
    }

    /// The queues routes forward to (default: the embedded FIFO queue, with every
    /// registered queue declared; in Lambda: SQS, from `SWITCHBOARD_QUEUE_URL_*`).
    pub fn queue(mut self, queue: impl Queue) -> Self {
        self.queue = Some(Arc::new(queue));
        self
    }

    /// How the embedded queues behave (visibility timeout, receives before the
    /// dead-letter queue, deduplication window). Default: SQS's (30 s, 5, 5 minutes).
    pub fn queue_settings(mut self, settings: crate::queue::QueueSettings) -> Self {
        self.queue_settings = settings;
        self
    }

    /// How many sends a fan-out keeps in flight (default 64).
    pub fn fanout_concurrency(mut self, n: usize) -> Self {
        self.send.fanout_concurrency = n.max(1);
        self
    }

    /// The authorizer the `ws:authorizer` Lambda runs when no JWT issuer is configured:
    /// the app's own, else the development one (which Lambda mode refuses unless
    /// allowed), else none.
    pub(crate) fn lambda_authorizer(&self) -> Option<Arc<dyn Authorizer>> {
        match &self.auth {
            AuthMode::Custom(a) => Some(Arc::clone(a)),
            AuthMode::Dev => Some(Arc::new(DevAuthorizer)),
            AuthMode::LocalIssuer => None,
        }
    }

    /// The authorizer of a local gateway at `base_url`, and the local issuer if it has one.
    fn local_authorizer(
        &self,
        base_url: &str,
        state_dir: &std::path::Path,
    ) -> Result<LocalAuth, StartError> {
        let without_issuer = |authorizer: Arc<dyn Authorizer>| LocalAuth {
            http: LocalHttpAuth::Authorizer(Arc::clone(&authorizer)),
            authorizer,
            issuer: None,
        };
        match &self.auth {
            AuthMode::Dev => Ok(without_issuer(Arc::new(DevAuthorizer))),
            AuthMode::Custom(a) => Ok(without_issuer(Arc::clone(a))),
            AuthMode::LocalIssuer => {
                let issuer = LocalIssuer::load_or_create(
                    state_dir,
                    format!("{base_url}/local"),
                    LOCAL_AUDIENCE,
                )?;
                // The same verifier as in Lambda; the keys come from the issuer in-process
                // instead of over HTTP.
                let config = JwtConfig::new(issuer.issuer())
                    .with_audience(LOCAL_AUDIENCE)
                    .with_token_use(TokenUse::Id);
                let verifier = JwtVerifier::with_static_jwks(config, &issuer.jwks().to_string())
                    .map_err(|e| StartError::Auth(e.to_string()))?;
                let verifier = Arc::new(verifier);
                Ok(LocalAuth {
                    authorizer: Arc::new(JwtAuthorizer::new(Arc::clone(&verifier))),
                    issuer: Some(Arc::new(issuer)),
                    // The HTTP API's JWT authorizer checks the same tokens.
                    http: LocalHttpAuth::Jwt(verifier),
                })
            }
        }
    }

    /// Whether a connection is closed once its token expires (default: yes). API Gateway
    /// checks tokens only at `$connect`; with this, the first message after the expiry
    /// (and, locally, a timer) closes the connection with a `token_expired` error.
    pub fn close_on_token_expiry(mut self, close: bool) -> Self {
        self.close_on_token_expiry = close;
        self
    }

    /// The validated registry.
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
        Ok(Registry::from_parts(routes, consumers)?)
    }

    /// The manifest (`app manifest`).
    pub fn manifest(&self) -> Result<Manifest, StartError> {
        let selection = RouteSelection::parse(&self.selection)?;
        self.manifest_of(selection.expression(), &self.registry()?)
    }

    /// The manifest of this app for an already parsed selection and built registry.
    fn manifest_of(&self, selection: &str, registry: &Registry) -> Result<Manifest, StartError> {
        Ok(Manifest::new(&self.name, selection, registry)
            .with_http(self.has_http())
            .with_web_assets(self.web_assets()?))
    }

    fn services(
        &self,
        client: Arc<dyn crate::backend::ConnectionsClient>,
    ) -> Result<Arc<Services>, StartError> {
        let registry = self.registry()?;
        let selection = RouteSelection::parse(&self.selection)?;
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
        let store = self
            .store
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let queue = match (&self.queue, registry.queues().is_empty()) {
            (Some(q), _) => Some(Arc::clone(q)),
            (None, true) => None,
            (None, false) => {
                let memory = MemoryQueue::new();
                for q in registry.queues() {
                    memory.declare(q.name, self.queue_settings.clone());
                }
                Some(Arc::new(memory) as Arc<dyn Queue>)
            }
        };
        Ok(Arc::new(Services {
            queue,
            store,
            client,
            states: self.states.clone(),
            registry: Arc::new(registry),
            selection,
            send: self.send.clone(),
            close_on_token_expiry: self.close_on_token_expiry,
        }))
    }

    /// A dispatcher over this app's routes, sending through `client` (Lambda mode, tests).
    pub fn dispatcher(
        &self,
        client: Arc<dyn crate::backend::ConnectionsClient>,
    ) -> Result<Dispatcher, StartError> {
        Ok(Dispatcher::new(self.services(client)?))
    }

    pub(crate) fn gateway(
        &self,
        config: LocalConfig,
        authorizer: Arc<dyn Authorizer>,
    ) -> Result<Arc<Gateway>, StartError> {
        let hub = Arc::new(Hub::default());
        let services = self.services(hub.clone())?;
        let manifest = self
            .manifest_of(services.selection.expression(), &services.registry)?
            .to_json_pretty();
        let mut gateway = Gateway::new(
            Dispatcher::new(services),
            hub,
            authorizer,
            config,
            self.web_page,
            manifest,
        );
        gateway.web_assets = self.web_assets.clone();
        Ok(Arc::new(gateway))
    }

    /// Starts the local gateway on `config.addr` (tokio runtime required).
    pub async fn serve_local(self, config: LocalConfig) -> Result<LocalGateway, StartError> {
        let listener = crate::local::listen(config.addr)?;
        let base_url = format!("http://{}", listener.addr());
        let auth = self.local_authorizer(&base_url, &config.state_dir)?;
        let gateway = self.gateway(config, auth.authorizer)?;
        let http = self.http.clone().map(|router| {
            crate::http::local_service(
                router,
                Arc::clone(gateway.dispatcher.services()),
                auth.http,
                gateway.api_id.clone(),
            )
        });
        Ok(LocalGateway::start(gateway, listener, auth.issuer, http)?)
    }

    /// An in-process gateway for tests: no sockets, same authorizer, dispatch and
    /// bookkeeping. With the local issuer (the default), [`TestGateway::connect`] signs
    /// in with a real token; its key lives in the system's temporary directory.
    pub fn test_gateway(self) -> Result<TestGateway, StartError> {
        let state_dir = std::env::temp_dir().join("switchboard-test-issuer");
        let auth = self.local_authorizer("http://test.invalid", &state_dir)?;
        Ok(TestGateway::new(
            self.gateway(LocalConfig::default(), auth.authorizer)?,
            auth.issuer,
        ))
    }

    /// The executable's entry point: parses the command line and runs it.
    ///
    /// - no subcommand (or `serve`): the local gateway on 127.0.0.1:3000;
    /// - `manifest`: the registry as JSON;
    /// - `routes`: the routes as a table;
    /// - `asyncapi`: the AsyncAPI 3.0 document;
    /// - `client-ts`: the typed TypeScript client.
    pub fn main(self) -> ExitCode {
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            return self.lambda_main();
        }
        let cli = Cli::parse();
        match cli.command.unwrap_or(Command::Serve(cli.serve)) {
            Command::Manifest => match self.manifest() {
                Ok(m) => {
                    println!("{}", m.to_json_pretty());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            },
            Command::Asyncapi => match self.asyncapi() {
                Ok(doc) => {
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            },
            Command::ClientTs => match self.client_ts() {
                Ok(module) => {
                    print!("{module}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            },
            Command::Routes => match self.manifest() {
                Ok(m) => {
                    for r in &m.routes {
                        let origin = if r.builtin {
                            "built-in".to_owned()
                        } else {
                            format!("{}::{} ({}:{})", r.module, r.function, r.file, r.line)
                        };
                        println!("{:<16} {origin}", r.key);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            },
            Command::Serve(args) => self.serve_cli(args),
        }
    }

    fn lambda_main(self) -> ExitCode {
        init_json_logs();
        let runtime = match async_runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        match runtime.block_on(crate::lambda::run(&self)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        }
    }

    fn serve_cli(self, args: ServeArgs) -> ExitCode {
        init_tracing();
        let runtime = match async_runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        runtime.block_on(async move {
            let config = args.config();
            let app = if args.dev_auth { self.dev_auth() } else { self };
            let app = match args.store {
                StoreKind::Memory => app,
                StoreKind::Dynamodb => match app.dynamodb_store(&args).await {
                    Ok(app) => app,
                    Err(e) => return fail(&e),
                },
            };
            let gateway = match app.serve_local(config).await {
                Ok(g) => g,
                Err(e) => return fail(&e),
            };
            println!("Switchboard local gateway");
            println!("  web page     {}/", gateway.http_url());
            if let Some(http) = gateway.http_api_url() {
                println!("  HTTP API     {http}/... (Authorization: Bearer ID_TOKEN)");
            }
            if args.dev_auth {
                println!("  WebSocket    {}?user=NAME", gateway.ws_url());
            } else {
                println!("  WebSocket    {}?token=ID_TOKEN", gateway.ws_url());
                println!(
                    "  sign in      curl -s -XPOST {}/local/token -d '{{\"username\":\"alice\"}}'",
                    gateway.http_url()
                );
            }
            println!(
                "  @connections {}/@connections/{{id}}",
                gateway.management_url()
            );
            println!("  manifest     {}/local/manifest", gateway.http_url());
            println!("  queues       {}/local/queues", gateway.http_url());
            println!("  stats        {}/local/stats", gateway.http_url());
            println!("Ctrl-C (or SIGTERM) stops it.");
            gateway.run_until_ctrl_c().await;
            ExitCode::SUCCESS
        })
    }
}

impl App {
    async fn dynamodb_store(self, args: &ServeArgs) -> Result<Self, String> {
        use crate::aws::dynamodb::{DynamoStore, TableNames};
        use crate::aws::{AwsSettings, ConfigError, env};
        let settings = match &args.endpoint {
            Some(endpoint) => AwsSettings::local(endpoint.clone()),
            None => {
                let mut problems = Vec::new();
                AwsSettings::from_env(&mut problems)
                    .filter(|_| problems.is_empty())
                    .ok_or_else(|| ConfigError { problems }.to_string())?
            }
        };
        let defaults = TableNames::for_app(&self.name, &args.stage);
        let tables = TableNames {
            connections: std::env::var(env::CONNECTIONS_TABLE).unwrap_or(defaults.connections),
            rooms: std::env::var(env::ROOMS_TABLE).unwrap_or(defaults.rooms),
        };
        let store = DynamoStore::from_settings(&settings, tables.clone());
        if args.endpoint.is_some() {
            store
                .create_tables()
                .await
                .map_err(|e| format!("could not create the tables at the endpoint: {e}"))?;
        }
        println!(
            "  store        DynamoDB tables {} and {}",
            tables.connections, tables.rooms
        );
        Ok(self.store(store))
    }
}

fn async_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&format!("cannot start the async runtime: {e}")))
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Structured JSON logs for CloudWatch: one object a line, fields flattened. Request
/// bodies and tokens are never logged.
fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}

#[derive(Parser, Debug)]
#[command(about = "A Switchboard service: runs the local gateway, or prints its manifest.")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of the default command, `serve`.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the local gateway (the default).
    Serve(ServeArgs),
    /// Print the route registry as JSON (what the deploy program reads).
    Manifest,
    /// List the routes and where they are declared.
    Routes,
    /// Print the AsyncAPI 3.0 document of the WebSocket API (JSON).
    Asyncapi,
    /// Print the typed TypeScript client module (message types and a small client).
    #[command(name = "client-ts")]
    ClientTs,
}

/// A static file of the site (see [`App::web_asset`]).
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

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    addr: IpAddr,
    /// Port to bind (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Stage name.
    #[arg(long, default_value = "ws")]
    stage: String,
    /// Idle timeout in seconds.
    #[arg(long, default_value_t = 600)]
    idle_timeout: u64,
    /// Maximum connection age in seconds.
    #[arg(long, default_value_t = 7200)]
    max_age: u64,
    /// Connection store: embedded (`memory`) or `dynamodb` (tables from
    /// SWITCHBOARD_CONNECTIONS_TABLE / SWITCHBOARD_ROOMS_TABLE, else `{app}-{stage}-websocket-*`).
    #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
    store: StoreKind,
    /// Accept `?user=NAME` identities without tokens (the development authorizer),
    /// instead of tokens from the local issuer.
    #[arg(long)]
    dev_auth: bool,
    /// Where the local issuer keeps its key (tokens survive restarts).
    #[arg(long, default_value = crate::local::issuer::DEFAULT_DIR)]
    state_dir: std::path::PathBuf,
    /// DynamoDB endpoint for `--store dynamodb` (moto, DynamoDB Local); the tables are
    /// created there when missing, with dummy credentials. Without it, real AWS with
    /// credentials and region from the environment.
    #[arg(long)]
    endpoint: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Memory,
    Dynamodb,
}

impl ServeArgs {
    fn config(&self) -> LocalConfig {
        LocalConfig {
            addr: SocketAddr::new(self.addr, self.port),
            stage: self.stage.clone(),
            idle_timeout: Duration::from_secs(self.idle_timeout.max(1)),
            max_connection_age: Duration::from_secs(self.max_age.max(1)),
            state_dir: self.state_dir.clone(),
            ..LocalConfig::default()
        }
    }
}
