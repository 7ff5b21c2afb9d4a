//! The real `chat-app` binary in Lambda mode, against a fake Lambda Runtime API, moto's
//! DynamoDB, and the local gateway as the `@connections` endpoint.
//!
//! Needs a moto server: `.ci/run` starts one; by hand: `eval "$(bash scripts/moto.sh start)"`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use support::{Function, Stack, function, issuer_gateway, local_token, recv_json};
use switchboard::backend::ConnectionStore;
use switchboard::names::env;
use switchboard::testing::events::{authorizer, cognito, websocket};
use switchboard::testing::lambda::FunctionEnv;

/// Invokes and returns ("response"|"error", body).
async fn invoke(f: &Function, event: &Value) -> (&'static str, Value) {
    let answer = f.invoke(event).await;
    (answer.kind(), answer.body().clone())
}

#[tokio::test]
async fn websocket_roles_process_events_end_to_end() {
    let Some(stack) = Stack::start("websocket_roles", "lambda").await else {
        return;
    };
    let store = &stack.store;
    // A real client on the local gateway: its connection is what the Lambda events talk about.
    let (mut ws, id) = stack.socket("alice").await;
    let vars = stack.env();

    // $connect: one record in DynamoDB.
    let mut f = function("ws:$connect", &vars).await;
    let (kind, body) = invoke(&f, &websocket::connect(&id).build()).await;
    assert_eq!(kind, "response", "{body}");
    assert_eq!(body["statusCode"], 200);
    let record = store
        .get_connection(&id)
        .await
        .unwrap()
        .expect("record written");
    assert_eq!(record.username, "alice");
    f.kill().await.unwrap();

    // join: the reply is the route response; the presence frame goes through @connections
    // (the local gateway) to the real socket.
    let mut f = function("ws:join", &vars).await;
    let (kind, body) = invoke(
        &f,
        &websocket::message("join", &id)
            .body(r#"{"action":"join","room":"lobby"}"#)
            .build(),
    )
    .await;
    assert_eq!(kind, "response", "{body}");
    let reply: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["action"], "joined");
    assert_eq!(reply["members"][0]["connectionId"], id.as_str());
    let presence = recv_json(&mut ws).await;
    assert_eq!(presence["action"], "presence");
    assert_eq!(presence["event"], "join");

    // A bad event does not kill the process; the next one is served.
    let (kind, body) = invoke(&f, &json!({"not": "an api gateway event"})).await;
    assert_eq!(kind, "error", "{body}");
    let (kind, body) = invoke(
        &f,
        &websocket::message("join", &id)
            .body(r#"{"action":"join"}"#)
            .build(),
    )
    .await;
    assert_eq!(kind, "response");
    let reply: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["error"]["code"], "bad_payload");
    f.kill().await.unwrap();

    // sendMessage reaches the socket through @connections.
    let mut f = function("ws:sendMessage", &vars).await;
    let (kind, _) = invoke(
        &f,
        &websocket::message("sendMessage", &id)
            .body(r#"{"action":"sendMessage","room":"lobby","text":"hi from lambda"}"#)
            .build(),
    )
    .await;
    assert_eq!(kind, "response");
    let chat = recv_json(&mut ws).await;
    assert_eq!(chat["action"], "message");
    assert_eq!(chat["text"], "hi from lambda");
    f.kill().await.unwrap();

    // Built-ins run as their own roles.
    let mut f = function("ws:ping", &vars).await;
    let (_, body) = invoke(
        &f,
        &websocket::message("ping", &id)
            .body(r#"{"action":"ping"}"#)
            .build(),
    )
    .await;
    assert_eq!(body["body"], r#"{"action":"pong"}"#);
    f.kill().await.unwrap();

    // A failure on our side is an invocation error, not a crash: a second $connect for the
    // same connection id collides with the conditional write.
    let mut f = function("ws:$connect", &vars).await;
    let (kind, body) = invoke(&f, &websocket::connect(&id).build()).await;
    assert_eq!(kind, "error", "{body}");
    assert_eq!(body["errorType"], "Switchboard.InternalError");
    let (kind, _) = invoke(&f, &websocket::message("ping", &id).body("{}").build()).await;
    assert_eq!(kind, "response", "the process survived");
    f.kill().await.unwrap();

    // $disconnect removes the record and the memberships.
    let mut f = function("ws:$disconnect", &vars).await;
    let (kind, body) = invoke(&f, &websocket::disconnect(&id).build()).await;
    assert_eq!(kind, "response", "{body}");
    assert!(store.get_connection(&id).await.unwrap().is_none());
    assert!(store.rooms_of(&id).await.unwrap().is_empty());
    f.kill().await.unwrap();

    stack.gw.shutdown().await;
}

#[tokio::test]
async fn unknown_role_is_an_init_error_naming_the_known_ones() {
    let mut f = function("ws:nope", &FunctionEnv::new()).await;
    let error = f.init_error().await;
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("ws:nope"), "{message}");
    assert!(
        message.contains("ws:sendMessage") && message.contains("ws:authorizer"),
        "{message}"
    );
    let status = f.exit_status().await;
    assert!(!status.success());
}

#[tokio::test]
async fn missing_configuration_is_listed_at_once() {
    let mut f = function("ws:join", &FunctionEnv::new().set(env::REGION, "us-east-1")).await;
    let error = f.init_error().await;
    let message = error["errorMessage"].as_str().unwrap();
    for var in [env::ACCESS_KEY_ID, env::CONNECTIONS_TABLE, env::ROOMS_TABLE] {
        assert!(message.contains(var), "{message}");
    }
    let status = f.exit_status().await;
    assert!(!status.success());
}

#[tokio::test]
async fn authorizer_role_needs_an_issuer() {
    // The chat app authenticates with tokens: in Lambda that is the JWT authorizer, and
    // without its issuer the cold start fails naming the variable.
    let mut f = function("ws:authorizer", &FunctionEnv::new()).await;
    let error = f.init_error().await;
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains(env::JWT_ISSUER), "{message}");
    let status = f.exit_status().await;
    assert!(!status.success());
}

#[tokio::test]
async fn pre_signup_role_auto_confirms_only_when_configured() {
    let event = cognito::pre_signup("alice").build();
    for (setting, expected) in [(true, true), (false, false)] {
        let f = function(
            "cognito:pre-signup",
            &FunctionEnv::new().auto_confirm_users(setting),
        )
        .await;
        let (kind, body) = invoke(&f, &event).await;
        assert_eq!(kind, "response", "{body}");
        assert_eq!(body["response"]["autoConfirmUser"], expected, "{body}");
        assert_eq!(body["response"]["autoVerifyEmail"], expected, "{body}");
        assert_eq!(body["userName"], "alice");
    }
}

#[tokio::test]
async fn jwt_authorizer_role_checks_issuer_tokens() {
    // The local gateway's issuer stands in for Cognito: its JWKS endpoint and tokens have
    // Cognito's shape, and the Lambda fetches the keys over HTTP as it would from Cognito.
    let (gw, dir) = issuer_gateway("switchboard-lambda").await;
    let issuer = format!("{}/local", gw.http_url());
    let token = local_token(gw.local_addr(), "alice").await;

    let f = function(
        "ws:authorizer",
        &FunctionEnv::new()
            .jwt_issuer(issuer.clone())
            .jwt_audience("switchboard-local"),
    )
    .await;
    let (kind, body) = invoke(&f, &authorizer::request().token(&token).build()).await;
    assert_eq!(kind, "response", "{body}");
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(body["context"]["username"], "alice");
    // The browser path: the token as a subprotocol.
    let protocols = format!("switchboard, {token}");
    let (_, body) = invoke(
        &f,
        &authorizer::request()
            .header("Sec-WebSocket-Protocol", &protocols)
            .build(),
    )
    .await;
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
    // Missing: 401 (the error message API Gateway maps); bad: Deny (403).
    let (kind, body) = invoke(&f, &authorizer::request().build()).await;
    assert_eq!(
        (kind, body["errorMessage"].as_str()),
        ("error", Some("Unauthorized"))
    );
    let (_, body) = invoke(
        &f,
        &authorizer::request().token(&format!("{token}x")).build(),
    )
    .await;
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Deny");
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
