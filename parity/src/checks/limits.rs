//! Frame and message limits and binary frames (API Gateway: 32 KB frames, 128 KB
//! messages, close 1009; binary frames are not routed, close 1003). Moved from
//! `tests/tests/limits.rs`, which keeps the frame test because it also counts the
//! gateway's open connections.

use serde_json::json;
use switchboard_core::names::limits::{MAX_FRAME_BYTES, MAX_MESSAGE_BYTES};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use super::Probe;
use super::util::bystander_ok;
use crate::client::Client;
use crate::run::Verdict;
use crate::target::Target;

const KB: usize = 1024;

fn fragment(payload: Vec<u8>, first: bool, last: bool) -> Message {
    let opcode = if first {
        OpCode::Data(Data::Text)
    } else {
        OpCode::Data(Data::Continue)
    };
    Message::Frame(Frame::message(payload, opcode, last))
}

async fn pair(t: &Target) -> Result<(Client, Client), String> {
    let bystander = t.connect(&t.unique("bystander")).await?;
    let alice = t.connect(&t.unique("alice")).await?;
    Ok((bystander, alice))
}

pub(super) async fn frame_over_32k(t: &Target) -> Probe {
    let (mut bystander, mut alice) = pair(t).await?;
    alice.send_text(&"a".repeat(MAX_FRAME_BYTES - 16)).await?;
    let frame = alice.recv_json().await?;
    ensure!(
        frame["error"]["code"] == "unknown_route",
        "just under 32 KB: {frame}"
    );
    let _ = alice.send_text(&"a".repeat(MAX_FRAME_BYTES + KB)).await;
    alice.expect_close(1009).await?;
    bystander_ok(&mut bystander).await?;
    bystander.close().await;
    Ok(Verdict::Pass("under: routed; 33 KB: 1009".into()))
}

pub(super) async fn message_over_128k(t: &Target) -> Probe {
    let (mut bystander, mut alice) = pair(t).await?;
    let (chunk, fragments) = (26 * KB, 5);
    ensure!(
        chunk <= MAX_FRAME_BYTES && chunk * fragments > MAX_MESSAGE_BYTES,
        "bad test sizes"
    );
    for i in 0..fragments {
        let msg = fragment(vec![b'a'; chunk], i == 0, i == fragments - 1);
        if alice.send(msg).await.is_err() {
            // The target may close before the last fragments are written.
            break;
        }
    }
    alice.expect_close(1009).await?;
    bystander_ok(&mut bystander).await?;
    bystander.close().await;
    Ok(Verdict::Pass("130 KB in 5 fragments: 1009".into()))
}

pub(super) async fn message_100k_ok(t: &Target) -> Probe {
    let mut alice = t.connect(&t.unique("alice")).await?;
    let data = "a".repeat(100 * KB);
    let body = json!({"action": "echo", "data": data}).to_string();
    let pieces: Vec<&[u8]> = body.as_bytes().chunks(30 * KB).collect();
    let n = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        alice
            .send(fragment(piece.to_vec(), i == 0, i == n - 1))
            .await?;
    }
    let reply = alice.recv_json().await?;
    alice.close().await;
    ensure!(reply["action"] == "echo", "{}", reply["action"]);
    let len = reply["data"].as_str().map(str::len);
    ensure!(len == Some(100 * KB), "echoed {len:?} bytes");
    Ok(Verdict::Pass(format!("{n} fragments, 100 KB echoed")))
}

pub(super) async fn binary_frame(t: &Target) -> Probe {
    let (mut bystander, mut alice) = pair(t).await?;
    alice
        .send(Message::binary(br#"{"action":"ping"}"#.to_vec()))
        .await?;
    alice.expect_close(1003).await?;
    bystander_ok(&mut bystander).await?;
    bystander.close().await;
    Ok(Verdict::Pass("binary: 1003".into()))
}
