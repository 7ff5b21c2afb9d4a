//! The embedded queue against SQS FIFO semantics: group ordering and locks, deduplication,
//! visibility timeouts, redrive, long polling, validation, and a "nothing lost" property
//! run. Time-dependent tests run on paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_core::queue::memory::MemoryQueue;
use switchboard_core::queue::{
    MAX_BODY_BYTES, OutgoingMessage, Queue, QueueError, QueueSettings, QueueStats,
    dead_letter_queue_name,
};
use tokio::time::Instant;

const Q: &str = "work";

fn queue(settings: QueueSettings) -> Arc<MemoryQueue> {
    Arc::new(MemoryQueue::new().with_queue(Q, settings))
}

fn msg(body: &str, group: &str, dedup: &str) -> OutgoingMessage {
    OutgoingMessage::new(body, group, dedup)
}

fn stats(visible: usize, in_flight: usize, dead_letters: usize) -> QueueStats {
    QueueStats {
        visible,
        in_flight,
        dead_letters,
    }
}

#[tokio::test]
async fn usable_as_a_trait_object() {
    let q: Arc<dyn Queue> = queue(QueueSettings::default());
    q.send(Q, &msg("b", "g", "d")).await.unwrap();
    assert_eq!(q.receive(Q, 10, Duration::ZERO).await.unwrap().len(), 1);
}

#[test]
fn dead_letter_queue_names() {
    assert_eq!(dead_letter_queue_name("work"), "work-dlq");
    assert_eq!(dead_letter_queue_name("work.fifo"), "work-dlq.fifo");
}

#[tokio::test(start_paused = true)]
async fn a_group_is_delivered_in_order_and_locked_while_in_flight() {
    let q = queue(QueueSettings::default());
    for (i, group) in ["a", "a", "b", "a", "b"].iter().enumerate() {
        q.send(Q, &msg(&format!("{group}{i}"), group, &format!("d{i}")))
            .await
            .unwrap();
    }
    // One batch takes the whole run of the oldest group, then the next group.
    let batch = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    let bodies: Vec<&str> = batch.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["a0", "a1", "a3", "b2", "b4"]);
    assert!(
        batch
            .windows(2)
            .all(|w| w[0].group_id != w[1].group_id || w[0].sequence < w[1].sequence)
    );
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 5, 0));

    // Partial batches: the head-run of a group is cut at `max`, and the rest of the group
    // stays locked while the head is in flight.
    let q = queue(QueueSettings::default());
    for i in 0..4 {
        q.send(Q, &msg(&format!("a{i}"), "a", &format!("a{i}")))
            .await
            .unwrap();
    }
    q.send(Q, &msg("b0", "b", "b0")).await.unwrap();
    let first = q.receive(Q, 2, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&first), ["a0", "a1"]);
    let next = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(
        bodies_of(&next),
        ["b0"],
        "group a is locked while a0/a1 are in flight"
    );
    q.delete(Q, &first[0].receipt_handle).await.unwrap();
    assert!(
        q.receive(Q, 10, Duration::ZERO).await.unwrap().is_empty(),
        "a1 still in flight"
    );
    q.delete(Q, &first[1].receipt_handle).await.unwrap();
    let rest = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&rest), ["a2", "a3"]);
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 3, 0));
}

fn bodies_of(batch: &[switchboard_core::queue::ReceivedMessage]) -> Vec<&str> {
    batch.iter().map(|m| m.body.as_str()).collect()
}

/// 4 senders to 8 groups, 4 consumers receiving and deleting, on real threads. Checked:
/// when a consumer starts processing a message, no other message of its group is being
/// processed (received and not yet deleted); per group, messages are processed in strictly
/// increasing sequence (= send order); at the end every sent message was processed exactly
/// once, so per group the processed order equals the send order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ordering_within_groups_under_concurrency() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = 100;
    const GROUPS: usize = 8;
    const TOTAL: usize = SENDERS * PER_SENDER;
    let q = queue(QueueSettings::default());

    #[derive(Default)]
    struct Log {
        /// group -> sequences in processing order.
        processed: HashMap<String, Vec<u128>>,
        /// group -> messages being processed right now.
        active: HashMap<String, usize>,
    }
    let log = Arc::new(Mutex::new(Log::default()));
    let done = Arc::new(AtomicUsize::new(0));

    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let q = q.clone();
        senders.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(s as u64);
            let mut sent: Vec<(String, u128)> = Vec::new();
            for i in 0..PER_SENDER {
                let group = format!("g{}", rng.random_range(0..GROUPS));
                let receipt = q
                    .send(Q, &msg(&format!("{s}-{i}"), &group, &format!("{s}-{i}")))
                    .await
                    .unwrap();
                assert!(!receipt.duplicate);
                sent.push((group, receipt.sequence));
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            sent
        }));
    }
    let mut consumers = Vec::new();
    for c in 0..4u64 {
        let (q, log, done) = (q.clone(), log.clone(), done.clone());
        consumers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(100 + c);
            while done.load(Ordering::SeqCst) < TOTAL {
                let max = rng.random_range(1..=10);
                let batch = q.receive(Q, max, Duration::from_millis(20)).await.unwrap();
                for m in batch {
                    {
                        let mut log = log.lock().unwrap();
                        let active = log.active.entry(m.group_id.clone()).or_default();
                        assert_eq!(
                            *active, 0,
                            "{} processed while its group is in flight",
                            m.body
                        );
                        *active += 1;
                        let seqs = log.processed.entry(m.group_id.clone()).or_default();
                        if let Some(last) = seqs.last() {
                            assert!(*last < m.sequence, "group {} out of order", m.group_id);
                        }
                        seqs.push(m.sequence);
                    }
                    if rng.random_bool(0.3) {
                        tokio::task::yield_now().await;
                    }
                    assert_eq!(m.receive_count, 1);
                    // Processing ends before the delete that unlocks the group, so a
                    // correct queue never lets another consumer see the group active.
                    *log.lock().unwrap().active.get_mut(&m.group_id).unwrap() -= 1;
                    q.delete(Q, &m.receipt_handle).await.unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let all = async {
        let mut sent: HashMap<String, Vec<u128>> = HashMap::new();
        for s in senders {
            for (group, seq) in s.await.unwrap() {
                sent.entry(group).or_default().push(seq);
            }
        }
        for c in consumers {
            c.await.unwrap();
        }
        sent
    };
    let mut sent = tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("the consumers finish");
    let processed = std::mem::take(&mut log.lock().unwrap().processed);
    for seqs in sent.values_mut() {
        seqs.sort_unstable();
    }
    assert_eq!(sent.len(), GROUPS);
    for (group, seqs) in &sent {
        assert_eq!(&processed[group], seqs, "group {group}");
    }
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn dedup_suppresses_within_the_window_even_after_delete() {
    let q = queue(QueueSettings::default());
    let first = q.send(Q, &msg("hello", "g", "d1")).await.unwrap();
    assert!(!first.duplicate);
    let got = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    q.delete(Q, &got[0].receipt_handle).await.unwrap();

    tokio::time::advance(Duration::from_secs(4 * 60)).await;
    let again = q.send(Q, &msg("hello again", "other", "d1")).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(again.sequence, first.sequence);
    assert!(q.receive(Q, 10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 0, 0));

    // The window counts from the first send: the duplicate did not extend it.
    tokio::time::advance(Duration::from_secs(60) + Duration::from_millis(1)).await;
    let late = q.send(Q, &msg("third", "g", "d1")).await.unwrap();
    assert!(!late.duplicate);
    assert_ne!(late.message_id, first.message_id);
    assert!(late.sequence > first.sequence);
    let got = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&got), ["third"]);
    assert_eq!(got[0].message_id, late.message_id);

    // Duplicates of a message still queued are suppressed too; other ids are not.
    let q = queue(QueueSettings::default());
    q.send(Q, &msg("x", "g", "same")).await.unwrap();
    assert!(q.send(Q, &msg("x", "g", "same")).await.unwrap().duplicate);
    assert!(
        !q.send(Q, &msg("x", "g", "different"))
            .await
            .unwrap()
            .duplicate
    );
    assert_eq!(q.stats(Q).await.unwrap(), stats(2, 0, 0));

    // Content-based ids: the same body dedups, another body does not.
    let a = OutgoingMessage::content_deduplicated("body", "g");
    assert_eq!(a.dedup_id.len(), 64);
    assert!(!q.send(Q, &a).await.unwrap().duplicate);
    assert!(
        q.send(Q, &OutgoingMessage::content_deduplicated("body", "h"))
            .await
            .unwrap()
            .duplicate
    );
    assert!(
        !q.send(Q, &OutgoingMessage::content_deduplicated("other", "g"))
            .await
            .unwrap()
            .duplicate
    );
}

#[tokio::test(start_paused = true)]
async fn a_short_dedup_window_is_honoured() {
    let q = queue(QueueSettings {
        dedup_window: Duration::from_secs(10),
        ..QueueSettings::default()
    });
    q.send(Q, &msg("a", "g", "d")).await.unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(q.send(Q, &msg("a", "g", "d")).await.unwrap().duplicate);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(!q.send(Q, &msg("a", "g", "d")).await.unwrap().duplicate);
}

#[tokio::test(start_paused = true)]
async fn an_undeleted_message_is_redelivered_after_the_visibility_timeout() {
    let q = queue(QueueSettings::default());
    let sent = q.send(Q, &msg("job", "g", "d")).await.unwrap();
    let first = q.receive(Q, 1, Duration::ZERO).await.unwrap().remove(0);
    assert_eq!(first.receive_count, 1);
    assert_eq!(first.message_id, sent.message_id);
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(q.receive(Q, 10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 1, 0));

    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(q.stats(Q).await.unwrap(), stats(1, 0, 0));
    let second = q.receive(Q, 1, Duration::ZERO).await.unwrap().remove(0);
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.body, "job");
    assert_eq!(second.sequence, first.sequence);
    assert_eq!(second.sent_at_ms, first.sent_at_ms);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt_handle, first.receipt_handle);

    let stale = q.delete(Q, &first.receipt_handle).await.unwrap_err();
    assert!(matches!(stale, QueueError::InvalidReceipt(_)), "{stale:?}");
    let stale = q
        .change_visibility(Q, &first.receipt_handle, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(stale, QueueError::InvalidReceipt(_)), "{stale:?}");
    q.delete(Q, &second.receipt_handle).await.unwrap();
    let gone = q.delete(Q, &second.receipt_handle).await.unwrap_err();
    assert!(matches!(gone, QueueError::InvalidReceipt(_)), "{gone:?}");
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn change_visibility_extends_and_releases() {
    let q = queue(QueueSettings::default());
    q.send(Q, &msg("one", "g", "1")).await.unwrap();
    q.send(Q, &msg("two", "g", "2")).await.unwrap();
    let m = q.receive(Q, 1, Duration::ZERO).await.unwrap().remove(0);
    q.change_visibility(Q, &m.receipt_handle, Duration::from_secs(120))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(100)).await;
    assert!(
        q.receive(Q, 10, Duration::ZERO).await.unwrap().is_empty(),
        "extended"
    );

    // Zero releases at once: the same message comes back first (the group stays ordered).
    q.change_visibility(Q, &m.receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let again = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&again), ["one", "two"]);
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(again[1].receive_count, 1);

    // Past its timeout a message is not in flight: its visibility can't change, but the
    // latest handle still deletes it until it is delivered again.
    tokio::time::advance(Duration::from_secs(31)).await;
    let late = q
        .change_visibility(Q, &again[0].receipt_handle, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(late, QueueError::InvalidReceipt(_)), "{late:?}");
    q.delete(Q, &again[0].receipt_handle).await.unwrap();
    let rest = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&rest), ["two"]);
    assert_eq!(rest[0].receive_count, 2);
}

#[tokio::test(start_paused = true)]
async fn a_message_moves_to_the_dead_letter_queue_after_max_receives() {
    let q = queue(QueueSettings {
        max_receive_count: 3,
        ..QueueSettings::default()
    });
    let poison = q.send(Q, &msg("poison", "g", "1")).await.unwrap();
    q.send(Q, &msg("next", "g", "2")).await.unwrap();
    for count in 1..=3 {
        let got = q.receive(Q, 1, Duration::ZERO).await.unwrap();
        assert_eq!(bodies_of(&got), ["poison"]);
        assert_eq!(got[0].receive_count, count);
        tokio::time::advance(Duration::from_secs(31)).await;
    }
    assert_eq!(q.stats(Q).await.unwrap(), stats(2, 0, 0));

    // The 4th receive moves it to the dead-letter queue and delivers the group's next.
    let got = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&got), ["next"]);
    assert_eq!(got[0].receive_count, 1);
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 1, 1));
    let dead = q.dead_letters(Q, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, poison.message_id);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].group_id, "g");
    assert_eq!(dead[0].receive_count, 3);
    assert_eq!(dead[0].receipt_handle, "");
    // Peeking changes nothing.
    assert_eq!(q.dead_letters(Q, 10).await.unwrap(), dead);

    // The dead-letter queue is a queue: receive and delete there.
    let dlq = dead_letter_queue_name(Q);
    assert_eq!(q.stats(&dlq).await.unwrap(), stats(1, 0, 0));
    let from_dlq = q.receive(&dlq, 10, Duration::ZERO).await.unwrap();
    assert_eq!(from_dlq.len(), 1);
    assert_eq!(from_dlq[0].message_id, poison.message_id);
    let wrong_queue = q.delete(Q, &from_dlq[0].receipt_handle).await.unwrap_err();
    assert!(
        matches!(wrong_queue, QueueError::InvalidReceipt(_)),
        "{wrong_queue:?}"
    );
    q.delete(&dlq, &from_dlq[0].receipt_handle).await.unwrap();
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 1, 0));
    assert!(
        q.dead_letters(&dlq, 10).await.unwrap().is_empty(),
        "a DLQ has no DLQ"
    );
}

#[tokio::test(start_paused = true)]
async fn redrive_inside_a_batch_keeps_the_rest_of_the_group_in_order() {
    let q = queue(QueueSettings {
        max_receive_count: 1,
        ..QueueSettings::default()
    });
    for i in 0..3 {
        q.send(Q, &msg(&format!("m{i}"), "g", &format!("{i}")))
            .await
            .unwrap();
    }
    let first = q.receive(Q, 1, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&first), ["m0"]);
    q.change_visibility(Q, &first[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let next = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&next), ["m1", "m2"]);
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn long_polling_returns_when_a_message_arrives() {
    let q = queue(QueueSettings::default());
    let start = Instant::now();
    let poller = {
        let q = q.clone();
        tokio::spawn(async move { q.receive(Q, 10, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    q.send(Q, &msg("late", "g", "d")).await.unwrap();
    let got = poller.await.unwrap().unwrap();
    assert_eq!(bodies_of(&got), ["late"]);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn long_polling_times_out_empty() {
    let q = queue(QueueSettings::default());
    let start = Instant::now();
    assert!(
        q.receive(Q, 10, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    // A message locked behind its group does not end the wait.
    q.send(Q, &msg("a", "g", "1")).await.unwrap();
    q.send(Q, &msg("b", "g", "2")).await.unwrap();
    let a = q.receive(Q, 1, Duration::ZERO).await.unwrap();
    q.change_visibility(Q, &a[0].receipt_handle, Duration::from_secs(600))
        .await
        .unwrap();
    let start = Instant::now();
    assert!(
        q.receive(Q, 10, Duration::from_secs(20))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(start.elapsed(), Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn long_polling_wakes_on_unlock_and_on_visibility_expiry() {
    let q = queue(QueueSettings {
        visibility_timeout: Duration::from_secs(10),
        ..QueueSettings::default()
    });
    q.send(Q, &msg("a", "g", "1")).await.unwrap();
    q.send(Q, &msg("b", "g", "2")).await.unwrap();
    let a = q.receive(Q, 1, Duration::ZERO).await.unwrap().remove(0);

    // The group unlocks when `a` is deleted (after 2 s).
    let start = Instant::now();
    let poller = {
        let q = q.clone();
        tokio::spawn(async move { q.receive(Q, 10, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    q.delete(Q, &a.receipt_handle).await.unwrap();
    let got = poller.await.unwrap().unwrap();
    assert_eq!(bodies_of(&got), ["b"]);
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    // Nobody deletes `b`: a poller gets it again when its visibility expires (10 s).
    let start = Instant::now();
    let got = q.receive(Q, 10, Duration::from_secs(20)).await.unwrap();
    assert_eq!(bodies_of(&got), ["b"]);
    assert_eq!(got[0].receive_count, 2);
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn validation_errors() {
    let q = queue(QueueSettings::default());
    let invalid = [
        msg("", "g", "d"),
        msg(&"x".repeat(MAX_BODY_BYTES + 1), "g", "d"),
        msg("nul \u{0} inside", "g", "d"),
        msg("bad \u{FFFF}", "g", "d"),
        msg("b", "", "d"),
        msg("b", "g", ""),
        msg("b", &"g".repeat(129), "d"),
        msg("b", "g", &"d".repeat(129)),
        msg("b", "with space", "d"),
        msg("b", "g", "caf\u{e9}"),
        msg("b", "tab\t", "d"),
    ];
    for m in &invalid {
        let err = q.send(Q, m).await.unwrap_err();
        assert!(matches!(err, QueueError::InvalidMessage(_)), "{err:?}");
    }
    // The limits themselves are fine, and so is any Unicode text and ASCII punctuation.
    let fine = [
        msg(&"x".repeat(MAX_BODY_BYTES), "g", "d1"),
        msg("tab\tline\ncr\r \u{e9}\u{1F600}", "g", "d2"),
        msg("b", &"g".repeat(128), &"d".repeat(128)),
        msg("b", "a-Z_0.9:!#$%&'()*+,/;<=>?@[\\]^`{|}~\"", "d3"),
    ];
    for m in &fine {
        q.send(Q, m).await.unwrap();
    }
    assert_eq!(q.stats(Q).await.unwrap().visible, fine.len());

    let unknown = "nope";
    let is_unknown = |e: QueueError| matches!(e, QueueError::UnknownQueue(ref n) if n == unknown);
    assert!(is_unknown(
        q.send(unknown, &msg("b", "g", "d")).await.unwrap_err()
    ));
    assert!(is_unknown(
        q.receive(unknown, 1, Duration::from_secs(5))
            .await
            .unwrap_err()
    ));
    assert!(is_unknown(q.delete(unknown, "1:1").await.unwrap_err()));
    assert!(is_unknown(
        q.change_visibility(unknown, "1:1", Duration::ZERO)
            .await
            .unwrap_err()
    ));
    assert!(is_unknown(q.stats(unknown).await.unwrap_err()));
    assert!(is_unknown(q.dead_letters(unknown, 1).await.unwrap_err()));

    for (max, wait) in [(0, 0), (11, 0), (1, 21)] {
        let err = q
            .receive(Q, max, Duration::from_secs(wait))
            .await
            .unwrap_err();
        assert!(matches!(err, QueueError::InvalidParameter(_)), "{err:?}");
    }
    let err = q.dead_letters(Q, 0).await.unwrap_err();
    assert!(matches!(err, QueueError::InvalidParameter(_)), "{err:?}");
    let m = q.receive(Q, 1, Duration::ZERO).await.unwrap().remove(0);
    let err = q
        .change_visibility(Q, &m.receipt_handle, Duration::from_secs(12 * 3600 + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidParameter(_)), "{err:?}");
    for handle in [
        "",
        "garbage",
        "1",
        "1:",
        ":1",
        "999:1",
        "-1:2",
        &format!("{}x", m.receipt_handle),
    ] {
        let err = q.delete(Q, handle).await.unwrap_err();
        assert!(
            matches!(err, QueueError::InvalidReceipt(_)),
            "{handle:?}: {err:?}"
        );
    }
    q.delete(Q, &m.receipt_handle).await.unwrap();
}

/// 500 messages over 10 groups (sends interleaved with consumption, with some resends of
/// recent dedup ids), consumed by a consumer that fails a seeded-random third of its
/// deliveries (half of the failures release the message at once, half let the visibility
/// timeout pass) and skips the rest of a group's batch after a failure, as a FIFO consumer
/// must. With the default `max_receive_count` (5) messages do reach the dead-letter queue
/// (a skipped delivery counts as a receive too); it is drained right after every receive
/// (redrive happens only inside a receive).
///
/// Checked:
/// - every resend within the window is a duplicate naming the original message id;
/// - each successful delete succeeds, and no message is processed successfully twice;
/// - every sent message ends exactly once: processed successfully or dead-lettered, never
///   both (sent = processed + dead-lettered, as sets of message ids);
/// - the exact ordering invariant: when a message is processed successfully, every
///   earlier-sent message of its group has already been processed successfully or
///   dead-lettered. Hence per group the successfully processed messages are in send order
///   (checked too), and nothing is processed while an earlier message of its group is
///   still in the queue;
/// - `stats` agrees: dead letters counted after each receive match the ones drained, and
///   the queue ends empty.
#[tokio::test(start_paused = true)]
async fn nothing_is_lost_under_failures() {
    for seed in [0x5eed, 1, 2, 3, 4, 5, 6, 7] {
        nothing_lost_run(seed).await;
    }
}

async fn nothing_lost_run(seed: u64) {
    const MESSAGES: usize = 500;
    const GROUPS: usize = 10;
    let settings = QueueSettings::default();
    let max_receives = settings.max_receive_count;
    let window = settings.dedup_window;
    let visibility = settings.visibility_timeout;
    let q = queue(settings);
    let dlq = dead_letter_queue_name(Q);
    let mut rng = StdRng::seed_from_u64(seed);

    // message id -> (group, index in its group's send order)
    let mut sent: HashMap<String, (String, usize)> = HashMap::new();
    let mut group_sent: HashMap<String, Vec<String>> = HashMap::new();
    // dedup id -> (message id, group, first send time)
    let mut dedup_ids: Vec<(String, String, String, Instant)> = Vec::new();
    let mut processed: Vec<String> = Vec::new();
    let mut processed_set: HashSet<String> = HashSet::new();
    let mut dead: HashSet<String> = HashSet::new();
    let mut group_processed: HashMap<String, Vec<usize>> = HashMap::new();
    let mut failures = 0usize;
    let mut duplicates = 0usize;

    let mut finished = false;
    for _step in 0..20_000 {
        // Interleave sends with consumption.
        if sent.len() < MESSAGES {
            for _ in 0..rng.random_range(0..=25).min(MESSAGES - sent.len()) {
                let i = sent.len();
                let group = format!("g{}", rng.random_range(0..GROUPS));
                let dedup = format!("m{i}");
                let r = q
                    .send(Q, &msg(&format!("body {i}"), &group, &dedup))
                    .await
                    .unwrap();
                assert!(!r.duplicate);
                let list = group_sent.entry(group.clone()).or_default();
                sent.insert(r.message_id.clone(), (group.clone(), list.len()));
                list.push(r.message_id.clone());
                dedup_ids.push((dedup, r.message_id, group, Instant::now()));
            }
        }
        // Resend a recent one well within its window: suppressed.
        if rng.random_bool(0.5) && !dedup_ids.is_empty() {
            let recent = dedup_ids.len().saturating_sub(30);
            let (dedup, id, group, at) = &dedup_ids[rng.random_range(recent..dedup_ids.len())];
            if at.elapsed() + Duration::from_secs(1) < window {
                let r = q.send(Q, &msg("again", group, dedup)).await.unwrap();
                assert!(r.duplicate, "{dedup} resent within the window");
                assert_eq!(&r.message_id, id);
                duplicates += 1;
            }
        }

        let batch = q
            .receive(Q, rng.random_range(1..=10), Duration::ZERO)
            .await
            .unwrap();

        // Drain what this receive dead-lettered.
        let dead_now = q.stats(Q).await.unwrap().dead_letters;
        let mut drained = 0;
        loop {
            let got = q.receive(&dlq, 10, Duration::ZERO).await.unwrap();
            if got.is_empty() {
                break;
            }
            for m in got {
                assert!(
                    !processed_set.contains(&m.message_id),
                    "dead-lettered after success"
                );
                assert!(dead.insert(m.message_id.clone()), "dead-lettered twice");
                assert_eq!(
                    m.receive_count,
                    max_receives + 1,
                    "the main queue's, then the DLQ's own"
                );
                q.delete(&dlq, &m.receipt_handle).await.unwrap();
                drained += 1;
            }
        }
        assert_eq!(dead_now, drained);

        if batch.is_empty() {
            let s = q.stats(Q).await.unwrap();
            if sent.len() == MESSAGES && s.visible == 0 && s.in_flight == 0 {
                finished = true;
                break;
            }
            // Everything left is locked behind failed deliveries: let them time out.
            tokio::time::advance(visibility + Duration::from_secs(1)).await;
            continue;
        }

        let mut failed_groups: HashSet<String> = HashSet::new();
        for m in batch {
            let (group, index) = sent[&m.message_id].clone();
            assert_eq!(m.group_id, group);
            if failed_groups.contains(&group) {
                continue; // the rest of a failed group's batch comes back later
            }
            if rng.random_range(0..3) == 0 {
                failures += 1;
                failed_groups.insert(group);
                if rng.random_bool(0.5) {
                    q.change_visibility(Q, &m.receipt_handle, Duration::ZERO)
                        .await
                        .unwrap();
                }
                continue;
            }
            // The ordering invariant.
            for earlier in &group_sent[&group][..index] {
                assert!(
                    processed_set.contains(earlier) || dead.contains(earlier),
                    "message {index} of {group} processed before an earlier one settled"
                );
            }
            q.delete(Q, &m.receipt_handle).await.unwrap();
            assert!(
                processed_set.insert(m.message_id.clone()),
                "processed twice"
            );
            assert!(!dead.contains(&m.message_id));
            processed.push(m.message_id.clone());
            group_processed.entry(group).or_default().push(index);
        }
    }
    assert!(finished, "the queue drained within the step bound");

    assert_eq!(sent.len(), MESSAGES);
    assert_eq!(processed.len() + dead.len(), MESSAGES);
    let settled: HashSet<&String> = processed_set.iter().chain(dead.iter()).collect();
    assert_eq!(
        settled.len(),
        MESSAGES,
        "processed and dead-lettered are disjoint"
    );
    assert!(sent.keys().all(|id| settled.contains(id)), "nothing lost");
    for (group, indexes) in &group_processed {
        assert!(
            indexes.windows(2).all(|w| w[0] < w[1]),
            "group {group} out of order"
        );
    }
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 0, 0));
    assert_eq!(q.stats(&dlq).await.unwrap(), stats(0, 0, 0));
    // The run exercised what it claims to.
    assert!(failures > 100, "{failures} failures");
    assert!(
        !dead.is_empty(),
        "some messages reached the dead-letter queue"
    );
    assert!(duplicates > 10, "{duplicates} duplicates");
    eprintln!(
        "nothing lost (seed {seed}): {} processed, {} dead-lettered, {failures} failed deliveries, {duplicates} duplicates",
        processed.len(),
        dead.len()
    );
}

// ---- standard queues (the fan-out queue) ----

fn standard(visibility_secs: u64, max_receive_count: u32) -> Arc<MemoryQueue> {
    queue(QueueSettings {
        visibility_timeout: Duration::from_secs(visibility_secs),
        max_receive_count,
        ..QueueSettings::standard()
    })
}

#[tokio::test(start_paused = true)]
async fn a_standard_queue_has_no_group_locks_and_no_deduplication() {
    let q = standard(30, 5);
    // Same group, same deduplication id: a FIFO queue would keep one and deliver it
    // alone; a standard queue keeps both and delivers both at once.
    let first = q.send(Q, &msg("one", "g", "same")).await.unwrap();
    let second = q.send(Q, &msg("two", "g", "same")).await.unwrap();
    assert!(!first.duplicate && !second.duplicate);
    assert_ne!(first.message_id, second.message_id);
    let a = q.receive(Q, 1, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&a), ["one"]);
    // "one" is in flight; its group does not hold "two" back.
    let b = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&b), ["two"]);
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 2, 0));
    // Ids are not required on a standard queue.
    q.send(Q, &msg("three", "", "")).await.unwrap();
    assert_eq!(
        bodies_of(&q.receive(Q, 10, Duration::ZERO).await.unwrap()),
        ["three"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_standard_message_comes_back_after_its_visibility_timeout() {
    let q = standard(30, 5);
    q.send(Q, &msg("work", "g", "1")).await.unwrap();
    let got = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(got[0].receive_count, 1);
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(q.receive(Q, 10, Duration::ZERO).await.unwrap().is_empty());
    tokio::time::advance(Duration::from_secs(2)).await;
    let again = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&again), ["work"]);
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(again[0].message_id, got[0].message_id);
    assert_ne!(again[0].receipt_handle, got[0].receipt_handle);
    // The stale handle no longer deletes; the new one does.
    assert!(q.delete(Q, &got[0].receipt_handle).await.is_err());
    q.delete(Q, &again[0].receipt_handle).await.unwrap();
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_standard_message_is_redriven_after_max_receives() {
    let q = standard(30, 2);
    let poison = q.send(Q, &msg("poison", "g", "1")).await.unwrap();
    for _ in 0..2 {
        let got = q.receive(Q, 10, Duration::ZERO).await.unwrap();
        assert_eq!(bodies_of(&got), ["poison"]);
        tokio::time::advance(Duration::from_secs(31)).await;
    }
    q.send(Q, &msg("next", "g", "2")).await.unwrap();
    // The third receive moves it to the dead-letter queue and delivers the rest.
    let got = q.receive(Q, 10, Duration::ZERO).await.unwrap();
    assert_eq!(bodies_of(&got), ["next"]);
    assert_eq!(q.stats(Q).await.unwrap(), stats(0, 1, 1));
    let dead = q.dead_letters(Q, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, poison.message_id);
    assert_eq!(dead[0].receive_count, 2);
    // The dead-letter queue of a standard queue is standard: no deduplication there.
    let dlq = dead_letter_queue_name(Q);
    q.send(&dlq, &msg("x", "g", "1")).await.unwrap();
    q.send(&dlq, &msg("x", "g", "1")).await.unwrap();
    assert_eq!(q.stats(&dlq).await.unwrap().visible, 3);
}
