//! The upgrade: tokens, identities, subprotocols, connection ids.

use serde_json::json;

use super::Probe;
use crate::run::Verdict;
use crate::target::Target;

pub(super) async fn no_token(t: &Target) -> Probe {
    for query in [None, Some("other=1")] {
        match t.upgrade(query, &[]).await? {
            Ok((c, _)) => {
                c.close().await;
                return Err(format!(
                    "the upgrade without a token (query {query:?}) was accepted"
                ));
            }
            Err(status) => ensure!(
                status == 401,
                "query {query:?}: status {status}, expected 401"
            ),
        }
    }
    Ok(Verdict::Pass("401 without a token".into()))
}

pub(super) async fn bad_tokens(t: &Target) -> Probe {
    let user = t.unique("mallory");
    let mut cases: Vec<(String, String)> = Vec::new();
    match t.token(&user).await? {
        None => {
            for q in ["user=bad%20name", "user=", "user=a/b"] {
                cases.push((q.to_owned(), q.to_owned()));
            }
        }
        Some(good) => {
            let parts: Vec<&str> = good.split('.').collect();
            ensure!(parts.len() == 3, "the issued token is not a JWT");
            // Another payload under this signature.
            let other = crate::wire::encode(&format!("{}.{}.{}", parts[0], parts[0], parts[2]));
            let keep = good.chars().count().saturating_sub(10);
            let truncated = crate::wire::encode(&good.chars().take(keep).collect::<String>());
            for (what, token) in [
                ("forged", other),
                ("truncated", truncated),
                ("garbage", "not.a.jwt".to_owned()),
                (
                    "alg none",
                    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned(),
                ),
            ] {
                cases.push((what.to_owned(), format!("token={token}")));
            }
        }
    }
    for (what, query) in &cases {
        match t.upgrade(Some(query), &[]).await? {
            Ok((c, _)) => {
                c.close().await;
                return Err(format!("{what}: the upgrade was accepted"));
            }
            Err(status) => ensure!(status == 403, "{what}: status {status}, expected 403"),
        }
    }
    Ok(Verdict::Pass(format!(
        "{} bad identities refused with 403",
        cases.len()
    )))
}

pub(super) async fn token_identifies(t: &Target) -> Probe {
    let user = t.unique("alice");
    let mut c = t.connect(&user).await?;
    let me = c.request(json!({"action": "whoami"}), "whoami").await?;
    c.close().await;
    ensure!(
        me["connectionId"].as_str().is_some_and(|s| !s.is_empty()),
        "{me}"
    );
    if t.single_user() {
        ensure!(
            me["username"].as_str().is_some_and(|s| !s.is_empty()),
            "{me}"
        );
    } else {
        ensure!(
            me["username"] == user.as_str(),
            "whoami says {me}, expected {user}"
        );
    }
    Ok(Verdict::Pass(format!("whoami: {}", me["username"])))
}

/// Moved from `tests/tests/connect.rs` (`the_first_offered_subprotocol_is_echoed`).
pub(super) async fn subprotocol(t: &Target) -> Probe {
    let query = t.identity_query(&t.unique("alice")).await?;
    let (mut c, response) = t
        .upgrade(
            Some(&query),
            &[("sec-websocket-protocol", "chat.v1, other")],
        )
        .await?
        .map_err(|s| format!("the upgrade with subprotocols was refused with {s}"))?;
    let echoed = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let pong = c.request(json!({"action": "ping"}), "pong").await?;
    c.close().await;
    ensure!(
        echoed.as_deref() == Some("chat.v1"),
        "echoed {echoed:?}, expected chat.v1"
    );
    ensure!(pong["action"] == "pong", "{pong}");
    let (c, response) = t
        .upgrade(Some(&query), &[])
        .await?
        .map_err(|s| format!("the plain upgrade was refused with {s}"))?;
    let header = response.headers().get("sec-websocket-protocol").cloned();
    c.close().await;
    ensure!(header.is_none(), "no offer, yet {header:?} came back");
    Ok(Verdict::Pass(
        "chat.v1 echoed; none without an offer".into(),
    ))
}

pub(super) async fn connection_id_shape(t: &Target) -> Probe {
    let mut c = t.connect(&t.unique("ids")).await?;
    let id = c.whoami_id().await?;
    c.close().await;
    let aws_like = id.len() == 16
        && id.ends_with('=')
        && !id.ends_with("==")
        && id.get(..15).is_some_and(|head| {
            head.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        });
    let value = if aws_like {
        super::local::CONNECTION_ID_SHAPE.to_owned()
    } else {
        format!("{} chars", id.chars().count())
    };
    Ok(Verdict::observed(value, format!("e.g. {id}")))
}
