//! The chat app's protocol over real sockets: whoami, rooms, ping, route selection
//! errors, payload errors, and the benchmark contract (echo, broadcast).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::*;

fn error_of(frame: &Value) -> &Value {
    frame
        .get("error")
        .unwrap_or_else(|| panic!("expected an error frame, got {frame}"))
}

async fn assert_alive(ws: &mut Ws) {
    let pong = request(ws, json!({"action": "ping"}), "pong").await;
    assert_eq!(pong, json!({"action": "pong"}));
}

#[tokio::test]
async fn whoami_reports_an_aws_shaped_connection_id() {
    let gw = start().await;
    let mut alice = connect(&gw, "alice").await;
    let reply = request(&mut alice, json!({"action": "whoami"}), "whoami").await;
    let id = reply["connectionId"].as_str().expect("connectionId");
    assert!(is_aws_connection_id(id), "not AWS-shaped: {id}");
    assert_eq!(reply["username"], "alice");
    assert_eq!(reply["rooms"], json!([]));
    close(&mut alice).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn ping_answers_pong() {
    let gw = start().await;
    let mut alice = connect(&gw, "alice").await;
    send_json(&mut alice, &json!({"action": "ping"})).await;
    assert_eq!(recv_json(&mut alice).await, json!({"action": "pong"}));
    close(&mut alice).await;
    shutdown(gw).await;
}

/// A room frame without its `seq` and `epoch`, and those two.
fn room_frame(mut frame: serde_json::Value) -> (serde_json::Value, u64, String) {
    let obj = frame.as_object_mut().unwrap();
    let seq = obj.remove("seq").and_then(|s| s.as_u64()).unwrap();
    let epoch = obj.remove("epoch").unwrap().as_str().unwrap().to_owned();
    (frame, seq, epoch)
}

#[tokio::test]
async fn chat_between_two_users_in_a_room() {
    let gw = start().await;
    let mut alice = connect(&gw, "alice").await;
    let mut bob = connect(&gw, "bob").await;
    let alice_id = whoami_id(&mut alice).await;
    let bob_id = whoami_id(&mut bob).await;

    // Alice joins: her own presence frame and the `joined` reply.
    let joined = join(&mut alice, "lobby").await;
    assert_eq!(joined["room"], "lobby");
    assert_eq!(
        joined["members"],
        json!([{"connectionId": alice_id, "username": "alice"}])
    );

    // Bob joins: Alice sees his presence; his reply lists both.
    let joined = join(&mut bob, "lobby").await;
    let members = joined["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{joined}");
    // The chat keeps history in every room: room frames carry `seq` (Alice's own
    // presence was 1) and the room's `epoch`.
    let (presence, seq, epoch) = room_frame(recv_json(&mut alice).await);
    assert_eq!(seq, 2);
    assert_eq!(
        presence,
        json!({"action": "presence", "room": "lobby", "event": "join", "username": "bob", "connectionId": bob_id})
    );

    // whoami now lists the room.
    let me = request(&mut bob, json!({"action": "whoami"}), "whoami").await;
    assert_eq!(me["rooms"], json!(["lobby"]));

    // A message reaches both, the sender included.
    send_json(
        &mut alice,
        &json!({"action": "sendMessage", "room": "lobby", "text": "hello"}),
    )
    .await;
    for ws in [&mut alice, &mut bob] {
        let msg = recv_json(ws).await;
        assert_eq!(msg["action"], "message", "{msg}");
        assert_eq!(msg["room"], "lobby");
        assert_eq!(msg["from"], "alice");
        assert_eq!(msg["connectionId"], alice_id.as_str());
        assert_eq!(msg["text"], "hello");
        assert_eq!(msg["seq"], 3);
        assert!(msg["sentAt"].as_i64().unwrap() > 0);
    }

    // members lists both.
    let reply = request(
        &mut alice,
        json!({"action": "members", "room": "lobby"}),
        "members",
    )
    .await;
    let mut names: Vec<&str> = reply["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"]);

    // Alice leaves: Bob gets a presence frame, Alice the `left` reply.
    send_json(&mut alice, &json!({"action": "leave", "room": "lobby"})).await;
    assert_eq!(
        recv_json(&mut alice).await,
        json!({"action": "left", "room": "lobby"})
    );
    let (presence, seq, same_epoch) = room_frame(recv_json(&mut bob).await);
    assert_eq!((seq, same_epoch), (4, epoch));
    assert_eq!(
        presence,
        json!({"action": "presence", "room": "lobby", "event": "leave", "username": "alice", "connectionId": alice_id})
    );

    // Sending to a room she is not in: an error frame, and the connection stays open.
    send_json(
        &mut alice,
        &json!({"action": "sendMessage", "room": "lobby", "text": "still there?"}),
    )
    .await;
    let frame = recv_json(&mut alice).await;
    let err = error_of(&frame);
    assert_eq!(err["code"], "not_in_room");
    assert_eq!(err["route"], "sendMessage");
    assert_alive(&mut alice).await;
    // Bob received nothing of it.
    expect_silence(&mut bob, Duration::from_millis(100)).await;

    close(&mut alice).await;
    close(&mut bob).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn unmatched_frames_get_an_unknown_route_error_and_stay_connected() {
    let gw = start().await;
    let mut alice = connect(&gw, "alice").await;

    send_json(&mut alice, &json!({"action": "dance"})).await;
    let frame = recv_json(&mut alice).await;
    let err = error_of(&frame);
    assert_eq!(err["code"], "unknown_route");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("dance"), "{message}");
    for known in ["join", "sendMessage", "whoami", "ping"] {
        assert!(message.contains(known), "{known} missing from {message}");
    }

    // Not JSON.
    send_text(&mut alice, "hello there").await;
    let frame = recv_json(&mut alice).await;
    assert_eq!(error_of(&frame)["code"], "unknown_route");
    assert!(
        error_of(&frame)["message"]
            .as_str()
            .unwrap()
            .contains("join")
    );

    // JSON without an action.
    send_json(&mut alice, &json!({"room": "lobby"})).await;
    let frame = recv_json(&mut alice).await;
    assert_eq!(error_of(&frame)["code"], "unknown_route");

    // An action that is not a string.
    send_json(&mut alice, &json!({"action": 42})).await;
    let frame = recv_json(&mut alice).await;
    assert_eq!(error_of(&frame)["code"], "unknown_route");

    assert_alive(&mut alice).await;
    close(&mut alice).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn bad_payload_gets_an_error_frame_and_stays_connected() {
    let gw = start().await;
    let mut alice = connect(&gw, "alice").await;

    for body in [
        json!({"action": "join"}),
        json!({"action": "join", "room": 5}),
    ] {
        send_json(&mut alice, &body).await;
        let frame = recv_json(&mut alice).await;
        let keys: Vec<&String> = frame.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error"], "{frame}");
        let err = error_of(&frame);
        let mut inner: Vec<&String> = err.as_object().unwrap().keys().collect();
        inner.sort_unstable();
        assert_eq!(inner, ["code", "message", "route"], "{frame}");
        assert_eq!(err["code"], "bad_payload", "{frame}");
        assert_eq!(err["route"], "join", "{frame}");
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{frame}"
        );
    }

    // An app-level validation error is an error frame too.
    send_json(&mut alice, &json!({"action": "join", "room": "no spaces"})).await;
    let frame = recv_json(&mut alice).await;
    assert_eq!(error_of(&frame)["code"], "invalid_room");

    assert_alive(&mut alice).await;
    let me = request(&mut alice, json!({"action": "whoami"}), "whoami").await;
    assert_eq!(me["rooms"], json!([]));
    close(&mut alice).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn broadcast_reaches_everyone_and_echo_answers_the_sender() {
    let gw = start().await;
    let mut a = connect(&gw, "a").await;
    let mut b = connect(&gw, "b").await;
    let mut c = connect(&gw, "c").await;

    send_json(&mut a, &json!({"action": "broadcast", "data": "x"})).await;
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(
            recv_text(ws).await,
            r#"{"action":"broadcast","data":"x"}"#,
            "broadcast frame, byte for byte"
        );
    }

    send_json(&mut b, &json!({"action": "echo", "data": "abc"})).await;
    assert_eq!(recv_text(&mut b).await, r#"{"action":"echo","data":"abc"}"#);
    // `data` is kept verbatim, whatever JSON it is.
    send_text(&mut b, r#"{"action":"echo","data":{"n":1.50,"s":[true]}}"#).await;
    assert_eq!(
        recv_text(&mut b).await,
        r#"{"action":"echo","data":{"n":1.50,"s":[true]}}"#
    );
    // Echo goes to the sender only.
    expect_silence(&mut a, Duration::from_millis(100)).await;
    expect_silence(&mut c, Duration::from_millis(100)).await;

    for ws in [&mut a, &mut b, &mut c] {
        close(ws).await;
    }
    shutdown(gw).await;
}
