//! `cargo run -- --store dynamodb --endpoint URL`: the local gateway keeping its books in
//! DynamoDB (moto here), as a developer runs it against moto or a real table.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard::aws::AwsSettings;
use switchboard::aws::dynamodb::{DynamoStore, TableNames};
use switchboard::backend::ConnectionStore;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn local_gateway_on_dynamodb() {
    let Some(moto) = switchboard::testing::moto_endpoint("local_gateway_on_dynamodb") else {
        return;
    };
    let stage = format!("hybrid{}", switchboard::ids::new_api_id());
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-app"))
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
        .env_remove("SWITCHBOARD_CONNECTIONS_TABLE")
        .env_remove("SWITCHBOARD_ROOMS_TABLE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The banner names the address: "  WebSocket    ws://127.0.0.1:PORT/ws?user=NAME".
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ws_url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.trim().strip_prefix("WebSocket") {
                return url.trim().trim_end_matches("?user=NAME").to_owned();
            }
        }
        panic!("the gateway exited before printing its address");
    })
    .await
    .unwrap();

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
