//! Helpers shared by the end-to-end tests in `tests/`: start a local gateway on a free
//! loopback port, connect WebSocket clients to it, read frames with a deadline, and speak
//! plain HTTP/1.1 to its management and info endpoints.
//!
//! Every network await in these helpers is bounded by [`STEP`] (or an explicit limit),
//! so a broken gateway fails a test quickly instead of hanging the suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard::local::{LocalConfig, LocalGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod history;

/// A WebSocket client connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest any single network step (connect, read a frame, an HTTP exchange) may take.
pub const STEP: Duration = Duration::from_secs(5);

/// The `User-Agent` the test clients send.
pub const USER_AGENT: &str = "switchboard-e2e/1.0";

/// A local gateway configuration for tests: a free port on 127.0.0.1, API Gateway's
/// defaults otherwise.
pub fn config() -> LocalConfig {
    LocalConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..LocalConfig::default()
    }
}

/// Starts the chat app's local gateway with `config`.
pub async fn start_with(config: LocalConfig) -> LocalGateway {
    timeout(STEP, chat_app::app().dev_auth().serve_local(config))
        .await
        .expect("gateway start timed out")
        .expect("gateway failed to start")
}

/// Starts the chat app's local gateway with [`config`].
pub async fn start() -> LocalGateway {
    start_with(config()).await
}

/// Stops a gateway gracefully, bounded: its own grace period (5 s) plus the server's.
pub async fn shutdown(gw: LocalGateway) {
    timeout(Duration::from_secs(12), gw.shutdown())
        .await
        .expect("gateway shutdown timed out");
}

/// Runs `fut` with a deadline of [`STEP`], failing the test with `what` if it is missed.
pub async fn step<F: Future>(what: &str, fut: F) -> F::Output {
    match timeout(STEP, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {STEP:?}: {what}"),
    }
}

/// Opens a WebSocket to `url` with extra request headers; the handshake error (e.g.
/// `Error::Http` for a refused upgrade) is returned as is.
pub async fn try_connect_url(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, Response), tungstenite::Error> {
    let mut request = url.into_client_request()?;
    let h = request.headers_mut();
    h.insert("user-agent", HeaderValue::from_static(USER_AGENT));
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        h.insert(name, HeaderValue::from_str(value).unwrap());
    }
    step(
        &format!("WebSocket handshake with {url}"),
        tokio_tungstenite::connect_async(request),
    )
    .await
}

/// Opens a WebSocket to the gateway as `user` (`?user=NAME`).
pub async fn connect(gw: &LocalGateway, user: &str) -> Ws {
    let url = format!("{}?user={user}", gw.ws_url());
    match try_connect_url(&url, &[]).await {
        Ok((ws, _)) => ws,
        Err(e) => panic!("connecting as {user} failed: {e}"),
    }
}

/// The HTTP status of a refused upgrade to `url`; panics if the upgrade succeeds.
pub async fn refused_status(url: &str, headers: &[(&str, &str)]) -> u16 {
    match try_connect_url(url, headers).await {
        Ok(_) => panic!("upgrade to {url} unexpectedly succeeded"),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("upgrade to {url} failed without an HTTP status: {e}"),
    }
}

/// Sends `value` as a JSON text frame.
pub async fn send_json(ws: &mut Ws, value: &Value) {
    step(
        "sending a text frame",
        ws.send(Message::text(value.to_string())),
    )
    .await
    .expect("sending a text frame failed");
}

/// Sends a raw text frame.
pub async fn send_text(ws: &mut Ws, text: &str) {
    step("sending a text frame", ws.send(Message::text(text)))
        .await
        .expect("sending a text frame failed");
}

/// The next data message (control frames skipped), within [`STEP`]. Panics on a close.
pub async fn recv_message(ws: &mut Ws) -> Message {
    loop {
        let next = step("waiting for a frame", ws.next()).await;
        match next {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(frame))) => panic!("expected a frame, got a close: {frame:?}"),
            Some(Ok(msg)) => return msg,
            Some(Err(e)) => panic!("expected a frame, got an error: {e}"),
            None => panic!("expected a frame, the stream ended"),
        }
    }
}

/// The next text frame, as a string.
pub async fn recv_text(ws: &mut Ws) -> String {
    match recv_message(ws).await {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next text frame, parsed as JSON, within [`STEP`].
pub async fn recv_json(ws: &mut Ws) -> Value {
    let text = recv_text(ws).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text}"))
}

/// Reads JSON frames until one satisfies `pred` and returns it; frames skipped on the
/// way are returned too, in order, as the second element.
pub async fn recv_until(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
    let mut skipped = Vec::new();
    let deadline = Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = match timeout(left, recv_json(ws)).await {
            Ok(f) => f,
            Err(_) => panic!("no matching frame within {STEP:?}; got {skipped:?}"),
        };
        if pred(&frame) {
            return (frame, skipped);
        }
        skipped.push(frame);
    }
}

/// Reads exactly `n` JSON frames.
pub async fn recv_n(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(recv_json(ws).await);
    }
    out
}

/// Sends `{"action": action, ..fields}` and returns the next frame that answers it
/// (its `action` is `reply`, or it is an error frame).
pub async fn request(ws: &mut Ws, body: Value, reply: &str) -> Value {
    send_json(ws, &body).await;
    recv_until(ws, |f| f["action"] == reply || f.get("error").is_some())
        .await
        .0
}

/// Asserts that no data frame arrives within `within` (control frames are ignored).
pub async fn expect_silence(ws: &mut Ws, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame (skipping data frames) within `within`, asserts
/// its code, and returns its reason.
pub async fn expect_close_within(ws: &mut Ws, code: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = match timeout(left, ws.next()).await {
            Ok(n) => n,
            Err(_) => panic!("no close frame within {within:?}"),
        };
        match next {
            Some(Ok(Message::Close(Some(CloseFrame { code: got, reason })))) => {
                assert_eq!(
                    u16::from(got),
                    code,
                    "close code (reason: {})",
                    reason.as_str()
                );
                // Keep polling, as a real client does, so that the close reply queued by
                // the client library is sent and the closing handshake completes.
                let _ = timeout(STEP, async { while ws.next().await.is_some() {} }).await;
                return reason.as_str().to_owned();
            }
            Some(Ok(Message::Close(None))) => panic!("close frame without a code, wanted {code}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("wanted a close frame with {code}, got an error: {e}"),
            None => panic!("wanted a close frame with {code}, the stream ended"),
        }
    }
}

/// [`expect_close_within`] [`STEP`].
pub async fn expect_close(ws: &mut Ws, code: u16) -> String {
    expect_close_within(ws, code, STEP).await
}

/// Closes from the client side with 1000 and waits for the server's answer.
pub async fn close(ws: &mut Ws) {
    close_with(
        ws,
        Some(CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        }),
    )
    .await;
}

/// Closes from the client side with `frame` (`None`: a close frame without a status)
/// and waits for the server's answer.
pub async fn close_with(ws: &mut Ws, frame: Option<CloseFrame>) {
    let _ = step("closing", ws.close(frame)).await;
    let _ = timeout(STEP, async { while ws.next().await.is_some() {} }).await;
}

/// Sends `{"action":"whoami"}` and returns the connection id from the reply.
pub async fn whoami_id(ws: &mut Ws) -> String {
    let reply = request(ws, serde_json::json!({"action": "whoami"}), "whoami").await;
    reply["connectionId"]
        .as_str()
        .unwrap_or_else(|| panic!("whoami without a connectionId: {reply}"))
        .to_owned()
}

/// Joins `room` and returns the `joined` reply (the caller's own presence frame is
/// consumed too).
pub async fn join(ws: &mut Ws, room: &str) -> Value {
    send_json(ws, &serde_json::json!({"action": "join", "room": room})).await;
    let frames = recv_n(ws, 2).await;
    let joined = frames
        .iter()
        .find(|f| f["action"] == "joined")
        .unwrap_or_else(|| panic!("no joined reply in {frames:?}"))
        .clone();
    assert!(
        frames.iter().any(|f| f["action"] == "presence"),
        "no presence frame in {frames:?}"
    );
    joined
}

/// A plain HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One HTTP/1.1 exchange with `addr` (`Connection: close`), within [`STEP`].
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> HttpResponse {
    http_with(addr, method, path, &[], body).await
}

/// [`http`] with extra request headers (e.g. `("authorization", "Bearer ..")`).
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    step(
        &format!("HTTP {method} {path}"),
        http_inner(addr, method, path, headers, body),
    )
    .await
}

async fn http_inner(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {status_line}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[(start + size + 2).min(data.len())..];
    }
}

pub use switchboard::testing::encode_segment;

/// The connection records the gateway's store holds (`GET /local/connections`).
pub async fn store_records(gw: &LocalGateway) -> Vec<Value> {
    let response = http(gw.local_addr(), "GET", "/local/connections", b"").await;
    assert_eq!(response.status, 200, "GET /local/connections");
    match response.json() {
        Value::Array(records) => records,
        other => panic!("GET /local/connections is not an array: {other}"),
    }
}

/// The connection ids in the gateway's store.
pub async fn store_ids(gw: &LocalGateway) -> Vec<String> {
    store_records(gw)
        .await
        .iter()
        .map(|r| r["connectionId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Polls the store until `id` is no longer recorded, within [`STEP`].
pub async fn wait_record_gone(gw: &LocalGateway, id: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let ids = store_ids(gw).await;
        if !ids.iter().any(|i| i == id) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "record {id} still in the store after {STEP:?}: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `id` looks like an API Gateway connection id: 16 characters of URL-safe
/// base64 ending in one `=`.
pub fn is_aws_connection_id(id: &str) -> bool {
    id.len() == 16
        && id.ends_with('=')
        && !id.ends_with("==")
        && id[..15]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Sends `{"action":"ping"}` every `every` (keeping the connection from going idle)
/// until a JSON frame satisfying `pred` arrives, within [`STEP`].
pub async fn keepalive_until(ws: &mut Ws, every: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + STEP;
    let mut tick = tokio::time::interval(every);
    loop {
        let frame = tokio::select! {
            _ = tick.tick() => None,
            () = tokio::time::sleep_until(deadline) => panic!("no matching frame within {STEP:?}"),
            frame = recv_json(ws) => Some(frame),
        };
        match frame {
            None => send_json(ws, &serde_json::json!({"action": "ping"})).await,
            Some(frame) if pred(&frame) => return frame,
            Some(_) => {}
        }
    }
}

/// Sends `{"action":"ping"}` every `every` until the server closes the connection,
/// within `within`; returns the close code and reason.
pub async fn keepalive_until_close(
    ws: &mut Ws,
    every: Duration,
    within: Duration,
) -> (u16, String) {
    let deadline = Instant::now() + within;
    let mut tick = tokio::time::interval(every);
    loop {
        let msg = tokio::select! {
            _ = tick.tick() => None,
            () = tokio::time::sleep_until(deadline) => panic!("not closed within {within:?}"),
            msg = ws.next() => Some(msg),
        };
        match msg {
            // The server may close between two ticks; a failed send is not the point.
            None => {
                let _ = step("ping", ws.send(Message::text(r#"{"action":"ping"}"#))).await;
            }
            Some(Some(Ok(Message::Close(Some(frame))))) => {
                return (u16::from(frame.code), frame.reason.as_str().to_owned());
            }
            Some(Some(Ok(Message::Close(None)))) => panic!("close frame without a code"),
            Some(Some(Ok(_))) => {}
            Some(Some(Err(e))) => panic!("wanted a close frame, got an error: {e}"),
            Some(None) => panic!("wanted a close frame, the stream ended"),
        }
    }
}
