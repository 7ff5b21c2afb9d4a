//! The real `chat-app` binary's exposure flags: `--dev-auth` or `--no-sigv4` on an address
//! other than loopback stop it at start with the reason; `--force-dev-auth` lets dev auth
//! through with a warning; `--expose-local-endpoints` prints a one-time admin secret; the
//! banner says what is open to whom and which key signs `@connections` (never its secret).
//! `--fanout-threshold` shards sends through the embedded fan-out queue (1,000 by default,
//! 0: inline), and the banner says which. Binding `0.0.0.0` here listens on every interface, but only this test talks to it, and
//! it does not (it reads the banner and stops the process).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![cfg(unix)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

fn chat_app(args: &[&str]) -> Command {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("exposure-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-app"));
    command
        .args(args)
        .current_dir(&dir)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("AWS_ACCESS_KEY_ID", "AKIDCLITEST")
        .env("AWS_SECRET_ACCESS_KEY", "cli-test-secret-key")
        .env("AWS_REGION", "eu-west-1")
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn dev_auth_or_no_sigv4_off_loopback_refuse_to_start() {
    for (args, wanted) in [
        (
            &["--addr", "0.0.0.0", "--port", "0", "--dev-auth"][..],
            &[
                "--dev-auth is refused when binding 0.0.0.0",
                "--force-dev-auth",
            ][..],
        ),
        (
            &["--addr", "::", "--port", "0", "--no-sigv4"][..],
            &["--no-sigv4 is refused when binding ::"][..],
        ),
    ] {
        let out = timeout(WAIT, chat_app(args).output())
            .await
            .unwrap()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for w in wanted {
            assert!(stderr.contains(w), "{args:?}: {stderr}");
        }
    }
}

#[tokio::test]
async fn forced_and_exposed_the_banner_says_so() {
    let mut child = chat_app(&[
        "--addr",
        "0.0.0.0",
        "--port",
        "0",
        "--dev-auth",
        "--force-dev-auth",
        "--expose-local-endpoints",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let banner = read_banner(&mut child).await;
    child.kill().await.unwrap();
    assert!(banner.contains("warning: --force-dev-auth"), "{banner}");
    assert!(banner.contains("every interface"), "{banner}");
    assert!(
        banner.contains("loopback clients, and others with the admin secret"),
        "{banner}"
    );
    let secret = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin secret "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no admin secret line: {banner}"));
    assert_eq!(secret.len(), 43, "{secret}");
    // @connections: the environment's key and region, never the secret key.
    assert!(
        banner.contains("region eu-west-1, access key id AKIDCLITEST"),
        "{banner}"
    );
    assert!(!banner.contains("cli-test-secret-key"), "{banner}");
}

/// The banner, from its first line to "Ctrl-C ..." (stdout must be piped).
async fn read_banner(child: &mut tokio::process::Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = timeout(WAIT, async {
        let mut banner = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            let last = line.starts_with("Ctrl-C");
            banner.push(line);
            if last {
                return banner.join("\n");
            }
        }
        panic!("exited before its banner ended: {banner:?}");
    })
    .await
    .unwrap();
    // Keep reading, so the gateway's later writes to stdout do not fail.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    banner
}

/// A loopback gateway of the binary with `extra` flags, and its banner.
async fn loopback(extra: &[&str]) -> (tokio::process::Child, String) {
    let mut args = vec!["--port", "0", "--dev-auth"];
    args.extend_from_slice(extra);
    let mut child = chat_app(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let banner = read_banner(&mut child).await;
    (child, banner)
}

/// `GET path` on `addr`, as JSON.
async fn get_json(addr: &str, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = timeout(WAIT, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn fanout_threshold_flag_shards_through_the_embedded_queue() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let (mut child, banner) = loopback(&[]).await;
    child.kill().await.unwrap();
    assert!(
        banner.contains("sends to more than 1000 recipients are sharded"),
        "{banner}"
    );
    let (mut child, banner) = loopback(&["--fanout-threshold", "0"]).await;
    child.kill().await.unwrap();
    assert!(banner.contains("every send inline"), "{banner}");

    let (mut child, banner) = loopback(&["--fanout-threshold", "2"]).await;
    assert!(
        banner.contains("sends to more than 2 recipients are sharded"),
        "{banner}"
    );
    let ws_url = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("WebSocket"))
        .map(|u| u.trim().trim_end_matches("?user=NAME").to_owned())
        .unwrap_or_else(|| panic!("no WebSocket line: {banner}"));
    let addr = ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let mut sockets = Vec::new();
    for user in ["a", "b", "c"] {
        let (ws, _) = timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("{ws_url}?user={user}")),
        )
        .await
        .unwrap()
        .unwrap();
        sockets.push(ws);
    }
    let frame = r#"{"action":"broadcast","data":"big"}"#;
    sockets[0].send(Message::text(frame)).await.unwrap();
    for ws in &mut sockets {
        let got = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(got.to_text().unwrap(), frame);
    }
    // The consumers add their tally after the batch: poll briefly (bounded).
    let mut queues = get_json(&addr, "/local/queues").await;
    for _ in 0..100 {
        if queues["fanout"]["delivered"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        queues = get_json(&addr, "/local/queues").await;
    }
    assert_eq!(
        queues["fanout"]["delivered"], 3,
        "through the fan-out queue: {queues}"
    );
    child.kill().await.unwrap();
}
