//! The WebSocket upgrade of the chat app: the development authorizer's statuses and what
//! plain HTTP gets on the WebSocket path. The subprotocol echo is a parity check
//! (`connect.subprotocol`, `parity/src/checks/auth.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use switchboard_tests::*;

#[tokio::test]
async fn missing_identity_is_401() {
    let gw = start().await;
    assert_eq!(refused_status(&gw.ws_url(), &[]).await, 401);
    let url = format!("{}?other=1", gw.ws_url());
    assert_eq!(refused_status(&url, &[]).await, 401);
    assert_eq!(gw.open_connections(), 0);
    assert!(store_ids(&gw).await.is_empty());
    shutdown(gw).await;
}

#[tokio::test]
async fn invalid_user_is_403() {
    let gw = start().await;
    for query in ["user=bad%20name", "user=", "user=a/b"] {
        let url = format!("{}?{query}", gw.ws_url());
        assert_eq!(refused_status(&url, &[]).await, 403, "{query}");
    }
    assert_eq!(gw.open_connections(), 0);
    assert!(store_ids(&gw).await.is_empty());
    shutdown(gw).await;
}

#[tokio::test]
async fn a_valid_upgrade_is_recorded() {
    let gw = start().await;
    let mut alice = connect(&gw, "alice").await;
    let id = whoami_id(&mut alice).await;
    let records = store_records(&gw).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["connectionId"], id.as_str());
    assert_eq!(records[0]["username"], "alice");
    assert_eq!(records[0]["sourceIp"], "127.0.0.1");
    assert_eq!(records[0]["userAgent"], USER_AGENT);
    close(&mut alice).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn the_ws_path_with_a_suffix_upgrades_too() {
    let gw = start().await;
    let url = format!("{}/anything?user=alice", gw.ws_url());
    let (mut ws, _) = try_connect_url(&url, &[])
        .await
        .expect("upgrade on /ws/...");
    let pong = request(&mut ws, json!({"action": "ping"}), "pong").await;
    assert_eq!(pong["action"], "pong");
    close(&mut ws).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn plain_http_on_the_ws_path_is_426() {
    let gw = start().await;
    let response = http(gw.local_addr(), "GET", "/ws?user=alice", b"").await;
    assert_eq!(response.status, 426);
    assert_eq!(response.header("sec-websocket-version"), Some("13"));
    shutdown(gw).await;
}
