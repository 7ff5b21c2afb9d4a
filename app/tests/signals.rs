//! The real `chat-app` binary stops gracefully on SIGTERM (what `kill`, `docker stop` and
//! systemd send) as on Ctrl-C (SIGINT): its clients get a 1001 close frame and the
//! process exits with status 0.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![cfg(unix)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use support::spawn_local_gateway;
use switchboard::names::env;
use tokio::process::{Child, Command};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

/// Starts the binary on a free port; returns it and its WebSocket URL (from the banner).
async fn spawn_gateway() -> (Child, String) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("signals");
    std::fs::create_dir_all(&dir).unwrap();
    let (child, ws_url, mut lines) = spawn_local_gateway(
        Command::new(env!("CARGO_BIN_EXE_chat-app"))
            .args(["--port", "0", "--dev-auth"])
            .current_dir(&dir)
            .env_remove(env::LAMBDA_RUNTIME_API)
            .stderr(Stdio::null()),
        WAIT,
    )
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, ws_url)
}

/// Connects, checks that the gateway answers, sends `signal` to the process, and asserts
/// the 1001 close and the exit status.
async fn stops_gracefully_on(signal: &str) {
    let (mut child, ws_url) = spawn_gateway().await;
    let (mut ws, _) = timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("{ws_url}?user=sig")),
    )
    .await
    .unwrap()
    .unwrap();
    ws.send(Message::text(r#"{"action":"ping"}"#))
        .await
        .unwrap();
    let pong = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    let pong: Value = serde_json::from_str(pong.to_text().unwrap()).unwrap();
    assert_eq!(pong["action"], "pong");

    let pid = child.id().unwrap().to_string();
    let sent = Instant::now();
    let kill = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(kill.success(), "kill -{signal} {pid}");

    // The client gets "Going away", then the end of the stream.
    let close = timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("wanted a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame after the signal")
    .expect("the close frame has a code");
    assert_eq!(u16::from(close.code), 1001, "{close:?}");
    assert_eq!(close.reason.as_str(), "Going away");
    let _ = timeout(WAIT, async { while ws.next().await.is_some() {} }).await;

    let status = timeout(WAIT, child.wait())
        .await
        .expect("the process exits after the signal")
        .unwrap();
    assert!(status.success(), "{signal}: {status}");
    // Graceful, not a grace period running out (5 s).
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(5), "{signal}: took {took:?}");
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_0() {
    stops_gracefully_on("TERM").await;
}

#[tokio::test]
async fn sigint_closes_clients_with_1001_and_exits_0() {
    stops_gracefully_on("INT").await;
}
