//! The app's HTTP API beside the WebSocket API, and a queue end to end.
//! `http.unauthorized_401` moved from `tests/tests/http.rs`
//! (`without_a_token_the_gateway_refuses_like_api_gateway`).

use serde_json::{Value, json};

use super::Probe;
use super::util::{members_over_http, quiet};
use crate::run::Verdict;
use crate::target::Target;
use crate::wire::HttpResponse;

pub(super) async fn unauthorized(t: &Target) -> Probe {
    let room = t.unique("lobby");
    for path in [
        "/http/me".to_owned(),
        "/http/rooms".to_owned(),
        format!("/http/rooms/{room}/members"),
        "/http/nope".to_owned(),
    ] {
        let res = t.http_with("GET", &path, &[]).await?;
        ensure!(res.status == 401, "{path}: {} {}", res.status, res.text());
        ensure!(
            res.json() == json!({"message": "Unauthorized"}),
            "{path}: {}",
            res.text()
        );
        ensure!(
            res.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{path}: www-authenticate {:?}",
            res.header("www-authenticate")
        );
    }
    let Some(good) = t.token(&t.unique("alice")).await? else {
        return Ok(Verdict::Pass(
            "401 without identity (dev identities: no token cases)".into(),
        ));
    };
    let keep = good.chars().count().saturating_sub(1);
    let tampered = format!("{}x", good.chars().take(keep).collect::<String>());
    for bad in ["garbage", "not.a.jwt", tampered.as_str()] {
        let bearer = format!("Bearer {bad}");
        let res = t
            .http_with("GET", "/http/me", &[("authorization", &bearer)])
            .await?;
        ensure!(res.status == 401, "token {bad:.12}: {}", res.status);
        ensure!(res.json()["message"] == "Unauthorized", "{}", res.text());
    }
    let res = t
        .http_with("GET", &format!("/http/me?token={good}"), &[])
        .await?;
    ensure!(res.status == 401, "?token= accepted: {}", res.status);
    Ok(Verdict::Pass(
        "401 {\"message\":\"Unauthorized\"} with WWW-Authenticate".into(),
    ))
}

pub(super) async fn sees_websocket(t: &Target) -> Probe {
    let (alice_user, bob_user) = (t.unique("alice"), t.unique("bob"));
    let (lobby, dev) = (t.unique("lobby"), t.unique("dev"));
    let mut alice = t.connect(&alice_user).await?;
    let mut bob = t.connect(&bob_user).await?;
    let alice_id = alice.whoami_id().await?;
    let bob_me = bob.request(json!({"action": "whoami"}), "whoami").await?;
    let bob_id = bob_me["connectionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let alice_name = alice.request(json!({"action": "whoami"}), "whoami").await?["username"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    alice.join(&lobby).await?;
    bob.join(&lobby).await?;
    bob.join(&dev).await?;
    let res = t.http("GET", "/http/me", Some(&bob_user)).await?;
    ensure!(res.status == 200, "/http/me: {} {}", res.status, res.text());
    let me = res.json();
    ensure!(me["username"] == bob_me["username"], "{me}");
    let mine = me["connections"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["connectionId"] == bob_id.as_str()))
        .cloned()
        .ok_or_else(|| format!("{bob_id} not in /http/me: {me}"))?;
    let mut rooms = vec![dev.clone(), lobby.clone()];
    rooms.sort();
    ensure!(mine["rooms"] == json!(rooms), "{mine}");
    ensure!(
        mine["connectedAt"].as_i64().is_some_and(|c| c > 0),
        "{mine}"
    );
    let mut expected = vec![
        (alice_id.clone(), alice_name),
        (
            bob_id.clone(),
            bob_me["username"].as_str().unwrap_or_default().to_owned(),
        ),
    ];
    expected.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let members = members_over_http(t, &alice_user, &lobby).await?;
    ensure!(
        members == expected,
        "members {members:?}, expected {expected:?}"
    );
    let empty = members_over_http(t, &alice_user, &t.unique("empty")).await?;
    ensure!(empty.is_empty(), "{empty:?}");
    alice.close().await;
    bob.close().await;
    Ok(Verdict::Pass(
        "me, rooms and members agree with the sockets".into(),
    ))
}

fn is_json_error(res: &HttpResponse, status: u16, code: &str) -> Result<(), String> {
    ensure!(
        res.status == status,
        "{} {}, expected {status}",
        res.status,
        res.text()
    );
    ensure!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "content type {:?}",
        res.header("content-type")
    );
    let body = res.json();
    ensure!(body["error"]["code"] == code, "{body}");
    ensure!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    Ok(())
}

pub(super) async fn errors_json(t: &Target) -> Probe {
    let user = t.unique("alice");
    is_json_error(
        &t.http("GET", "/http/nope", Some(&user)).await?,
        404,
        "not_found",
    )?;
    is_json_error(
        &t.http("GET", "/http/rooms/no%20spaces/members", Some(&user))
            .await?,
        400,
        "invalid_room",
    )?;
    let res = t.http("DELETE", "/http/rooms", Some(&user)).await?;
    is_json_error(&res, 405, "method_not_allowed")?;
    ensure!(
        res.header("allow").is_some_and(|a| a.contains("GET")),
        "allow {:?}",
        res.header("allow")
    );
    Ok(Verdict::Pass("404, 400, 405 as JSON error bodies".into()))
}

pub(super) async fn queue_forward(t: &Target) -> Probe {
    let customer = t.unique("alice");
    let mut alice = t.connect(&customer).await?;
    let mut alice_tab = t.connect(&customer).await?;
    let customer_name =
        alice.request(json!({"action": "whoami"}), "whoami").await?["username"].clone();
    let reference = t.unique("ref");
    let reply = alice
        .request(
            json!({"action": "placeOrder", "item": "tea", "qty": 2, "ref": reference}),
            "orderAccepted",
        )
        .await?;
    ensure!(
        reply == json!({"action": "orderAccepted", "item": "tea", "qty": 2, "ref": reference}),
        "{reply}"
    );
    for (which, ws) in [("first", &mut alice), ("second", &mut alice_tab)] {
        let (placed, _) = ws
            .recv_until(|f: &Value| f["action"] == "orderPlaced" && f["ref"] == reference.as_str())
            .await
            .map_err(|e| format!("{which} connection: {e}"))?;
        ensure!(placed["item"] == "tea" && placed["qty"] == 2, "{placed}");
        ensure!(placed["customer"] == customer_name, "{placed}");
        ensure!(
            placed["orderId"].as_str().is_some_and(|s| !s.is_empty()),
            "{placed}"
        );
        ensure!(
            placed["placedAt"]
                .as_str()
                .is_some_and(|s| s.ends_with('Z')),
            "{placed}"
        );
    }
    let mut bob = t.connect(&t.unique("bob")).await?;
    if !t.single_user() {
        bob.silence(quiet(t))
            .await
            .map_err(|e| format!("someone else's order reached bob: {e}"))?;
    }
    let refused = bob
        .request(
            json!({"action": "placeOrder", "item": "", "qty": 1}),
            "orderAccepted",
        )
        .await?;
    ensure!(refused["error"]["code"] == "bad_payload", "{refused}");
    ensure!(refused["error"]["route"] == "placeOrder", "{refused}");
    for c in [alice, alice_tab, bob] {
        c.close().await;
    }
    Ok(Verdict::Pass(
        "accepted, consumed, told both connections; invalid refused".into(),
    ))
}
