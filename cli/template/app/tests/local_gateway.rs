//! End to end over real sockets: the local gateway (what `cargo run` starts) on a free
//! port, signed in through its token issuer, as the web page does.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::local::LocalConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use {{crate_name}}::{NAME, app};

const WAIT: Duration = Duration::from_secs(10);

/// One HTTP/1.1 request on a fresh connection; the whole response as text.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    response
}

#[tokio::test]
async fn page_sign_in_and_hello_over_a_real_socket() {
    let state_dir =
        std::env::temp_dir().join(format!("{NAME}-gateway-test-{}", std::process::id()));
    let config = LocalConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        state_dir: state_dir.clone(),
        ..LocalConfig::default()
    };
    let gateway = app().serve_local(config).await.unwrap();
    let addr = gateway.local_addr();

    // The web page.
    let page = http(addr, "GET", "/", "").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(&format!("<title>{NAME}</title>")), "{page}");

    // Sign in through the local issuer, as the page does.
    let response = http(addr, "POST", "/local/token", r#"{"username":"alice"}"#).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let token: Value = serde_json::from_str(body).unwrap();
    let token = token["idToken"].as_str().unwrap();

    // Without a token the upgrade is refused (401), as API Gateway's authorizer does.
    assert!(
        tokio_tungstenite::connect_async(gateway.ws_url())
            .await
            .is_err()
    );

    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}?token={token}", gateway.ws_url()))
            .await
            .unwrap();
    ws.send(Message::text(r#"{"action":"hello","name":"Bob"}"#))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(
        reply,
        json!({"action": "hello", "message": "Hello, Bob!", "from": "alice"})
    );
    assert_eq!(gateway.open_connections(), 1);

    ws.close(None).await.unwrap();
    gateway.shutdown_within(WAIT).await;
    let _ = std::fs::remove_dir_all(state_dir);
}
