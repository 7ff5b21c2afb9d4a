//! The chat app through the in-process `TestGateway` (no sockets): the same dispatch and
//! bookkeeping as the local gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::HeaderMap;
use serde_json::{Map, Value, json};
use switchboard::backend::{ConnectionRecord, Member};
use switchboard::testing::{TestConnection, TestError};

async fn frames(conn: &TestConnection, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(conn.recv_json().await.expect("frame"));
    }
    out
}

fn find<'a>(frames: &'a [Value], action: &str) -> &'a Value {
    frames
        .iter()
        .find(|f| f["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in {frames:?}"))
}

#[tokio::test]
async fn connect_join_and_send() {
    let gw = chat_app::app().test_gateway().expect("test gateway");
    let a = gw.connect("alice").await.expect("alice");
    let b = gw.connect("bob").await.expect("bob");
    assert_eq!(gw.open_connections(), 2);
    assert_eq!(a.identity().username(), "alice");

    a.send_json(&json!({"action": "join", "room": "r"}))
        .await
        .unwrap();
    let got = frames(&a, 2).await;
    assert_eq!(find(&got, "presence")["username"], "alice");
    assert_eq!(find(&got, "joined")["room"], "r");

    b.send_json(&json!({"action": "join", "room": "r"}))
        .await
        .unwrap();
    let got = frames(&b, 2).await;
    assert_eq!(find(&got, "joined")["members"].as_array().unwrap().len(), 2);
    let presence = a.recv_json().await.unwrap();
    assert_eq!(presence["event"], "join");
    assert_eq!(presence["connectionId"], b.id());

    a.send_json(&json!({"action": "sendMessage", "room": "r", "text": "hi"}))
        .await
        .unwrap();
    for conn in [&a, &b] {
        let msg = conn.recv_json().await.unwrap();
        assert_eq!(msg["action"], "message");
        assert_eq!(msg["from"], "alice");
        assert_eq!(msg["text"], "hi");
    }
    assert!(a.try_recv().await.is_none());

    a.send_json(&json!({"action": "ping"})).await.unwrap();
    assert_eq!(a.recv_json().await.unwrap(), json!({"action": "pong"}));

    // Closing runs `$disconnect`: the other member hears of it; the record goes.
    b.close().await;
    assert!(!b.is_open());
    let leave = a.recv_json().await.unwrap();
    assert_eq!(leave["event"], "leave");
    assert_eq!(leave["username"], "bob");
    assert!(gw.store().get_connection(b.id()).await.unwrap().is_none());
    assert!(gw.store().get_connection(a.id()).await.unwrap().is_some());
    a.close().await;
    assert_eq!(gw.open_connections(), 0);
}

#[tokio::test]
async fn a_send_to_a_gone_connection_removes_that_record_only() {
    let gw = chat_app::app().test_gateway().expect("test gateway");
    let a = gw.connect("alice").await.unwrap();
    a.send_json(&json!({"action": "join", "room": "r"}))
        .await
        .unwrap();
    frames(&a, 2).await;

    // A record whose connection is gone (as after a lost `$disconnect` on AWS).
    let ghost = "R0oXAdfD0kwCH6w=";
    let now = 1_700_000_000_000;
    let record = ConnectionRecord {
        connection_id: ghost.to_owned(),
        username: "ghost".to_owned(),
        session_key: ConnectionRecord::session_key_for(now, ghost),
        connected_at: now,
        expires: now / 1000 + 3600,
        source_ip: None,
        user_agent: None,
        claims: Map::new(),
    };
    let store = gw.store();
    store.put_connection(&record).await.unwrap();
    store
        .join_room(
            "r",
            &Member {
                connection_id: ghost.to_owned(),
                username: "ghost".to_owned(),
            },
        )
        .await
        .unwrap();
    assert_eq!(store.room_members("r").await.unwrap().len(), 2);

    a.send_json(&json!({"action": "sendMessage", "room": "r", "text": "hi"}))
        .await
        .unwrap();
    assert_eq!(a.recv_json().await.unwrap()["text"], "hi");

    assert!(store.get_connection(ghost).await.unwrap().is_none());
    assert!(store.rooms_of(ghost).await.unwrap().is_empty());
    assert!(store.get_connection(a.id()).await.unwrap().is_some());
    let members = store.room_members("r").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].connection_id, a.id());
    a.close().await;
}

#[tokio::test]
async fn refusals_and_subprotocols() {
    let gw = chat_app::app()
        .dev_auth()
        .test_gateway()
        .expect("test gateway");
    match gw.connect_with("", HeaderMap::new()).await {
        Err(TestError::Refused { status, .. }) => assert_eq!(status, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    match gw.connect("bad name").await {
        Err(TestError::Refused { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let mut headers = HeaderMap::new();
    headers.insert("sec-websocket-protocol", "chat.v1, other".parse().unwrap());
    let c = gw.connect_with("user=carol", headers).await.unwrap();
    assert_eq!(c.protocol(), Some("chat.v1"));
    assert!(gw.store().list_connections().await.unwrap().len() == 1);
    c.close().await;
    assert!(gw.store().list_connections().await.unwrap().is_empty());
}

#[tokio::test]
async fn backend_posts_reach_the_connection() {
    let gw = chat_app::app().test_gateway().expect("test gateway");
    let a = gw.connect("alice").await.unwrap();
    gw.connections()
        .post(a.id(), &switchboard::Frame::text("from the backend"))
        .await
        .unwrap();
    assert_eq!(a.recv().await.unwrap().as_text(), Some("from the backend"));
    a.close().await;
    let err = gw
        .connections()
        .post(a.id(), &switchboard::Frame::text("late"))
        .await
        .expect_err("gone");
    assert!(
        matches!(err, switchboard::backend::PostError::Gone(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn tokens_from_the_local_issuer() {
    let gw = chat_app::app().test_gateway().expect("test gateway");
    // Signed in with a real token: the identity comes from its claims.
    let a = gw.connect("erin").await.unwrap();
    assert_eq!(a.identity().username(), "erin");
    assert_eq!(
        a.identity().claim("authMethod"),
        Some(&serde_json::json!("jwt"))
    );
    // A token for another user, tampered with: refused before a connection exists.
    let token = gw.token("frank", &["admins"]).unwrap();
    let last = if token.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    match gw
        .connect_with(&format!("token={forged}"), HeaderMap::new())
        .await
    {
        Err(TestError::Refused { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let f = gw
        .connect_with(&format!("token={token}"), HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(
        f.identity().claim("groups"),
        Some(&serde_json::json!("admins"))
    );
    a.close().await;
    f.close().await;
}
