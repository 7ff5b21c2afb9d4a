//! Route selection, route responses, error frames, request ids.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::Probe;
use super::util::{bystander_ok, quiet};
use crate::run::Verdict;
use crate::target::Target;

pub(super) async fn selection(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("route")).await?;
    c.send_json(&json!({"action": "ping"})).await?;
    let pong = c.recv_json().await?;
    ensure!(pong == json!({"action": "pong"}), "ping answered {pong}");
    let data = json!({"n": 1, "list": [1, "two", null], "nested": {"ok": true}});
    c.send_json(&json!({"action": "echo", "data": data}))
        .await?;
    let echo = c.recv_json().await?;
    c.close().await;
    ensure!(
        echo == json!({"action": "echo", "data": data}),
        "echo answered {echo}"
    );
    Ok(Verdict::Pass("ping → pong, echo → its data".into()))
}

pub(super) async fn unknown(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("route")).await?;
    c.send_json(&json!({"action": "noSuchRoute"})).await?;
    let frame = c.recv_json().await?;
    ensure!(frame["error"]["code"] == "unknown_route", "got {frame}");
    bystander_ok(&mut c).await?;
    c.close().await;
    Ok(Verdict::Pass("unknown_route; still open".into()))
}

pub(super) async fn not_json(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("route")).await?;
    for text in ["hello", r#"{"x":1}"#, "[1,2]", r#"{"action":5}"#] {
        c.send_text(text).await?;
        let frame = c.recv_json().await?;
        ensure!(
            frame["error"]["code"] == "unknown_route",
            "{text} answered {frame}"
        );
    }
    bystander_ok(&mut c).await?;
    c.close().await;
    Ok(Verdict::Pass("4 frames reached $default".into()))
}

pub(super) async fn error_frames(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("route")).await?;
    let bad = c.request(json!({"action": "join"}), "joined").await?;
    ensure!(
        bad["error"]["code"] == "bad_payload",
        "join without a room: {bad}"
    );
    ensure!(bad["error"]["route"] == "join", "{bad}");
    ensure!(
        bad["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{bad}"
    );
    let room = t.unique("nowhere");
    let app = c
        .request(json!({"action": "leave", "room": room}), "left")
        .await?;
    ensure!(
        app["error"]["code"] == "not_in_room",
        "leave of a room not joined: {app}"
    );
    ensure!(app["error"]["route"] == "leave", "{app}");
    bystander_ok(&mut c).await?;
    c.close().await;
    Ok(Verdict::Pass(
        "bad_payload and not_in_room with their route; still open".into(),
    ))
}

pub(super) async fn empty_response(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("quiet")).await?;
    let room = t.unique("alone");
    c.join(&room).await?;
    c.send_json(&json!({"action": "sendMessage", "room": room, "text": "hi"}))
        .await?;
    let (line, skipped) = c.recv_until(|f| f["action"] == "message").await?;
    ensure!(line["text"] == "hi", "{line}");
    let after = c.next_within(quiet(t)).await;
    c.close().await;
    let value = match (&after, skipped.is_empty()) {
        (None, true) => super::local::EMPTY_ROUTE_RESPONSE.to_owned(),
        (None, false) => format!("frame: {}", skipped[0]),
        (Some(event), _) => format!("frame: {event:?}"),
    };
    Ok(Verdict::observed(
        value,
        "sendMessage returns (); watched for one more frame",
    ))
}

/// Moved from `tests/tests/request_ids.rs` (`concurrent_requests_get_their_own_ids`).
pub(super) async fn concurrent_ids(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("ids")).await?;
    c.join(&t.unique("idroom")).await?;
    let elsewhere = t.unique("elsewhere");
    let mut expected: HashMap<String, &str> = HashMap::new();
    for i in 0..50 {
        let (p, w, e) = (format!("p{i}"), format!("w{i}"), format!("e{i}"));
        c.send_json(&json!({"action": "ping", "id": p})).await?;
        c.send_json(&json!({"action": "whoami", "id": w})).await?;
        c.send_json(&json!({"action": "leave", "room": elsewhere, "id": e}))
            .await?;
        expected.insert(p, "pong");
        expected.insert(w, "whoami");
        expected.insert(e, "not_in_room");
    }
    let mut seen: HashMap<String, ()> = HashMap::new();
    for _ in 0..expected.len() {
        let a: Value = c.recv_json().await?;
        let id = a["id"].as_str().ok_or_else(|| format!("no id: {a}"))?;
        let kind = a["action"]
            .as_str()
            .or_else(|| a["error"]["code"].as_str())
            .unwrap_or_default();
        ensure!(expected.get(id).copied() == Some(kind), "{id} answered {a}");
        ensure!(
            seen.insert(id.to_owned(), ()).is_none(),
            "answered twice: {id}"
        );
    }
    c.close().await;
    ensure!(
        seen.len() == expected.len(),
        "{} of {} answered",
        seen.len(),
        expected.len()
    );
    Ok(Verdict::Pass("150 answers, each with its own id".into()))
}

/// Moved from `tests/tests/request_ids.rs` (`invalid_ids_are_bad_payload_without_an_id`).
pub(super) async fn invalid_ids(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("ids")).await?;
    let too_long = "x".repeat(65);
    for bad in [
        json!(5),
        json!(""),
        json!(null),
        json!(too_long),
        json!({"a": 1}),
    ] {
        c.send_json(&json!({"action": "ping", "id": bad})).await?;
        let answer = c.recv_json().await?;
        ensure!(
            answer["error"]["code"] == "bad_payload",
            "id {bad}: {answer}"
        );
        ensure!(answer["error"]["route"] == "ping", "id {bad}: {answer}");
        ensure!(answer.get("id").is_none(), "id {bad}: {answer}");
    }
    let longest = "é".repeat(64);
    let pong = c
        .request(json!({"action": "ping", "id": longest}), "pong")
        .await?;
    ensure!(pong["id"] == longest.as_str(), "{pong}");
    let pong = c.request(json!({"action": "ping"}), "pong").await?;
    ensure!(pong == json!({"action": "pong"}), "{pong}");
    c.send_json(&json!({"action": "nope", "id": "u1"})).await?;
    let answer = c.recv_json().await?;
    c.close().await;
    ensure!(
        (answer["id"].as_str(), answer["error"]["code"].as_str())
            == (Some("u1"), Some("unknown_route")),
        "{answer}"
    );
    Ok(Verdict::Pass(
        "5 invalid ids refused; 64 characters kept".into(),
    ))
}
