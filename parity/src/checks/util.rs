//! Helpers the checks share.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::client::Client;
use crate::target::Target;

/// A bystander's ping is answered exactly `{"action":"pong"}`.
pub(super) async fn bystander_ok(bystander: &mut Client) -> Result<(), String> {
    let pong = bystander.request(json!({"action": "ping"}), "pong").await?;
    ensure!(
        pong == json!({"action": "pong"}),
        "the bystander got {pong}"
    );
    Ok(())
}

/// The connection ids `user` has according to the app's HTTP API (`/http/me`).
pub(super) async fn my_connection_ids(t: &Target, user: &str) -> Result<Vec<String>, String> {
    let res = t.http("GET", "/http/me", Some(user)).await?;
    ensure!(
        res.status == 200,
        "/http/me answered {}: {}",
        res.status,
        res.text()
    );
    Ok(res.json()["connections"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["connectionId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Waits (within a step) until the app no longer lists `id` among `user`'s connections:
/// `$disconnect` removed its record.
pub(super) async fn wait_record_gone(t: &Target, user: &str, id: &str) -> Result<(), String> {
    let deadline = Instant::now() + t.step();
    loop {
        let ids = my_connection_ids(t, user).await?;
        if !ids.iter().any(|i| i == id) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{id} still recorded after {:?}: {ids:?}",
            t.step()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The members of `room` over HTTP, as `(connectionId, username)`.
pub(super) async fn members_over_http(
    t: &Target,
    user: &str,
    room: &str,
) -> Result<Vec<(String, String)>, String> {
    let res = t
        .http("GET", &format!("/http/rooms/{room}/members"), Some(user))
        .await?;
    ensure!(
        res.status == 200,
        "members of {room}: {} {}",
        res.status,
        res.text()
    );
    let body = res.json();
    Ok(body["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["connectionId"].as_str().unwrap_or_default().to_owned(),
                        m["username"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Whether `frame` is the presence `leave` of connection `id`.
pub(super) fn is_leave_of(frame: &Value, id: &str) -> bool {
    frame["action"] == "presence" && frame["event"] == "leave" && frame["connectionId"] == id
}

/// Two connections in a fresh room; Bob has seen Alice join.
pub(super) struct Pair {
    pub(super) room: String,
    pub(super) bob: Client,
    pub(super) alice: Client,
    pub(super) bob_user: String,
    pub(super) alice_user: String,
    pub(super) alice_id: String,
}

/// Bob and Alice in a fresh room, Bob having seen Alice join.
pub(super) async fn pair_in_room(t: &Target) -> Result<Pair, String> {
    let room = t.unique("r");
    let (bob_user, alice_user) = (t.unique("bob"), t.unique("alice"));
    let mut bob = t.connect(&bob_user).await?;
    let mut alice = t.connect(&alice_user).await?;
    bob.join(&room).await?;
    let alice_id = alice.whoami_id().await?;
    alice.join(&room).await?;
    let (presence, _) = bob
        .recv_until(|f| f["action"] == "presence" && f["event"] == "join")
        .await?;
    ensure!(
        presence["connectionId"] == alice_id.as_str(),
        "join presence {presence}"
    );
    Ok(Pair {
        room,
        bob,
        alice,
        bob_user,
        alice_user,
        alice_id,
    })
}

/// How long "nothing arrives" is watched: 1 s on loopback, 3 s otherwise.
pub(super) fn quiet(t: &Target) -> Duration {
    if t.is_loopback() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(3)
    }
}
