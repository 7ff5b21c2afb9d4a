//! One WebSocket connection to the target, with every read bounded.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What the next read gave.
#[derive(Debug)]
pub enum Event {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// The server's close frame: code (1005 without one) and reason.
    Close(u16, String),
    /// The stream ended or failed without a close frame.
    Ended(String),
}

/// A WebSocket client connection; every wait is bounded by the target's step.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    step: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>, step: Duration) -> Self {
        Self { ws, step }
    }

    /// The longest single wait.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// Sends any message (a protocol ping, a fragment, a binary frame).
    pub async fn send(&mut self, msg: Message) -> Result<(), String> {
        match timeout(self.step, self.ws.send(msg)).await {
            Ok(r) => r.map_err(|e| format!("send: {e}")),
            Err(_) => Err(format!("send: not written within {:?}", self.step)),
        }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) -> Result<(), String> {
        self.send(Message::text(text)).await
    }

    /// Sends `value` as a JSON text frame.
    pub async fn send_json(&mut self, value: &Value) -> Result<(), String> {
        self.send_text(&value.to_string()).await
    }

    /// The next data frame or close, within `within` (`None`: nothing came).
    pub async fn next_within(&mut self, within: Duration) -> Option<Event> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = timeout(left, self.ws.next()).await.ok()?;
            return Some(match next {
                Some(Ok(Message::Text(t))) => Event::Text(t.as_str().to_owned()),
                Some(Ok(Message::Binary(b))) => Event::Binary(b.to_vec()),
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    Event::Close(u16::from(code), reason.as_str().to_owned())
                }
                Some(Ok(Message::Close(None))) => Event::Close(1005, String::new()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => Event::Ended(e.to_string()),
                None => Event::Ended("the stream ended".to_owned()),
            });
        }
    }

    /// The next text frame, within the step.
    pub async fn recv_text(&mut self) -> Result<String, String> {
        match self.next_within(self.step).await {
            Some(Event::Text(t)) => Ok(t),
            Some(other) => Err(format!("expected a text frame, got {other:?}")),
            None => Err(format!("no frame within {:?}", self.step)),
        }
    }

    /// The next text frame as JSON, within the step.
    pub async fn recv_json(&mut self) -> Result<Value, String> {
        let text = self.recv_text().await?;
        serde_json::from_str(&text).map_err(|e| format!("frame is not JSON ({e}): {text}"))
    }

    /// Reads JSON frames until one satisfies `pred`, within the step; returns it and the
    /// frames skipped on the way.
    pub async fn recv_until(
        &mut self,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<(Value, Vec<Value>), String> {
        let deadline = Instant::now() + self.step;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match timeout(left, self.recv_json()).await {
                Ok(f) => f?,
                Err(_) => {
                    return Err(format!(
                        "no matching frame within {:?}; got {skipped:?}",
                        self.step
                    ));
                }
            };
            if pred(&frame) {
                return Ok((frame, skipped));
            }
            skipped.push(frame);
        }
    }

    /// Sends `body` and returns the first frame whose `action` is `reply` or that is an
    /// error frame.
    pub async fn request(&mut self, body: Value, reply: &str) -> Result<Value, String> {
        self.send_json(&body).await?;
        Ok(self
            .recv_until(|f| f["action"] == reply || f.get("error").is_some())
            .await?
            .0)
    }

    /// `whoami`: the connection id.
    pub async fn whoami_id(&mut self) -> Result<String, String> {
        let me = self
            .request(serde_json::json!({"action": "whoami"}), "whoami")
            .await?;
        me["connectionId"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("whoami without a connectionId: {me}"))
    }

    /// Joins `room` (not yet joined); returns the `joined` reply. The own presence
    /// frame, which may come before or after the reply, is consumed too.
    pub async fn join(&mut self, room: &str) -> Result<Value, String> {
        self.send_json(&serde_json::json!({"action": "join", "room": room}))
            .await?;
        let deadline = Instant::now() + self.step;
        let (mut joined, mut presence) = (None, false);
        while joined.is_none() || !presence {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match timeout(left, self.recv_json()).await {
                Ok(f) => f?,
                Err(_) => {
                    return Err(format!(
                        "joining {room}: reply {joined:?}, own presence {presence}"
                    ));
                }
            };
            if frame.get("error").is_some() {
                return Err(format!("joining {room}: {frame}"));
            }
            if frame["action"] == "joined" && frame["room"] == room {
                joined = Some(frame);
            } else if frame["action"] == "presence"
                && frame["room"] == room
                && frame["event"] == "join"
            {
                presence = true;
            }
        }
        joined.ok_or_else(|| format!("joining {room}: no reply"))
    }

    /// Nothing but control frames for `within`; the error names what came.
    pub async fn silence(&mut self, within: Duration) -> Result<(), String> {
        match self.next_within(within).await {
            None => Ok(()),
            Some(event) => Err(format!("expected silence for {within:?}, got {event:?}")),
        }
    }

    /// Reads until the server's close frame (data frames skipped) within `within`:
    /// `(code, reason)`; `Err` when the stream ended without one or nothing came.
    pub async fn close_code_within(&mut self, within: Duration) -> Result<(u16, String), String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left).await {
                Some(Event::Close(code, reason)) => {
                    // Keep polling so the close reply goes out and the handshake ends.
                    let _ =
                        timeout(self.step, async { while self.ws.next().await.is_some() {} }).await;
                    return Ok((code, reason));
                }
                Some(Event::Ended(e)) => return Err(format!("no close frame: {e}")),
                Some(_) => continue,
                None => return Err(format!("still open after {within:?}")),
            }
        }
    }

    /// Expects a close with `code` within the step.
    pub async fn expect_close(&mut self, code: u16) -> Result<String, String> {
        let (got, reason) = self.close_code_within(self.step).await?;
        if got == code {
            Ok(reason)
        } else {
            Err(format!("closed with {got} ({reason}), expected {code}"))
        }
    }

    /// Closes from the client side with 1000 and waits (bounded) for the server's answer.
    pub async fn close(mut self) {
        let frame = CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        };
        let _ = timeout(self.step, self.ws.close(Some(frame))).await;
        let _ = timeout(self.step, async { while self.ws.next().await.is_some() {} }).await;
    }

    /// Drops the connection without a close frame (FIN).
    pub fn drop_abruptly(self) {
        drop(self.ws);
    }
}
