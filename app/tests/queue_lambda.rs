//! The queue path on AWS, against moto's SQS and DynamoDB, the real `chat-app` binary
//! under a fake Lambda Runtime API, and the local gateway as the `@connections` endpoint:
//!
//! - `ws:placeOrder` forwards to the SQS FIFO queue with the sender as the message group
//!   and API Gateway's `messageId` as the deduplication id (a retried invocation does not
//!   enqueue twice), in an envelope naming the sender;
//! - `queue:orders` takes an `SqsEvent` batch and answers `batchItemFailures`: a malformed
//!   body is reported (not a crash), the later messages of its group are reported too
//!   (not run out of order), the rest are processed once, and the customer's socket gets
//!   the result frame.
//!
//! Needs a moto server: `.ci/run` starts one; by hand: `eval "$(bash scripts/moto.sh start)"`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::aws::AwsSettings;
use switchboard::aws::dynamodb::{DynamoStore, TableNames};
use switchboard::aws::sqs::{QueueNames, SqsQueue};
use switchboard::local::LocalConfig;
use switchboard::queue::{Queue, QueueSettings};
use switchboard::testing::lambda::{Answer, FakeRuntimeApi};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message as WsMsg;

const WAIT: Duration = Duration::from_secs(20);

fn spawn(api: &FakeRuntimeApi, handler: &str, env: &[(&str, String)]) -> Child {
    api.spawn_function(env!("CARGO_BIN_EXE_chat-app"), handler, env)
        .expect("the chat-app binary starts")
}

async fn invoke(api: &FakeRuntimeApi, event: &Value) -> Value {
    match api.invoke(event).await.expect("an answer in time") {
        Answer::Response(v) => v,
        Answer::Error(v) => panic!("invocation error: {v}"),
    }
}

fn message_event(connection_id: &str, message_id: &str, body: &str) -> Value {
    json!({
        "requestContext": {
            "routeKey": "placeOrder",
            "eventType": "MESSAGE",
            "messageId": message_id,
            "messageDirection": "IN",
            "stage": "ws",
            "connectedAt": 1_795_000_000_000_i64,
            "requestTimeEpoch": 1_795_000_000_100_i64,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": format!("req-{message_id}"),
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abcdef1234",
            "authorizer": {"principalId": "alice", "username": "alice"}
        },
        "body": body,
        "isBase64Encoded": false
    })
}

fn sqs_record(message_id: &str, group: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("rh-{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795000000000",
            "MessageGroupId": group,
            "MessageDeduplicationId": format!("d-{message_id}"),
            "SequenceNumber": "18849496460467696128"
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:chat-test-orders.fifo",
        "awsRegion": "us-east-1"
    })
}

async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .unwrap();
        if let WsMsg::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn forward_on_sqs_and_consume_batches_with_partial_failures() {
    let Some(moto) = switchboard::testing::moto_endpoint("queue_lambda") else {
        return;
    };
    let suffix = switchboard::ids::new_api_id().to_lowercase();
    let settings = AwsSettings::local(&moto);
    let tables = TableNames::for_app(&format!("q{suffix}"), "test");
    let store = DynamoStore::from_settings(&settings, tables.clone());
    store.create_tables().await.unwrap();
    let sqs = SqsQueue::from_settings(&settings, QueueNames::prefixed(format!("q{suffix}-")));
    let url = sqs
        .create_queues("orders", &QueueSettings::default())
        .await
        .unwrap();

    // A real customer on the local gateway, recorded in moto's table as `$connect` would.
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
    ws.send(WsMsg::text(r#"{"action":"whoami"}"#))
        .await
        .unwrap();
    let id = next_json(&mut ws).await["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();

    let env = vec![
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDLOCAL".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local-secret".to_owned()),
        ("SWITCHBOARD_CONNECTIONS_TABLE", tables.connections.clone()),
        ("SWITCHBOARD_ROOMS_TABLE", tables.rooms.clone()),
        ("SWITCHBOARD_DYNAMODB_ENDPOINT", moto.clone()),
        ("SWITCHBOARD_SQS_ENDPOINT", moto.clone()),
        ("SWITCHBOARD_QUEUE_URL_ORDERS", url.clone()),
        ("SWITCHBOARD_MANAGEMENT_ENDPOINT", gw.management_url()),
    ];

    // The connection record the consumer looks the customer up by.
    let runtime = FakeRuntimeApi::start().await.unwrap();
    let mut child = spawn(&runtime, "ws:$connect", &env);
    let mut connect = message_event(&id, "m0", "");
    connect["requestContext"]["eventType"] = json!("CONNECT");
    connect["requestContext"]["routeKey"] = json!("$connect");
    connect["body"] = Value::Null;
    assert_eq!(invoke(&runtime, &connect).await["statusCode"], 200);
    child.kill().await.unwrap();

    // placeOrder: accepted, forwarded once even when API Gateway retries the invocation.
    let runtime = FakeRuntimeApi::start().await.unwrap();
    let mut child = spawn(&runtime, "ws:placeOrder", &env);
    let order = r#"{"action":"placeOrder","item":"tea","qty":2,"ref":"r-1"}"#;
    for _ in 0..2 {
        let answer = invoke(&runtime, &message_event(&id, "bXNnMQ==", order)).await;
        let reply: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(reply["action"], "orderAccepted", "{reply}");
        assert_eq!(reply["ref"], "r-1");
    }
    // An invalid order is refused and not queued.
    let answer = invoke(
        &runtime,
        &message_event(
            &id,
            "bXNnMg==",
            r#"{"action":"placeOrder","item":"tea","qty":0}"#,
        ),
    )
    .await;
    let reply: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["error"]["code"], "bad_payload", "{reply}");
    child.kill().await.unwrap();

    let received = sqs
        .receive("orders", 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(received.len(), 1, "deduplicated by messageId: {received:?}");
    let message = &received[0];
    assert_eq!(message.group_id, "alice");
    assert_eq!(message.dedup_id, "bXNnMQ==");
    let envelope: Value = serde_json::from_str(&message.body).unwrap();
    assert_eq!(envelope["v"], 1);
    assert_eq!(envelope["queue"], "orders");
    assert_eq!(envelope["route"], "placeOrder");
    assert_eq!(envelope["sender"]["connectionId"], id.as_str());
    assert_eq!(
        envelope["sender"]["identity"]["context"]["username"],
        "alice"
    );
    assert_eq!(envelope["payload"]["item"], "tea");
    assert!(envelope["sentAt"].as_str().unwrap().ends_with('Z'));

    // queue:orders: the real message, then a malformed one and its group's successor,
    // and an order of a customer who is not connected.
    let runtime = FakeRuntimeApi::start().await.unwrap();
    let _child = spawn(&runtime, "queue:orders", &env);
    let other = message.body.replace("\"tea\"", "\"cake\"");
    let event = json!({"Records": [
        sqs_record(&message.message_id, "alice", &message.body),
        sqs_record("bad-1", "bob", "{not json"),
        sqs_record("after-bad", "bob", &other),
        sqs_record("carol-1", "carol", &other.replace("alice", "carol")),
    ]});
    let answer = invoke(&runtime, &event).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [
            {"itemIdentifier": "bad-1"},
            {"itemIdentifier": "after-bad"}
        ]}),
    );
    let placed = next_json(&mut ws).await;
    assert_eq!(placed["action"], "orderPlaced", "{placed}");
    assert_eq!(placed["orderId"], message.message_id.as_str());
    assert_eq!(placed["item"], "tea");
    assert_eq!(placed["qty"], 2);
    assert_eq!(placed["customer"], "alice");
    assert_eq!(placed["ref"], "r-1");

    // A batch of only good messages reports nothing; an empty batch too.
    let answer = invoke(&runtime, &json!({"Records": []})).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));

    // The Lambda deletes what it did not report: the queue's message is done.
    for m in &received {
        sqs.delete("orders", &m.receipt_handle).await.unwrap();
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn consumer_role_needs_the_management_endpoint() {
    let runtime = FakeRuntimeApi::start().await.unwrap();
    let env = vec![
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDLOCAL".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local-secret".to_owned()),
        ("SWITCHBOARD_CONNECTIONS_TABLE", "c".to_owned()),
        ("SWITCHBOARD_ROOMS_TABLE", "r".to_owned()),
    ];
    let mut child = spawn(&runtime, "queue:orders", &env);
    let error = runtime.init_error(WAIT).await.unwrap();
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("SWITCHBOARD_MANAGEMENT_ENDPOINT"),
        "{message}"
    );
    let _ = tokio::time::timeout(WAIT, child.wait()).await.unwrap();

    // A forwarding route without its queue's URL fails at cold start, naming it.
    let runtime = FakeRuntimeApi::start().await.unwrap();
    let mut child = spawn(&runtime, "ws:placeOrder", &env);
    let error = runtime.init_error(WAIT).await.unwrap();
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("SWITCHBOARD_QUEUE_URL_ORDERS"),
        "{message}"
    );
    let _ = tokio::time::timeout(WAIT, child.wait()).await.unwrap();
}
