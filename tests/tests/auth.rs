//! Tokens end to end: the local issuer signs in, the JWT authorizer (the same code as the
//! `ws:authorizer` Lambda) checks every upgrade, handlers see the identity.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard_tests::*;

/// The chat app with its default authentication: the local issuer's tokens.
async fn start_jwt(config: LocalConfig) -> (LocalGateway, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-auth-{}",
        switchboard::ids::new_api_id()
    ));
    let gw = step(
        "gateway start",
        chat_app::app().serve_local(LocalConfig {
            state_dir: dir.clone(),
            ..config
        }),
    )
    .await
    .unwrap();
    (gw, dir)
}

async fn sign_in(gw: &LocalGateway, body: &Value) -> HttpResponse {
    http(
        gw.local_addr(),
        "POST",
        "/local/token",
        body.to_string().as_bytes(),
    )
    .await
}

async fn id_token(gw: &LocalGateway, user: &str) -> String {
    let res = sign_in(gw, &json!({"username": user})).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()["idToken"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn unauthenticated_bad_and_good_tokens() {
    let (gw, dir) = start_jwt(config()).await;
    let url = gw.ws_url();

    // No token: 401, as API Gateway answers a missing identity source.
    assert_eq!(refused_status(&url, &[]).await, 401);
    assert_eq!(refused_status(&format!("{url}?user=alice"), &[]).await, 401);

    // Bad tokens: 403, and nothing is recorded.
    let good = id_token(&gw, "alice").await;
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let tampered_payload = {
        let other = id_token(&gw, "mallory").await;
        other.split('.').nth(1).unwrap().to_owned()
    };
    parts[1] = tampered_payload;
    let forged = parts.join(".");
    let truncated = good[..good.len() - 10].to_owned();
    let huge = format!("{good}{}", "A".repeat(17 * 1024));
    for (what, token) in [
        ("forged", forged.as_str()),
        ("truncated", truncated.as_str()),
        ("garbage", "not.a.jwt"),
        ("non-base64", "@@@.###.$$$"),
        ("alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
    ] {
        let status = refused_status(&format!("{url}?token={}", encode_segment(token)), &[]).await;
        assert_eq!(status, 403, "{what}");
    }
    // A huge token does not fit a sane upgrade request line: refused either way.
    let status = refused_status(&format!("{url}?token={huge}"), &[]).await;
    assert!(
        status == 403 || status == 431 || status == 400,
        "huge: {status}"
    );
    assert!(store_records(&gw).await.is_empty(), "no connection exists");

    // A good token: handlers see the identity the token carries.
    let (mut ws, _) = try_connect_url(&format!("{url}?token={good}"), &[])
        .await
        .unwrap();
    let me = request(&mut ws, json!({"action": "whoami"}), "whoami").await;
    assert_eq!(me["username"], "alice");
    assert_eq!(me["identity"]["context"]["username"], "alice");
    assert_eq!(me["identity"]["context"]["authMethod"], "jwt");
    assert!(me["identity"]["context"]["expiresAt"].is_number());
    assert!(
        me["identity"]["principalId"].as_str().unwrap().len() >= 32,
        "sub"
    );

    close(&mut ws).await;
    shutdown(gw).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn browser_style_subprotocol_token() {
    let (gw, dir) = start_jwt(config()).await;
    let token = id_token(&gw, "bob").await;
    // A browser offers ["switchboard", token]; the server must echo one back, and not the token.
    let protocols = format!("switchboard, {token}");
    let (mut ws, response) = try_connect_url(
        &gw.ws_url(),
        &[("Sec-WebSocket-Protocol", protocols.as_str())],
    )
    .await
    .unwrap();
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("switchboard")
    );
    let me = request(&mut ws, json!({"action": "whoami"}), "whoami").await;
    assert_eq!(me["username"], "bob");
    close(&mut ws).await;
    shutdown(gw).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sign_in_validates_and_tokens_survive_a_restart() {
    let addr: std::net::SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = || LocalConfig { addr, ..config() };
    let (gw, dir) = start_jwt(cfg()).await;
    let bad = sign_in(&gw, &json!({"username": "bad name"})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "invalid_request");
    let token = id_token(&gw, "carol").await;
    shutdown(gw).await;

    // Same key folder, same address: the old token still opens a connection.
    let gw = step(
        "restart",
        chat_app::app().serve_local(LocalConfig {
            state_dir: dir.clone(),
            ..cfg()
        }),
    )
    .await
    .unwrap();
    let (mut ws, _) = try_connect_url(&format!("{}?token={token}", gw.ws_url()), &[])
        .await
        .unwrap();
    assert_eq!(whoami_id(&mut ws).await.len(), 16);
    close(&mut ws).await;
    shutdown(gw).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_expiring_token_closes_its_connection() {
    let (gw, dir) = start_jwt(config()).await;
    let res = sign_in(&gw, &json!({"username": "dave", "expiresIn": 2})).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let token = res.json()["idToken"].as_str().unwrap().to_owned();
    let (mut ws, _) = try_connect_url(&format!("{}?token={token}", gw.ws_url()), &[])
        .await
        .unwrap();
    let id = whoami_id(&mut ws).await;
    // API Gateway checks tokens only at $connect; Switchboard closes at expiry (1008).
    let reason = expect_close_within(&mut ws, 1008, Duration::from_secs(6)).await;
    assert!(reason.contains("Token expired"), "{reason}");
    let gone = step("record removed", async {
        loop {
            if !store_records(&gw)
                .await
                .iter()
                .any(|r| r["connectionId"] == id.as_str())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let () = gone;
    shutdown(gw).await;
    let _ = std::fs::remove_dir_all(dir);
}
