//! The real `chat-app` binary in Lambda mode, against a fake Lambda Runtime API, moto's
//! DynamoDB, and the local gateway as the `@connections` endpoint.
//!
//! Needs a moto server: `.ci/run` starts one; by hand: `eval "$(bash scripts/moto.sh start)"`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::aws::AwsSettings;
use switchboard::aws::dynamodb::{DynamoStore, TableNames};
use switchboard::backend::ConnectionStore;
use switchboard::local::LocalConfig;
use switchboard::testing::lambda::{Answer, FakeRuntimeApi};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

/// The fake Runtime API plus the real binary.
struct Runtime {
    api: FakeRuntimeApi,
}

impl Runtime {
    async fn start() -> Self {
        Self {
            api: FakeRuntimeApi::start().await.unwrap(),
        }
    }

    /// Queues an event and waits for the function's answer: ("response"|"error", body).
    async fn invoke(&self, event: &Value) -> (String, Value) {
        match self
            .api
            .invoke(event)
            .await
            .expect("the function answered in time")
        {
            Answer::Response(v) => ("response".to_owned(), v),
            Answer::Error(v) => ("error".to_owned(), v),
        }
    }

    async fn init_error(&self) -> Value {
        self.api
            .init_error(WAIT)
            .await
            .expect("an init error was reported")
    }

    fn spawn(&self, handler: &str, extra: &[(&str, String)]) -> Child {
        self.api
            .spawn_function(env!("CARGO_BIN_EXE_chat-app"), handler, extra)
            .expect("the chat-app binary starts")
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", switchboard::ids::new_api_id())
}

fn base_env(moto: &str, tables: &TableNames, management: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDLOCAL".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local-secret".to_owned()),
        ("SWITCHBOARD_CONNECTIONS_TABLE", tables.connections.clone()),
        ("SWITCHBOARD_ROOMS_TABLE", tables.rooms.clone()),
        ("SWITCHBOARD_DYNAMODB_ENDPOINT", moto.to_owned()),
        ("SWITCHBOARD_MANAGEMENT_ENDPOINT", management.to_owned()),
    ]
}

fn ws_event(event_type: &str, route: &str, connection_id: &str, body: Option<&str>) -> Value {
    json!({
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "messageId": "bWVzc2FnZTAwMDA=",
            "extendedRequestId": "ZXh0ZW5kZWQwMDA=",
            "requestTime": "22/Nov/2026:03:41:48 +0000",
            "messageDirection": "IN",
            "stage": "ws",
            "connectedAt": 1_795_000_000_000_i64,
            "requestTimeEpoch": 1_795_000_000_100_i64,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "cmVxdWVzdDAwMDA=",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abcdef1234",
            "authorizer": {"principalId": "alice", "username": "alice"}
        },
        "body": body,
        "isBase64Encoded": false
    })
}

async fn recv_json(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn websocket_roles_process_events_end_to_end() {
    let Some(moto) = switchboard::testing::moto_endpoint("websocket_roles") else {
        return;
    };
    let tables = TableNames::for_app(&unique("lambda"), "test");
    let store = DynamoStore::from_settings(&AwsSettings::local(&moto), tables.clone());
    store.create_tables().await.unwrap();

    // A real client on the local gateway: its connection is what the Lambda events talk about.
    let gw = chat_app::app()
        .dev_auth()
        .serve_local(LocalConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}?user=alice", gw.ws_url()))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"action":"whoami"}"#))
        .await
        .unwrap();
    let me = recv_json(&mut ws).await;
    let id = me["connectionId"].as_str().unwrap().to_owned();

    let runtime = Runtime::start().await;
    let env = base_env(&moto, &tables, &gw.management_url());

    // $connect: one record in DynamoDB.
    let mut child = runtime.spawn("ws:$connect", &env);
    let (kind, body) = runtime
        .invoke(&ws_event("CONNECT", "$connect", &id, None))
        .await;
    assert_eq!(kind, "response", "{body}");
    assert_eq!(body["statusCode"], 200);
    let record = store
        .get_connection(&id)
        .await
        .unwrap()
        .expect("record written");
    assert_eq!(record.username, "alice");
    child.kill().await.unwrap();

    // join: the reply is the route response; the presence frame goes through @connections
    // (the local gateway) to the real socket.
    let mut child = runtime.spawn("ws:join", &env);
    let (kind, body) = runtime
        .invoke(&ws_event(
            "MESSAGE",
            "join",
            &id,
            Some(r#"{"action":"join","room":"lobby"}"#),
        ))
        .await;
    assert_eq!(kind, "response", "{body}");
    let reply: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["action"], "joined");
    assert_eq!(reply["members"][0]["connectionId"], id.as_str());
    let presence = recv_json(&mut ws).await;
    assert_eq!(presence["action"], "presence");
    assert_eq!(presence["event"], "join");

    // A bad event does not kill the process; the next one is served.
    let (kind, body) = runtime
        .invoke(&json!({"not": "an api gateway event"}))
        .await;
    assert_eq!(kind, "error", "{body}");
    let (kind, body) = runtime
        .invoke(&ws_event(
            "MESSAGE",
            "join",
            &id,
            Some(r#"{"action":"join"}"#),
        ))
        .await;
    assert_eq!(kind, "response");
    let reply: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["error"]["code"], "bad_payload");
    child.kill().await.unwrap();

    // sendMessage reaches the socket through @connections.
    let mut child = runtime.spawn("ws:sendMessage", &env);
    let (kind, _) = runtime
        .invoke(&ws_event(
            "MESSAGE",
            "sendMessage",
            &id,
            Some(r#"{"action":"sendMessage","room":"lobby","text":"hi from lambda"}"#),
        ))
        .await;
    assert_eq!(kind, "response");
    let chat = recv_json(&mut ws).await;
    assert_eq!(chat["action"], "message");
    assert_eq!(chat["text"], "hi from lambda");
    child.kill().await.unwrap();

    // Built-ins run as their own roles.
    let mut child = runtime.spawn("ws:ping", &env);
    let (_, body) = runtime
        .invoke(&ws_event(
            "MESSAGE",
            "ping",
            &id,
            Some(r#"{"action":"ping"}"#),
        ))
        .await;
    assert_eq!(body["body"], r#"{"action":"pong"}"#);
    child.kill().await.unwrap();

    // A failure on our side is an invocation error, not a crash: a second $connect for the
    // same connection id collides with the conditional write.
    let mut child = runtime.spawn("ws:$connect", &env);
    let (kind, body) = runtime
        .invoke(&ws_event("CONNECT", "$connect", &id, None))
        .await;
    assert_eq!(kind, "error", "{body}");
    assert_eq!(body["errorType"], "Switchboard.InternalError");
    let (kind, _) = runtime
        .invoke(&ws_event("MESSAGE", "ping", &id, Some("{}")))
        .await;
    assert_eq!(kind, "response", "the process survived");
    child.kill().await.unwrap();

    // $disconnect removes the record and the memberships.
    let mut child = runtime.spawn("ws:$disconnect", &env);
    let (kind, body) = runtime
        .invoke(&ws_event("DISCONNECT", "$disconnect", &id, None))
        .await;
    assert_eq!(kind, "response", "{body}");
    assert!(store.get_connection(&id).await.unwrap().is_none());
    assert!(store.rooms_of(&id).await.unwrap().is_empty());
    child.kill().await.unwrap();

    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_role_is_an_init_error_naming_the_known_ones() {
    let runtime = Runtime::start().await;
    let mut child = runtime.spawn("ws:nope", &[]);
    let error = runtime.init_error().await;
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("ws:nope"), "{message}");
    assert!(
        message.contains("ws:sendMessage") && message.contains("ws:authorizer"),
        "{message}"
    );
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success());
}

#[tokio::test]
async fn missing_configuration_is_listed_at_once() {
    let runtime = Runtime::start().await;
    let mut child = runtime.spawn("ws:join", &[("AWS_REGION", "us-east-1".to_owned())]);
    let error = runtime.init_error().await;
    let message = error["errorMessage"].as_str().unwrap();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "SWITCHBOARD_CONNECTIONS_TABLE",
        "SWITCHBOARD_ROOMS_TABLE",
    ] {
        assert!(message.contains(var), "{message}");
    }
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success());
}

#[tokio::test]
async fn authorizer_role_needs_an_issuer() {
    // The chat app authenticates with tokens: in Lambda that is the JWT authorizer, and
    // without its issuer the cold start fails naming the variable.
    let runtime = Runtime::start().await;
    let mut child = runtime.spawn("ws:authorizer", &[]);
    let error = runtime.init_error().await;
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("SWITCHBOARD_JWT_ISSUER"), "{message}");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success());
}

#[tokio::test]
async fn pre_signup_role_auto_confirms_only_when_configured() {
    let event = json!({
        "version": "1",
        "triggerSource": "PreSignUp_SignUp",
        "region": "us-east-1",
        "userPoolId": "us-east-1_example",
        "userName": "alice",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "client"},
        "request": {"userAttributes": {"email": "alice@example.com"}},
        "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
    });
    for (setting, expected) in [("true", true), ("false", false)] {
        let runtime = Runtime::start().await;
        let _child = runtime.spawn(
            "cognito:pre-signup",
            &[("SWITCHBOARD_AUTO_CONFIRM_USERS", setting.to_owned())],
        );
        let (kind, body) = runtime.invoke(&event).await;
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
    let dir = std::env::temp_dir().join(format!(
        "switchboard-lambda-{}",
        switchboard::ids::new_api_id()
    ));
    let gw = chat_app::app()
        .serve_local(LocalConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let issuer = format!("{}/local", gw.http_url());
    let client = TokenClient(gw.local_addr());
    let token = client.token("alice").await;

    let runtime = Runtime::start().await;
    let _child = runtime.spawn(
        "ws:authorizer",
        &[
            ("SWITCHBOARD_JWT_ISSUER", issuer.clone()),
            ("SWITCHBOARD_JWT_AUDIENCE", "switchboard-local".to_owned()),
        ],
    );
    let arn = "arn:aws:execute-api:us-east-1:000000000000:abcdef1234/ws/$connect";
    let event = |query: Value, headers: Value| {
        json!({
            "type": "REQUEST",
            "methodArn": arn,
            "headers": headers,
            "queryStringParameters": query,
            "requestContext": {"stage": "ws", "apiId": "abcdef1234", "requestId": "x"}
        })
    };
    let (kind, body) = runtime
        .invoke(&event(json!({"token": token}), json!({})))
        .await;
    assert_eq!(kind, "response", "{body}");
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(body["context"]["username"], "alice");
    // The browser path: the token as a subprotocol.
    let (_, body) = runtime
        .invoke(&event(
            json!({}),
            json!({"Sec-WebSocket-Protocol": format!("switchboard, {token}")}),
        ))
        .await;
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
    // Missing: 401 (the error message API Gateway maps); bad: Deny (403).
    let (kind, body) = runtime.invoke(&event(json!({}), json!({}))).await;
    assert_eq!(
        (kind.as_str(), body["errorMessage"].as_str()),
        ("error", Some("Unauthorized"))
    );
    let (_, body) = runtime
        .invoke(&event(json!({"token": format!("{token}x")}), json!({})))
        .await;
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Deny");
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// `POST /local/token` over a plain HTTP/1.1 exchange.
struct TokenClient(std::net::SocketAddr);

impl TokenClient {
    async fn token(&self, user: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = json!({"username": user}).to_string();
        let mut stream = tokio::net::TcpStream::connect(self.0).await.unwrap();
        let request = format!(
            "POST /local/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.0,
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
            .await
            .unwrap()
            .unwrap();
        let json = response.split("\r\n\r\n").nth(1).unwrap();
        let v: Value = serde_json::from_str(json).unwrap();
        v["idToken"].as_str().unwrap().to_owned()
    }
}
