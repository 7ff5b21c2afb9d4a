//! The service through Switchboard's in-process test gateway: no sockets, the same
//! authorizer, dispatch and bookkeeping as the local gateway and Lambda.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::json;

use {{crate_name}}::{MAX_NAME_CHARS, NAME, app};

#[tokio::test]
async fn hello_greets_by_name_or_as_the_caller() {
    let gw = app().test_gateway().unwrap();
    // A real token from the local issuer, as the web page gets one.
    let alice = gw.connect("alice").await.unwrap();

    alice
        .send_json(&json!({"action": "hello", "name": "Bob"}))
        .await
        .unwrap();
    assert_eq!(
        alice.recv_json().await.unwrap(),
        json!({"action": "hello", "message": "Hello, Bob!", "from": "alice"})
    );

    alice.send_json(&json!({"action": "hello"})).await.unwrap();
    assert_eq!(alice.recv_json().await.unwrap()["message"], "Hello, alice!");
    assert!(alice.try_recv().await.is_none(), "one reply per frame");
    alice.close().await;
    assert_eq!(gw.open_connections(), 0);
}

#[tokio::test]
async fn a_bad_name_is_an_error_frame_and_the_connection_stays() {
    let gw = app().test_gateway().unwrap();
    let alice = gw.connect("alice").await.unwrap();

    let long = "x".repeat(MAX_NAME_CHARS + 1);
    alice
        .send_json(&json!({"action": "hello", "name": long}))
        .await
        .unwrap();
    let err = alice.recv_json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_name");
    assert_eq!(err["error"]["route"], "hello");

    alice
        .send_json(&json!({"action": "hello", "name": 5}))
        .await
        .unwrap();
    assert_eq!(
        alice.recv_json().await.unwrap()["error"]["code"],
        "bad_payload"
    );

    // Switchboard's built-ins: `ping`, and an error frame for an unknown action.
    alice.send_json(&json!({"action": "ping"})).await.unwrap();
    assert_eq!(alice.recv_json().await.unwrap(), json!({"action": "pong"}));
    alice.send_json(&json!({"action": "nope"})).await.unwrap();
    assert_eq!(
        alice.recv_json().await.unwrap()["error"]["code"],
        "unknown_route"
    );
    assert!(alice.is_open());
}

#[test]
fn the_manifest_lists_hello() {
    let manifest = app().manifest().unwrap();
    assert_eq!(manifest.app, NAME);
    let keys: Vec<&str> = manifest.routes.iter().map(|r| r.key).collect();
    assert!(keys.contains(&"hello"), "{keys:?}");
    let hello = manifest.routes.iter().find(|r| r.key == "hello").unwrap();
    assert!(!hello.builtin);
}
