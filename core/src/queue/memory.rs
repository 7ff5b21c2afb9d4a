//! The embedded queue: SQS semantics (FIFO or standard) in process, the local default
//! and the queue of tests.
//!
//! Everything lives in memory behind one lock: **queued work is lost when the process
//! exits** (nothing is persisted). Time is [`tokio::time::Instant`], so tests can pause and
//! advance the clock through visibility timeouts and deduplication windows.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    OutgoingMessage, PeekedMessage, Queue, QueueError, QueueKind, QueueSettings, QueueStats,
    ReceivedMessage, SendReceipt, dead_letter_queue_name, validate_receive, validate_visibility,
};

/// An in-process [`Queue`] with SQS semantics, FIFO or standard by each queue's
/// [`QueueSettings::kind`] (see the [module docs](super)).
///
/// Queues exist once [declared](MemoryQueue::declare); each gets a dead-letter queue named
/// by [`dead_letter_queue_name`] (`{name}-dlq`), itself a queue that can be received from
/// and deleted from, without a dead-letter queue of its own.
///
/// Specifics of this implementation:
/// - a receipt handle stays valid for [`Queue::delete`] until the message is delivered
///   again (a late delete after the visibility timeout, before redelivery, still deletes);
///   [`Queue::change_visibility`] needs the message to be in flight;
/// - a message keeps its id and receive count when it moves to the dead-letter queue (it
///   gets a new sequence there; deduplication does not apply to redrive);
/// - one receive takes groups oldest head first, and from each unlocked group its whole
///   run of messages (as many as fit), as SQS does.
#[derive(Default)]
pub struct MemoryQueue {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    queues: HashMap<String, QueueState>,
    /// Makes every receipt handle unique within this `MemoryQueue`.
    next_receipt: u64,
}

struct QueueState {
    settings: QueueSettings,
    /// `None` for a dead-letter queue: no redrive, receive counts just grow.
    dlq: Option<String>,
    next_sequence: u128,
    /// Every message not deleted, by sequence.
    messages: BTreeMap<u128, Stored>,
    /// The sequences of each group's messages, in send order.
    groups: HashMap<String, BTreeSet<u128>>,
    /// Deduplication ids seen within the window, kept after their message is deleted.
    dedup: HashMap<String, DedupEntry>,
    /// Deduplication ids in send order, to forget expired ones.
    dedup_order: VecDeque<(Instant, String)>,
    /// Woken whenever a message may have become deliverable (send, delete, visibility
    /// change, redrive into this queue).
    notify: Arc<Notify>,
}

struct DedupEntry {
    message_id: String,
    sequence: u128,
    expires: Instant,
}

struct Stored {
    message_id: String,
    body: String,
    group_id: String,
    dedup_id: String,
    sent_at_ms: i64,
    receive_count: u32,
    /// The handle of the latest delivery.
    receipt: Option<String>,
    /// Invisible until then (in flight while it is in the future).
    invisible_until: Option<Instant>,
}

impl Stored {
    fn in_flight(&self, now: Instant) -> bool {
        self.invisible_until.is_some_and(|until| until > now)
    }

    fn to_received(&self, sequence: u128) -> ReceivedMessage {
        ReceivedMessage {
            message_id: self.message_id.clone(),
            body: self.body.clone(),
            group_id: self.group_id.clone(),
            dedup_id: self.dedup_id.clone(),
            sequence,
            receipt_handle: self.receipt.clone().unwrap_or_default(),
            receive_count: self.receive_count,
            sent_at_ms: self.sent_at_ms,
        }
    }
}

impl QueueState {
    fn new(settings: QueueSettings, dlq: Option<String>) -> Self {
        Self {
            settings,
            dlq,
            next_sequence: 1,
            messages: BTreeMap::new(),
            groups: HashMap::new(),
            dedup: HashMap::new(),
            dedup_order: VecDeque::new(),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Appends a message to its group and the queue; returns its sequence.
    fn enqueue(&mut self, message: Stored) -> u128 {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        if self.settings.kind == QueueKind::Fifo {
            self.groups
                .entry(message.group_id.clone())
                .or_default()
                .insert(sequence);
        }
        self.messages.insert(sequence, message);
        self.notify.notify_waiters();
        sequence
    }

    /// Removes a message from the queue and its group.
    fn remove(&mut self, sequence: u128) -> Option<Stored> {
        let message = self.messages.remove(&sequence)?;
        if let Some(group) = self.groups.get_mut(&message.group_id) {
            group.remove(&sequence);
            if group.is_empty() {
                self.groups.remove(&message.group_id);
            }
        }
        Some(message)
    }

    fn forget_expired_dedup(&mut self, now: Instant) {
        while let Some((expires, _)) = self.dedup_order.front() {
            if *expires > now {
                break;
            }
            if let Some((expires, id)) = self.dedup_order.pop_front()
                && self.dedup.get(&id).is_some_and(|e| e.expires == expires)
            {
                self.dedup.remove(&id);
            }
        }
    }

    /// Whether any message of the group is in flight. Only messages delivered before can
    /// be, and those are the group's first ones (a group is delivered head-run first).
    fn group_locked(&self, group: &BTreeSet<u128>, now: Instant) -> bool {
        group
            .iter()
            .map_while(|seq| self.messages.get(seq))
            .take_while(|m| m.receive_count > 0)
            .any(|m| m.in_flight(now))
    }

    /// Delivers up to `max` messages. Messages past their receive limit are removed and
    /// returned in `redriven` (in order) for the caller to put in the dead-letter queue.
    fn take(
        &mut self,
        max: usize,
        now: Instant,
        next_receipt: &mut u64,
        redriven: &mut Vec<Stored>,
    ) -> Vec<ReceivedMessage> {
        if self.settings.kind == QueueKind::Standard {
            return self.take_standard(max, now, next_receipt, redriven);
        }
        let mut heads: Vec<(u128, String)> = self
            .groups
            .iter()
            .filter_map(|(name, seqs)| seqs.first().map(|s| (*s, name.clone())))
            .collect();
        heads.sort_unstable();
        let limit = self.settings.max_receive_count.max(1);
        let visibility = self.settings.visibility_timeout;
        let redrive = self.dlq.is_some();
        let mut out = Vec::new();
        for (_, name) in heads {
            if out.len() >= max {
                break;
            }
            let Some(group) = self.groups.get(&name) else {
                continue;
            };
            if self.group_locked(group, now) {
                continue;
            }
            let sequences: Vec<u128> = group.iter().copied().collect();
            for sequence in sequences {
                if out.len() >= max {
                    break;
                }
                let Some(message) = self.messages.get_mut(&sequence) else {
                    continue;
                };
                if redrive && message.receive_count >= limit {
                    if let Some(message) = self.remove(sequence) {
                        redriven.push(message);
                    }
                    continue;
                }
                *next_receipt += 1;
                message.receive_count = message.receive_count.saturating_add(1);
                message.receipt = Some(format!("{sequence}:{}", *next_receipt));
                message.invisible_until = Some(now + visibility);
                out.push(message.to_received(sequence));
            }
        }
        out
    }

    /// [`take`](Self::take) for a standard queue: any visible message, oldest first.
    fn take_standard(
        &mut self,
        max: usize,
        now: Instant,
        next_receipt: &mut u64,
        redriven: &mut Vec<Stored>,
    ) -> Vec<ReceivedMessage> {
        let limit = self.settings.max_receive_count.max(1);
        let visibility = self.settings.visibility_timeout;
        let redrive = self.dlq.is_some();
        let mut out = Vec::new();
        let mut expired = Vec::new();
        for (sequence, message) in &mut self.messages {
            if out.len() >= max {
                break;
            }
            if message.in_flight(now) {
                continue;
            }
            if redrive && message.receive_count >= limit {
                expired.push(*sequence);
                continue;
            }
            *next_receipt += 1;
            message.receive_count = message.receive_count.saturating_add(1);
            message.receipt = Some(format!("{sequence}:{}", *next_receipt));
            message.invisible_until = Some(now + visibility);
            out.push(message.to_received(*sequence));
        }
        redriven.extend(expired.into_iter().filter_map(|seq| self.remove(seq)));
        out
    }

    /// When the earliest in-flight message becomes visible again.
    fn next_expiry(&self, now: Instant) -> Option<Instant> {
        self.messages
            .values()
            .filter_map(|m| m.invisible_until)
            .filter(|until| *until > now)
            .min()
    }

    /// The message a receipt handle designates, if the handle is its latest.
    fn by_receipt(&self, receipt_handle: &str) -> Result<u128, QueueError> {
        let invalid = || QueueError::InvalidReceipt(receipt_handle.to_owned());
        let sequence: u128 = receipt_handle
            .split_once(':')
            .and_then(|(seq, _)| seq.parse().ok())
            .ok_or_else(invalid)?;
        match self.messages.get(&sequence) {
            Some(m) if m.receipt.as_deref() == Some(receipt_handle) => Ok(sequence),
            _ => Err(invalid()),
        }
    }
}

impl MemoryQueue {
    /// A store without queues: [`declare`](Self::declare) them.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the queue `name` and its dead-letter queue, or updates the settings of an
    /// existing one (its messages stay). The dead-letter queue gets the same visibility
    /// timeout and deduplication window, and no redrive. A `max_receive_count` of 0 counts
    /// as 1.
    pub fn declare(&self, name: &str, settings: QueueSettings) {
        let dlq = dead_letter_queue_name(name);
        let mut inner = self.lock();
        inner
            .queues
            .entry(dlq.clone())
            .or_insert_with(|| QueueState::new(settings.clone(), None));
        match inner.queues.get_mut(name) {
            Some(state) => {
                state.settings = settings;
                state.dlq = Some(dlq);
                // Waiters recompute their deadlines with the new settings.
                state.notify.notify_waiters();
            }
            None => {
                inner
                    .queues
                    .insert(name.to_owned(), QueueState::new(settings, Some(dlq)));
            }
        }
    }

    /// [`declare`](Self::declare), builder style.
    pub fn with_queue(self, name: &str, settings: QueueSettings) -> Self {
        self.declare(name, settings);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves at worst one message half-moved; losing
        // the whole store would be worse. Recover the guard.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One receive attempt: the batch, and when to look again if it is empty.
    fn try_receive(
        &self,
        queue: &str,
        max: usize,
    ) -> Result<(Vec<ReceivedMessage>, Option<Instant>), QueueError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner {
            queues,
            next_receipt,
        } = &mut *inner;
        let state = queues
            .get_mut(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?;
        let mut redriven = Vec::new();
        let batch = state.take(max, now, next_receipt, &mut redriven);
        let next_expiry = state.next_expiry(now);
        if !redriven.is_empty() {
            let dlq_name = state
                .dlq
                .clone()
                .unwrap_or_else(|| dead_letter_queue_name(queue));
            let settings = state.settings.clone();
            let dlq = queues
                .entry(dlq_name)
                .or_insert_with(|| QueueState::new(settings, None));
            for mut message in redriven {
                tracing::warn!(
                    queue,
                    message_id = %message.message_id,
                    group_id = %message.group_id,
                    receive_count = message.receive_count,
                    "message moved to the dead-letter queue"
                );
                message.receipt = None;
                message.invisible_until = None;
                dlq.enqueue(message);
            }
        }
        Ok((batch, next_expiry))
    }

    fn notifier(&self, queue: &str) -> Result<Arc<Notify>, QueueError> {
        self.lock()
            .queues
            .get(queue)
            .map(|state| state.notify.clone())
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))
    }
}

/// A random (version 4) UUID, the shape of SQS message ids.
fn message_id() -> String {
    crate::ids::random_uuid()
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(
        &self,
        queue: &str,
        message: &OutgoingMessage,
    ) -> Result<SendReceipt, QueueError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let state = inner
            .queues
            .get_mut(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?;
        let fifo = state.settings.kind == QueueKind::Fifo;
        if fifo {
            message.validate()?;
        } else {
            message.validate_body()?;
        }
        state.forget_expired_dedup(now);
        if fifo
            && let Some(seen) = state.dedup.get(&message.dedup_id)
            && seen.expires > now
        {
            return Ok(SendReceipt {
                message_id: seen.message_id.clone(),
                duplicate: true,
                sequence: seen.sequence,
            });
        }
        let message_id = message_id();
        let sequence = state.enqueue(Stored {
            message_id: message_id.clone(),
            body: message.body.clone(),
            group_id: message.group_id.clone(),
            dedup_id: message.dedup_id.clone(),
            sent_at_ms: chrono::Utc::now().timestamp_millis(),
            receive_count: 0,
            receipt: None,
            invisible_until: None,
        });
        if !fifo {
            return Ok(SendReceipt {
                message_id,
                duplicate: false,
                sequence,
            });
        }
        let expires = now + state.settings.dedup_window;
        state.dedup.insert(
            message.dedup_id.clone(),
            DedupEntry {
                message_id: message_id.clone(),
                sequence,
                expires,
            },
        );
        state
            .dedup_order
            .push_back((expires, message.dedup_id.clone()));
        Ok(SendReceipt {
            message_id,
            duplicate: false,
            sequence,
        })
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        validate_receive(max, wait)?;
        let deadline = Instant::now() + wait;
        let notify = self.notifier(queue)?;
        loop {
            // Registered before looking, so a send between the look and the wait still
            // wakes this receive.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (batch, next_expiry) = self.try_receive(queue, max)?;
            if !batch.is_empty() || Instant::now() >= deadline {
                return Ok(batch);
            }
            let wake = next_expiry.map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        let mut inner = self.lock();
        let state = inner
            .queues
            .get_mut(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?;
        let sequence = state.by_receipt(receipt_handle)?;
        state.remove(sequence);
        state.notify.notify_waiters();
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        validate_visibility(timeout)?;
        let now = Instant::now();
        let mut inner = self.lock();
        let state = inner
            .queues
            .get_mut(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?;
        let sequence = state.by_receipt(receipt_handle)?;
        let Some(message) = state.messages.get_mut(&sequence) else {
            return Err(QueueError::InvalidReceipt(receipt_handle.to_owned()));
        };
        if !message.in_flight(now) {
            return Err(QueueError::InvalidReceipt(format!(
                "{receipt_handle} (the message is no longer in flight)"
            )));
        }
        message.invisible_until = Some(now + timeout);
        state.notify.notify_waiters();
        Ok(())
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let now = Instant::now();
        let inner = self.lock();
        let state = inner
            .queues
            .get(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?;
        let in_flight = state.messages.values().filter(|m| m.in_flight(now)).count();
        let dead_letters = state
            .dlq
            .as_ref()
            .and_then(|dlq| inner.queues.get(dlq))
            .map_or(0, |dlq| dlq.messages.len());
        Ok(QueueStats {
            visible: state.messages.len() - in_flight,
            in_flight,
            dead_letters,
        })
    }

    async fn dead_letters(
        &self,
        queue: &str,
        max: usize,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        validate_receive(max, Duration::ZERO)?;
        let inner = self.lock();
        let state = inner
            .queues
            .get(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?;
        let Some(dlq) = state.dlq.as_ref().and_then(|dlq| inner.queues.get(dlq)) else {
            return Ok(Vec::new());
        };
        Ok(dlq
            .messages
            .iter()
            .take(max)
            .map(|(sequence, m)| ReceivedMessage {
                receipt_handle: String::new(),
                ..m.to_received(*sequence)
            })
            .collect())
    }

    async fn peek(&self, queue: &str, max: usize) -> Result<Vec<PeekedMessage>, QueueError> {
        self.peek_now(queue, max)
    }

    async fn redrive(&self, queue: &str, message_id: Option<&str>) -> Result<usize, QueueError> {
        self.redrive_now(queue, message_id)
    }

    async fn purge(&self, queue: &str) -> Result<usize, QueueError> {
        self.purge_now(queue)
    }
}

/// The console's operations ([`Queue::peek`], [`Queue::redrive`], [`Queue::purge`]), kept
/// apart from the SQS-shaped calls.
impl MemoryQueue {
    fn peek_now(&self, queue: &str, max: usize) -> Result<Vec<PeekedMessage>, QueueError> {
        let now = Instant::now();
        let inner = self.lock();
        let state = inner
            .queues
            .get(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?;
        Ok(state
            .messages
            .iter()
            .take(max)
            .map(|(sequence, m)| PeekedMessage {
                message: ReceivedMessage {
                    receipt_handle: String::new(),
                    ..m.to_received(*sequence)
                },
                in_flight: m.in_flight(now),
            })
            .collect())
    }

    fn redrive_now(&self, queue: &str, message_id: Option<&str>) -> Result<usize, QueueError> {
        let mut inner = self.lock();
        let dlq_name = inner
            .queues
            .get(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?
            .dlq
            .clone()
            .ok_or_else(|| {
                QueueError::InvalidParameter(format!("{queue:?} is a dead-letter queue"))
            })?;
        let moved: Vec<Stored> = match inner.queues.get_mut(&dlq_name) {
            Some(dlq) => {
                let picked: Vec<u128> = dlq
                    .messages
                    .iter()
                    .filter(|(_, m)| message_id.is_none_or(|id| m.message_id == id))
                    .map(|(seq, _)| *seq)
                    .collect();
                picked
                    .into_iter()
                    .filter_map(|seq| dlq.remove(seq))
                    .collect()
            }
            None => Vec::new(),
        };
        if let Some(id) = message_id
            && moved.is_empty()
        {
            return Err(QueueError::InvalidParameter(format!(
                "no message {id:?} in {dlq_name:?}"
            )));
        }
        let count = moved.len();
        if let Some(state) = inner.queues.get_mut(queue) {
            for mut message in moved {
                message.receive_count = 0;
                message.receipt = None;
                message.invisible_until = None;
                state.enqueue(message);
            }
        }
        Ok(count)
    }

    fn purge_now(&self, queue: &str) -> Result<usize, QueueError> {
        let mut inner = self.lock();
        let state = inner
            .queues
            .get_mut(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?;
        let count = state.messages.len();
        state.messages.clear();
        state.groups.clear();
        state.notify.notify_waiters();
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poison_queue() -> MemoryQueue {
        MemoryQueue::new().with_queue(
            "jobs",
            QueueSettings {
                visibility_timeout: Duration::from_secs(1),
                max_receive_count: 1,
                ..QueueSettings::default()
            },
        )
    }

    /// Sends `bodies` to `jobs`, receives each once without deleting, and lets the
    /// visibility timeout pass so that the next receive dead-letters them.
    async fn dead_letter(q: &MemoryQueue, bodies: &[&str]) {
        for (i, body) in bodies.iter().enumerate() {
            let m = OutgoingMessage::new(*body, format!("g{i}"), format!("d{i}"));
            q.send("jobs", &m).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let got = q.receive("jobs", 10, Duration::ZERO).await;
        assert_eq!(got.map(|b| b.len()), Ok(bodies.len()));
        tokio::time::advance(Duration::from_secs(2)).await;
        let again = q.receive("jobs", 10, Duration::ZERO).await;
        assert_eq!(again.map(|b| b.len()), Ok(0));
    }

    #[tokio::test(start_paused = true)]
    async fn peek_shows_messages_and_whether_they_are_in_flight() {
        let q = poison_queue();
        for (i, body) in ["a", "b"].iter().enumerate() {
            let m = OutgoingMessage::new(*body, format!("g{i}"), format!("d{i}"));
            q.send("jobs", &m).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let first = q.receive("jobs", 1, Duration::ZERO).await;
        assert_eq!(first.map(|b| b.len()), Ok(1));
        let peeked = q.peek("jobs", 10).await.unwrap_or_default();
        let seen: Vec<(&str, bool, u32)> = peeked
            .iter()
            .map(|p| {
                (
                    p.message.body.as_str(),
                    p.in_flight,
                    p.message.receive_count,
                )
            })
            .collect();
        assert_eq!(seen, [("a", true, 1), ("b", false, 0)]);
        assert!(peeked.iter().all(|p| p.message.receipt_handle.is_empty()));
        assert_eq!(q.peek("jobs", 1).await.map(|p| p.len()), Ok(1));
        assert!(matches!(
            q.peek("nope", 1).await,
            Err(QueueError::UnknownQueue(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn redrive_moves_dead_letters_back_with_a_fresh_receive_count() {
        let q = poison_queue();
        dead_letter(&q, &["x", "y"]).await;
        let dlq = q.peek("jobs-dlq", 10).await.unwrap_or_default();
        assert_eq!(dlq.len(), 2);
        let x = dlq[0].message.message_id.clone();

        assert_eq!(q.redrive("jobs", Some(&x)).await, Ok(1));
        assert!(matches!(
            q.redrive("jobs", Some(&x)).await,
            Err(QueueError::InvalidParameter(_))
        ));
        let stats = q.stats("jobs").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((stats.visible, stats.dead_letters), (1, 1));
        let back = q
            .receive("jobs", 10, Duration::ZERO)
            .await
            .unwrap_or_default();
        assert_eq!(back.len(), 1);
        assert_eq!(
            (back[0].message_id.as_str(), back[0].receive_count),
            (x.as_str(), 1)
        );

        assert_eq!(q.redrive("jobs", None).await, Ok(1));
        assert_eq!(q.peek("jobs-dlq", 10).await.map(|p| p.len()), Ok(0));
        assert!(matches!(
            q.redrive("jobs-dlq", None).await,
            Err(QueueError::InvalidParameter(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn purge_empties_a_queue_or_its_dead_letter_queue() {
        let q = poison_queue();
        dead_letter(&q, &["x"]).await;
        let m = OutgoingMessage::new("z", "g", "dz");
        q.send("jobs", &m).await.unwrap_or_else(|e| panic!("{e}"));
        let held = q.receive("jobs", 1, Duration::ZERO).await;
        assert_eq!(held.map(|b| b.len()), Ok(1));

        assert_eq!(q.purge("jobs").await, Ok(1), "in flight or not");
        let stats = q.stats("jobs").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (stats.visible, stats.in_flight, stats.dead_letters),
            (0, 0, 1)
        );
        assert_eq!(q.purge("jobs-dlq").await, Ok(1));
        assert_eq!(q.purge("jobs-dlq").await, Ok(0));
        // The group is free again: a new message of it is delivered.
        q.send("jobs", &OutgoingMessage::new("w", "g", "dw"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            q.receive("jobs", 1, Duration::ZERO).await.map(|b| b.len()),
            Ok(1)
        );
    }

    #[test]
    fn message_ids_are_v4_uuids() {
        let id = message_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
