//! The load generator's side of a connection: connecting, closing, reading
//! frames, all bounded by timeouts.

use std::{
    borrow::Cow,
    fmt, io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::{net::TcpStream, sync::Semaphore, task::JoinSet, time::timeout};
use tokio_tungstenite::{WebSocketStream, client_async, tungstenite};

use crate::BoxError;

/// A client connection (plain TCP: loopback only, no TLS).
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Upper bound on one TCP connect + WebSocket upgrade.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on one send, or on waiting for one reply / one broadcast.
pub(crate) const MSG_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on a close handshake.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Length of every `data` payload.
pub(crate) const PAYLOAD_LEN: usize = 64;

/// Where to connect: the WebSocket URL and its resolved loopback address.
pub(crate) struct Endpoint {
    url: String,
    addr: SocketAddr,
    next_user: AtomicU64,
}

impl Endpoint {
    /// Resolves `url` (`ws://host:port/path[?query]`), refusing anything that
    /// is not a loopback address.
    pub(crate) async fn resolve(url: &str) -> Result<Arc<Self>, BoxError> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("only ws:// URLs are supported, got {url}"))?;
        let host_port = rest.split(['/', '?']).next().unwrap_or(rest);
        let mut addrs = timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host(host_port.to_owned()),
        )
        .await??;
        let addr = addrs
            .find(|a| a.ip().is_loopback())
            .ok_or_else(|| format!("{url} does not resolve to a loopback address"))?;
        Ok(Arc::new(Self {
            url: url.to_owned(),
            addr,
            next_user: AtomicU64::new(0),
        }))
    }

    /// The URL for the next client, with a fresh `user=benchN`.
    fn next_url(&self) -> String {
        let n = self.next_user.fetch_add(1, Ordering::Relaxed);
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}user=bench{n}", self.url)
    }

    /// TCP connect (TCP_NODELAY) + upgrade, within [`CONNECT_TIMEOUT`].
    pub(crate) async fn connect(&self) -> Result<Ws, ConnectError> {
        let url = self.next_url();
        let attempt = async {
            let tcp = TcpStream::connect(self.addr)
                .await
                .map_err(ConnectError::Io)?;
            tcp.set_nodelay(true).map_err(ConnectError::Io)?;
            let (ws, _response) = client_async(url, tcp).await.map_err(ConnectError::Ws)?;
            Ok(ws)
        };
        timeout(CONNECT_TIMEOUT, attempt)
            .await
            .unwrap_or(Err(ConnectError::Timeout))
    }
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// Nothing within [`CONNECT_TIMEOUT`].
    Timeout,
    /// TCP level.
    Io(io::Error),
    /// Handshake level.
    Ws(tungstenite::Error),
}

impl ConnectError {
    /// Whether this is EMFILE ("Too many open files").
    pub(crate) fn is_emfile(&self) -> bool {
        match self {
            Self::Timeout => false,
            Self::Io(e) | Self::Ws(tungstenite::Error::Io(e)) => is_emfile(e),
            Self::Ws(e) => e.to_string().contains("Too many open files"),
        }
    }

    /// A short reason, for aggregating failures.
    pub(crate) fn reason(&self) -> String {
        match self {
            Self::Timeout => "timeout".to_owned(),
            Self::Io(e) => format!("io: {e}"),
            Self::Ws(tungstenite::Error::Http(resp)) => format!("http status {}", resp.status()),
            Self::Ws(e) => format!("websocket: {e}"),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

fn is_emfile(e: &io::Error) -> bool {
    // 24 is EMFILE on Linux and the BSDs.
    e.raw_os_error() == Some(24) || e.to_string().contains("Too many open files")
}

/// Connection failures, aggregated by reason.
#[derive(Default)]
pub(crate) struct Failures {
    /// Total failed attempts.
    pub(crate) count: usize,
    /// Whether any failure was EMFILE.
    pub(crate) emfile: bool,
    /// (reason, count), in first-seen order.
    pub(crate) reasons: Vec<(String, usize)>,
}

impl Failures {
    pub(crate) fn add(&mut self, e: &ConnectError) {
        self.count += 1;
        self.emfile |= e.is_emfile();
        let reason = e.reason();
        match self.reasons.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.reasons.push((reason, 1)),
        }
    }
}

/// Opens `n` connections, at most `concurrency` handshakes in flight.
/// Setup only: nothing is timed.
pub(crate) async fn connect_many(
    endpoint: &Arc<Endpoint>,
    n: usize,
    concurrency: usize,
) -> (Vec<Ws>, Failures) {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let endpoint = Arc::clone(endpoint);
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            endpoint.connect().await
        });
    }
    let mut conns = Vec::with_capacity(n);
    let mut failures = Failures::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(ws)) => conns.push(ws),
            Ok(Err(e)) => failures.add(&e),
            Err(join) => failures.add(&ConnectError::Io(io::Error::other(join.to_string()))),
        }
    }
    (conns, failures)
}

/// Sends a close frame and waits for the peer's; `true` if the handshake
/// completed within [`CLOSE_TIMEOUT`].
pub(crate) async fn close(mut ws: Ws) -> bool {
    let handshake = async move {
        if ws.close(None).await.is_err() {
            return false;
        }
        loop {
            match ws.next().await {
                None | Some(Err(tungstenite::Error::ConnectionClosed)) => return true,
                Some(Ok(_)) => {}
                Some(Err(_)) => return false,
            }
        }
    };
    timeout(CLOSE_TIMEOUT, handshake).await.unwrap_or(false)
}

/// Closes every connection concurrently; returns how many did not close cleanly.
pub(crate) async fn close_all(conns: Vec<Ws>) -> usize {
    let mut set = JoinSet::new();
    for ws in conns {
        set.spawn(close(ws));
    }
    let mut unclean = 0;
    while let Some(joined) = set.join_next().await {
        if !matches!(joined, Ok(true)) {
            unclean += 1;
        }
    }
    unclean
}

/// Sends one text frame within [`MSG_TIMEOUT`].
pub(crate) async fn send_text(ws: &mut Ws, text: String) -> bool {
    matches!(
        timeout(MSG_TIMEOUT, ws.send(tungstenite::Message::text(text))).await,
        Ok(Ok(()))
    )
}

/// What one received text frame was.
pub(crate) enum Inbound<'a> {
    /// `{"action":A,"data":S}`.
    Reply {
        action: Cow<'a, str>,
        data: Cow<'a, str>,
    },
    /// Anything carrying an `error` key.
    Error,
    /// Anything else (app notices, non-string data, non-JSON).
    Other,
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

/// Classifies a text frame.
pub(crate) fn classify(text: &str) -> Inbound<'_> {
    match serde_json::from_str::<Frame<'_>>(text) {
        Ok(Frame { error: Some(_), .. }) => Inbound::Error,
        Ok(Frame {
            action: Some(action),
            data: Some(data),
            ..
        }) => Inbound::Reply { action, data },
        Ok(_) => Inbound::Other,
        // e.g. `data` is not a string: still check for an `error` key.
        Err(_) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) if v.get("error").is_some() => Inbound::Error,
            _ => Inbound::Other,
        },
    }
}

/// A [`PAYLOAD_LEN`]-byte data string: `tag` + two numbers, padded with `x`.
pub(crate) fn payload(tag: char, a: usize, b: usize) -> String {
    let mut s = format!("{tag}{a:06}-{b:06}-");
    while s.len() < PAYLOAD_LEN {
        s.push('x');
    }
    s.truncate(PAYLOAD_LEN);
    s
}

/// The request frame for `action` with string `data` (data is JSON-safe).
pub(crate) fn request(action: &str, data: &str) -> String {
    format!(r#"{{"action":"{action}","data":"{data}"}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_64_bytes() {
        assert_eq!(payload('e', 1, 2).len(), PAYLOAD_LEN);
        assert_eq!(payload('b', 999_999, 999_999).len(), PAYLOAD_LEN);
    }

    #[test]
    fn classify_frames() {
        assert!(matches!(
            classify(r#"{"action":"echo","data":"x"}"#),
            Inbound::Reply { ref action, ref data } if action == "echo" && data == "x"
        ));
        assert!(matches!(classify(r#"{"error":"nope"}"#), Inbound::Error));
        assert!(matches!(
            classify(r#"{"error":{"code":1},"data":{"a":1}}"#),
            Inbound::Error
        ));
        assert!(matches!(classify(r#"{"joined":"x"}"#), Inbound::Other));
        assert!(matches!(classify("not json"), Inbound::Other));
    }
}
