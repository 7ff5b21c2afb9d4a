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

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Stack, function, recv_json};
use switchboard::names::env;
use switchboard::queue::Queue;
use switchboard::testing::events::{sqs, websocket};
use switchboard::testing::lambda::FunctionEnv;

/// A `placeOrder` message of `alice` with this `messageId` (and `requestId`
/// `req-{messageId}`).
fn message_event(connection_id: &str, message_id: &str, body: &str) -> Value {
    websocket::message("placeOrder", connection_id)
        .body(body)
        .message_id(message_id)
        .request_id(format!("req-{message_id}"))
        .build()
}

/// A record of the `orders` FIFO queue: deduplication id `d-{messageId}`.
fn sqs_record(message_id: &str, group: &str, body: &str) -> sqs::Record {
    sqs::record(message_id, body)
        .fifo(group, &format!("d-{message_id}"))
        .queue("chat-test-orders.fifo")
}

#[tokio::test]
async fn forward_on_sqs_and_consume_batches_with_partial_failures() {
    let Some(stack) = Stack::start("queue_lambda", "q").await else {
        return;
    };
    let sqs = &stack.queue;
    // A real customer on the local gateway, recorded in moto's table as `$connect` would.
    let (mut ws, id) = stack.socket("alice").await;
    let vars = stack.env();

    // The connection record the consumer looks the customer up by.
    let mut f = function("ws:$connect", &vars).await;
    // A live start time: reads skip records whose `expires` (start + 2 h 15 min) passed.
    let connect = websocket::connect(&id)
        .connected_at(support::now_ms())
        .message_id("m0")
        .request_id("req-m0")
        .build();
    assert_eq!(f.response(&connect).await["statusCode"], 200);
    f.kill().await.unwrap();

    // placeOrder: accepted, forwarded once even when API Gateway retries the invocation.
    let mut f = function("ws:placeOrder", &vars).await;
    let order = r#"{"action":"placeOrder","item":"tea","qty":2,"ref":"r-1"}"#;
    for _ in 0..2 {
        let answer = f.response(&message_event(&id, "bXNnMQ==", order)).await;
        let reply: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(reply["action"], "orderAccepted", "{reply}");
        assert_eq!(reply["ref"], "r-1");
    }
    // An invalid order is refused and not queued.
    let answer = f
        .response(&message_event(
            &id,
            "bXNnMg==",
            r#"{"action":"placeOrder","item":"tea","qty":0}"#,
        ))
        .await;
    let reply: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["error"]["code"], "bad_payload", "{reply}");
    f.kill().await.unwrap();

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
    let consumer = function("queue:orders", &vars).await;
    let other = message.body.replace("\"tea\"", "\"cake\"");
    let event = sqs::event([
        sqs_record(&message.message_id, "alice", &message.body),
        sqs_record("bad-1", "bob", "{not json"),
        sqs_record("after-bad", "bob", &other),
        sqs_record("carol-1", "carol", &other.replace("alice", "carol")),
    ])
    .build();
    let answer = consumer.response(&event).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [
            {"itemIdentifier": "bad-1"},
            {"itemIdentifier": "after-bad"}
        ]}),
    );
    let placed = recv_json(&mut ws).await;
    assert_eq!(placed["action"], "orderPlaced", "{placed}");
    assert_eq!(placed["orderId"], message.message_id.as_str());
    assert_eq!(placed["item"], "tea");
    assert_eq!(placed["qty"], 2);
    assert_eq!(placed["customer"], "alice");
    assert_eq!(placed["ref"], "r-1");

    // The batch's EMF line: its failures, by queue, and the fan-out to alice (carol is
    // not connected, so the send to her user reaches no connection).
    let docs = consumer.emf_documents(1).await;
    let batch = docs.first().cloned().unwrap_or_default();
    assert_eq!(batch["Queue"], "orders", "{docs:?}");
    assert_eq!(batch["QueueBatchFailures"], 2);
    assert_eq!(batch["FanoutRecipients"], 1);
    assert_eq!(batch["FanoutGone"], 0);

    // A batch of only good messages reports nothing; an empty batch too.
    let answer = consumer.response(&sqs::event([]).build()).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let docs = consumer.emf_documents(2).await;
    assert_eq!(
        docs.get(1).map(|d| d["QueueBatchFailures"].clone()),
        Some(json!(0))
    );

    // The Lambda deletes what it did not report: the queue's message is done.
    for m in &received {
        sqs.delete("orders", &m.receipt_handle).await.unwrap();
    }
    stack.gw.shutdown().await;
}

#[tokio::test]
async fn consumer_role_needs_the_management_endpoint() {
    let vars = FunctionEnv::local()
        .set(env::CONNECTIONS_TABLE, "c")
        .set(env::ROOMS_TABLE, "r");
    let mut f = function("queue:orders", &vars).await;
    let error = f.init_error().await;
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains(env::MANAGEMENT_ENDPOINT), "{message}");
    let _ = f.exit_status().await;

    // A forwarding route without its queue's URL fails at cold start, naming it.
    let mut f = function("ws:placeOrder", &vars).await;
    let error = f.init_error().await;
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains(&env::queue_url("orders")), "{message}");
    let _ = f.exit_status().await;
}
