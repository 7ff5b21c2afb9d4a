//! [`App`]: one service — its state, settings and routes — and the executable's entry
//! point (`cargo run` starts the local gateway; in Lambda it runs as the function it was
//! deployed as).
//!
//! `App` is a builder over [`AppSpec`] (switchboard-core); each mode reads that spec:
//! Lambda through `switchboard-aws`, the local gateway and `TestGateway` through
//! `switchboard-local`, the contract through `switchboard-contract`.

use std::process::ExitCode;
use std::sync::Arc;

use switchboard_core::auth::Authorizer;
use switchboard_core::backend::history::{HistoryRule, HistoryStore};
use switchboard_core::backend::{ConnectionStore, ConnectionsClient};
use switchboard_core::consumer::ConsumerDef;
use switchboard_core::contract::{ServiceContract, TypeSchema};
use switchboard_core::dispatch::Dispatcher;
use switchboard_core::manifest::Manifest;
use switchboard_core::queue::{Queue, QueueSettings};
use switchboard_core::registry::{Registry, RouteDef};
use switchboard_core::rooms::RoomGuard;
use switchboard_core::spec::{AppSpec, AuthMode, StartError, WebAsset};

/// A Switchboard service: its routes (from the registry), state and settings.
#[derive(Clone, Debug, Default)]
pub struct App {
    spec: AppSpec,
}

impl AsRef<AppSpec> for App {
    fn as_ref(&self) -> &AppSpec {
        &self.spec
    }
}

impl App {
    /// A service with every registered route, the default route selection expression
    /// (`$request.body.action`), embedded backends, and Cognito-shaped JWTs on `$connect`
    /// (locally signed by the gateway's own issuer; [`dev_auth`](Self::dev_auth) switches
    /// to `?user=NAME` identities without tokens).
    pub fn new() -> Self {
        Self::default()
    }

    /// What the app declares, as the modes read it.
    pub fn spec(&self) -> &AppSpec {
        &self.spec
    }

    /// The service's name (used in resource names and the manifest).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.spec.name = name.into();
        self
    }

    /// Provides a value for the [`State<S>`](crate::State) extractor.
    pub fn state<S: Clone + Send + Sync + 'static>(mut self, value: S) -> Self {
        self.spec.states.insert(value);
        self
    }

    /// Sets the route selection expression (`$request.body.<path>`); checked at start.
    pub fn route_selection(mut self, expression: impl Into<String>) -> Self {
        self.spec.selection = expression.into();
        self
    }

    /// The service's HTTP API: an axum router whose paths (`/me`, `/rooms/{room}`) are
    /// served under `/http` (`/http/me`), by the local gateway and by the `http` Lambda
    /// function behind CloudFront. Handlers take [`Identity`](crate::Identity),
    /// [`HttpCtx`](crate::http::HttpCtx) and [`State<S>`](crate::State); see
    /// [`crate::http`].
    pub fn http(mut self, router: axum::Router) -> Self {
        self.spec.http = Some(router);
        self
    }

    /// Whether the service has an HTTP API.
    pub fn has_http(&self) -> bool {
        self.spec.http.is_some()
    }

    /// The HTTP API as the `http` Lambda function runs it (and tests with fixture events),
    /// sending through `client`; `None` when the app has no HTTP API.
    #[cfg(feature = "aws")]
    pub fn http_service(
        &self,
        client: Arc<dyn ConnectionsClient>,
    ) -> Result<Option<switchboard_aws::http::HttpService>, StartError> {
        switchboard_aws::http::HttpService::for_app(&self.spec, client)
    }

    /// The HTML page served at `/`.
    pub fn web_page(mut self, html: &'static str) -> Self {
        self.spec.web_page = Some(html);
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
        self.spec.web_assets.retain(|a| a.path != path);
        self.spec.web_assets.push(WebAsset {
            path,
            content_type,
            content,
        });
        self
    }

    /// The web assets, checked (see [`web_asset`](Self::web_asset)).
    pub fn web_assets(&self) -> Result<&[WebAsset], StartError> {
        self.spec.web_assets()
    }

    /// The service's version, for the AsyncAPI document (default `0.0.0`; apps pass
    /// `env!("CARGO_PKG_VERSION")`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.spec.version = version.into();
        self
    }

    /// Declares a message the service pushes to connections from somewhere no route or
    /// consumer attribute covers (an HTTP handler, a background task): it joins the
    /// AsyncAPI document and the TypeScript client. Routes and consumers declare theirs
    /// with `emits = [T, ..]`.
    pub fn emits<T: schemars::JsonSchema>(mut self) -> Self {
        self.spec.emits.push(TypeSchema::of::<T>());
        self
    }

    /// The service's contract: routes, replies and pushed messages with their schemas.
    pub fn contract(&self) -> Result<ServiceContract, StartError> {
        self.spec.contract()
    }

    /// The AsyncAPI 3.0.0 document of the service (`app asyncapi`).
    #[cfg(feature = "contract")]
    pub fn asyncapi(&self) -> Result<serde_json::Value, StartError> {
        Ok(switchboard_contract::asyncapi::document(&self.contract()?))
    }

    /// The typed TypeScript client module of the service (`app client-ts`).
    #[cfg(feature = "contract")]
    pub fn client_ts(&self) -> Result<String, StartError> {
        Ok(switchboard_contract::typescript::module(
            &self.contract()?,
            "cargo run -- client-ts",
        ))
    }

    /// A `$connect` authorizer of your own, used locally and by the `ws:authorizer`
    /// Lambda (unless `SWITCHBOARD_JWT_ISSUER` configures the Cognito JWT authorizer).
    pub fn authorizer(mut self, authorizer: impl Authorizer) -> Self {
        self.spec.auth = AuthMode::Custom(Arc::new(authorizer));
        self
    }

    /// The development authorizer: the identity is `?user=NAME`, no token. For tests,
    /// load generators and quick experiments; refused in Lambda unless explicitly allowed.
    pub fn dev_auth(mut self) -> Self {
        self.spec.auth = AuthMode::Dev;
        self
    }

    /// The connection store (default: embedded, in memory).
    pub fn store(mut self, store: impl ConnectionStore) -> Self {
        self.spec.store = Some(Arc::new(store));
        self
    }

    /// Serve these route definitions instead of the linked registry (tests). Unless
    /// [`with_consumers`](Self::with_consumers) is called too, such an app has no queue
    /// consumers.
    pub fn with_routes(mut self, defs: impl IntoIterator<Item = RouteDef>) -> Self {
        self.spec.defs = Some(defs.into_iter().collect());
        self
    }

    /// Run these queue consumers instead of the linked `#[queue_consumer]`s (tests).
    pub fn with_consumers(mut self, defs: impl IntoIterator<Item = ConsumerDef>) -> Self {
        self.spec.consumer_defs = Some(defs.into_iter().collect());
        self
    }

    /// The queues routes forward to (default: the embedded FIFO queue, with every
    /// registered queue declared; in Lambda: SQS, from `SWITCHBOARD_QUEUE_URL_*`).
    pub fn queue(mut self, queue: impl Queue) -> Self {
        self.spec.queue = Some(Arc::new(queue));
        self
    }

    /// How the embedded queues behave (visibility timeout, receives before the
    /// dead-letter queue, deduplication window). Default: SQS's (30 s, 5, 5 minutes).
    pub fn queue_settings(mut self, settings: QueueSettings) -> Self {
        self.spec.queue_settings = settings;
        self
    }

    /// Turns on room history for the rooms `rule` matches (call again for more rules;
    /// the first matching rule applies): every frame sent to such a room with
    /// `room(r).send(..)` gets `"seq"` (per room, gap-free from 1) and `"epoch"` at its
    /// top level and is kept for the rule's retention, up to its bound, and the built-in
    /// `resume` route replays what a reconnecting client missed. Such rooms take JSON
    /// objects only (anything else is refused with `not_an_object`). See the README's
    /// "Room history and resume".
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchboard::{App, HistoryRule};
    /// let app = App::new()
    ///     .history(HistoryRule::rooms("game-*").retention(Duration::from_secs(600)).max_frames(200))
    ///     .history(HistoryRule::all());
    /// assert!(app.registry().unwrap().get("resume").is_some());
    /// ```
    pub fn history(mut self, rule: HistoryRule) -> Self {
        self.spec.history.push(rule);
        self
    }

    /// Where room history is kept (default: in memory, locally; in Lambda the DynamoDB
    /// history table).
    pub fn history_store(mut self, store: impl HistoryStore) -> Self {
        self.spec.history_store = Some(Arc::new(store));
        self
    }

    /// Who may be in which room: asked by every [`Ctx::join`](crate::Ctx::join) and by
    /// the built-in `resume`, so a join route and a resume refuse the same rooms. A
    /// closure `|identity, room| -> Result<(), WsError>` will do.
    pub fn room_guard(mut self, guard: impl RoomGuard) -> Self {
        self.spec.room_guard = Some(Arc::new(guard));
        self
    }

    /// How many sends a fan-out keeps in flight (default 64).
    pub fn fanout_concurrency(mut self, n: usize) -> Self {
        self.spec.send.fanout_concurrency = n.max(1);
        self
    }

    /// Shards sends to more recipients than `threshold` through an embedded fan-out
    /// queue (see [`switchboard_core::fanout`]); the local gateway consumes it in
    /// process. Shorthand for [`sharding`](Self::sharding) with the defaults.
    pub fn fanout_threshold(self, threshold: usize) -> Self {
        let queue = switchboard_core::queue::memory::MemoryQueue::new().with_queue(
            switchboard_core::fanout::QUEUE,
            switchboard_core::fanout::queue_settings(),
        );
        self.sharding(switchboard_core::fanout::Sharding::new(Arc::new(queue)).threshold(threshold))
    }

    /// Sharded fan-out with explicit settings (the queue must hold
    /// [`switchboard_core::fanout::QUEUE`]).
    pub fn sharding(mut self, sharding: switchboard_core::fanout::Sharding) -> Self {
        self.spec.send.sharding = Some(sharding);
        self
    }

    /// Whether a connection is closed once its token expires (default: yes). API Gateway
    /// checks tokens only at `$connect`; with this, the first message after the expiry
    /// (and, locally, a timer) closes the connection with a `token_expired` error.
    pub fn close_on_token_expiry(mut self, close: bool) -> Self {
        self.spec.close_on_token_expiry = close;
        self
    }

    /// The validated registry.
    pub fn registry(&self) -> Result<Registry, StartError> {
        self.spec.registry()
    }

    /// The manifest (`app manifest`).
    pub fn manifest(&self) -> Result<Manifest, StartError> {
        self.spec.manifest()
    }

    /// A dispatcher over this app's routes, sending through `client` (Lambda mode, tests).
    pub fn dispatcher(&self, client: Arc<dyn ConnectionsClient>) -> Result<Dispatcher, StartError> {
        self.spec.dispatcher(client)
    }

    /// Starts the local gateway on `config.addr` (tokio runtime required).
    #[cfg(feature = "local")]
    pub async fn serve_local(
        self,
        config: switchboard_local::LocalConfig,
    ) -> Result<switchboard_local::LocalGateway, switchboard_local::LocalError> {
        switchboard_local::serve(self.spec, config).await
    }

    /// An in-process gateway for tests: no sockets, same authorizer, dispatch and
    /// bookkeeping. With the local issuer (the default),
    /// [`TestGateway::connect`](switchboard_local::TestGateway::connect) signs in with a
    /// real token; its key lives in the system's temporary directory.
    #[cfg(feature = "local")]
    pub fn test_gateway(
        self,
    ) -> Result<switchboard_local::TestGateway, switchboard_local::LocalError> {
        switchboard_local::test_gateway(self.spec)
    }

    /// The executable's entry point.
    ///
    /// In Lambda (`AWS_LAMBDA_RUNTIME_API` set) it runs as the function named by
    /// `_HANDLER`. Elsewhere it parses the command line (feature `local`):
    ///
    /// - no subcommand (or `serve`): the local gateway on 127.0.0.1:3000;
    /// - `manifest`: the registry as JSON;
    /// - `routes`: the routes as a table;
    /// - `asyncapi`: the AsyncAPI 3.0 document (feature `contract`);
    /// - `client-ts`: the typed TypeScript client (feature `contract`).
    pub fn main(self) -> ExitCode {
        if std::env::var_os(switchboard_core::names::env::LAMBDA_RUNTIME_API).is_some() {
            return self.lambda_main();
        }
        self.local_main()
    }

    #[cfg(feature = "aws")]
    fn lambda_main(self) -> ExitCode {
        crate::runtime::init_json_logs();
        let runtime = match crate::runtime::async_runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        match runtime.block_on(switchboard_aws::lambda::run(&self.spec)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => crate::runtime::fail(&e),
        }
    }

    #[cfg(not(feature = "aws"))]
    fn lambda_main(self) -> ExitCode {
        eprintln!("error: this build has no Lambda mode (enable the `aws` feature of switchboard)");
        ExitCode::FAILURE
    }

    #[cfg(feature = "local")]
    fn local_main(self) -> ExitCode {
        crate::cli::run(self)
    }

    #[cfg(not(feature = "local"))]
    fn local_main(self) -> ExitCode {
        eprintln!(
            "error: this build runs only in AWS Lambda (AWS_LAMBDA_RUNTIME_API is not set); \
             build with the `local` feature of switchboard for the local gateway"
        );
        ExitCode::FAILURE
    }
}
