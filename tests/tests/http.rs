//! The HTTP API end to end: the chat's `/http/*` endpoints on the local gateway's one port
//! (beside `/` and `/ws`, as CloudFront serves them), with and without tokens from the
//! local issuer; and the same router as the `http` Lambda function runs it, fed HTTP API
//! payload v2 fixture events (`HttpService::handle_event`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use serde_json::{Value, json};
use switchboard::aws::AwsSettings;
use switchboard::aws::connections::ManagementApi;
use switchboard::aws::http::HttpService;
use switchboard::backend::memory::MemoryStore;
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard_tests::*;

/// The chat app with its default authentication (the local issuer's tokens).
async fn start_jwt() -> LocalGateway {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-http-{}",
        switchboard::ids::new_api_id()
    ));
    step(
        "gateway start",
        chat_app::app().serve_local(LocalConfig {
            state_dir: dir,
            ..config()
        }),
    )
    .await
    .unwrap()
}

async fn id_token(gw: &LocalGateway, user: &str) -> String {
    let body = json!({"username": user}).to_string();
    let res = http(gw.local_addr(), "POST", "/local/token", body.as_bytes()).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()["idToken"].as_str().unwrap().to_owned()
}

async fn get(gw: &LocalGateway, path: &str, token: Option<&str>) -> HttpResponse {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    http_with(gw.local_addr(), "GET", path, &headers, b"").await
}

/// Asserts `{"error":{"code": code, "message": ..}}` with `status`.
fn assert_error(res: &HttpResponse, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", String::from_utf8_lossy(&res.body));
    assert!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "content type {:?}",
        res.header("content-type")
    );
    let body = res.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn connect_token(gw: &LocalGateway, token: &str) -> Ws {
    let url = format!("{}?token={}", gw.ws_url(), encode_segment(token));
    match try_connect_url(&url, &[]).await {
        Ok((ws, _)) => ws,
        Err(e) => panic!("connecting with a token failed: {e}"),
    }
}

#[tokio::test]
async fn endpoints_with_tokens_see_the_websocket_side() {
    let gw = start_jwt().await;
    let alice_token = id_token(&gw, "alice").await;
    let bob_token = id_token(&gw, "bob").await;

    // Signed in, no connection yet.
    let res = get(&gw, "/http/me", Some(&alice_token)).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let me = res.json();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["connections"], json!([]));
    assert!(me["sub"].as_str().is_some_and(|s| !s.is_empty()), "{me}");
    assert!(me["expiresAt"].as_i64().is_some_and(|e| e > 0), "{me}");
    let res = get(&gw, "/http/rooms", Some(&alice_token)).await;
    assert_eq!(res.json(), json!({"rooms": []}));

    // The same token opens a WebSocket on the same port; rooms show over HTTP.
    let mut alice = connect_token(&gw, &alice_token).await;
    let mut bob = connect_token(&gw, &bob_token).await;
    let alice_id = whoami_id(&mut alice).await;
    let bob_id = whoami_id(&mut bob).await;
    join(&mut alice, "lobby").await;
    join(&mut bob, "lobby").await;
    join(&mut bob, "dev").await;

    let res = get(&gw, "/http/rooms", Some(&alice_token)).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.json(),
        json!({"rooms": [{"room": "dev", "members": 1}, {"room": "lobby", "members": 2}]})
    );

    let res = get(&gw, "/http/rooms/lobby/members", Some(&bob_token)).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.json(),
        json!({"room": "lobby", "members": [
            {"connectionId": alice_id, "username": "alice"},
            {"connectionId": bob_id, "username": "bob"},
        ]})
    );
    let res = get(&gw, "/http/rooms/empty-room/members", Some(&bob_token)).await;
    assert_eq!(res.json(), json!({"room": "empty-room", "members": []}));

    let me = get(&gw, "/http/me", Some(&bob_token)).await.json();
    assert_eq!(
        me["connections"],
        json!([{"connectionId": bob_id, "connectedAt": me["connections"][0]["connectedAt"], "rooms": ["dev", "lobby"]}])
    );
    assert!(me["connections"][0]["connectedAt"].as_i64().unwrap() > 0);

    // After bob leaves, the counts follow.
    close(&mut bob).await;
    wait_record_gone(&gw, &bob_id).await;
    let res = get(&gw, "/http/rooms", Some(&alice_token)).await;
    assert_eq!(
        res.json(),
        json!({"rooms": [{"room": "lobby", "members": 1}]})
    );
    close(&mut alice).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn errors_are_json() {
    let gw = start_jwt().await;
    let token = id_token(&gw, "alice").await;
    assert_error(
        &get(&gw, "/http/nope", Some(&token)).await,
        404,
        "not_found",
    );
    assert_error(&get(&gw, "/http", Some(&token)).await, 404, "not_found");
    assert_error(&get(&gw, "/http/", Some(&token)).await, 404, "not_found");
    assert_error(
        &get(&gw, "/http/rooms/no%20spaces/members", Some(&token)).await,
        400,
        "invalid_room",
    );
    let bearer = format!("Bearer {token}");
    let res = http_with(
        gw.local_addr(),
        "DELETE",
        "/http/rooms",
        &[("authorization", &bearer)],
        b"",
    )
    .await;
    assert_error(&res, 405, "method_not_allowed");
    assert!(res.header("allow").is_some_and(|a| a.contains("GET")));
    shutdown(gw).await;
}

#[tokio::test]
async fn one_port_serves_page_http_ws_and_manifest() {
    let gw = start_jwt().await;
    let addr = gw.local_addr();
    assert_eq!(
        gw.http_api_url(),
        Some(format!("http://{addr}/http")),
        "http_api_url"
    );

    let page = http(addr, "GET", "/", b"").await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("data-testid=\"signin\""), "not the chat page");
    // The page builds every URL from its own origin: no host or port is baked in.
    assert!(!html.contains("127.0.0.1") && !html.contains("localhost:"));

    let token = id_token(&gw, "carol").await;
    let mut ws = connect_token(&gw, &token).await;
    let reply = request(&mut ws, json!({"action": "ping"}), "pong").await;
    assert_eq!(reply["action"], "pong");
    // `/ws/...` reaches the WebSocket API too, as CloudFront's `/ws/*` behaviour does.
    let url = format!("ws://{addr}/ws/chat?token={}", encode_segment(&token));
    let (mut ws2, _) = try_connect_url(&url, &[]).await.unwrap();
    close(&mut ws2).await;
    close(&mut ws).await;

    let manifest = http(addr, "GET", "/local/manifest", b"").await.json();
    assert_eq!(manifest["http"]["enabled"], true, "{manifest}");
    assert_eq!(manifest["http"]["basePath"], "/http");
    assert_eq!(manifest["http"]["role"], "http");
    assert_eq!(manifest["http"]["authorizer"], "jwt");
    shutdown(gw).await;
}

#[tokio::test]
async fn dev_auth_identifies_http_callers_by_user_parameter() {
    let gw = start().await; // the development authorizer: ?user=NAME
    let res = get(&gw, "/http/me?user=dave", None).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["username"], "dave");
    let res = get(&gw, "/http/me", None).await;
    assert_eq!(res.status, 401);
    let res = get(&gw, "/http/me?user=not%20valid", None).await;
    assert_eq!(res.status, 403);
    shutdown(gw).await;
}

#[test]
fn manifest_tells_the_deploy_program_about_the_http_api() {
    let with = chat_app::app().manifest().unwrap();
    let json = serde_json::to_value(&with).unwrap();
    assert_eq!(
        json["http"],
        json!({
            "enabled": true, "basePath": "/http", "role": "http", "authorizer": "jwt",
            "capabilities": {"connections": true, "store": true}
        })
    );
    let without = switchboard::App::new()
        .with_routes(Vec::new())
        .manifest()
        .unwrap();
    assert_eq!(serde_json::to_value(&without).unwrap()["http"], Value::Null);
}

// ---- the `http` Lambda function, with HTTP API payload v2 fixture events ----------

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/http/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The chat's HTTP API as the `http` function serves it, over a store holding alice in
/// `lobby` and bob in `lobby` and `dev`.
async fn lambda_service() -> HttpService {
    let store = MemoryStore::new();
    switchboard::testing::events::http::seed_fixture_connections(&store)
        .await
        .unwrap();
    // Never called by these requests; an address nothing listens on.
    let api = ManagementApi::new(
        &AwsSettings::local("http://127.0.0.1:9"),
        "http://127.0.0.1:9/ws",
    );
    chat_app::app()
        .store(store)
        .http_service(Arc::new(api))
        .unwrap()
        .expect("the chat app has an HTTP API")
}

/// Runs a fixture event through the service, as the `http` function does.
async fn invoke(service: &HttpService, name: &str) -> (u16, Value) {
    let event: ApiGatewayV2httpRequest = serde_json::from_str(&fixture(name))
        .unwrap_or_else(|e| panic!("{name} is not an HTTP API v2 event: {e}"));
    let response = step(name, service.handle_event(event)).await;
    let status = u16::try_from(response.status_code).unwrap();
    let content_type = response
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{name}: content type {content_type:?}"
    );
    assert!(!response.is_base64_encoded, "{name}: {response:?}");
    let body = match &response.body {
        Some(Body::Text(text)) => text.clone(),
        other => panic!("{name}: not a text body: {other:?}"),
    };
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn lambda_me_reads_the_jwt_authorizer_claims() {
    let service = lambda_service().await;
    let (status, me) = invoke(&service, "me.json").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["sub"], "0c5e2a1b-7d3f-4e8a-9b6c-1d2e3f4a5b6c");
    assert_eq!(me["groups"], json!(["admins", "chat-users"]));
    assert_eq!(me["expiresAt"], 1_732_272_000_i64);
    assert_eq!(
        me["connections"],
        json!([{"connectionId": "AAAAAAAAAAAAAAA=", "connectedAt": 1000, "rooms": ["lobby"]}])
    );
    // A named stage's prefix is not part of the route.
    let (status, me) = invoke(&service, "named-stage.json").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "alice");
}

#[tokio::test]
async fn lambda_rooms_and_members() {
    let service = lambda_service().await;
    let (status, rooms) = invoke(&service, "rooms.json").await;
    assert_eq!(status, 200, "{rooms}");
    assert_eq!(
        rooms,
        json!({"rooms": [{"room": "dev", "members": 1}, {"room": "lobby", "members": 2}]})
    );
    let (status, members) = invoke(&service, "room-members.json").await;
    assert_eq!(status, 200, "{members}");
    assert_eq!(
        members["members"],
        json!([
            {"connectionId": "AAAAAAAAAAAAAAA=", "username": "alice"},
            {"connectionId": "BBBBBBBBBBBBBBB=", "username": "bob"},
        ])
    );
}

#[tokio::test]
async fn lambda_errors_are_json() {
    let service = lambda_service().await;
    for (name, status, code) in [
        // No authorizer on the route: the handler's Identity refuses with 401.
        ("me-no-authorizer.json", 401, "unauthorized"),
        ("unknown-path.json", 404, "not_found"),
        ("wrong-method.json", 405, "method_not_allowed"),
        ("room-members-invalid.json", 400, "invalid_room"),
    ] {
        let (got, body) = invoke(&service, name).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
    }
}
