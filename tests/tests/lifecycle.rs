//! How connections end, and that `$disconnect` runs every time: client close, abrupt
//! TCP drop (FIN and RST), idle timeout, maximum connection age, graceful shutdown.
//!
//! `$disconnect` is observed through its effects in the chat app: the connection's
//! record leaves the store (`GET /local/connections`) and the rooms it was in get a
//! presence `leave` frame.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::local::LocalConfig;
use switchboard_tests::*;
use tokio::time::Instant;
use tokio_tungstenite::MaybeTlsStream;

const PING_EVERY: Duration = Duration::from_millis(300);

fn is_leave_of(frame: &Value, id: &str) -> bool {
    frame["action"] == "presence" && frame["event"] == "leave" && frame["connectionId"] == id
}

/// Bob and Alice in room `r`; Bob has seen Alice join. Returns Alice's id.
async fn pair_in_room(bob: &mut Ws, alice: &mut Ws) -> String {
    join(bob, "r").await;
    let alice_id = whoami_id(alice).await;
    join(alice, "r").await;
    let presence = recv_json(bob).await;
    assert_eq!(presence["event"], "join");
    assert_eq!(presence["connectionId"], alice_id.as_str());
    alice_id
}

/// `$disconnect` ran for `id`: Bob got the presence `leave` and the record is gone.
async fn assert_disconnected(gw: &switchboard::local::LocalGateway, bob: &mut Ws, id: &str) {
    let (leave, skipped) = recv_until(bob, |f| is_leave_of(f, id)).await;
    assert_eq!(leave["username"], "alice");
    assert_eq!(leave["room"], "r");
    assert!(skipped.is_empty(), "unexpected frames: {skipped:?}");
    wait_record_gone(gw, id).await;
}

#[tokio::test]
async fn client_close_runs_disconnect() {
    let gw = start().await;
    let mut bob = connect(&gw, "bob").await;
    let mut alice = connect(&gw, "alice").await;
    let alice_id = pair_in_room(&mut bob, &mut alice).await;
    assert!(store_ids(&gw).await.contains(&alice_id));

    close(&mut alice).await;
    assert_disconnected(&gw, &mut bob, &alice_id).await;
    assert_eq!(gw.open_connections(), 1);
    close(&mut bob).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn abrupt_drop_runs_disconnect() {
    let gw = start().await;
    let mut bob = connect(&gw, "bob").await;
    let mut alice = connect(&gw, "alice").await;
    let alice_id = pair_in_room(&mut bob, &mut alice).await;

    // No close frame: the socket just goes away (FIN).
    drop(alice);
    assert_disconnected(&gw, &mut bob, &alice_id).await;

    // Bob still talks to the room; the store keeps his record, not Alice's.
    let bob_id = whoami_id(&mut bob).await;
    send_json(
        &mut bob,
        &json!({"action": "sendMessage", "room": "r", "text": "anyone?"}),
    )
    .await;
    assert_eq!(recv_json(&mut bob).await["text"], "anyone?");
    let ids = store_ids(&gw).await;
    assert_eq!(ids, [bob_id], "store after the drop");
    close(&mut bob).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn tcp_reset_runs_disconnect() {
    let gw = start().await;
    let mut bob = connect(&gw, "bob").await;
    let mut alice = connect(&gw, "alice").await;
    let alice_id = pair_in_room(&mut bob, &mut alice).await;

    // No close frame, and a reset rather than a FIN.
    if let MaybeTlsStream::Plain(tcp) = alice.get_ref() {
        tcp.set_zero_linger().unwrap();
    }
    drop(alice);
    assert_disconnected(&gw, &mut bob, &alice_id).await;
    close(&mut bob).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn idle_timeout_closes_with_1001_and_runs_disconnect() {
    let gw = start_with(LocalConfig {
        idle_timeout: Duration::from_secs(1),
        ..config()
    })
    .await;
    let mut bob = connect(&gw, "bob").await;
    let mut alice = connect(&gw, "alice").await;
    let alice_id = pair_in_room(&mut bob, &mut alice).await;
    let bob_id = whoami_id(&mut bob).await;
    let alice_last_message = Instant::now();

    // Alice stays silent; Bob keeps sending pings, which keeps him open.
    let (reason, leave) = tokio::join!(
        expect_close_within(&mut alice, 1001, Duration::from_secs(4)),
        keepalive_until(&mut bob, PING_EVERY, |f| is_leave_of(f, &alice_id)),
    );
    let idle_for = alice_last_message.elapsed();
    assert!(
        idle_for >= Duration::from_millis(900),
        "closed after {idle_for:?}"
    );
    assert!(reason.contains("idle"), "reason: {reason}");
    assert_eq!(leave["username"], "alice");
    wait_record_gone(&gw, &alice_id).await;

    // Bob, active all along, is still connected and recorded.
    let pong = request(&mut bob, json!({"action": "ping"}), "pong").await;
    assert_eq!(pong["action"], "pong");
    assert!(store_ids(&gw).await.contains(&bob_id));
    close(&mut bob).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn max_connection_age_closes_with_1001_even_when_active() {
    let gw = start_with(LocalConfig {
        max_connection_age: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(60),
        ..config()
    })
    .await;
    let connected = Instant::now();
    let mut alice = connect(&gw, "alice").await;
    let alice_id = whoami_id(&mut alice).await;

    let (code, reason) =
        keepalive_until_close(&mut alice, PING_EVERY, Duration::from_secs(4)).await;
    let age = connected.elapsed();
    assert_eq!(code, 1001, "reason: {reason}");
    assert!(age >= Duration::from_millis(900), "closed after {age:?}");
    assert!(reason.contains("age"), "reason: {reason}");
    wait_record_gone(&gw, &alice_id).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001() {
    let gw = start().await;
    let mut alice = connect(&gw, "alice").await;
    let mut bob = connect(&gw, "bob").await;
    join(&mut alice, "r").await;
    join(&mut bob, "r").await;
    assert_eq!(gw.open_connections(), 2);

    let (_, a, b) = tokio::join!(
        step("shutdown", gw.shutdown()),
        expect_close(&mut alice, 1001),
        expect_close(&mut bob, 1001),
    );
    assert!(a.contains("Going away"), "{a}");
    assert!(b.contains("Going away"), "{b}");
}
