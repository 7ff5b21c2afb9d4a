//! Hostile input over real sockets, against the chat app's local gateway: malformed UTF-8
//! in text frames, deeply nested JSON, 10 MB frames and messages, floods of upgrades
//! without (valid) credentials, garbage instead of HTTP and half-sent upgrades. In every
//! case the offender gets what API Gateway would give it, the gateway stays up, and other
//! clients notice nothing.
//!
//! Frames the tungstenite client will not send (invalid UTF-8, a 10 MB length) are written
//! by hand on a raw TCP socket (`RawWs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};

const KB: usize = 1024;
const MB: usize = 1024 * 1024;
const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame header as a client sends it (masked), for a payload of `len` bytes.
fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out
}

/// `payload` masked, as the bytes at `offset` of a frame's payload.
fn masked(payload: &[u8], offset: usize) -> Vec<u8> {
    payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ MASK[(offset + i) % 4])
        .collect()
}

/// A whole client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, opcode, payload.len() as u64);
    out.extend_from_slice(&masked(payload, 0));
    out
}

/// A WebSocket spoken by hand: the upgrade, frames written as bytes, server frames parsed.
struct RawWs {
    reader: OwnedReadHalf,
    /// `None` once a test has taken it to write from another task.
    writer: Option<tokio::net::tcp::OwnedWriteHalf>,
    buf: Vec<u8>,
}

/// Writes an upgrade request for `path_query` (e.g. `/ws?user=x`) with `extra` header
/// lines, and returns the response's status and the stream after the response head.
async fn upgrade_raw(addr: SocketAddr, path_query: &str, extra: &str) -> (u16, TcpStream, Vec<u8>) {
    let mut stream = step("connect", TcpStream::connect(addr)).await.unwrap();
    let request = format!(
        "GET {path_query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         User-Agent: {USER_AGENT}\r\n{extra}\r\n"
    );
    step("write upgrade", stream.write_all(request.as_bytes()))
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = step("read upgrade response", stream.read(&mut chunk))
            .await
            .unwrap();
        assert!(n > 0, "connection closed before the response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response head {head:?}"));
    let rest = buf[end + 4..].to_vec();
    (status, stream, rest)
}

impl RawWs {
    /// Opens a WebSocket as `user` (the development authorizer).
    async fn connect(gw: &LocalGateway, user: &str) -> Self {
        let (status, stream, rest) =
            upgrade_raw(gw.local_addr(), &format!("/ws?user={user}"), "").await;
        assert_eq!(status, 101, "upgrade as {user}");
        let (reader, writer) = stream.into_split();
        Self {
            reader,
            writer: Some(writer),
            buf: rest,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        let writer = self.writer.as_mut().expect("the writer was taken");
        step("write", writer.write_all(bytes)).await.unwrap();
    }

    async fn send_text(&mut self, text: &[u8]) {
        self.send(&frame(true, TEXT, text)).await;
    }

    /// The next server frame: (opcode, payload). `None` when the socket ends.
    async fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            let left = deadline.saturating_duration_since(Instant::now());
            let n = match timeout(left, self.reader.read(&mut chunk)).await {
                Ok(Ok(n)) => n,
                Ok(Err(_)) => return None,
                Err(_) => panic!("no frame within {STEP:?}"),
            };
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next text frame as JSON (control frames skipped).
    async fn recv_json(&mut self) -> Value {
        loop {
            match self.next_frame().await {
                Some((TEXT, payload)) => return serde_json::from_slice(&payload).unwrap(),
                Some((CLOSE, payload)) => panic!("closed: {payload:?}"),
                Some(_) => {}
                None => panic!("the socket ended"),
            }
        }
    }

    /// Reads JSON frames until one satisfies `pred`.
    async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..64 {
            let frame = self.recv_json().await;
            if pred(&frame) {
                return frame;
            }
        }
        panic!("no matching frame in 64");
    }

    /// Reads until the server's close frame; returns its code and reason.
    async fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.next_frame().await {
                Some((CLOSE, payload)) => {
                    assert!(payload.len() >= 2, "close frame without a code");
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
                    return (code, reason);
                }
                Some(_) => {}
                None => panic!("the socket ended without a close frame"),
            }
        }
    }
}

/// Parses one unmasked server frame from the front of `buf`: ((opcode, payload), bytes).
fn parse_server_frame(buf: &[u8]) -> Option<((u8, Vec<u8>), usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    assert_eq!(buf[1] & 0x80, 0, "server frames are not masked");
    let (len, start) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < start + len {
        return None;
    }
    Some(((opcode, buf[start..start + len].to_vec()), start + len))
}

/// The connection id of `user`'s (only) connection, from the gateway's store.
async fn id_of(gw: &LocalGateway, user: &str) -> String {
    let records = store_records(gw).await;
    let ids: Vec<&str> = records
        .iter()
        .filter(|r| r["username"] == user)
        .filter_map(|r| r["connectionId"].as_str())
        .collect();
    assert_eq!(ids.len(), 1, "connections of {user}: {records:?}");
    ids[0].to_owned()
}

async fn still_answers(ws: &mut Ws) {
    let pong = request(ws, json!({"action": "ping"}), "pong").await;
    assert_eq!(pong, json!({"action": "pong"}));
}

/// A raw client joins `room`; the bystander (already in it) sees it arrive.
async fn raw_join(raw: &mut RawWs, room: &str, bystander: &mut Ws, user: &str) {
    raw.send_text(
        json!({"action": "join", "room": room})
            .to_string()
            .as_bytes(),
    )
    .await;
    raw.recv_until(|f| f["action"] == "joined").await;
    recv_until(bystander, |f| {
        f["action"] == "presence" && f["event"] == "join" && f["username"] == user
    })
    .await;
}

/// After `user`'s connection was closed: its `$disconnect` ran (the room heard it leave,
/// its record is gone), and the bystander is served as before.
async fn disconnect_ran(gw: &LocalGateway, bystander: &mut Ws, user: &str, id: &str) {
    let (left, _) = recv_until(bystander, |f| {
        f["action"] == "presence" && f["event"] == "leave" && f["username"] == user
    })
    .await;
    assert_eq!(left["connectionId"], id);
    wait_record_gone(gw, id).await;
    still_answers(bystander).await;
}

#[tokio::test]
async fn malformed_utf8_in_a_text_frame_closes_with_1007() {
    let gw = start().await;
    let mut bystander = connect(&gw, "bob").await;
    join(&mut bystander, "lobby").await;
    let cases: [(&str, Vec<Vec<u8>>); 4] = [
        (
            "invalid-byte",
            vec![frame(true, TEXT, b"{\"action\":\"\xff\xfe\"}")],
        ),
        (
            "overlong",
            vec![frame(true, TEXT, b"{\"action\":\"\xc0\xaf\"}")],
        ),
        ("surrogate", vec![frame(true, TEXT, b"\xed\xa0\x80")]),
        (
            // Valid first fragment, invalid continuation: the message is checked whole.
            "fragmented",
            vec![
                frame(false, TEXT, b"{\"action\":\"ping\",\"x\":\""),
                frame(true, CONTINUATION, b"\xe2\x28\xa1\"}"),
            ],
        ),
    ];
    for (name, frames) in cases {
        let user = format!("mallory-{name}");
        let mut raw = RawWs::connect(&gw, &user).await;
        raw_join(&mut raw, "lobby", &mut bystander, &user).await;
        let id = id_of(&gw, &user).await;
        for f in &frames {
            raw.send(f).await;
        }
        let (code, reason) = raw.expect_close().await;
        assert_eq!(code, 1007, "{name}: {reason}");
        disconnect_ran(&gw, &mut bystander, &user, &id).await;
    }
    assert_eq!(gw.open_connections(), 1);
    shutdown(gw).await;
}

#[tokio::test]
async fn deeply_nested_json_is_answered_and_the_connection_stays_usable() {
    let gw = start().await;
    let mut ws = connect(&gw, "alice").await;
    // 30,000 levels fit in one 32 KB frame: not JSON to the end, so `$default` answers.
    let deep_open = "[".repeat(30_000);
    send_text(&mut ws, &deep_open).await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(reply["error"]["code"], "unknown_route", "{reply}");
    // Closed and valid: the route is found and the handler answers. `echo` keeps `data`
    // verbatim (skipped, not parsed, so no depth limit applies) ...
    let nest = format!("{}{}", "[".repeat(15_000), "]".repeat(15_000));
    send_text(&mut ws, &format!(r#"{{"action":"echo","data":{nest}}}"#)).await;
    assert_eq!(
        recv_text(&mut ws).await,
        format!(r#"{{"action":"echo","data":{nest}}}"#)
    );
    // ... and refuses a payload without it, however deep the rest.
    send_text(&mut ws, &format!(r#"{{"action":"echo","x":{nest}}}"#)).await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(reply["error"]["route"], "echo", "{reply}");
    // A field the handler parses into a type: refused at the first wrong token.
    send_text(
        &mut ws,
        &format!(r#"{{"action":"sendMessage","room":{nest},"text":"x"}}"#),
    )
    .await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(reply["error"]["route"], "sendMessage", "{reply}");
    // The selected field after the nesting is found (the scan does not recurse).
    let body = format!(r#"{{"x":{nest},"action":"ping"}}"#);
    send_text(&mut ws, &body).await;
    assert_eq!(recv_json(&mut ws).await, json!({"action": "pong"}));
    let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(5_000), "}".repeat(5_000));
    send_text(
        &mut ws,
        &format!(r#"{{"action":"echo","x":{deep_objects}}}"#),
    )
    .await;
    assert!(recv_json(&mut ws).await.get("error").is_some());
    still_answers(&mut ws).await;

    // 100,000 `[` in four fragments (100 KB, under the 128 KB message limit).
    let mut raw = RawWs::connect(&gw, "deep").await;
    let deep = "[".repeat(100_000);
    let parts: Vec<&[u8]> = deep.as_bytes().chunks(25_000).collect();
    for (i, part) in parts.iter().enumerate() {
        let opcode = if i == 0 { TEXT } else { CONTINUATION };
        raw.send(&frame(i == parts.len() - 1, opcode, part)).await;
    }
    let reply = raw.recv_json().await;
    assert_eq!(reply["error"]["code"], "unknown_route", "{reply}");
    raw.send_text(br#"{"action":"ping"}"#).await;
    assert_eq!(raw.recv_json().await, json!({"action": "pong"}));
    still_answers(&mut ws).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn a_10_mb_frame_closes_with_1009_without_being_buffered() {
    let gw = start().await;
    let mut bystander = connect(&gw, "bob").await;
    join(&mut bystander, "lobby").await;
    let mut raw = RawWs::connect(&gw, "big").await;
    raw_join(&mut raw, "lobby", &mut bystander, "big").await;
    let id = id_of(&gw, "big").await;
    // The header announces 10 MB; only the first 1 MB follows, then the client waits. A
    // gateway that buffered the frame before checking its size would never answer.
    raw.send(&header(true, TEXT, 10 * MB as u64)).await;
    let chunk = masked(&vec![b'a'; 64 * KB], 0);
    for _ in 0..16 {
        let write = raw.writer.as_mut().unwrap().write_all(&chunk);
        if !matches!(timeout(STEP, write).await, Ok(Ok(()))) {
            break;
        }
    }
    let (code, reason) = raw.expect_close().await;
    assert_eq!(code, 1009, "{reason}");
    disconnect_ran(&gw, &mut bystander, "big", &id).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn a_10_mb_message_in_fragments_closes_with_1009_without_being_buffered() {
    let gw = start().await;
    let mut bystander = connect(&gw, "bob").await;
    join(&mut bystander, "lobby").await;
    let mut raw = RawWs::connect(&gw, "frag").await;
    raw_join(&mut raw, "lobby", &mut bystander, "frag").await;
    let id = id_of(&gw, "frag").await;
    // 16 KB fragments (each under the 32 KB frame limit) of a 10 MB message; the client
    // stops after 1 MB and waits for the verdict.
    let payload = vec![b'a'; 16 * KB];
    let fragments = 10 * MB / payload.len();
    let mut writer = raw.writer.take().unwrap();
    let writing = tokio::spawn(async move {
        let mut sent = 0usize;
        for i in 0..fragments {
            let opcode = if i == 0 { TEXT } else { CONTINUATION };
            let bytes = frame(i == fragments - 1, opcode, &payload);
            let write = writer.write_all(&bytes);
            if !matches!(timeout(STEP, write).await, Ok(Ok(()))) {
                break;
            }
            sent += payload.len();
            if sent >= MB {
                break;
            }
        }
        (writer, sent)
    });
    let (code, reason) = raw.expect_close().await;
    assert_eq!(code, 1009, "{reason}");
    let (_writer, sent) = step("writer", writing).await.unwrap();
    assert!(sent <= MB, "the client wrote {sent} bytes");
    disconnect_ran(&gw, &mut bystander, "frag", &id).await;
    shutdown(gw).await;
}

/// Writes an upgrade and returns the status, on a fresh connection.
async fn upgrade_status(addr: SocketAddr, path_query: &str, extra: &str) -> u16 {
    upgrade_raw(addr, path_query, extra).await.0
}

/// `n` upgrades, `concurrency` at a time, each expected to be refused with `status`.
async fn flood(
    addr: SocketAddr,
    n: usize,
    concurrency: usize,
    attempt: fn(usize) -> (String, String, u16),
) {
    let mut set = JoinSet::new();
    let mut refused = 0usize;
    for i in 0..n {
        if set.len() >= concurrency {
            let (got, want, which) = set.join_next().await.unwrap().unwrap();
            assert_eq!(got, want, "upgrade {which}");
            refused += 1;
        }
        set.spawn(async move {
            let (path, extra, want) = attempt(i);
            (
                upgrade_status(addr, &path, &extra).await,
                want,
                format!("{path} {extra}"),
            )
        });
    }
    while let Some(done) = set.join_next().await {
        let (got, want, which) = done.unwrap();
        assert_eq!(got, want, "upgrade {which}");
        refused += 1;
    }
    assert_eq!(refused, n);
}

/// Two users chat: the gateway works for honest clients.
async fn chat_works(gw: &LocalGateway, a: &mut Ws, b: &mut Ws) {
    join(a, "lobby").await;
    join(b, "lobby").await;
    recv_until(a, |f| f["action"] == "presence" && f["event"] == "join").await;
    send_json(
        a,
        &json!({"action": "sendMessage", "room": "lobby", "text": "still here"}),
    )
    .await;
    let (message, _) = recv_until(b, |f| f["action"] == "message").await;
    assert_eq!(message["text"], "still here");
    assert!(gw.open_connections() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_upgrades_without_identity_is_refused_and_leaks_nothing() {
    let gw = start().await;
    let addr = gw.local_addr();
    let records_before = store_records(&gw).await.len();
    let open_before = gw.open_connections();
    // Development authorizer: no `user` is 401 (no identity source), an invalid one 403.
    flood(addr, 2_000, 200, |i| match i % 4 {
        0 => ("/ws".to_owned(), String::new(), 401),
        1 => (
            "/ws?token=garbage.garbage.garbage".to_owned(),
            String::new(),
            401,
        ),
        2 => ("/ws?user=bad%20name%00".to_owned(), String::new(), 403),
        _ => (
            "/ws".to_owned(),
            "Sec-WebSocket-Protocol: a.b.c\r\nAuthorization: Bearer x\r\n".to_owned(),
            401,
        ),
    })
    .await;
    assert_eq!(gw.open_connections(), open_before);
    assert_eq!(store_records(&gw).await.len(), records_before);
    let mut alice = connect(&gw, "alice").await;
    let mut bob = connect(&gw, "bob").await;
    chat_works(&gw, &mut alice, &mut bob).await;
    shutdown(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_upgrades_with_garbage_tokens_is_refused_and_leaks_nothing() {
    // The JWT authorizer over the local issuer (no development authorizer).
    let state_dir =
        std::env::temp_dir().join(format!("switchboard-hostile-{}", std::process::id()));
    let config = LocalConfig {
        state_dir: state_dir.clone(),
        ..config()
    };
    let gw = step("start", chat_app::app().serve_local(config))
        .await
        .unwrap();
    let addr = gw.local_addr();
    // No token: 401. A token that does not verify, wherever it is: 403 (Deny).
    flood(addr, 2_000, 200, |i| match i % 5 {
        0 => ("/ws".to_owned(), String::new(), 401),
        1 => ("/ws?token=garbage".to_owned(), String::new(), 403),
        2 => (
            "/ws?token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned(),
            String::new(),
            403,
        ),
        3 => (
            "/ws".to_owned(),
            "Sec-WebSocket-Protocol: chat, eyJhbGciOiJSUzI1NiJ9.e30.c2ln\r\n".to_owned(),
            403,
        ),
        _ => (
            format!("/ws?token={}", "A".repeat(8_000)),
            String::new(),
            403,
        ),
    })
    .await;
    assert_eq!(gw.open_connections(), 0);
    assert!(store_records(&gw).await.is_empty());
    // A real token still works.
    let mut clients = Vec::new();
    for user in ["alice", "bob"] {
        let response = http(
            addr,
            "POST",
            "/local/token",
            json!({"username": user}).to_string().as_bytes(),
        )
        .await;
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let token = response.json()["idToken"].as_str().unwrap().to_owned();
        let (ws, _) = try_connect_url(&format!("{}?token={token}", gw.ws_url()), &[])
            .await
            .unwrap();
        clients.push(ws);
    }
    let (mut a, mut b) = (clients.remove(0), clients.remove(0));
    chat_works(&gw, &mut a, &mut b).await;
    shutdown(gw).await;
    let _ = std::fs::remove_dir_all(state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_half_sent_upgrades_do_not_block_others() {
    let gw = start().await;
    let addr = gw.local_addr();
    let mut stalled = Vec::new();
    for i in 0..50u8 {
        // Garbage instead of a request line.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let garbage: Vec<u8> = (0..200u16)
            .map(|j| (j as u8).wrapping_mul(31) ^ i)
            .collect();
        let _ = s.write_all(&garbage).await;
        stalled.push(s);
        // Half an upgrade, then nothing.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /ws?user=slow HTTP/1.1\r\nHost: x\r\nUpgrade: websock")
            .await
            .unwrap();
        stalled.push(s);
        // A connection that never says anything.
        stalled.push(TcpStream::connect(addr).await.unwrap());
    }
    // Honest clients are served while all of those hang.
    let mut alice = connect(&gw, "alice").await;
    let mut bob = connect(&gw, "bob").await;
    chat_works(&gw, &mut alice, &mut bob).await;
    // The garbage got an error (400) or was closed; it was never upgraded.
    for s in stalled.iter_mut().step_by(3) {
        let mut out = Vec::new();
        let _ = timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
        let head = String::from_utf8_lossy(&out);
        assert!(
            head.is_empty() || head.starts_with("HTTP/1.1 400"),
            "garbage answered {head:?}"
        );
    }
    assert_eq!(gw.open_connections(), 2);
    drop(stalled);
    still_answers(&mut alice).await;
    let ids = store_ids(&gw).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    shutdown(gw).await;
}

#[tokio::test]
async fn pings_and_unknown_opcodes_from_a_raw_client() {
    let gw = start().await;
    let mut bystander = connect(&gw, "bob").await;
    join(&mut bystander, "lobby").await;
    let mut raw = RawWs::connect(&gw, "odd").await;
    raw_join(&mut raw, "lobby", &mut bystander, "odd").await;
    let id = id_of(&gw, "odd").await;
    // A protocol ping is answered with a pong carrying the same payload.
    raw.send(&frame(true, PING, b"hello")).await;
    loop {
        let (opcode, payload) = raw.next_frame().await.unwrap();
        if opcode == 0xA {
            assert_eq!(payload, b"hello");
            break;
        }
    }
    // A reserved opcode is a protocol error: 1002.
    raw.send(&frame(true, 0x3, b"?")).await;
    let (code, reason) = raw.expect_close().await;
    assert_eq!(code, 1002, "{reason}");
    disconnect_ran(&gw, &mut bystander, "odd", &id).await;
    shutdown(gw).await;
}
