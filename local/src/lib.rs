//! # switchboard-local
//!
//! The local gateway: API Gateway's WebSocket API, its `@connections` management API, the
//! app's HTTP API and the web page on one loopback address, with embedded backends — the
//! paths CloudFront serves in production (`/`, `/http/*`, `/ws`, `/ws/*`).
//!
//! It reproduces what API Gateway does (see `ARCHITECTURE.md`): route selection,
//! `$connect` rejection statuses, authorizer context on every event, frame and message
//! size limits, binary frames refused with 1003, idle timeout and maximum connection age,
//! `@connections` POST/GET/DELETE with 410 for gone connections and SigV4 checked as on AWS
//! ([`sigv4`]), connection ids in AWS's shape, and `$disconnect` on every kind of close.
//!
//! Bound elsewhere than loopback, it keeps its own endpoints (`/local/*`) for loopback
//! clients unless given an admin secret, and refuses to start unsigned or with the
//! development authorizer unless told to ([`exposure`]).

mod console;
mod consumers;
pub mod exposure;
pub mod http;
mod hub;
pub mod issuer;
pub mod limits;
mod mgmt;
mod session;
pub mod sigv4;
mod start;
mod stats;
mod test_gateway;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use switchboard_core::names::limits::MAX_MANAGEMENT_BODY_BYTES;

pub(crate) use self::session::{Gateway, UpgradeRequest, now_ms as now};
pub use hub::MAX_MESSAGE_BYTES;
pub(crate) use hub::{Hub, Live};
pub use start::{LOCAL_AUDIENCE, LocalError, serve, test_gateway};
pub use test_gateway::{RECV_TIMEOUT, TestConnection, TestError, TestGateway, encode_segment};

pub use switchboard_core::names::limits::MAX_FRAME_BYTES;

use exposure::{AdminSecret, Exposure};
use sigv4::SigV4Verifier;

/// Settings of the local gateway. Defaults are API Gateway's.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// Where to listen. Default `127.0.0.1:3000` (loopback only).
    pub addr: SocketAddr,
    /// The stage name (`requestContext.stage`, the management API's path prefix).
    /// Default `ws`, the stage the deploy program creates behind CloudFront's `/ws/*`.
    pub stage: String,
    /// Close a connection after this long without a message from the client (10 min).
    pub idle_timeout: Duration,
    /// Close a connection this long after it opened (2 h).
    pub max_connection_age: Duration,
    /// Largest frame a client may send (32 KB); larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Largest message (frames joined) a client may send (128 KB); larger closes with 1009.
    pub max_message_bytes: usize,
    /// How long a handler may run before the caller gets API Gateway's timeout frame (29 s).
    pub integration_timeout: Duration,
    /// Frames queued for a connection before it counts as a slow consumer and is closed
    /// with 1008.
    pub outbound_buffer: usize,
    /// Handlers one connection may have running at once; beyond it, reading pauses.
    pub max_in_flight: usize,
    /// How long a write to a client may block before the connection is dropped.
    pub write_timeout: Duration,
    /// Where the local token issuer keeps its key (`.switchboard/`).
    pub state_dir: std::path::PathBuf,
    /// How `@connections` requests must be signed: SigV4 for `execute-api` with this key
    /// (default [`SigV4Verifier::local`]), as on AWS; `None` accepts unsigned requests
    /// (`--no-sigv4`), which is refused off loopback.
    pub sigv4: Option<SigV4Verifier>,
    /// `--expose-local-endpoints`: peers off loopback may use `/local/*` with
    /// `Authorization: Bearer <secret>`. Without it they get 403.
    pub admin_secret: Option<AdminSecret>,
    /// `--force-dev-auth`: start with the development authorizer off loopback anyway.
    pub force_dev_auth: bool,
    /// `--origin-secret` (and `--origin-secret-previous`): CloudFront's origin secret,
    /// reproduced. When set, an upgrade or `/http/*` call whose
    /// [`x-switchboard-origin`](switchboard_core::names::headers::ORIGIN) header is
    /// neither value gets `403 {"message":"Forbidden"}` before the authorizer runs.
    /// Default: none (no check).
    pub origin_secrets: Option<switchboard_core::origin::OriginSecrets>,
    /// `--api-key`: the API keys upgrades may present in `x-api-key` when a route has
    /// `api_key = true` (see [`limits`]).
    pub api_keys: Vec<String>,
    /// `--usage-plan-*`: the usage plan every key is in. Default: no limit.
    pub usage_plan: limits::UsagePlan,
    /// The clock of the throttles and quotas (tests move a [`limits::Clock::manual`]).
    pub clock: limits::Clock,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            stage: "ws".to_owned(),
            idle_timeout: Duration::from_secs(10 * 60),
            max_connection_age: Duration::from_secs(2 * 60 * 60),
            max_frame_bytes: MAX_FRAME_BYTES,
            max_message_bytes: MAX_MESSAGE_BYTES,
            integration_timeout: Duration::from_secs(29),
            outbound_buffer: 1024,
            max_in_flight: 64,
            write_timeout: Duration::from_secs(10),
            state_dir: std::path::PathBuf::from(issuer::DEFAULT_DIR),
            sigv4: Some(SigV4Verifier::local()),
            admin_secret: None,
            force_dev_auth: false,
            origin_secrets: None,
            api_keys: Vec::new(),
            usage_plan: limits::UsagePlan::default(),
            clock: limits::Clock::System,
        }
    }
}

/// Errors starting the local gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running local gateway. Dropping it leaves the server running in the background;
/// call [`shutdown`](Self::shutdown) to stop it gracefully.
pub struct LocalGateway {
    addr: SocketAddr,
    exposure: Arc<Exposure>,
    exposure_warnings: Vec<String>,
    gateway: Arc<Gateway>,
    has_http: bool,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    consumers: Option<consumers::EmbeddedConsumers>,
}

impl std::fmt::Debug for LocalGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGateway")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LocalGateway {
    pub(crate) fn start(
        gateway: Arc<Gateway>,
        listener: Listening,
        issuer: Option<Arc<issuer::LocalIssuer>>,
        http: Option<Router>,
        (exposure, exposure_warnings): (Exposure, Vec<String>),
    ) -> Result<Self, GatewayError> {
        let Listening { listener, addr } = listener;
        let exposure = Arc::new(exposure);
        gateway.set_domain(addr);
        let has_http = http.is_some();
        let mut router = router(Arc::clone(&gateway), http);
        let consumers = consumers::EmbeddedConsumers::start(gateway.dispatcher.services());
        router = router.merge(consumers.routes());
        router = router.merge(console::router(Arc::clone(&gateway)));
        if let Some(issuer) = issuer {
            router = router.merge(issuer::routes(issuer));
        }
        // Every `/local/*` route, wherever it was added, behind the exposure decision.
        router = router.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&exposure),
            guard_local_endpoints,
        ));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            // Small frames go out at once: no Nagle delay on echo-style traffic.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let result = axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "local gateway stopped with an error");
            }
        });
        Ok(Self {
            addr,
            exposure,
            exposure_warnings,
            gateway,
            has_http,
            stop: Some(stop),
            server,
            consumers: Some(consumers),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`: the web page.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR/http`: the HTTP API, when the app has one.
    pub fn http_api_url(&self) -> Option<String> {
        self.has_http
            .then(|| format!("http://{}{}", self.addr, switchboard_core::http::BASE_PATH))
    }

    /// `ws://ADDR/ws`: the WebSocket API.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://ADDR/{stage}`: the `@connections` endpoint, for the AWS SDK's
    /// `endpoint_url`.
    pub fn management_url(&self) -> String {
        format!("http://{}/{}", self.addr, self.gateway.config.stage)
    }

    /// The start banner's lines about what is open to whom: the warnings the settings
    /// earned (`--force-dev-auth`), then [`Exposure::banner_lines`].
    pub fn exposure_lines(&self) -> Vec<String> {
        let sigv4 = self
            .gateway
            .config
            .sigv4
            .as_ref()
            .map(|v| exposure::SigV4Identity {
                access_key_id: v.access_key_id(),
                region: v.region(),
            });
        let mut lines = self.exposure_warnings.clone();
        lines.extend(self.exposure.banner_lines(self.addr.port(), sigv4));
        lines
    }

    /// How many WebSocket connections are open.
    pub fn open_connections(&self) -> usize {
        self.gateway.hub.len()
    }

    /// Stops accepting connections; stops the embedded queue consumers from polling and
    /// lets the batches they are running finish (while the sockets are still open, so
    /// what those batches send reaches the clients, and what they processed is deleted
    /// from the queue); then closes every socket with 1001 "Going away", firing each
    /// `$disconnect`, and waits for the close handshakes and `$disconnect`s.
    ///
    /// `grace` bounds the consumers' drain and the sockets' closing together; the
    /// sockets get at least two seconds whatever the consumers took. What is still
    /// running then is abandoned (with a warning).
    pub async fn shutdown_within(mut self, grace: Duration) {
        let started = tokio::time::Instant::now();
        let deadline = started + grace;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(consumers) = self.consumers.take() {
            consumers.drain(grace).await;
        }
        self.gateway.console.close();
        self.gateway.hub.close_all(1001, "Going away");
        let sockets_deadline = deadline.max(tokio::time::Instant::now() + MIN_CLOSE_GRACE);
        while self.gateway.hub.len() > 0 || self.gateway.closing() > 0 {
            if tokio::time::Instant::now() >= sockets_deadline {
                tracing::warn!(
                    open = self.gateway.hub.len(),
                    closing = self.gateway.closing(),
                    "shutdown grace period over with connections still open"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = sockets_deadline.saturating_duration_since(tokio::time::Instant::now());
        let _ = tokio::time::timeout(left.max(Duration::from_secs(1)), &mut self.server).await;
        tracing::info!(
            took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "local gateway stopped"
        );
    }

    /// [`shutdown_within`](Self::shutdown_within) five seconds.
    pub async fn shutdown(self) {
        self.shutdown_within(Duration::from_secs(5)).await;
    }

    /// Runs until Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `kill`, `docker stop` and
    /// systemd send), then shuts down gracefully ([`shutdown`](Self::shutdown)).
    pub async fn run_until_ctrl_c(self) {
        let signal = shutdown_signal().await;
        tracing::info!(signal, "shutting down");
        self.shutdown().await;
    }
}

/// The least time [`LocalGateway::shutdown_within`] gives the sockets to close, however
/// long the queue consumers took to drain.
const MIN_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Waits for SIGINT (Ctrl-C) or SIGTERM; returns the signal's name. If a signal cannot
/// be listened for, it returns at once (stopping is safer than running unstoppable).
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                return tokio::select! {
                    r = tokio::signal::ctrl_c() => match r {
                        Ok(()) => "SIGINT",
                        Err(e) => {
                            tracing::error!(error = %e, "cannot listen for Ctrl-C; stopping");
                            "none"
                        }
                    },
                    _ = term.recv() => "SIGTERM",
                };
            }
            Err(e) => tracing::error!(error = %e, "cannot listen for SIGTERM"),
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => "SIGINT",
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for Ctrl-C; stopping");
            "none"
        }
    }
}

/// A bound listener and its address (known before the gateway is built, so the local
/// issuer can name itself after it).
pub(crate) struct Listening {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Listening {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `addr` for the local gateway.
pub(crate) fn listen(addr: SocketAddr) -> Result<Listening, GatewayError> {
    let listener = listen_deep(addr).map_err(|source| GatewayError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| GatewayError::Bind { addr, source })?;
    Ok(Listening { listener, addr })
}

/// Binds with a deep accept queue: `TcpListener::bind` listens with a backlog of 128,
/// and a burst of simultaneous upgrades overflowing it waits for the kernel's 1 s SYN
/// retry.
fn listen_deep(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Lets a request to a local-only path through only when [`Exposure::local_endpoint_access`]
/// allows its peer (loopback, or the admin secret); else 403 with the reason as JSON.
async fn guard_local_endpoints(
    axum::extract::State(exposure): axum::extract::State<Arc<Exposure>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !exposure::is_local_only_path(request.uri().path()) {
        return next.run(request).await;
    }
    // Without the peer's address (never the case behind `serve`), refuse.
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let decision = match peer {
        Some(peer) => exposure.local_endpoint_access(peer, request.headers()),
        None => exposure::LocalAccess::Refused {
            status: axum::http::StatusCode::FORBIDDEN,
            message: "the peer's address is unknown".to_owned(),
        },
    };
    match decision {
        exposure::LocalAccess::Allowed => next.run(request).await,
        exposure::LocalAccess::Refused { status, message } => (
            status,
            axum::Json(serde_json::json!({ "message": message })),
        )
            .into_response(),
    }
}

fn router(gateway: Arc<Gateway>, http: Option<Router>) -> Router {
    use axum::response::IntoResponse;
    let stage_path = format!("/{}/@connections/{{id}}", gateway.config.stage);
    let mut site = Router::new();
    // The page's static files (App::web_asset), as the bucket behind CloudFront has them.
    for asset in &gateway.web_assets {
        let asset = *asset;
        site = site.route(
            asset.path,
            get(move || async move {
                (
                    [
                        (axum::http::header::CONTENT_TYPE, asset.content_type),
                        (axum::http::header::CACHE_CONTROL, "no-cache"),
                    ],
                    asset.content,
                )
            }),
        );
    }
    site.route("/", get(mgmt::index))
        .route("/ws", any(ws::upgrade))
        .route("/local/manifest", get(mgmt::manifest))
        .route("/local/connections", get(mgmt::connections))
        .route("/local/stats", get(stats::stats_json))
        .route(
            "/@connections/{id}",
            any(mgmt::connection_op).layer(DefaultBodyLimit::max(MAX_MANAGEMENT_BODY_BYTES)),
        )
        .route(
            &stage_path,
            any(mgmt::connection_op).layer(DefaultBodyLimit::max(MAX_MANAGEMENT_BODY_BYTES)),
        )
        .route("/{stage}/@connections/{id}", any(mgmt::wrong_stage))
        .fallback(
            move |state: axum::extract::State<Arc<Gateway>>,
                  peer: axum::extract::ConnectInfo<SocketAddr>,
                  request: axum::extract::Request| {
                let http = http.clone();
                async move {
                    // CloudFront's `/http/*` behaviour: the path reaches the HTTP API
                    // unchanged. (Through the fallback rather than a route, so that no
                    // path parameter of ours reaches the app's extractors.)
                    match http {
                        Some(http)
                            if switchboard_core::http::is_http_path(request.uri().path()) =>
                        {
                            if let Some(refused) = state.0.refuse_origin(request.headers()) {
                                return refused.into_response();
                            }
                            switchboard_core::http::call(http, request).await
                        }
                        _ => ws::fallback(state, peer, request).await,
                    }
                }
            },
        )
        .with_state(gateway)
}
