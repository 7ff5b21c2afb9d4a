//! The real `chat-app` binary as the `http` Lambda function (`_HANDLER=http`), against a
//! fake Lambda Runtime API, fed the HTTP API payload v2 fixture events of
//! `tests/fixtures/http/`: what the function makes of the event and of the answer.
//!
//! The store-reading requests need moto (`.ci/run` starts one; by hand:
//! `eval "$(bash scripts/moto.sh start)"`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use support::{Function, function};
use switchboard::aws::AwsSettings;
use switchboard::aws::dynamodb::{DynamoStore, TableNames};
use switchboard::testing::lambda::{Answer, FunctionEnv};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/http/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn env(dynamodb: &str, tables: &TableNames) -> FunctionEnv {
    FunctionEnv::local()
        .tables(tables)
        .dynamodb_endpoint(dynamodb)
}

/// Invokes the function with a fixture; returns (status, parsed body, the whole answer).
async fn invoke(f: &Function, name: &str) -> (u64, Value, Value) {
    let answer = f.invoke(&fixture(name)).await;
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
    // Nothing listens there: these requests must not reach DynamoDB.
    let tables = TableNames::for_app("chat", "test");
    let mut f = function("http", &env("http://127.0.0.1:9", &tables)).await;
    for (name, status, code) in [
        ("me-no-authorizer.json", 401, "unauthorized"),
        ("unknown-path.json", 404, "not_found"),
        ("wrong-method.json", 405, "method_not_allowed"),
        ("room-members-invalid.json", 400, "invalid_room"),
    ] {
        let (got, body, _) = invoke(&f, name).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
    }
    f.kill().await.unwrap();
}

#[tokio::test]
async fn unknown_roles_name_the_http_role() {
    let tables = TableNames::for_app("chat", "test");
    let mut f = function("https", &env("http://127.0.0.1:9", &tables)).await;
    let error = f.init_error().await;
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("unknown function role `https`"),
        "{message}"
    );
    assert!(message.contains(", http"), "{message}");
    let _ = f.kill().await;
}

#[tokio::test]
async fn reads_the_store_with_the_jwt_claims() {
    let Some(moto) = switchboard::testing::moto_endpoint("http_lambda") else {
        return;
    };
    let tables = TableNames::for_app(&format!("http-{}", switchboard::ids::new_api_id()), "test");
    let store = DynamoStore::from_settings(&AwsSettings::local(&moto), tables.clone());
    store.create_tables().await.unwrap();
    switchboard::testing::events::http::seed_fixture_connections(&store)
        .await
        .unwrap();

    let mut f = function("http", &env(&moto, &tables)).await;
    let (status, me, _) = invoke(&f, "me.json").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["groups"], json!(["admins", "chat-users"]));
    assert_eq!(
        me["connections"],
        json!([{"connectionId": "AAAAAAAAAAAAAAA=", "connectedAt": 1000, "rooms": ["lobby"]}])
    );
    let (status, rooms, _) = invoke(&f, "rooms.json").await;
    assert_eq!(status, 200, "{rooms}");
    assert_eq!(
        rooms,
        json!({"rooms": [{"room": "dev", "members": 1}, {"room": "lobby", "members": 2}]})
    );
    let (status, members, _) = invoke(&f, "room-members.json").await;
    assert_eq!(status, 200, "{members}");
    assert_eq!(members["members"].as_array().map(Vec::len), Some(2));
    f.kill().await.unwrap();
}
