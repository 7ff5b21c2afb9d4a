//! The WebSocket side of the local gateway: the upgrade and one task per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsProtoError, Message, Utf8Bytes};

use switchboard_core::response::FrameData;

use super::session::{Gateway, Opened, UpgradeRequest, now_ms};

/// How long to wait for the client's half of a close handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// `GET /ws` (and `/ws/...` through the fallback): the WebSocket upgrade.
pub(crate) async fn upgrade(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let headers = req.headers();
    let is_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let connection_upgrade = headers
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, true, true, Some(key)) = (is_upgrade, connection_upgrade, version_ok, key) else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            [(header::SEC_WEBSOCKET_VERSION, "13")],
            axum::Json(serde_json::json!({"message": "this endpoint speaks WebSocket only"})),
        )
            .into_response();
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (StatusCode::BAD_REQUEST, "connection cannot be upgraded").into_response();
    };
    let upgrade = UpgradeRequest {
        headers: req.headers().clone(),
        query: req.uri().query().unwrap_or_default().to_owned(),
        source_ip: Some(peer.ip().to_string()),
        path: req.uri().path().to_owned(),
    };
    let opened = match gateway.open(upgrade).await {
        Ok(opened) => opened,
        Err(refusal) => return refusal.into_response(),
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = opened.protocol.as_deref()
        && let Ok(v) = HeaderValue::from_str(protocol)
    {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => serve_socket(gateway, opened, TokioIo::new(upgraded)).await,
            Err(e) => {
                tracing::debug!(error = %e, "client vanished during the upgrade");
                // Boxed, like every large future of a connection's task: the task's
                // size is what each idle connection costs.
                Box::pin(gateway.on_close(&opened.live, 1006, "Upgrade failed")).await;
            }
        }
    });
    response
}

impl IntoResponse for super::session::Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response()
    }
}

/// Anything else: `/ws/...` upgrades (CloudFront's `/ws/*` behaviour), else 404.
pub(crate) async fn fallback(
    state: State<Arc<Gateway>>,
    peer: ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    if req.uri().path().starts_with("/ws/") {
        return upgrade(state, peer, req).await;
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"message": "Not Found"})),
    )
        .into_response()
}

/// How a connection ended.
enum End {
    /// We close it: send a close frame with this code, then finish the handshake.
    Server(u16, String),
    /// We close it after a framing error: close frame, then read and discard what the
    /// client still sends so the close frame is not lost to a TCP reset.
    ServerAfterError(u16, &'static str),
    /// The client sent a close frame.
    Client(u16, String),
    /// The socket died without a close frame.
    Abnormal,
}

async fn serve_socket<S>(gateway: Arc<Gateway>, opened: Opened, io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Opened { live, mut rx, .. } = opened;
    let cfg = &gateway.config;
    let mut ws_config = WebSocketConfig::default();
    ws_config.max_frame_size = Some(cfg.max_frame_bytes);
    ws_config.max_message_size = Some(cfg.max_message_bytes);
    // Small buffers: 10,000 idle connections must fit in little memory.
    ws_config.read_buffer_size = 4 * 1024;
    ws_config.write_buffer_size = 0;
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).await;

    let age_deadline = Instant::now() + cfg.max_connection_age;
    // A token that expires before the maximum age closes the connection at its expiry.
    let token_deadline = switchboard_core::dispatch::token_expiry(&live.identity)
        .filter(|_| gateway.dispatcher.services().close_on_token_expiry)
        .map(|exp| {
            let left = exp.saturating_mul(1000).saturating_sub(now_ms()).max(0);
            Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(0))
        });
    let token_expired = sleep_until(token_deadline.unwrap_or(age_deadline));
    tokio::pin!(token_expired);
    let max_age = sleep_until(age_deadline);
    tokio::pin!(max_age);
    let idle = sleep(cfg.idle_timeout);
    tokio::pin!(idle);
    // Boxed futures: `FuturesUnordered` allocates a node of the future's size up front
    // (and per message), and an event's dispatch is several KiB; idle connections
    // should not pay for it.
    let mut in_flight: FuturesUnordered<InFlight> = FuturesUnordered::new();
    let write_timeout = cfg.write_timeout;
    let max_in_flight = cfg.max_in_flight.max(1);

    let end = loop {
        tokio::select! {
            biased;
            (code, reason) = live.close.requested() => break End::Server(code, reason),
            () = &mut max_age => break End::Server(1001, "Going away: maximum connection age".to_owned()),
            () = &mut idle => break End::Server(1001, "Going away: idle timeout".to_owned()),
            () = &mut token_expired, if token_deadline.is_some() => {
                break End::Server(1008, "Token expired".to_owned());
            }
            Some(frame) = rx.recv() => {
                let mut batch = vec![frame];
                while batch.len() < 64 {
                    match rx.try_recv() {
                        Ok(f) => batch.push(f),
                        Err(_) => break,
                    }
                }
                let n = batch.len();
                gateway.console.sent(&live, "push", &batch);
                if !write_or_close(&mut ws, &live, batch, write_timeout).await {
                    break End::Abnormal;
                }
                gateway.hub.stats.frames_out(n);
            }
            Some(reply) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(frame) = reply {
                    // What the handler posted to this connection goes out before its
                    // route response (as on API Gateway, where a post is delivered
                    // when it returns): `resume` replays, then answers.
                    let mut batch = Vec::new();
                    while let Ok(f) = rx.try_recv() {
                        batch.push(f);
                    }
                    if !batch.is_empty() {
                        gateway.console.sent(&live, "push", &batch);
                    }
                    gateway.console.sent(&live, "reply", std::slice::from_ref(&frame));
                    batch.push(frame);
                    let n = batch.len();
                    if !write_or_close(&mut ws, &live, batch, write_timeout).await {
                        break End::Abnormal;
                    }
                    gateway.hub.stats.frames_out(n);
                }
            }
            msg = ws.next(), if in_flight.len() < max_in_flight => match msg {
                Some(Ok(Message::Text(text))) => {
                    gateway.hub.stats.frame_in();
                    live.frames_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    idle.as_mut().reset(Instant::now() + cfg.idle_timeout);
                    live.touch(now_ms());
                    in_flight.push(Box::pin(gateway.on_message(&live, text.as_str().to_owned())));
                }
                Some(Ok(Message::Binary(_))) => {
                    break End::ServerAfterError(1003, "Binary frames are not supported");
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))
                        .unwrap_or((1005, String::new()));
                    break End::Client(code, reason);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(WsProtoError::Capacity(
                    CapacityError::MessageTooLong { .. } | CapacityError::TooManyHeaders,
                ))) => break End::ServerAfterError(1009, "Message too big"),
                Some(Err(WsProtoError::Utf8(_))) => {
                    break End::ServerAfterError(1007, "Invalid UTF-8 in a text frame");
                }
                Some(Err(WsProtoError::Protocol(ProtocolError::ResetWithoutClosingHandshake)))
                | None => break End::Abnormal,
                Some(Err(WsProtoError::Protocol(_))) => {
                    break End::ServerAfterError(1002, "Protocol error");
                }
                Some(Err(_)) => break End::Abnormal,
            },
        }
    };

    // Handlers still running finish in the background, as Lambda invocations would;
    // their sends to this connection will find it gone.
    if !in_flight.is_empty() {
        tokio::spawn(async move { while in_flight.next().await.is_some() {} });
    }
    // Closing from here on: a graceful shutdown waits for the handshake and $disconnect.
    let _closing = gateway.closing_guard();
    gateway.hub.remove(&live.id);

    let (code, reason) = finish_close(&mut ws, &live, end).await;
    // Boxed: `$disconnect`'s dispatch would otherwise be part of every connection's task.
    Box::pin(gateway.on_close(&live, code, &reason)).await;
}

/// Ends the WebSocket as `end` says (close handshake, or linger after a framing error)
/// and returns the close code and reason `$disconnect` reports.
async fn finish_close<S>(ws: &mut WebSocketStream<S>, live: &super::Live, end: End) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match end {
        End::Server(code, reason) => {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.clone().into(),
            };
            let _ = timeout(CLOSE_GRACE, ws.close(Some(frame))).await;
            let _ = timeout(CLOSE_GRACE, async { while ws.next().await.is_some() {} }).await;
            (code, reason)
        }
        End::ServerAfterError(code, reason) => {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            let _ = timeout(CLOSE_GRACE, ws.close(Some(frame))).await;
            linger(ws.get_mut()).await;
            (code, reason.to_owned())
        }
        End::Client(code, reason) => {
            let _ = timeout(CLOSE_GRACE, async { while ws.next().await.is_some() {} }).await;
            (code, reason)
        }
        // A connection dropped because a close was requested while a write was stuck
        // (a slow consumer: 1008) reports that close; otherwise the TCP connection died.
        End::Abnormal => live
            .close
            .peek()
            .unwrap_or_else(|| (1006, "Going away".to_owned())),
    }
}

/// A message being handled: the route response to send back, if any.
type InFlight = std::pin::Pin<
    Box<dyn std::future::Future<Output = Option<switchboard_core::Frame>> + Send + 'static>,
>;

/// [`write_all`], except that a close requested while the write is stuck (a client that
/// stopped reading filled its outbound buffer, or the gateway is shutting down) leaves the
/// write [`CLOSE_GRACE`] more rather than the rest of the write timeout. A write that
/// completes at once never looks at the close signal.
async fn write_or_close<S>(
    ws: &mut WebSocketStream<S>,
    live: &super::Live,
    frames: Vec<switchboard_core::Frame>,
    limit: Duration,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let write = write_all(ws, frames, limit);
    tokio::pin!(write);
    tokio::select! {
        biased;
        ok = &mut write => ok,
        _ = live.close.requested() => timeout(CLOSE_GRACE, write).await.unwrap_or(false),
    }
}

async fn write_all<S>(
    ws: &mut WebSocketStream<S>,
    frames: Vec<switchboard_core::Frame>,
    limit: Duration,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let write = async {
        for frame in frames {
            ws.feed(to_message(frame)).await?;
        }
        ws.flush().await
    };
    matches!(timeout(limit, write).await, Ok(Ok(())))
}

/// Reads and discards what the client still sends (its close frame, the rest of an
/// oversized frame) until it goes quiet, then half-closes. Closing a socket with unread
/// input makes the kernel send a reset, which can destroy the close frame in flight.
async fn linger<S>(io: &mut S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = Instant::now() + CLOSE_GRACE;
    let mut drained = 0usize;
    while Instant::now() < deadline && drained < 16 * 1024 * 1024 {
        match timeout(Duration::from_millis(200), io.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => drained += n,
        }
    }
    let _ = timeout(Duration::from_millis(200), io.shutdown()).await;
}

/// A frame as tungstenite sends it. Text frames are valid UTF-8 by construction; the
/// check here is the one tungstenite's `Utf8Bytes` requires (no unsafe).
fn to_message(frame: switchboard_core::Frame) -> Message {
    match frame.into_data() {
        // The clone is a reference count.
        FrameData::Text(bytes) => match Utf8Bytes::try_from(bytes.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(bytes),
        },
        FrameData::Binary(bytes) => Message::Binary(bytes),
    }
}
