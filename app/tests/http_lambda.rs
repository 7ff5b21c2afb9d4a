//! The real `chat-app` binary as the `http` Lambda function (`_HANDLER=http`), against a
//! fake Lambda Runtime API, fed the HTTP API payload v2 fixture events of
//! `tests/fixtures/http/`: what the function makes of the event and of the answer.
//!
//! The store-reading requests need moto (`.ci/run` starts one; by hand:
//! `eval "$(bash scripts/moto.sh start)"`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::aws::AwsSettings;
use switchboard::aws::dynamodb::{DynamoStore, TableNames};
use switchboard::backend::{ConnectionRecord, ConnectionStore, Member};
use switchboard::testing::lambda::{Answer, FakeRuntimeApi};
use tokio::process::Child;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/http/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn spawn(api: &FakeRuntimeApi, handler: &str, env: &[(&str, String)]) -> Child {
    api.spawn_function(env!("CARGO_BIN_EXE_chat-app"), handler, env)
        .expect("the chat-app binary starts")
}

fn env(dynamodb: &str, tables: &TableNames) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDLOCAL".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local-secret".to_owned()),
        ("SWITCHBOARD_CONNECTIONS_TABLE", tables.connections.clone()),
        ("SWITCHBOARD_ROOMS_TABLE", tables.rooms.clone()),
        ("SWITCHBOARD_DYNAMODB_ENDPOINT", dynamodb.to_owned()),
    ]
}

/// Invokes the function with a fixture; returns (status, parsed body, the whole answer).
async fn invoke(api: &FakeRuntimeApi, name: &str) -> (u64, Value, Value) {
    let answer = api.invoke(&fixture(name)).await.expect("an answer in time");
    let Answer::Response(response) = answer else {
        panic!("{name}: invocation error {answer:?}");
    };
    let status = response["statusCode"].as_u64().unwrap();
    let content_type = response["headers"]["content-type"].as_str().unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "{name}: {response}"
    );
    assert_eq!(response["isBase64Encoded"], false, "{name}: {response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (status, body, response)
}

#[tokio::test]
async fn errors_without_touching_the_store() {
    let api = FakeRuntimeApi::start().await.unwrap();
    // Nothing listens there: these requests must not reach DynamoDB.
    let tables = TableNames::for_app("chat", "test");
    let mut child = spawn(&api, "http", &env("http://127.0.0.1:9", &tables));
    for (name, status, code) in [
        ("me-no-authorizer.json", 401, "unauthorized"),
        ("unknown-path.json", 404, "not_found"),
        ("wrong-method.json", 405, "method_not_allowed"),
        ("room-members-invalid.json", 400, "invalid_room"),
    ] {
        let (got, body, _) = invoke(&api, name).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
    }
    child.kill().await.unwrap();
}

#[tokio::test]
async fn unknown_roles_name_the_http_role() {
    let api = FakeRuntimeApi::start().await.unwrap();
    let tables = TableNames::for_app("chat", "test");
    let mut child = spawn(&api, "https", &env("http://127.0.0.1:9", &tables));
    let error = api.init_error(Duration::from_secs(20)).await.unwrap();
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("unknown function role `https`"),
        "{message}"
    );
    assert!(message.contains(", http"), "{message}");
    let _ = child.kill().await;
}

#[tokio::test]
async fn reads_the_store_with_the_jwt_claims() {
    let Some(moto) = switchboard::testing::moto_endpoint("http_lambda") else {
        return;
    };
    let tables = TableNames::for_app(&format!("http-{}", switchboard::ids::new_api_id()), "test");
    let store = DynamoStore::from_settings(&AwsSettings::local(&moto), tables.clone());
    store.create_tables().await.unwrap();
    for (id, user, at, rooms) in [
        ("AAAAAAAAAAAAAAA=", "alice", 1_000_i64, &["lobby"][..]),
        ("BBBBBBBBBBBBBBB=", "bob", 2_000_i64, &["lobby", "dev"][..]),
    ] {
        store
            .put_connection(&ConnectionRecord {
                connection_id: id.to_owned(),
                username: user.to_owned(),
                session_key: ConnectionRecord::session_key_for(at, id),
                connected_at: at,
                expires: 4_000_000_000,
                source_ip: None,
                user_agent: None,
                claims: serde_json::Map::new(),
            })
            .await
            .unwrap();
        for room in rooms {
            let member = Member {
                connection_id: id.to_owned(),
                username: user.to_owned(),
            };
            store.join_room(room, &member).await.unwrap();
        }
    }

    let api = FakeRuntimeApi::start().await.unwrap();
    let mut child = spawn(&api, "http", &env(&moto, &tables));
    let (status, me, _) = invoke(&api, "me.json").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["groups"], json!(["admins", "chat-users"]));
    assert_eq!(
        me["connections"],
        json!([{"connectionId": "AAAAAAAAAAAAAAA=", "connectedAt": 1000, "rooms": ["lobby"]}])
    );
    let (status, rooms, _) = invoke(&api, "rooms.json").await;
    assert_eq!(status, 200, "{rooms}");
    assert_eq!(
        rooms,
        json!({"rooms": [{"room": "dev", "members": 1}, {"room": "lobby", "members": 2}]})
    );
    let (status, members, _) = invoke(&api, "room-members.json").await;
    assert_eq!(status, 200, "{members}");
    assert_eq!(members["members"].as_array().map(Vec::len), Some(2));
    child.kill().await.unwrap();
}
