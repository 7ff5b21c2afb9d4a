//! The local console's live stream over real sockets: a console that stops reading
//! keeps its queue at its bound (drops counted) and does not hold the service up; the
//! stream reports frames with route, latency and outcome, with tokens redacted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Opens `/local/stream` on a socket with a tiny receive buffer and returns it unread.
async fn stalled_console(gw: &switchboard::local::LocalGateway) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(gw.local_addr()).await.unwrap();
    let head = format!(
        "GET /local/stream HTTP/1.1\r\nHost: {}\r\n\r\n",
        gw.local_addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

async fn overview(gw: &switchboard::local::LocalGateway) -> Value {
    http(gw.local_addr(), "GET", "/local/api/overview", b"")
        .await
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_that_stops_reading_stays_bounded_and_does_not_slow_echo() {
    let gw = start().await;
    let _console = stalled_console(&gw).await;
    let deadline = tokio::time::Instant::now() + STEP;
    while overview(&gw).await["consoles"] != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the console never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut ws = connect(&gw, "alice").await;
    let data = "x".repeat(1024);
    const FRAMES: usize = 4000;
    const WINDOW: usize = 64;
    let mut sent = 0;
    let mut echoed = 0;
    while echoed < FRAMES {
        while sent < FRAMES && sent - echoed < WINDOW {
            send_json(&mut ws, &json!({"action": "echo", "data": data})).await;
            sent += 1;
        }
        let reply = recv_json(&mut ws).await;
        assert_eq!(reply["action"], "echo", "{reply}");
        echoed += 1;
    }

    let view = overview(&gw).await;
    let buffer = view["consoleBuffer"].as_u64().unwrap();
    let queues = &view["consoleQueues"];
    assert_eq!(queues.as_array().map(Vec::len), Some(1), "{queues}");
    assert_eq!(
        queues[0]["queued"].as_u64(),
        Some(buffer),
        "at its bound: {queues}"
    );
    // Two events per echo (the frame and its reply, 1 KB each): what neither the queue
    // nor the socket's buffers took was dropped, and counted.
    let dropped = queues[0]["dropped"].as_u64().unwrap();
    assert!(dropped >= FRAMES as u64 / 4, "drops counted: {queues}");
    assert_eq!(view["dropped"].as_u64(), Some(dropped), "{queues}");
    close(&mut ws).await;
    shutdown(gw).await;
}

/// Reads SSE `data:` events from `stream` until `pred` matches one (within [`STEP`]).
async fn read_until(
    stream: &mut TcpStream,
    buf: &mut String,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            for line in event.lines() {
                if let Some(v) = line
                    .strip_prefix("data: ")
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    && pred(&v)
                {
                    return v;
                }
            }
        }
        let mut chunk = [0u8; 8192];
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .expect("no matching event in time")
            .unwrap();
        assert!(n > 0, "the stream ended");
        buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
}

#[tokio::test]
async fn the_stream_shows_frames_with_route_latency_and_outcome_and_never_tokens() {
    let gw = start().await;
    let mut console = TcpStream::connect(gw.local_addr()).await.unwrap();
    let head = format!(
        "GET /local/stream HTTP/1.1\r\nHost: {}\r\n\r\n",
        gw.local_addr()
    );
    console.write_all(head.as_bytes()).await.unwrap();
    let mut buf = String::new();
    read_until(&mut console, &mut buf, |v| v["type"] == "hello").await;

    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
    let url = format!("{}?user=alice&token={token}", gw.ws_url());
    let (mut ws, _) = try_connect_url(&url, &[]).await.expect("connects");
    let connect = read_until(&mut console, &mut buf, |v| v["type"] == "connect").await;
    assert_eq!(connect["user"], "alice");
    assert_eq!(connect["query"], "user=alice&token=«token»");

    send_json(&mut ws, &json!({"action": "echo", "data": token})).await;
    recv_json(&mut ws).await;
    let frame = read_until(&mut console, &mut buf, |v| v["dir"] == "in").await;
    assert_eq!(frame["route"], "echo", "{frame}");
    assert_eq!(frame["outcome"], "reply", "{frame}");
    assert!(frame["latencyUs"].as_u64().is_some(), "{frame}");
    let reply = read_until(&mut console, &mut buf, |v| v["dir"] == "out").await;
    assert_eq!(reply["outcome"], "reply", "{reply}");

    send_json(&mut ws, &json!({"action": "join", "room": "bad room!"})).await;
    recv_json(&mut ws).await;
    let failed = read_until(&mut console, &mut buf, |v| v["route"] == "join").await;
    assert_eq!(
        (failed["outcome"].as_str(), failed["code"].as_str()),
        (Some("error"), Some("invalid_room"))
    );

    close(&mut ws).await;
    let closed = read_until(&mut console, &mut buf, |v| v["type"] == "close").await;
    assert_eq!(closed["code"], 1000, "{closed}");
    for event in [&connect, &frame, &reply] {
        assert!(
            !event.to_string().contains(token),
            "a token reached the console: {event}"
        );
    }
    shutdown(gw).await;
}

/// A console send to a room with history is stamped and kept like `ctx.room(r).send(..)`
/// (so clients resume over it), a non-object is refused, and the rooms list shows the
/// room's position.
#[tokio::test]
async fn console_room_sends_join_the_rooms_history() {
    let gw = start().await;
    let mut ws = connect(&gw, "alice").await;
    join(&mut ws, "lobby").await;

    let path = "/local/api/rooms/lobby/send";
    // Console actions carry the console's header (no cross-site form can).
    let action = [("x-switchboard-console", "1")];
    let body = br#"{"action":"notice","text":"from the console"}"#;
    let sent = http_with(gw.local_addr(), "POST", path, &action, body).await;
    assert_eq!(sent.status, 200, "{:?}", sent.json());
    assert_eq!(sent.json()["sent"], 1);
    let (notice, _) = recv_until(&mut ws, |v| v["action"] == "notice").await;
    let seq = notice["seq"].as_u64().expect("stamped with seq");
    let epoch = notice["epoch"]
        .as_str()
        .expect("stamped with an epoch")
        .to_owned();
    assert_eq!(notice["text"], "from the console");

    let refused = http_with(gw.local_addr(), "POST", path, &action, b"[1, 2]").await;
    let why = refused.json();
    assert_eq!(refused.status, 400, "{why}");
    assert!(
        why["message"]
            .as_str()
            .is_some_and(|m| m.contains("only JSON objects")),
        "{why}"
    );

    let rooms = http(gw.local_addr(), "GET", "/local/api/rooms", b"")
        .await
        .json();
    let lobby = rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == "lobby")
        .unwrap_or_else(|| panic!("no lobby in {rooms}"));
    assert_eq!(lobby["history"], json!({ "seq": seq, "epoch": epoch }));

    // Resuming from before the console's frame replays it, exactly as delivered.
    let mut again = connect(&gw, "alice").await;
    let resume =
        json!({"action": "resume", "rooms": [{"room": "lobby", "since": seq - 1, "epoch": epoch}]});
    send_json(&mut again, &resume).await;
    let (resumed, replayed) = recv_until(&mut again, |v| v["action"] == "resumed").await;
    assert_eq!(replayed, [notice], "{resumed}");
    assert_eq!(resumed["rooms"][0]["recovered"], true, "{resumed}");
    shutdown(gw).await;
}
