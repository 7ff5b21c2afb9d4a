//! The SQS queue against a moto server: FIFO send and receive with attributes,
//! deduplication, visibility timeouts, redrive to the dead-letter queue, stats, argument
//! validation, unknown queues, and `create_queues`.
//!
//! The endpoint comes from `SWITCHBOARD_TEST_MOTO`; start a server with
//! `eval "$(bash scripts/moto.sh start)"`. With `SWITCHBOARD_SKIP_MOTO=1` and no endpoint
//! the moto tests return early. Every test uses its own queues (a unique prefix).
//!
//! What moto 5.2.5 does, as these tests pin it down:
//!
//! - Deduplication is checked only against messages still in the queue: a duplicate
//!   `MessageDeduplicationId` is accepted and not enqueued while the first message exists,
//!   but once that message is deleted the same id is enqueued again (SQS keeps the id for
//!   5 minutes from the first send). A suppressed duplicate gets a new `MessageId` and
//!   `SequenceNumber` of its own.
//! - `SequenceNumber` is a random 20-digit number per send, not increasing (SQS's
//!   increase within a group); the received one equals the one `SendMessage` returned.
//! - `VisibilityTimeout` (even 1 s) is honoured: the message is redelivered with
//!   `ApproximateReceiveCount` 2 and a new receipt handle.
//! - `RedrivePolicy` is honoured: the receive after `maxReceiveCount` receives moves the
//!   message to the dead-letter queue (same `MessageId`, `ApproximateReceiveCount` carried
//!   over) instead of delivering it.
//! - Redelivery order after a visibility timeout is wrong when several messages of one
//!   group expire together (moto unlocks the group message by message and delivers the
//!   last one first), so the redelivery tests keep one message per group in flight.
//! - `DeleteMessage` with an older receipt handle of the message still deletes it;
//!   `ChangeMessageVisibility` of a deleted message is `ReceiptHandleIsInvalid`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::QueueAttributeName;
use switchboard_aws::AwsSettings;
use switchboard_aws::sqs::{QueueNames, SqsQueue};
use switchboard_core::queue::{
    OutgoingMessage, Queue, QueueError, QueueSettings, QueueStats, dead_letter_queue_name,
};

use switchboard_testing::moto_endpoint;

/// A prefix no other test (or earlier run against the same server) uses.
fn unique_prefix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("sbt-{:x}-{n}-", nanos % (1 << 48))
}

/// A queue set on moto with its own naming prefix, or `None` when skipped.
fn sqs(test: &str) -> Option<SqsQueue> {
    let endpoint = moto_endpoint(test)?;
    Some(SqsQueue::from_settings(
        &AwsSettings::local(endpoint),
        QueueNames::prefixed(unique_prefix()),
    ))
}

fn settings(visibility_secs: u64, max_receive_count: u32) -> QueueSettings {
    QueueSettings {
        visibility_timeout: Duration::from_secs(visibility_secs),
        max_receive_count,
        ..QueueSettings::default()
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

const NO_WAIT: Duration = Duration::ZERO;

#[tokio::test]
async fn send_and_receive_in_group_order_with_attributes() {
    let Some(q) = sqs("send_and_receive_in_group_order_with_attributes") else {
        return;
    };
    q.create_queues("orders", &settings(30, 5)).await.unwrap();
    let before = now_ms();

    let mut receipts = Vec::new();
    for (body, group, dedup) in [
        ("a1", "alpha", "d-a1"),
        ("b1", "beta", "d-b1"),
        ("a2", "alpha", "d-a2"),
        ("a3", "alpha", "d-a3"),
    ] {
        let r = q
            .send("orders", &OutgoingMessage::new(body, group, dedup))
            .await
            .unwrap();
        assert!(!r.duplicate);
        assert!(!r.message_id.is_empty());
        receipts.push(r);
    }
    // SQS's sequence numbers increase; moto 5.2.5's are random 20-digit numbers, so
    // only their round trip is checked here.
    assert!(receipts.iter().all(|r| r.sequence > 0), "{receipts:?}");

    let got = q.receive("orders", 10, NO_WAIT).await.unwrap();
    let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies.len(), 4, "{got:?}");
    // Group order holds within each group; groups interleave as SQS likes.
    let alpha: Vec<&str> = bodies
        .iter()
        .copied()
        .filter(|b| b.starts_with('a'))
        .collect();
    assert_eq!(alpha, ["a1", "a2", "a3"]);

    for m in &got {
        let sent = match m.body.as_str() {
            "a1" => &receipts[0],
            "b1" => &receipts[1],
            "a2" => &receipts[2],
            _ => &receipts[3],
        };
        assert_eq!(m.message_id, sent.message_id);
        assert_eq!(m.sequence, sent.sequence);
        assert_eq!(
            m.group_id,
            if m.body.starts_with('a') {
                "alpha"
            } else {
                "beta"
            }
        );
        assert_eq!(m.dedup_id, format!("d-{}", m.body));
        assert_eq!(m.receive_count, 1);
        assert!(!m.receipt_handle.is_empty());
        assert!(
            m.sent_at_ms >= before - 5_000 && m.sent_at_ms <= now_ms() + 5_000,
            "{m:?}"
        );
    }

    // All in flight: nothing more to receive, the groups are locked.
    assert!(q.receive("orders", 10, NO_WAIT).await.unwrap().is_empty());
    for m in &got {
        q.delete("orders", &m.receipt_handle).await.unwrap();
    }
    assert_eq!(q.stats("orders").await.unwrap(), QueueStats::default());
}

#[tokio::test]
async fn a_group_stays_locked_while_its_head_is_in_flight() {
    let Some(q) = sqs("a_group_stays_locked_while_its_head_is_in_flight") else {
        return;
    };
    q.create_queues("jobs", &settings(30, 5)).await.unwrap();
    for i in 0..3 {
        q.send(
            "jobs",
            &OutgoingMessage::new(format!("m{i}"), "g", format!("d{i}")),
        )
        .await
        .unwrap();
    }
    let first = q.receive("jobs", 1, NO_WAIT).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].body, "m0");
    assert!(q.receive("jobs", 10, NO_WAIT).await.unwrap().is_empty());
    q.delete("jobs", &first[0].receipt_handle).await.unwrap();
    let rest = q.receive("jobs", 10, NO_WAIT).await.unwrap();
    let bodies: Vec<&str> = rest.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["m1", "m2"]);
}

#[tokio::test]
async fn deduplication_while_the_message_exists() {
    let Some(q) = sqs("deduplication_while_the_message_exists") else {
        return;
    };
    q.create_queues("dedup", &settings(30, 5)).await.unwrap();
    let first = q
        .send("dedup", &OutgoingMessage::new("first", "g", "same-id"))
        .await
        .unwrap();
    let second = q
        .send("dedup", &OutgoingMessage::new("second", "g", "same-id"))
        .await
        .unwrap();
    // SQS does not say that a send was a duplicate.
    assert!(!second.duplicate);
    // moto 5.2.5 gives the suppressed duplicate an id and sequence of its own.
    assert_ne!(second.message_id, first.message_id);
    assert_eq!(q.stats("dedup").await.unwrap().visible, 1);

    let got = q.receive("dedup", 10, NO_WAIT).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "first");
    assert_eq!(got[0].message_id, first.message_id);

    // Still suppressed while the first is in flight.
    q.send("dedup", &OutgoingMessage::new("third", "g", "same-id"))
        .await
        .unwrap();
    assert_eq!(q.stats("dedup").await.unwrap().visible, 0);

    // moto 5.2.5 forgets the id once the message is deleted (SQS would suppress it for
    // 5 minutes from the first send).
    q.delete("dedup", &got[0].receipt_handle).await.unwrap();
    let after = q
        .send(
            "dedup",
            &OutgoingMessage::new("after delete", "g", "same-id"),
        )
        .await
        .unwrap();
    let got = q.receive("dedup", 10, NO_WAIT).await.unwrap();
    assert_eq!(
        got.len(),
        1,
        "moto enqueues a reused id after delete: {got:?}"
    );
    assert_eq!(got[0].body, "after delete");
    assert_eq!(got[0].message_id, after.message_id);
    assert_eq!(got[0].dedup_id, "same-id");

    // Content-based ids are ordinary deduplication ids here.
    let a = OutgoingMessage::content_deduplicated("same body", "h");
    q.send("dedup", &a).await.unwrap();
    q.send("dedup", &a).await.unwrap();
    assert_eq!(q.stats("dedup").await.unwrap().visible, 1);
}

#[tokio::test]
async fn visibility_timeout_redelivers_with_a_higher_receive_count() {
    let Some(q) = sqs("visibility_timeout_redelivers_with_a_higher_receive_count") else {
        return;
    };
    q.create_queues("vis", &settings(1, 5)).await.unwrap();
    let sent = q
        .send("vis", &OutgoingMessage::new("work", "g", "w1"))
        .await
        .unwrap();

    let first = q.receive("vis", 10, NO_WAIT).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);
    assert!(q.receive("vis", 10, NO_WAIT).await.unwrap().is_empty());
    assert_eq!(
        q.stats("vis").await.unwrap(),
        QueueStats {
            visible: 0,
            in_flight: 1,
            dead_letters: 0
        }
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Long polling returns as soon as the message is back (here: at once).
    let second = q.receive("vis", 10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, sent.message_id);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt_handle, first[0].receipt_handle);

    // change_visibility(0) releases it at once.
    q.change_visibility("vis", &second[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let third = q.receive("vis", 10, NO_WAIT).await.unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].receive_count, 3);

    // Extending it keeps it invisible past the queue's 1 s.
    q.change_visibility("vis", &third[0].receipt_handle, Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(q.receive("vis", 10, NO_WAIT).await.unwrap().is_empty());

    q.delete("vis", &third[0].receipt_handle).await.unwrap();
    assert_eq!(q.stats("vis").await.unwrap(), QueueStats::default());
    // The message is gone: its handle cannot change visibility any more.
    let err = q
        .change_visibility("vis", &third[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidReceipt(_)), "{err:?}");
    // A handle SQS never issued.
    let err = q.delete("vis", "not-a-receipt-handle").await.unwrap_err();
    assert!(matches!(err, QueueError::InvalidReceipt(_)), "{err:?}");
}

#[tokio::test]
async fn redrive_to_the_dead_letter_queue_after_max_receive_count() {
    let Some(q) = sqs("redrive_to_the_dead_letter_queue_after_max_receive_count") else {
        return;
    };
    q.create_queues("flaky", &settings(1, 2)).await.unwrap();
    let sent = q
        .send("flaky", &OutgoingMessage::new("poison", "g", "p1"))
        .await
        .unwrap();
    q.send("flaky", &OutgoingMessage::new("fine", "other", "f1"))
        .await
        .unwrap();

    // "fine" is handled at once; "poison" fails twice (never deleted).
    let first = q.receive("flaky", 10, NO_WAIT).await.unwrap();
    assert_eq!(first.len(), 2);
    for m in first.iter().filter(|m| m.body == "fine") {
        q.delete("flaky", &m.receipt_handle).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = q.receive("flaky", 10, NO_WAIT).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].receive_count, 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // The third receive moves it to the dead-letter queue instead.
    assert!(q.receive("flaky", 10, NO_WAIT).await.unwrap().is_empty());
    assert_eq!(
        q.stats("flaky").await.unwrap(),
        QueueStats {
            visible: 0,
            in_flight: 0,
            dead_letters: 1
        }
    );

    let dead = q.dead_letters("flaky", 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].message_id, sent.message_id);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].group_id, "g");
    assert_eq!(dead[0].dedup_id, "p1");
    // dead_letters released it: it is visible again in the dead-letter queue.
    let dlq = dead_letter_queue_name("flaky");
    assert_eq!(
        q.stats(&dlq).await.unwrap(),
        QueueStats {
            visible: 1,
            in_flight: 0,
            dead_letters: 0
        }
    );
    assert_eq!(q.dead_letters("flaky", 10).await.unwrap().len(), 1);

    // Consuming dead letters: receive and delete on the dead-letter queue's name.
    let got = q.receive(&dlq, 10, NO_WAIT).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, sent.message_id);
    q.delete(&dlq, &got[0].receipt_handle).await.unwrap();
    assert_eq!(q.stats("flaky").await.unwrap(), QueueStats::default());
    assert!(q.dead_letters("flaky", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn stats_count_visible_in_flight_and_dead_letters() {
    let Some(q) = sqs("stats_count_visible_in_flight_and_dead_letters") else {
        return;
    };
    q.create_queues("counted", &settings(30, 5)).await.unwrap();
    assert_eq!(q.stats("counted").await.unwrap(), QueueStats::default());
    for (i, group) in ["a", "a", "b"].iter().enumerate() {
        q.send(
            "counted",
            &OutgoingMessage::new(format!("m{i}"), *group, format!("d{i}")),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        q.stats("counted").await.unwrap(),
        QueueStats {
            visible: 3,
            in_flight: 0,
            dead_letters: 0
        }
    );
    let got = q.receive("counted", 1, NO_WAIT).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        q.stats("counted").await.unwrap(),
        QueueStats {
            visible: 2,
            in_flight: 1,
            dead_letters: 0
        }
    );
}

#[tokio::test]
async fn arguments_are_checked_before_any_call() {
    // An endpoint nothing listens on: any call would fail as a Backend error.
    let q = SqsQueue::from_settings(
        &AwsSettings::local("http://127.0.0.1:9"),
        QueueNames::for_app("chat", "test"),
    );
    let err = q
        .send("orders", &OutgoingMessage::new("body", "", "d"))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidMessage(_)), "{err:?}");
    let err = q
        .send("orders", &OutgoingMessage::new("body", "g", ""))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidMessage(_)), "{err:?}");
    let err = q
        .send("orders", &OutgoingMessage::new("", "g", "d"))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidMessage(_)), "{err:?}");
    for max in [0, 11] {
        let err = q.receive("orders", max, NO_WAIT).await.unwrap_err();
        assert!(matches!(err, QueueError::InvalidParameter(_)), "{err:?}");
        let err = q.dead_letters("orders", max).await.unwrap_err();
        assert!(matches!(err, QueueError::InvalidParameter(_)), "{err:?}");
    }
    let err = q
        .receive("orders", 1, Duration::from_secs(21))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidParameter(_)), "{err:?}");
    let err = q
        .change_visibility("orders", "rh", Duration::from_secs(12 * 3600 + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidParameter(_)), "{err:?}");
    let err = q.delete("orders", "").await.unwrap_err();
    assert!(matches!(err, QueueError::InvalidReceipt(_)), "{err:?}");
    let err = q
        .create_queues("orders", &settings(30, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidParameter(_)), "{err:?}");
    // Names no SQS queue can have are unknown without a call.
    let err = q.stats("has space").await.unwrap_err();
    assert_eq!(err, QueueError::UnknownQueue("has space".into()));
}

#[tokio::test]
async fn unknown_queues() {
    let Some(endpoint) = moto_endpoint("unknown_queues") else {
        return;
    };
    let q = SqsQueue::from_settings(
        &AwsSettings::local(endpoint.clone()),
        QueueNames::prefixed(unique_prefix()),
    );
    let unknown = QueueError::UnknownQueue("nope".into());
    let msg = OutgoingMessage::new("x", "g", "d");
    assert_eq!(q.send("nope", &msg).await.unwrap_err(), unknown);
    assert_eq!(q.receive("nope", 1, NO_WAIT).await.unwrap_err(), unknown);
    assert_eq!(q.delete("nope", "rh").await.unwrap_err(), unknown);
    assert_eq!(
        q.change_visibility("nope", "rh", NO_WAIT)
            .await
            .unwrap_err(),
        unknown
    );
    assert_eq!(q.stats("nope").await.unwrap_err(), unknown);
    assert_eq!(
        q.dead_letters("nope", 1).await.unwrap_err(),
        QueueError::UnknownQueue(dead_letter_queue_name("nope"))
    );

    // Explicit URLs: unmapped names are unknown; a mapped URL of a missing queue too.
    let explicit = SqsQueue::from_settings(
        &AwsSettings::local(endpoint.clone()),
        QueueNames::from_urls([(
            "ghost",
            format!("{endpoint}/123456789012/{}ghost.fifo", unique_prefix()),
        )]),
    );
    assert_eq!(
        explicit.stats("nope").await.unwrap_err(),
        QueueError::UnknownQueue("nope".into())
    );
    assert_eq!(
        explicit.send("ghost", &msg).await.unwrap_err(),
        QueueError::UnknownQueue("ghost".into())
    );

    // A queue created after a failed lookup is found (failures are not cached).
    q.create_queues("nope", &settings(30, 5)).await.unwrap();
    let fresh = SqsQueue::new(q.client().clone(), q.names().clone());
    fresh.send("nope", &msg).await.unwrap();
    assert_eq!(fresh.stats("nope").await.unwrap().visible, 1);
}

#[tokio::test]
async fn create_queues_is_idempotent_and_sets_the_attributes() {
    let Some(q) = sqs("create_queues_is_idempotent_and_sets_the_attributes") else {
        return;
    };
    let url = q.create_queues("made", &settings(7, 3)).await.unwrap();
    assert_eq!(q.create_queues("made", &settings(7, 3)).await.unwrap(), url);
    assert_eq!(q.queue_url("made").await.unwrap(), url);
    let prefix = q.names().prefix().unwrap().to_owned();
    assert!(url.ends_with(&format!("/{prefix}made.fifo")), "{url}");
    let dlq_url = q.queue_url(&dead_letter_queue_name("made")).await.unwrap();
    assert!(
        dlq_url.ends_with(&format!("/{prefix}made-dlq.fifo")),
        "{dlq_url}"
    );

    let attributes = |url: String| {
        let client = q.client().clone();
        async move {
            client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .unwrap()
                .attributes()
                .cloned()
                .unwrap_or_default()
        }
    };
    let dlq = attributes(dlq_url.clone()).await;
    assert_eq!(dlq[&QueueAttributeName::FifoQueue], "true");
    assert_eq!(dlq[&QueueAttributeName::MessageRetentionPeriod], "1209600");
    let dlq_arn = dlq[&QueueAttributeName::QueueArn].clone();

    let main = attributes(url.clone()).await;
    assert_eq!(main[&QueueAttributeName::FifoQueue], "true");
    assert_eq!(
        main[&QueueAttributeName::ContentBasedDeduplication],
        "false"
    );
    assert_eq!(main[&QueueAttributeName::VisibilityTimeout], "7");
    let redrive: serde_json::Value =
        serde_json::from_str(&main[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "3"
    );

    // Other settings update the existing queue.
    assert_eq!(q.create_queues("made", &settings(9, 4)).await.unwrap(), url);
    let main = attributes(url.clone()).await;
    assert_eq!(main[&QueueAttributeName::VisibilityTimeout], "9");
    let redrive: serde_json::Value =
        serde_json::from_str(&main[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "4"
    );

    // The same queues through explicit URLs.
    let explicit = SqsQueue::new(
        q.client().clone(),
        QueueNames::from_urls([("made", url), ("made-dlq", dlq_url)]),
    );
    explicit
        .send("made", &OutgoingMessage::new("via url", "g", "u1"))
        .await
        .unwrap();
    let got = explicit.receive("made", 10, NO_WAIT).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "via url");
    assert_eq!(
        explicit.stats("made").await.unwrap(),
        QueueStats {
            visible: 0,
            in_flight: 1,
            dead_letters: 0
        }
    );
}

#[tokio::test]
async fn a_standard_queue_gets_no_group_or_deduplication_ids() {
    let Some(endpoint) = moto_endpoint("a_standard_queue_gets_no_group_or_deduplication_ids")
    else {
        return;
    };
    let settings = AwsSettings::local(endpoint);
    let client = switchboard_aws::sqs::sqs_client(&settings);
    let name = format!("{}fanout", unique_prefix());
    let url = client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    assert!(!switchboard_aws::sqs::is_fifo_url(&url), "{url}");
    let q = SqsQueue::from_settings(&settings, QueueNames::from_urls([("fanout", url)]));
    // SQS refuses MessageGroupId on a standard queue: the send leaves the ids out, and
    // a repeated deduplication id is enqueued again.
    q.send("fanout", &OutgoingMessage::new("a", "g", "same"))
        .await
        .unwrap();
    q.send("fanout", &OutgoingMessage::new("b", "g", "same"))
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for _ in 0..5 {
        for m in q
            .receive("fanout", 10, Duration::from_secs(1))
            .await
            .unwrap()
        {
            assert_eq!(m.group_id, "");
            bodies.push(m.body.clone());
            q.delete("fanout", &m.receipt_handle).await.unwrap();
        }
        if bodies.len() == 2 {
            break;
        }
    }
    bodies.sort();
    assert_eq!(bodies, ["a", "b"]);
    // A FIFO-only call refuses a standard queue up front.
    let err = q
        .create_queues("fanout", &QueueSettings::standard())
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidParameter(_)), "{err:?}");
}
