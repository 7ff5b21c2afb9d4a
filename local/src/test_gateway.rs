//! [`TestGateway`]: test handlers without sockets. Connections are in-process handles that
//! go through the same authorizer, dispatch, bookkeeping and `@connections` client as the
//! local gateway.
//!
//! Made by the facade's `App::test_gateway`:
//!
//! ```text
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let gw = switchboard::App::new().test_gateway()?;
//! let alice = gw.connect("alice").await?;
//! alice.send_json(&serde_json::json!({"action": "ping"})).await?;
//! assert_eq!(alice.recv_json().await?["action"], "pong");
//! alice.close().await;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use crate::issuer::{LocalIssuer, TokenRequest};
use crate::{Gateway, Live, UpgradeRequest};
use switchboard_core::backend::{ConnectionStore, ConnectionsClient};
use switchboard_core::response::Frame;

/// How long [`TestConnection::recv`] waits by default.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors of the test gateway.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The upgrade was refused (authorizer or `$connect`).
    #[error("connection refused with status {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// Nothing arrived in time.
    #[error("no frame arrived within {0:?}")]
    Timeout(Duration),
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// The local issuer refused to sign in.
    #[error("sign-in failed: {0}")]
    SignIn(String),
    /// A frame was not the JSON the test expected.
    #[error("frame is not JSON: {0}")]
    NotJson(String),
}

/// An in-process gateway over the app's routes.
pub struct TestGateway {
    gateway: Arc<Gateway>,
    issuer: Option<Arc<LocalIssuer>>,
}

impl std::fmt::Debug for TestGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestGateway").finish_non_exhaustive()
    }
}

impl TestGateway {
    pub(crate) fn new(gateway: Arc<Gateway>, issuer: Option<Arc<LocalIssuer>>) -> Self {
        Self { gateway, issuer }
    }

    /// Connects as `username`: with a token from the local issuer (`?token=`), or with
    /// the development authorizer's `?user=`.
    pub async fn connect(&self, username: &str) -> Result<TestConnection, TestError> {
        let query = match &self.issuer {
            Some(_) => format!("token={}", self.token(username, &[])?),
            None => format!("user={}", encode_segment(username)),
        };
        self.connect_with(&query, HeaderMap::new()).await
    }

    /// An id token for `username` (in `groups`) from the local issuer.
    pub fn token(&self, username: &str, groups: &[&str]) -> Result<String, TestError> {
        let issuer = self.issuer.as_ref().ok_or_else(|| {
            TestError::SignIn("this gateway has no local issuer (dev or custom auth)".to_owned())
        })?;
        issuer
            .issue(&TokenRequest::new(username).groups(groups.iter().copied()))
            .map(|t| t.id_token)
            .map_err(|e| TestError::SignIn(e.to_string()))
    }

    /// Connects with a raw query string and headers, as a client's upgrade would.
    pub async fn connect_with(
        &self,
        query: &str,
        headers: HeaderMap,
    ) -> Result<TestConnection, TestError> {
        let upgrade = UpgradeRequest {
            headers,
            query: query.to_owned(),
            source_ip: Some("127.0.0.1".to_owned()),
            path: "/ws".to_owned(),
        };
        let opened = self
            .gateway
            .open(upgrade)
            .await
            .map_err(|r| TestError::Refused {
                status: r.status,
                body: r.body,
            })?;
        let live = opened.live;
        let gateway = Arc::clone(&self.gateway);
        let watched = Arc::clone(&live);
        let watcher = tokio::spawn(async move {
            let (code, reason) = watched.close.requested().await;
            gateway.on_close(&watched, code, &reason).await;
        });
        Ok(TestConnection {
            gateway: Arc::clone(&self.gateway),
            live,
            rx: Mutex::new(opened.rx),
            watcher: Mutex::new(Some(watcher)),
            protocol: opened.protocol,
        })
    }

    /// The connection store, to assert on bookkeeping.
    pub fn store(&self) -> &Arc<dyn ConnectionStore> {
        &self.gateway.dispatcher.services().store
    }

    /// The `@connections` client, to send as a backend would.
    pub fn connections(&self) -> &Arc<dyn ConnectionsClient> {
        &self.gateway.dispatcher.services().client
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        self.gateway.hub.len()
    }
}

/// One test client connection.
pub struct TestConnection {
    gateway: Arc<Gateway>,
    live: Arc<Live>,
    rx: Mutex<mpsc::Receiver<Frame>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
    protocol: Option<String>,
}

impl std::fmt::Debug for TestConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestConnection")
            .field("id", &self.live.id)
            .finish_non_exhaustive()
    }
}

impl TestConnection {
    /// The connection id.
    pub fn id(&self) -> &str {
        &self.live.id
    }

    /// The identity the authorizer gave this connection.
    pub fn identity(&self) -> &switchboard_core::Identity {
        &self.live.identity
    }

    /// The subprotocol `$connect` chose, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Whether the gateway still holds the connection open.
    pub fn is_open(&self) -> bool {
        self.gateway.hub.live(&self.live.id).is_some()
    }

    /// Sends a text frame and waits until its handler finished; the route response, if
    /// any, is then the next frame [`recv`](Self::recv) returns (after anything the
    /// handler sent to this connection itself).
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), TestError> {
        if !self.is_open() {
            return Err(TestError::Closed);
        }
        self.live.touch(crate::now());
        let reply = self.gateway.on_message(&self.live, text.into()).await;
        if let Some(frame) = reply {
            self.live
                .tx
                .send(frame)
                .await
                .map_err(|_| TestError::Closed)?;
        }
        Ok(())
    }

    /// Sends `value` as a JSON text frame.
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), TestError> {
        let text = serde_json::to_string(value).map_err(|e| TestError::NotJson(e.to_string()))?;
        self.send_text(text).await
    }

    /// The next frame this connection received, waiting up to [`RECV_TIMEOUT`].
    pub async fn recv(&self) -> Result<Frame, TestError> {
        self.recv_within(RECV_TIMEOUT).await
    }

    /// The next frame, waiting up to `limit`.
    pub async fn recv_within(&self, limit: Duration) -> Result<Frame, TestError> {
        let mut rx = self.rx.lock().await;
        match tokio::time::timeout(limit, rx.recv()).await {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => Err(TestError::Closed),
            Err(_) => Err(TestError::Timeout(limit)),
        }
    }

    /// The next frame, parsed as JSON.
    pub async fn recv_json(&self) -> Result<serde_json::Value, TestError> {
        let frame = self.recv().await?;
        let text = frame.as_text().unwrap_or_default();
        serde_json::from_str(text).map_err(|_| TestError::NotJson(text.to_owned()))
    }

    /// A frame already received, without waiting.
    pub async fn try_recv(&self) -> Option<Frame> {
        self.rx.lock().await.try_recv().ok()
    }

    /// Closes from the client side (code 1000) and waits for `$disconnect` to finish.
    pub async fn close(&self) {
        self.live.close.request(1000, "Client closed");
        self.wait_closed().await;
    }

    /// Waits until the gateway closed this connection and ran `$disconnect`.
    pub async fn wait_closed(&self) {
        let handle = self.watcher.lock().await.take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}

/// Percent-encodes a query value or path segment (everything but RFC 3986's unreserved
/// characters), e.g. a connection id for an `@connections` path.
pub fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
