//! The `@connections` management API, driven by the real `aws-sdk-apigatewaymanagement`
//! client (plain HTTP to 127.0.0.1, the local stand-in credentials the gateway checks
//! SigV4 signatures against, never AWS), and by hand, unsigned with SigV4 off, for what
//! the SDK cannot express (the stage-less path, a wrong stage).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use serde_json::json;
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard::names::local_credentials;
use switchboard_tests::*;

/// An SDK client for the gateway's `@connections` endpoint.
fn sdk(gw: &LocalGateway) -> Client {
    // No TLS: the endpoint is plain HTTP on loopback.
    let http_client = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(gw.management_url())
        .region(Region::new(local_credentials::REGION))
        .credentials_provider(Credentials::new(
            local_credentials::ACCESS_KEY_ID,
            local_credentials::SECRET_ACCESS_KEY,
            None,
            None,
            "test",
        ))
        .retry_config(RetryConfig::disabled())
        .http_client(http_client)
        .build();
    Client::from_conf(config)
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn post_get_delete_through_the_sdk() {
    let gw = start().await;
    let client = sdk(&gw);
    let before = now_ms();
    let mut alice = connect(&gw, "alice").await;
    let id = whoami_id(&mut alice).await;
    // Real ids end in `=`: the SDK must URL-encode them in the path.
    assert!(is_aws_connection_id(&id) && id.contains('='), "{id}");

    // POST: the body reaches the socket as a text frame, verbatim.
    step(
        "post",
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new("hello from the backend"))
            .send(),
    )
    .await
    .expect("post");
    assert_eq!(recv_text(&mut alice).await, "hello from the backend");
    step(
        "post json",
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(r#"{"action":"notice","n":1}"#))
            .send(),
    )
    .await
    .expect("post json");
    assert_eq!(
        recv_json(&mut alice).await,
        json!({"action": "notice", "n": 1})
    );

    // GET: connectedAt, lastActiveAt, identity.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pinged_at = now_ms();
    let pong = request(&mut alice, json!({"action": "ping"}), "pong").await;
    assert_eq!(pong["action"], "pong");
    let info = step("get", client.get_connection().connection_id(&id).send())
        .await
        .expect("get");
    let connected_at = info
        .connected_at()
        .expect("connectedAt")
        .to_millis()
        .unwrap();
    let last_active_at = info
        .last_active_at()
        .expect("lastActiveAt")
        .to_millis()
        .unwrap();
    assert!(
        (before..=now_ms()).contains(&connected_at),
        "connectedAt {connected_at} not in [{before}, now]"
    );
    assert!(
        last_active_at >= pinged_at - 1 && last_active_at > connected_at,
        "lastActiveAt {last_active_at}, connectedAt {connected_at}, ping at {pinged_at}"
    );
    let identity = info.identity().expect("identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some(USER_AGENT));

    // POST of 128 KB exactly is delivered; 129 KB is 413 and the socket stays open.
    let limit = 128 * 1024;
    step(
        "post 128 KB",
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(vec![b'a'; limit]))
            .send(),
    )
    .await
    .expect("post 128 KB");
    assert_eq!(recv_text(&mut alice).await.len(), limit);
    let err = step(
        "post 129 KB",
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(vec![b'a'; 129 * 1024]))
            .send(),
    )
    .await
    .expect_err("129 KB must be refused");
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(413),
        "{err:?}"
    );
    assert!(
        err.into_service_error().is_payload_too_large_exception(),
        "PayloadTooLargeException"
    );
    let pong = request(&mut alice, json!({"action": "ping"}), "pong").await;
    assert_eq!(pong["action"], "pong");

    // DELETE closes the socket with 1000.
    step(
        "delete",
        client.delete_connection().connection_id(&id).send(),
    )
    .await
    .expect("delete");
    let reason = expect_close(&mut alice, 1000).await;
    assert!(!reason.is_empty());
    wait_record_gone(&gw, &id).await;

    // Afterwards: 410 GoneException for POST, GET and DELETE.
    let err = step(
        "post after close",
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new("anyone?"))
            .send(),
    )
    .await
    .expect_err("gone");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(410));
    assert!(err.into_service_error().is_gone_exception());
    let err = step(
        "get after close",
        client.get_connection().connection_id(&id).send(),
    )
    .await
    .expect_err("gone");
    assert!(err.into_service_error().is_gone_exception());
    let err = step(
        "delete after close",
        client.delete_connection().connection_id(&id).send(),
    )
    .await
    .expect_err("gone");
    assert!(err.into_service_error().is_gone_exception());

    shutdown(gw).await;
}

#[tokio::test]
async fn unknown_connection_is_gone() {
    let gw = start().await;
    let client = sdk(&gw);
    let err = step(
        "post to an unknown id",
        client
            .post_to_connection()
            .connection_id("R0oXAdfD0kwCH6w=")
            .data(Blob::new("x"))
            .send(),
    )
    .await
    .expect_err("gone");
    assert!(err.into_service_error().is_gone_exception());
    shutdown(gw).await;
}

#[tokio::test]
async fn delete_runs_disconnect() {
    let gw = start().await;
    let client = sdk(&gw);
    let mut bob = connect(&gw, "bob").await;
    let mut alice = connect(&gw, "alice").await;
    join(&mut bob, "r").await;
    let alice_id = whoami_id(&mut alice).await;
    join(&mut alice, "r").await;
    assert_eq!(recv_json(&mut bob).await["event"], "join");

    step(
        "delete",
        client.delete_connection().connection_id(&alice_id).send(),
    )
    .await
    .expect("delete");
    expect_close(&mut alice, 1000).await;
    let mut leave = recv_json(&mut bob).await;
    // The chat keeps room history: room frames carry a seq and the room's epoch.
    let obj = leave.as_object_mut().unwrap();
    assert!(obj.remove("seq").is_some_and(|s| s.as_u64().is_some()));
    assert!(obj.remove("epoch").is_some_and(|e| e.as_str().is_some()));
    assert_eq!(
        leave,
        json!({"action": "presence", "room": "r", "event": "leave", "username": "alice", "connectionId": alice_id})
    );
    wait_record_gone(&gw, &alice_id).await;
    close(&mut bob).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn plain_http_paths() {
    // Unsigned requests by hand: SigV4 off, as `--no-sigv4` allows on loopback (signed and
    // refused requests: local/tests/sigv4.rs).
    let gw = start_with(LocalConfig {
        sigv4: None,
        ..config()
    })
    .await;
    let addr = gw.local_addr();
    let mut alice = connect(&gw, "alice").await;
    let id = whoami_id(&mut alice).await;
    let encoded = encode_segment(&id);
    assert!(encoded.ends_with("%3D"), "{encoded}");

    // With the stage, percent-encoded id.
    let r = http(addr, "POST", &format!("/ws/@connections/{encoded}"), b"one").await;
    assert_eq!(r.status, 200);
    assert_eq!(recv_text(&mut alice).await, "one");

    // Without the stage.
    let r = http(addr, "POST", &format!("/@connections/{encoded}"), b"two").await;
    assert_eq!(r.status, 200);
    assert_eq!(recv_text(&mut alice).await, "two");
    let r = http(addr, "GET", &format!("/@connections/{encoded}"), b"").await;
    assert_eq!(r.status, 200);
    let info = r.json();
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(info["identity"]["userAgent"], USER_AGENT);
    assert!(
        info["connectedAt"].as_str().unwrap().ends_with('Z'),
        "{info}"
    );
    assert!(info["lastActiveAt"].is_string(), "{info}");

    // A wrong stage: 403 ForbiddenException, nothing delivered.
    let r = http(
        addr,
        "POST",
        &format!("/nope/@connections/{encoded}"),
        b"three",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-amzn-errortype"), Some("ForbiddenException"));
    expect_silence(&mut alice, Duration::from_millis(100)).await;

    // Gone and too large, as the SDK sees them.
    let r = http(addr, "POST", "/ws/@connections/R0oXAdfD0kwCH6w%3D", b"x").await;
    assert_eq!(r.status, 410);
    assert_eq!(r.header("x-amzn-errortype"), Some("GoneException"));
    let big = vec![b'a'; 129 * 1024];
    let r = http(addr, "POST", &format!("/ws/@connections/{encoded}"), &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("PayloadTooLargeException")
    );

    // DELETE by hand: 204, then the socket closes with 1000.
    let r = http(addr, "DELETE", &format!("/ws/@connections/{encoded}"), b"").await;
    assert_eq!(r.status, 204);
    expect_close(&mut alice, 1000).await;
    shutdown(gw).await;
}
