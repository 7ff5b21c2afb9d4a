//! [`RecordingProxy`]: an HTTP/1.1 proxy on 127.0.0.1 for tests, in front of moto
//! (DynamoDB, SQS) or the local gateway's `@connections` endpoint. It records the
//! operation of every request that reaches it, and can be **cut** and **restored** to
//! play an endpoint that disappears mid-run and comes back.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard_testing::proxy::RecordingProxy;
//! let proxy = RecordingProxy::start("http://127.0.0.1:5000").await?;
//! // Point the client at proxy.url() instead of moto, then:
//! proxy.take_calls(); // forget what happened so far
//! // ... one operation ...
//! assert_eq!(proxy.operations(), ["PutItem"]);
//! proxy.cut(); // "moto disappears"
//! proxy.restore(); // ... and comes back, with its tables and queues intact
//! # Ok(()) }
//! ```
//!
//! # Why a proxy, not a stopped moto
//!
//! Moto keeps its tables and queues in memory: a restarted moto starts empty, so "nothing
//! queued is lost" and "the warm process recovers" could not be checked after it. Cutting
//! the proxy instead makes the endpoint disappear for the client while moto's state
//! survives.
//!
//! # Operations
//!
//! Each request is recorded as one [`Call`], named by
//!
//! - the `X-Amz-Target` header (DynamoDB and SQS's JSON protocol):
//!   `DynamoDB_20120810.PutItem` → `PutItem`, `AmazonSQS.SendMessage` → `SendMessage`;
//! - else `Action=` of a form body (SQS's query protocol);
//! - else `/@connections/{id}` (any stage prefix): `POST` → `PostToConnection`, `GET` →
//!   `GetConnection`, `DELETE` → `DeleteConnection`;
//! - else `{METHOD} {path}` (e.g. a JWKS fetch).
//!
//! # Cutting
//!
//! [`cut`](RecordingProxy::cut) closes every open connection (a request in flight gets no
//! answer: its connection is closed under it, as when a server is killed), then answers
//! every new request by closing its connection without a response. Those requests are
//! still recorded, with [`Outcome::Cut`], so a test can count the client's retries. To
//! the AWS SDK this is the same class of failure as a stopped server's refused
//! connection: an I/O error of the dispatch, transient, retried.
//! [`cut_refusing`](RecordingProxy::cut_refusing) closes the listening socket as well, so
//! new connections are refused (exactly a stopped server; attempts are then invisible).
//! [`restore`](RecordingProxy::restore) answers again, on the same address.
//!
//! [`stall`](RecordingProxy::stall) plays an endpoint that accepts requests and never
//! answers (attempt and operation timeouts).
//!
//! Requests are forwarded one upstream connection each (no pooling upstream), with the
//! `Host` header unchanged (it is part of the SigV4 signature; neither moto nor the local
//! gateway checks signatures).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The largest request body the proxy buffers (DynamoDB's largest request is 16 MB).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// How many times [`RecordingProxy::restore`] tries to bind the address again.
const REBIND_ATTEMPTS: u32 = 50;

/// Errors of the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream URL is not `http://host:port`.
    #[error("upstream must be http://HOST:PORT[/...], not {0:?}")]
    Upstream(String),
    /// Binding 127.0.0.1 failed.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
}

/// What became of one recorded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Upstream answered with this status.
    Answered(u16),
    /// The proxy was cut (or stalled): the connection was closed without an answer.
    Cut,
    /// The proxy could not reach upstream (answered 502).
    UpstreamFailed,
}

/// One request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The operation (see the [module documentation](self#operations)).
    pub operation: String,
    /// The HTTP method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// What became of it.
    pub outcome: Outcome,
}

/// The proxy's state, watched by the accept loop and every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Open,
    /// Close connections without answering.
    Cut,
    /// As `Cut`, and the listening socket is closed.
    Refusing,
    /// Accept requests, never answer them.
    Stalled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    mode: Mode,
    /// Bumped by every cut: connections opened before it are closed.
    generation: u64,
}

struct Shared {
    upstream: SocketAddr,
    calls: Mutex<Vec<Call>>,
    state: watch::Sender<State>,
}

impl Shared {
    fn calls(&self) -> MutexGuard<'_, Vec<Call>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, call: Call) {
        self.calls().push(call);
    }
}

/// A recording, cuttable HTTP proxy on 127.0.0.1 (see the [module docs](self)).
/// Stops serving when dropped.
pub struct RecordingProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RecordingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Closes the connections still open.
        self.shared.state.send_modify(|s| s.generation += 1);
    }
}

impl RecordingProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`, a path is ignored: the
    /// proxy forwards paths unchanged) on a free loopback port.
    pub async fn start(upstream: &str) -> Result<Self, ProxyError> {
        let upstream = parse_upstream(upstream)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, _) = watch::channel(State {
            mode: Mode::Open,
            generation: 0,
        });
        let shared = Arc::new(Shared {
            upstream,
            calls: Mutex::new(Vec::new()),
            state,
        });
        let task = tokio::spawn(accept_loop(listener, addr, Arc::clone(&shared)));
        Ok(Self { shared, addr, task })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the endpoint to give clients instead of upstream's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request recorded so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls().clone()
    }

    /// The recorded requests, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.shared.calls())
    }

    /// The operations recorded so far, in arrival order.
    pub fn operations(&self) -> Vec<String> {
        self.shared
            .calls()
            .iter()
            .map(|c| c.operation.clone())
            .collect()
    }

    /// How many recorded requests were `operation`.
    pub fn count(&self, operation: &str) -> usize {
        self.shared
            .calls()
            .iter()
            .filter(|c| c.operation == operation)
            .count()
    }

    /// The endpoint disappears: open connections are closed, and every new request's
    /// connection is closed without an answer (recorded as [`Outcome::Cut`]).
    pub fn cut(&self) {
        self.set(Mode::Cut);
    }

    /// As [`cut`](Self::cut), and the listening socket is closed too: new connections
    /// are refused, exactly as by a stopped server (and not recorded).
    pub fn cut_refusing(&self) {
        self.set(Mode::Refusing);
    }

    /// The endpoint accepts requests and never answers them (recorded as
    /// [`Outcome::Cut`]); open connections are closed first.
    pub fn stall(&self) {
        self.set(Mode::Stalled);
    }

    /// The endpoint is back, on the same address.
    pub fn restore(&self) {
        self.shared.state.send_modify(|s| s.mode = Mode::Open);
    }

    /// Whether the proxy forwards requests (not cut, refusing or stalled).
    pub fn is_open(&self) -> bool {
        self.shared.state.borrow().mode == Mode::Open
    }

    fn set(&self, mode: Mode) {
        self.shared.state.send_modify(|s| {
            s.mode = mode;
            s.generation += 1;
        });
    }
}

fn parse_upstream(upstream: &str) -> Result<SocketAddr, ProxyError> {
    let bad = || ProxyError::Upstream(upstream.to_owned());
    let rest = upstream.trim().strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.replace("localhost", "127.0.0.1");
    authority.parse().map_err(|_| bad())
}

async fn accept_loop(mut listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) {
    let mut state = shared.state.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Accepted just before the listener closes: closed unanswered, unrecorded.
                    if shared.state.borrow().mode != Mode::Refusing {
                        tokio::spawn(serve(stream, Arc::clone(&shared)));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                if state.borrow_and_update().mode != Mode::Refusing {
                    continue;
                }
                drop(listener);
                if state.wait_for(|s| s.mode != Mode::Refusing).await.is_err() {
                    return;
                }
                listener = match rebind(addr).await {
                    Some(l) => l,
                    None => return,
                };
            }
        }
    }
}

async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..REBIND_ATTEMPTS {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Some(listener),
            Err(e) => {
                tracing::debug!(error = %e, %addr, "proxy: rebinding");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    tracing::error!(%addr, "proxy: could not listen again");
    None
}

/// One downstream connection, closed when the proxy is cut (or dropped).
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let mut state = shared.state.subscribe();
    let generation = state.borrow_and_update().generation;
    let service = {
        let shared = Arc::clone(&shared);
        hyper::service::service_fn(move |req| handle(Arc::clone(&shared), req))
    };
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "proxy: downstream connection ended");
            }
        }
        _ = state.wait_for(|s| s.generation != generation) => {}
    }
}

/// Why a request got no answer (hyper then closes the connection).
#[derive(Debug, thiserror::Error)]
#[error("the proxy is cut")]
struct CutError;

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, CutError> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(Body::new(body), MAX_BODY)
        .await
        .unwrap_or_default();
    let mut call = Call {
        operation: operation(&parts, &body),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        outcome: Outcome::Cut,
    };
    let mode = shared.state.borrow().mode;
    match mode {
        Mode::Open => {}
        Mode::Cut | Mode::Refusing => {
            shared.record(call);
            return Err(CutError);
        }
        Mode::Stalled => {
            shared.record(call);
            let mut state = shared.state.subscribe();
            // Closed with the connection when the mode changes (new generation).
            let _ = state.wait_for(|s| s.mode != Mode::Stalled).await;
            return Err(CutError);
        }
    }
    let request = Request::from_parts(parts, Body::from(body));
    match forward(shared.upstream, request).await {
        Ok(response) => {
            call.outcome = Outcome::Answered(response.status().as_u16());
            shared.record(call);
            let (parts, body) = response.into_parts();
            Ok(Response::from_parts(parts, Body::new(body)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "proxy: upstream failed");
            call.outcome = Outcome::UpstreamFailed;
            shared.record(call);
            Ok(Response::builder()
                .status(http::StatusCode::BAD_GATEWAY)
                .body(Body::from(format!("proxy: upstream failed: {e}")))
                .unwrap_or_default())
        }
    }
}

async fn forward(
    upstream: SocketAddr,
    request: Request<Body>,
) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "proxy: upstream connection ended");
        }
    });
    Ok(sender.send_request(request).await?)
}

/// The operation of a request (see the [module docs](self#operations)).
fn operation(parts: &http::request::Parts, body: &[u8]) -> String {
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form
        && let Some(action) = std::str::from_utf8(body)
            .ok()
            .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("Action=")))
    {
        return action.to_owned();
    }
    let path = parts.uri.path();
    if path.contains("/@connections/") || path.contains("/%40connections/") {
        let name = match parts.method.as_str() {
            "POST" => "PostToConnection",
            "GET" => "GetConnection",
            "DELETE" => "DeleteConnection",
            _ => "",
        };
        if !name.is_empty() {
            return name.to_owned();
        }
    }
    format!("{} {path}", parts.method)
}
