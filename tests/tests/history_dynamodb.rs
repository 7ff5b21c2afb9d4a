//! Room history and `resume` over real sockets on DynamoDB (moto): the local gateway
//! with `DynamoStore` and `DynamoHistory`, as `--store dynamodb` runs it. The same drop
//! and resume scenario as `history.rs` (close, signed DELETE, TCP reset), then a reset
//! room (new epoch) and expired history: `recovered:false`, nothing replayed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchboard::aws::AwsSettings;
use switchboard::aws::dynamodb::{DynamoStore, TableNames};
use switchboard::aws::history::DynamoHistory;
use switchboard::backend::history::Clock;
use switchboard::local::LocalGateway;
use switchboard::testing::moto_endpoint;
use switchboard_tests::history::{DropBy, drop_and_resume, line};
use switchboard_tests::*;

/// The chat on moto: fresh tables per test, history on `clock`.
async fn start_on_moto(test: &str, clock: Clock) -> Option<(LocalGateway, DynamoHistory)> {
    let endpoint = moto_endpoint(test)?;
    let settings = AwsSettings::local(endpoint);
    let prefix = format!("h15-{test}-{}", rand::random::<u32>());
    let store = DynamoStore::from_settings(&settings, TableNames::for_app(&prefix, "test"));
    step("connection tables", store.create_tables())
        .await
        .unwrap();
    let history =
        DynamoHistory::from_settings(&settings, format!("{prefix}-history")).with_clock(clock);
    step("history table", history.create_table()).await.unwrap();
    let gw = step(
        "gateway start",
        chat_app::app()
            .dev_auth()
            .store(store)
            .history_store(history.clone())
            .serve_local(config()),
    )
    .await
    .unwrap();
    Some((gw, history))
}

fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

#[tokio::test]
async fn resume_on_dynamodb_after_close_delete_and_tcp_reset() {
    let Some((gw, _)) = start_on_moto("resume", system_clock()).await else {
        return;
    };
    drop_and_resume(&gw, DropBy::Close, "close", 1).await;
    drop_and_resume(&gw, DropBy::ServerDelete, "delete", 1).await;
    drop_and_resume(&gw, DropBy::Tcp, "tcp", 1).await;
    shutdown(gw).await;
}

async fn say(ws: &mut Ws, room: &str, text: &str) -> Value {
    send_json(ws, &line(room, text)).await;
    recv_until(ws, |f| f["action"] == "message" && f["text"] == text)
        .await
        .0
}

async fn resume(ws: &mut Ws, room: &str, since: u64, epoch: &Value) -> (Value, Vec<Value>) {
    send_json(
        ws,
        &json!({"action": "resume", "rooms": [{"room": room, "since": since, "epoch": epoch}]}),
    )
    .await;
    recv_until(ws, |f| f["action"] == "resumed").await
}

#[tokio::test]
async fn a_reset_room_has_a_new_epoch_and_is_not_recovered() {
    let Some((gw, history)) = start_on_moto("reset", system_clock()).await else {
        return;
    };
    let mut writer = connect(&gw, "writer").await;
    join(&mut writer, "r").await;
    let before = say(&mut writer, "r", "old").await;
    step("reset", history.reset("r")).await.unwrap();
    let after = say(&mut writer, "r", "new").await;
    assert_ne!(
        after["epoch"], before["epoch"],
        "a reset room has a new epoch"
    );
    assert_eq!(after["seq"], 1, "and counts from 1 again");

    let mut reader = connect(&gw, "reader").await;
    let since = before["seq"].as_u64().unwrap();
    let (resumed, replay) = resume(&mut reader, "r", since, &before["epoch"]).await;
    assert!(replay.is_empty(), "nothing replayed: {replay:?}");
    let entry = &resumed["rooms"][0];
    assert_eq!(entry["recovered"], false, "{resumed}");
    assert_eq!(entry["epoch"], after["epoch"]);
    assert_eq!(entry["seq"], 1);
    // With the new epoch it catches up.
    let (resumed, replay) = resume(&mut reader, "r", 0, &after["epoch"]).await;
    assert_eq!(resumed["rooms"][0]["recovered"], true, "{resumed}");
    assert_eq!(replay.len(), 1);
    assert_eq!(replay[0]["text"], "new");
    shutdown(gw).await;
}

#[tokio::test]
async fn expired_history_on_dynamodb_is_not_recovered() {
    let start_at = SystemTime::now();
    let now = Arc::new(Mutex::new(start_at));
    let clock_now = Arc::clone(&now);
    let clock: Clock = Arc::new(move || *clock_now.lock().unwrap());
    let Some((gw, _)) = start_on_moto("expired", clock).await else {
        return;
    };
    let mut writer = connect(&gw, "writer").await;
    join(&mut writer, "old").await;
    let first = say(&mut writer, "old", "a").await;
    let last = say(&mut writer, "old", "b").await;
    // Past the chat's one-hour retention: the frames' `expires` has passed (DynamoDB's
    // TTL deletes lazily; reads skip them).
    *now.lock().unwrap() = start_at + Duration::from_secs(2 * 60 * 60);
    let mut reader = connect(&gw, "reader").await;
    let since = first["seq"].as_u64().unwrap();
    let (resumed, replay) = resume(&mut reader, "old", since, &first["epoch"]).await;
    assert!(replay.is_empty(), "nothing replayed: {replay:?}");
    let entry = &resumed["rooms"][0];
    assert_eq!(entry["recovered"], false, "{resumed}");
    assert_eq!(entry["seq"], last["seq"]);
    shutdown(gw).await;
}
