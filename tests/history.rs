//! The resume scenario shared by the embedded-store and DynamoDB tests: a reader
//! drops, the writer sends 50 lines, the reader reconnects and resumes.

use std::time::Duration;

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};
use switchboard::local::LocalGateway;
use switchboard::names::local_credentials;
use tokio_tungstenite::MaybeTlsStream;

use crate::*;

/// How the reader's connection ends.
#[derive(Clone, Copy, Debug)]
pub enum DropBy {
    /// The client closes it (close frame 1000).
    Close,
    /// The server closes it: a SigV4-signed `DELETE @connections/{id}`.
    ServerDelete,
    /// The TCP connection is reset (no close frame; `SO_LINGER` 0, so an RST).
    Tcp,
}

/// The real SDK's `@connections` client for the gateway (plain HTTP on loopback, the
/// local stand-in credentials the gateway checks signatures against).
pub fn management_client(gw: &LocalGateway) -> Client {
    let http_client = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(gw.management_url())
        .region(Region::new(local_credentials::REGION))
        .credentials_provider(Credentials::new(
            local_credentials::ACCESS_KEY_ID,
            local_credentials::SECRET_ACCESS_KEY,
            None,
            None,
            "test",
        ))
        .retry_config(RetryConfig::disabled())
        .http_client(http_client)
        .build();
    Client::from_conf(config)
}

/// The chat's `sendMessage` frame.
pub fn line(room: &str, text: &str) -> Value {
    json!({"action": "sendMessage", "room": room, "text": text})
}

/// Reads frames until one satisfies `pred`; returns the room frames (those with a
/// `seq`) read on the way, that one included.
pub async fn room_frames_until(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let (last, skipped) = recv_until(ws, |f| f.get("seq").is_some() && pred(f)).await;
    let mut frames: Vec<Value> = skipped
        .into_iter()
        .filter(|f| f.get("seq").is_some())
        .collect();
    frames.push(last);
    frames
}

/// Ends `ws` as `how` says.
pub async fn drop_connection(gw: &LocalGateway, mut ws: Ws, id: &str, how: DropBy) {
    match how {
        DropBy::Close => close(&mut ws).await,
        DropBy::ServerDelete => {
            step(
                "DELETE @connections",
                management_client(gw)
                    .delete_connection()
                    .connection_id(id)
                    .send(),
            )
            .await
            .expect("DELETE @connections");
            expect_close(&mut ws, 1000).await;
        }
        DropBy::Tcp => {
            if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                #[allow(deprecated)]
                tcp.set_linger(Some(Duration::ZERO)).expect("SO_LINGER 0");
            }
            drop(ws);
        }
    }
}

/// A reader in `room` drops (`how`), the writer sends 50 lines, the reader reconnects
/// with a new connection and resumes from the last `seq` it had: it gets all 50 in
/// order (and every room frame in between: gap-free seqs), a `resumed` answer with
/// `recovered: true`, then live lines with no gap.
///
/// `window` lines are in flight at once: all 50 on the embedded store, one at a time on
/// moto, where one loaded concurrent run lost a `seq` (suspected: the SDK retrying a
/// counter `UpdateItem ADD` that moto had applied before an error or time-out, which
/// skips a `seq`: the hole the README's "Room history and resume" documents).
pub async fn drop_and_resume(gw: &LocalGateway, how: DropBy, room: &str, window: usize) {
    let mut writer = connect(gw, "writer").await;
    join(&mut writer, room).await;
    let mut reader = connect(gw, "reader").await;
    join(&mut reader, room).await;
    send_json(&mut writer, &line(room, "before")).await;
    let seen = room_frames_until(&mut reader, |f| f["text"] == "before").await;
    let last_seen = seen.last().expect("a frame");
    let since = last_seen["seq"].as_u64().expect("seq");
    let epoch = last_seen["epoch"].as_str().expect("epoch").to_owned();

    let old_id = whoami_id(&mut reader).await;
    drop_connection(gw, reader, &old_id, how).await;
    wait_record_gone(gw, &old_id).await;

    // The gateway handles a connection's messages concurrently (as API Gateway
    // does), so the room's order (`seq`) is the order the sends were numbered in, not
    // necessarily the order they were written: compare with what the writer saw live.
    let missed: Vec<String> = (0..50).map(|i| format!("missed-{i}")).collect();
    let mut live_view = Vec::new();
    for batch in missed.chunks(window.max(1)) {
        for text in batch {
            send_json(&mut writer, &line(room, text)).await;
        }
        live_view.extend(room_frames_with(&mut writer, batch).await);
    }
    live_view.retain(|f| f["seq"].as_u64().is_some_and(|s| s > since));
    live_view.sort_by_key(|f| f["seq"].as_u64());
    let last = live_view
        .last()
        .and_then(|f| f["seq"].as_u64())
        .expect("seq");

    let mut reader = connect(gw, "reader").await;
    let new_id = whoami_id(&mut reader).await;
    assert_ne!(new_id, old_id, "a reconnect is a new connection");
    send_json(
        &mut reader,
        &json!({"action": "resume", "id": "resume-1",
                "rooms": [{"room": room, "since": since, "epoch": epoch}]}),
    )
    .await;
    let (resumed, replay) = recv_until(&mut reader, |f| f["action"] == "resumed").await;
    assert_eq!(resumed["id"], "resume-1", "{resumed}");
    let entry = &resumed["rooms"][0];
    assert_eq!(entry["room"], room);
    assert_eq!(entry["recovered"], true, "{resumed}");
    assert_eq!(entry["epoch"], epoch.as_str());
    assert_eq!(entry["seq"].as_u64(), Some(last), "{resumed}");
    let seqs: Vec<u64> = replay.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (since + 1..=last).collect::<Vec<_>>(),
        "every frame after {since}, in order: {replay:?}"
    );
    assert_eq!(replay, live_view, "replayed exactly as delivered live");
    let mut texts: Vec<String> = replay
        .iter()
        .filter(|f| f["action"] == "message")
        .filter_map(|f| f["text"].as_str().map(str::to_owned))
        .collect();
    texts.sort_by_key(|t| t.trim_start_matches("missed-").parse::<u32>().ok());
    assert_eq!(texts, missed, "all 50 lines");

    // Live lines continue, numbered on, with no gap.
    let live: Vec<String> = (0..5).map(|i| format!("live-{i}")).collect();
    for text in &live {
        send_json(&mut writer, &line(room, text)).await;
    }
    let mut got = room_frames_with(&mut reader, &live).await;
    got.sort_by_key(|f| f["seq"].as_u64());
    let live_seqs: Vec<u64> = got.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert_eq!(
        live_seqs,
        (last + 1..=last + 5).collect::<Vec<_>>(),
        "{got:?}"
    );
}

/// Reads frames until every one of `texts` has arrived; returns the room frames (those
/// with a `seq`) read on the way.
pub async fn room_frames_with(ws: &mut Ws, texts: &[String]) -> Vec<Value> {
    let mut waiting: std::collections::HashSet<&str> = texts.iter().map(String::as_str).collect();
    let mut frames = Vec::new();
    while !waiting.is_empty() {
        let frame = recv_json(ws).await;
        if let Some(text) = frame["text"].as_str() {
            waiting.remove(text);
        }
        if frame.get("seq").is_some() {
            frames.push(frame);
        }
    }
    frames
}
