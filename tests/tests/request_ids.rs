//! Request ids over a real socket: many requests in flight on one connection, each
//! answered (response, reply or error frame) with its own `id`; invalid ids are
//! `bad_payload` error frames without one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use serde_json::{Value, json};
use switchboard_tests::*;

#[tokio::test]
async fn concurrent_requests_get_their_own_ids() {
    let gw = start().await;
    let mut ws = connect(&gw, "ids").await;
    join(&mut ws, "idroom").await;
    // 150 requests of three kinds, all sent before any answer is read.
    let mut expected: HashMap<String, &str> = HashMap::new();
    for i in 0..50 {
        let (p, w, e) = (format!("p{i}"), format!("w{i}"), format!("e{i}"));
        send_json(&mut ws, &json!({"action": "ping", "id": p})).await;
        send_json(&mut ws, &json!({"action": "whoami", "id": w})).await;
        // An error frame: a room the caller is not in.
        send_json(
            &mut ws,
            &json!({"action": "leave", "room": "elsewhere", "id": e}),
        )
        .await;
        expected.insert(p, "pong");
        expected.insert(w, "whoami");
        expected.insert(e, "not_in_room");
    }
    let answers = recv_n(&mut ws, expected.len()).await;
    let mut seen = HashMap::new();
    for a in &answers {
        let id = a["id"].as_str().unwrap_or_else(|| panic!("no id: {a}"));
        let kind = a["action"]
            .as_str()
            .or_else(|| a["error"]["code"].as_str())
            .unwrap_or_default();
        assert_eq!(expected.get(id).copied(), Some(kind), "{a}");
        assert!(
            seen.insert(id.to_owned(), ()).is_none(),
            "answered twice: {id}"
        );
    }
    assert_eq!(seen.len(), expected.len());
    shutdown(gw).await;
}

#[tokio::test]
async fn invalid_ids_are_bad_payload_without_an_id() {
    let gw = start().await;
    let mut ws = connect(&gw, "ids").await;
    let too_long = "x".repeat(65);
    for bad in [
        json!(5),
        json!(""),
        json!(null),
        json!(too_long),
        json!({"a": 1}),
    ] {
        send_json(&mut ws, &json!({"action": "ping", "id": bad})).await;
        let answer: Value = recv_json(&mut ws).await;
        assert_eq!(answer["error"]["code"], "bad_payload", "id {bad}: {answer}");
        assert_eq!(answer["error"]["route"], "ping");
        assert!(answer.get("id").is_none(), "{answer}");
    }
    // 64 characters (not bytes) is the limit.
    let longest = "é".repeat(64);
    let pong = request(&mut ws, json!({"action": "ping", "id": longest}), "pong").await;
    assert_eq!(pong["id"], longest.as_str());
    // Without an id, answers have none.
    let pong = request(&mut ws, json!({"action": "ping"}), "pong").await;
    assert_eq!(pong, json!({"action": "pong"}));
    // An unknown action's error frame carries the id too.
    send_json(&mut ws, &json!({"action": "nope", "id": "u1"})).await;
    let answer = recv_json(&mut ws).await;
    assert_eq!(
        (answer["id"].as_str(), answer["error"]["code"].as_str()),
        (Some("u1"), Some("unknown_route"))
    );
    shutdown(gw).await;
}
