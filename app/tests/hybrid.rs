//! `cargo run -- --store dynamodb --endpoint URL`: the local gateway keeping its books in
//! DynamoDB (moto here), as a developer runs it against moto or a real table.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use support::spawn_local_gateway;
use switchboard::aws::AwsSettings;
use switchboard::aws::dynamodb::{DynamoStore, TableNames};
use switchboard::backend::ConnectionStore;
use switchboard::names::env;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn local_gateway_on_dynamodb() {
    let Some(moto) = switchboard::testing::moto_endpoint("local_gateway_on_dynamodb") else {
        return;
    };
    let stage = format!("hybrid{}", switchboard::ids::new_api_id());
    let (mut child, ws_url, _banner) = spawn_local_gateway(
        Command::new(env!("CARGO_BIN_EXE_chat-app"))
            .args([
                "--port",
                "0",
                "--dev-auth",
                "--stage",
                &stage,
                "--store",
                "dynamodb",
                "--endpoint",
                &moto,
            ])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove(env::CONNECTIONS_TABLE)
            .env_remove(env::ROOMS_TABLE)
            .stderr(Stdio::null()),
        WAIT,
    )
    .await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}?user=dora"))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"action":"join","room":"hybrid"}"#))
        .await
        .unwrap();
    let joined: Value = loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v["action"] == "joined" {
            break v;
        }
    };
    let id = joined["members"][0]["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();

    // The books are in DynamoDB: the tables the gateway created, named after app and stage.
    let store = DynamoStore::from_settings(
        &AwsSettings::local(&moto),
        TableNames::for_app("chat", &stage),
    );
    let record = store
        .get_connection(&id)
        .await
        .unwrap()
        .expect("the record is in DynamoDB");
    assert_eq!(record.username, "dora");
    assert_eq!(
        store.rooms_of(&id).await.unwrap(),
        vec!["hybrid".to_owned()]
    );

    ws.close(None).await.unwrap();
    let gone = tokio::time::timeout(WAIT, async {
        loop {
            if store.get_connection(&id).await.unwrap().is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "$disconnect removed the record from DynamoDB");
    child.kill().await.unwrap();
}
