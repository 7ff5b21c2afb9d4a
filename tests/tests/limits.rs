//! API Gateway's frame limit: the offending connection is closed with 1009, and no other
//! connection notices (counted by the gateway). The message limit over fragments, a
//! message under it in fragments and binary frames (1003) are parity checks
//! (`parity/src/checks/limits.rs`), run against the local gateway by `parity/tests/local.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::SinkExt;
use serde_json::json;
use switchboard_tests::*;
use tokio_tungstenite::tungstenite::Message;

const KB: usize = 1024;

/// A text payload of `len` bytes (not JSON).
fn text_of(len: usize) -> String {
    "a".repeat(len)
}

async fn bystander_unaffected(bystander: &mut Ws) {
    let pong = request(bystander, json!({"action": "ping"}), "pong").await;
    assert_eq!(pong, json!({"action": "pong"}));
}

#[tokio::test]
async fn frame_over_32_kb_closes_with_1009() {
    let gw = start().await;
    let mut bystander = connect(&gw, "bystander").await;
    let mut alice = connect(&gw, "alice").await;

    // Just under the limit is fine (it reaches `$default`: the payload is no JSON).
    send_text(&mut alice, &text_of(32 * KB - 16)).await;
    let frame = recv_json(&mut alice).await;
    assert_eq!(frame["error"]["code"], "unknown_route");

    // One frame of 33 KB.
    let _ = step("send", alice.send(Message::text(text_of(33 * KB)))).await;
    expect_close(&mut alice, 1009).await;

    bystander_unaffected(&mut bystander).await;
    assert_eq!(gw.open_connections(), 1);
    close(&mut bystander).await;
    shutdown(gw).await;
}
