//! API Gateway's frame and message limits and its refusal of binary frames: the offending
//! connection is closed with the right status, and no other connection notices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::SinkExt;
use serde_json::json;
use switchboard_tests::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

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

#[tokio::test]
async fn message_over_128_kb_in_small_fragments_closes_with_1009() {
    let gw = start().await;
    let mut bystander = connect(&gw, "bystander").await;
    let mut alice = connect(&gw, "alice").await;

    // 5 fragments of 26 KB: each frame is under 32 KB, the message is 130 KB.
    let chunk = 26 * KB;
    let fragments = 5;
    assert!(chunk <= 32 * KB && chunk * fragments > 128 * KB);
    let mut sent = Ok(());
    for i in 0..fragments {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let frame = Frame::message(text_of(chunk), opcode, i == fragments - 1);
        sent = step("send a fragment", alice.send(Message::Frame(frame))).await;
        if sent.is_err() {
            // The gateway may close before the last fragments are written.
            break;
        }
    }
    let _ = sent;
    expect_close(&mut alice, 1009).await;

    bystander_unaffected(&mut bystander).await;
    close(&mut bystander).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn message_under_128_kb_in_fragments_is_delivered() {
    let gw = start().await;
    let mut alice = connect(&gw, "alice").await;

    // {"action":"echo","data":"aaaa..."} split across 4 frames of < 32 KB: 100 KB total.
    let data = text_of(100 * KB);
    let body = json!({"action": "echo", "data": data}).to_string();
    let pieces: Vec<&[u8]> = body.as_bytes().chunks(30 * KB).collect();
    let n = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let frame = Frame::message(piece.to_vec(), opcode, i == n - 1);
        step("send a fragment", alice.send(Message::Frame(frame)))
            .await
            .unwrap();
    }
    let reply = recv_json(&mut alice).await;
    assert_eq!(reply["action"], "echo");
    assert_eq!(reply["data"].as_str().unwrap().len(), 100 * KB);

    close(&mut alice).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn binary_frame_closes_with_1003() {
    let gw = start().await;
    let mut bystander = connect(&gw, "bystander").await;
    let mut alice = connect(&gw, "alice").await;

    step(
        "send binary",
        alice.send(Message::binary(br#"{"action":"ping"}"#.to_vec())),
    )
    .await
    .unwrap();
    expect_close(&mut alice, 1003).await;

    bystander_unaffected(&mut bystander).await;
    close(&mut bystander).await;
    shutdown(gw).await;
}
