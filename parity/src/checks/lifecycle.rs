//! `$disconnect`, seen through what the chat app exposes: the room's presence `leave`
//! frame and the member lists of its HTTP API. `disconnect.delete` moved from
//! `tests/tests/management.rs` (`delete_runs_disconnect`).

use aws_sdk_apigatewaymanagement::Client as Mgmt;
use serde_json::json;

use super::Probe;
use super::util::{Pair, is_leave_of, members_over_http, pair_in_room, wait_record_gone};
use crate::run::Verdict;
use crate::target::Target;

/// Bob saw Alice's leave (and nothing else first); the app lists her no more.
async fn assert_disconnected(
    t: &Target,
    bob: &mut crate::Client,
    bob_user: &str,
    alice_user: &str,
    room: &str,
    alice_id: &str,
) -> Result<(), String> {
    let (leave, skipped) = bob.recv_until(|f| is_leave_of(f, alice_id)).await?;
    ensure!(leave["room"] == room, "{leave}");
    ensure!(skipped.is_empty(), "frames before the leave: {skipped:?}");
    wait_record_gone(t, alice_user, alice_id).await?;
    let members = members_over_http(t, bob_user, room).await?;
    ensure!(
        !members.iter().any(|(id, _)| id == alice_id),
        "{alice_id} still a member of {room}: {members:?}"
    );
    ensure!(members.len() == 1, "members of {room}: {members:?}");
    Ok(())
}

pub(super) async fn client_close(t: &Target) -> Probe {
    let Pair {
        room,
        mut bob,
        alice,
        bob_user,
        alice_user,
        alice_id,
    } = pair_in_room(t).await?;
    alice.close().await;
    assert_disconnected(t, &mut bob, &bob_user, &alice_user, &room, &alice_id).await?;
    bob.close().await;
    Ok(Verdict::Pass("leave seen; member list updated".into()))
}

pub(super) async fn abrupt_drop(t: &Target) -> Probe {
    let Pair {
        room,
        mut bob,
        alice,
        bob_user,
        alice_user,
        alice_id,
    } = pair_in_room(t).await?;
    alice.drop_abruptly();
    assert_disconnected(t, &mut bob, &bob_user, &alice_user, &room, &alice_id).await?;
    bob.send_json(&json!({"action": "sendMessage", "room": room, "text": "anyone?"}))
        .await?;
    let (line, _) = bob.recv_until(|f| f["action"] == "message").await?;
    bob.close().await;
    ensure!(line["text"] == "anyone?", "{line}");
    Ok(Verdict::Pass(
        "leave seen after a TCP drop; the room still works".into(),
    ))
}

pub(super) async fn delete_runs_disconnect(t: &Target) -> Probe {
    let client: &Mgmt = match t.management() {
        Ok(c) => c,
        Err(why) => return Ok(Verdict::Skipped(why)),
    };
    let Pair {
        room,
        mut bob,
        mut alice,
        alice_user,
        alice_id,
        ..
    } = pair_in_room(t).await?;
    let alice_name =
        alice.request(json!({"action": "whoami"}), "whoami").await?["username"].clone();
    tokio::time::timeout(
        t.step(),
        client.delete_connection().connection_id(&alice_id).send(),
    )
    .await
    .map_err(|_| "delete: no answer".to_owned())?
    .map_err(|e| format!("delete: {e:?}"))?;
    let _ = alice.close_code_within(t.step()).await?;
    let (mut leave, skipped) = bob.recv_until(|f| is_leave_of(f, &alice_id)).await?;
    ensure!(skipped.is_empty(), "frames before the leave: {skipped:?}");
    let obj = leave
        .as_object_mut()
        .ok_or("the leave frame is not an object")?;
    ensure!(
        obj.remove("seq").is_some_and(|s| s.as_u64().is_some()),
        "no seq"
    );
    ensure!(
        obj.remove("epoch").is_some_and(|e| e.as_str().is_some()),
        "no epoch"
    );
    let expected = json!({"action": "presence", "room": room, "event": "leave", "username": alice_name, "connectionId": alice_id});
    ensure!(leave == expected, "leave {leave}, expected {expected}");
    wait_record_gone(t, &alice_user, &alice_id).await?;
    bob.close().await;
    Ok(Verdict::Pass("the exact leave frame; record gone".into()))
}
