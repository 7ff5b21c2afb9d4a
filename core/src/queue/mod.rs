//! Queues: SQS semantics behind one trait, for routes whose work is forwarded to a
//! queue and run by typed consumers, and for the internal fan-out queue.
//!
//! [`Queue`] has an embedded implementation ([`memory::MemoryQueue`], the local default
//! and the one tests use) and an AWS one (SQS). A queue is of one [`QueueKind`]: the
//! app's queues are FIFO; the internal fan-out queue ([`crate::fanout::QUEUE`]) is
//! standard. Both backends follow SQS. A FIFO queue:
//!
//! - **Group ordering.** Within a message group ([`OutgoingMessage::group_id`]) messages
//!   are delivered in send order, and while a message of a group is in flight (received,
//!   not deleted, visibility timeout not expired) no later message of that group is
//!   delivered. Groups are independent of each other. One receive may return several
//!   messages of one group, in order; all of them are then in flight.
//! - **Deduplication.** A send whose deduplication id was already sent to the queue
//!   within the deduplication window (counted from that first send, whether or not the
//!   message was since deleted) is accepted but not enqueued. The embedded queue's
//!   [`SendReceipt`] says `duplicate` and carries the original's message id and
//!   sequence; SQS does not tell, so its receipts say `duplicate: false` with an id of
//!   their own. The scope is the whole queue (SQS's default `DeduplicationScope=queue`).
//! - **Visibility timeout.** A received message is invisible for the queue's visibility
//!   timeout; unless deleted it is then delivered again (with a new receipt handle and a
//!   higher receive count). [`Queue::change_visibility`] moves its deadline (0 releases it
//!   at once).
//! - **Redrive.** A message whose receive count would exceed
//!   [`QueueSettings::max_receive_count`] is moved to the queue's dead-letter queue
//!   ([`dead_letter_queue_name`]) instead of being delivered; the rest of its group
//!   proceeds.
//! - **Long polling.** [`Queue::receive`] with a non-zero wait returns as soon as at
//!   least one message can be delivered, or empty when the wait elapses.
//!
//! A **standard** queue ([`QueueKind::Standard`]) has no groups and no deduplication:
//! the group and deduplication ids of a message are ignored (SQS refuses them on a
//! standard queue, so the SQS client leaves them out), every send is enqueued, and any
//! visible message may be delivered whatever else is in flight (oldest first in the
//! embedded queue; SQS promises no order). Visibility timeout, redrive after
//! `max_receive_count` and long polling are as above; SQS may also deliver a standard
//! message twice on its own (the embedded queue does not).
//!
//! Delivery is at least once: a consumer that does not delete in time gets the message
//! again, so consumers must be idempotent.

pub mod envelope;
pub mod memory;

use std::time::Duration;

use async_trait::async_trait;

pub use crate::names::limits::MAX_QUEUE_BODY_BYTES as MAX_BODY_BYTES;

/// The longest message group id or deduplication id SQS accepts, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// The most messages one [`Queue::receive`] may return (SQS's `MaxNumberOfMessages`).
pub const MAX_RECEIVE_BATCH: usize = 10;

/// The longest long-polling wait of one [`Queue::receive`] (SQS's `WaitTimeSeconds`).
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// The longest visibility timeout SQS accepts (12 hours).
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// The two kinds of SQS queue (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QueueKind {
    /// Ordered message groups and deduplication (the app's queues).
    #[default]
    Fifo,
    /// No groups, no deduplication, no per-group throughput limit (the fan-out queue).
    Standard,
}

/// How a queue behaves. The defaults are SQS's: FIFO, 30 s visibility, 5 receives before
/// the dead-letter queue, a 5-minute deduplication window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// FIFO (default) or standard. A queue's dead-letter queue is of the same kind.
    pub kind: QueueKind,
    /// How long a received message stays invisible unless deleted. Default 30 s.
    pub visibility_timeout: Duration,
    /// How many times a message may be received; the receive after that moves it to the
    /// dead-letter queue instead. Default 5 (SQS's `maxReceiveCount`). At least 1.
    pub max_receive_count: u32,
    /// How long a deduplication id suppresses later sends, from its first send.
    /// Default 5 minutes. Only the embedded queue uses it: SQS's window is fixed at
    /// 5 minutes. A standard queue has none.
    pub dedup_window: Duration,
}

impl QueueSettings {
    /// The settings of a standard queue, otherwise the defaults.
    pub fn standard() -> Self {
        Self {
            kind: QueueKind::Standard,
            ..Self::default()
        }
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            kind: QueueKind::Fifo,
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: 5,
            dedup_window: Duration::from_secs(5 * 60),
        }
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The payload (1 byte to [`MAX_BODY_BYTES`]; characters SQS accepts: tab, line
    /// feed, carriage return, and Unicode from U+0020 except U+FFFE and U+FFFF).
    pub body: String,
    /// The message group: the unit of ordering (SQS's `MessageGroupId`).
    pub group_id: String,
    /// The deduplication id (SQS's `MessageDeduplicationId`).
    pub dedup_id: String,
}

impl OutgoingMessage {
    /// A message with an explicit deduplication id.
    pub fn new(
        body: impl Into<String>,
        group_id: impl Into<String>,
        dedup_id: impl Into<String>,
    ) -> Self {
        Self {
            body: body.into(),
            group_id: group_id.into(),
            dedup_id: dedup_id.into(),
        }
    }

    /// A message deduplicated by content: the deduplication id is the hex SHA-256 of the
    /// body, as SQS's content-based deduplication computes it.
    pub fn content_deduplicated(body: impl Into<String>, group_id: impl Into<String>) -> Self {
        let body = body.into();
        let digest = <sha2::Sha256 as sha2::Digest>::digest(body.as_bytes());
        let dedup_id = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            body,
            group_id: group_id.into(),
            dedup_id,
        }
    }

    /// Checks the message against SQS's limits: a non-empty body of at most
    /// [`MAX_BODY_BYTES`] in SQS's character set, and group and deduplication ids of 1 to
    /// [`MAX_ID_CHARS`] printable ASCII characters (letters, digits, punctuation; no
    /// spaces).
    pub fn validate(&self) -> Result<(), QueueError> {
        self.validate_body()?;
        validate_id("message group id", &self.group_id)?;
        validate_id("deduplication id", &self.dedup_id)?;
        Ok(())
    }

    /// Checks the body only: what a standard queue requires (it ignores the ids).
    pub fn validate_body(&self) -> Result<(), QueueError> {
        if self.body.is_empty() {
            return Err(QueueError::InvalidMessage("the body is empty".into()));
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(QueueError::InvalidMessage(format!(
                "the body is {} bytes; the limit is {MAX_BODY_BYTES}",
                self.body.len()
            )));
        }
        if let Some(c) = self.body.chars().find(|c| !body_char_allowed(*c)) {
            return Err(QueueError::InvalidMessage(format!(
                "the body contains U+{:04X}, which SQS does not accept",
                u32::from(c)
            )));
        }
        Ok(())
    }
}

/// A message group or deduplication id SQS accepts: `id` itself when it is 1 to
/// [`MAX_ID_CHARS`] printable ASCII characters, else `h-` and the first 32 hex digits
/// of its SHA-256 (stable: the same input always maps to the same id).
pub fn sqs_safe_id(id: &str) -> String {
    if validate_id("id", id).is_ok() {
        return id.to_owned();
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(id.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("h-{hex}")
}

pub use crate::names::env::queue_url as queue_url_env_var;

fn body_char_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

fn validate_id(what: &str, id: &str) -> Result<(), QueueError> {
    if id.is_empty() {
        return Err(QueueError::InvalidMessage(format!("the {what} is empty")));
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(QueueError::InvalidMessage(format!(
            "the {what} is longer than {MAX_ID_CHARS} characters"
        )));
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(QueueError::InvalidMessage(format!(
            "the {what} contains {c:?}; only letters, digits and punctuation are allowed"
        )));
    }
    Ok(())
}

/// Checks the arguments of [`Queue::receive`]: `max` in `1..=`[`MAX_RECEIVE_BATCH`], `wait`
/// at most [`MAX_WAIT`].
pub fn validate_receive(max: usize, wait: Duration) -> Result<(), QueueError> {
    if !(1..=MAX_RECEIVE_BATCH).contains(&max) {
        return Err(QueueError::InvalidParameter(format!(
            "max must be 1 to {MAX_RECEIVE_BATCH}, not {max}"
        )));
    }
    if wait > MAX_WAIT {
        return Err(QueueError::InvalidParameter(format!(
            "wait must be at most {} s, not {wait:?}",
            MAX_WAIT.as_secs()
        )));
    }
    Ok(())
}

/// Checks a visibility timeout for [`Queue::change_visibility`]: at most
/// [`MAX_VISIBILITY_TIMEOUT`].
pub fn validate_visibility(timeout: Duration) -> Result<(), QueueError> {
    if timeout > MAX_VISIBILITY_TIMEOUT {
        return Err(QueueError::InvalidParameter(format!(
            "the visibility timeout must be at most 12 hours, not {timeout:?}"
        )));
    }
    Ok(())
}

pub use crate::names::queue::{
    FIFO_SUFFIX, MAX_LOGICAL_NAME_CHARS, dead_letter_queue_name, valid_queue_name,
};

/// What a send did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReceipt {
    /// The message's id; for a duplicate, the id of the message first sent with that
    /// deduplication id.
    pub message_id: String,
    /// `true` when the send was suppressed by deduplication (accepted, not enqueued).
    /// Only the embedded queue knows; SQS always reports `false`.
    pub duplicate: bool,
    /// The message's position in the queue (SQS's `SequenceNumber`, which is 128-bit);
    /// increases with every enqueued message. For a duplicate, the original's.
    pub sequence: u128,
}

/// A delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The message's id, stable across deliveries and redrive to the dead-letter queue.
    pub message_id: String,
    /// The payload.
    pub body: String,
    /// The message group.
    pub group_id: String,
    /// The deduplication id it was sent with.
    pub dedup_id: String,
    /// Its position in the queue it was received from (see [`SendReceipt::sequence`]).
    pub sequence: u128,
    /// The handle that deletes it or changes its visibility; valid for this delivery only
    /// (a later delivery of the same message gets a new one).
    pub receipt_handle: String,
    /// How many times it has been received, this delivery included (SQS's
    /// `ApproximateReceiveCount`).
    pub receive_count: u32,
    /// When it was first sent, epoch milliseconds (SQS's `SentTimestamp`).
    pub sent_at_ms: i64,
}

/// The message counts of a queue (approximate on SQS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages waiting to be delivered (including ones behind an in-flight message of
    /// their group).
    pub visible: usize,
    /// Messages received and neither deleted nor past their visibility timeout.
    pub in_flight: usize,
    /// Messages in the queue's dead-letter queue.
    pub dead_letters: usize,
}

/// Errors of a queue.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// No queue of that name exists (or was declared).
    #[error("queue {0:?} does not exist")]
    UnknownQueue(String),
    /// The message breaks SQS's rules (see [`OutgoingMessage::validate`]).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// An argument is out of range (receive batch size, wait, visibility timeout).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The receipt handle is unknown, malformed, or stale (the message was deleted,
    /// redelivered since, or is no longer in flight).
    #[error("invalid receipt handle: {0}")]
    InvalidReceipt(String),
    /// The backend refused or failed the call.
    #[error("queue: {operation} failed: {message}")]
    Backend {
        /// Which operation.
        operation: &'static str,
        /// What the backend said.
        message: String,
    },
    /// The backend is throttling; retry later.
    #[error("queue: {operation} throttled")]
    Throttled {
        /// Which operation.
        operation: &'static str,
    },
    /// The backend does not offer this operation (the console's inspection and
    /// maintenance calls are the embedded queue's).
    #[error("queue: {operation} is not supported by this backend")]
    Unsupported {
        /// Which operation.
        operation: &'static str,
    },
}

/// A message as [`Queue::peek`] shows it: the message (with an empty receipt handle) and
/// whether it is in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeekedMessage {
    /// The message.
    pub message: ReceivedMessage,
    /// Whether a consumer holds it (received, visibility timeout not over).
    pub in_flight: bool,
}

/// A set of named FIFO queues, each with a dead-letter queue.
///
/// Queue names are the caller's logical names; an implementation maps them to its own
/// resources. A dead-letter queue is addressable by its name
/// ([`dead_letter_queue_name`]) with every method, e.g. to receive and delete dead
/// letters.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Sends one message (after [`OutgoingMessage::validate`]). A duplicate within the
    /// deduplication window is accepted but not enqueued (`duplicate: true`).
    async fn send(&self, queue: &str, message: &OutgoingMessage)
    -> Result<SendReceipt, QueueError>;

    /// Receives up to `max` (1..=[`MAX_RECEIVE_BATCH`]) messages, oldest group heads
    /// first, observing the group locks. With a non-zero `wait` (at most [`MAX_WAIT`])
    /// waits until at least one message can be delivered or the wait elapses (then
    /// returns empty). Each returned message is in flight for the queue's visibility
    /// timeout.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Deletes a received message: the work is done. Unlocks its group once no message
    /// of the group is in flight.
    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError>;

    /// Sets an in-flight message's visibility timeout to `timeout` from now (at most
    /// [`MAX_VISIBILITY_TIMEOUT`]); zero makes it visible (and its group unlocked) at
    /// once. A message that is no longer in flight gives [`QueueError::InvalidReceipt`].
    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError>;

    /// The queue's message counts.
    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError>;

    /// Up to `max` (1..=[`MAX_RECEIVE_BATCH`]) messages of the queue's dead-letter queue,
    /// oldest first, for inspection. The embedded queue only peeks (nothing changes and
    /// the receipt handles are empty); SQS receives and releases them at once, so their
    /// receive counts grow. To consume dead letters, [`Queue::receive`] and
    /// [`Queue::delete`] on [`dead_letter_queue_name`].
    async fn dead_letters(
        &self,
        queue: &str,
        max: usize,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Up to `max` messages of `queue` (any number; a dead-letter queue by its name
    /// too), oldest first, without receiving them: for inspection (the local console).
    /// Backends that cannot peek answer [`QueueError::Unsupported`].
    async fn peek(&self, queue: &str, max: usize) -> Result<Vec<PeekedMessage>, QueueError> {
        let _ = (queue, max);
        Err(QueueError::Unsupported { operation: "peek" })
    }

    /// Moves messages of `queue`'s dead-letter queue back to `queue` (SQS's "start DLQ
    /// redrive"): the one with `message_id`, or all of them when `None`. Each starts
    /// again with a receive count of 0, at the end of its group. Returns how many moved.
    async fn redrive(&self, queue: &str, message_id: Option<&str>) -> Result<usize, QueueError> {
        let _ = (queue, message_id);
        Err(QueueError::Unsupported {
            operation: "redrive",
        })
    }

    /// Deletes every message of `queue` (a dead-letter queue by its name too), in
    /// flight or not, as SQS's `PurgeQueue`. Returns how many were deleted.
    async fn purge(&self, queue: &str) -> Result<usize, QueueError> {
        let _ = queue;
        Err(QueueError::Unsupported { operation: "purge" })
    }
}

/// A shared queue is a queue: the caller can keep a handle (to send, inspect or purge)
/// while the app uses it.
#[async_trait]
impl<Q: Queue + ?Sized> Queue for std::sync::Arc<Q> {
    async fn send(
        &self,
        queue: &str,
        message: &OutgoingMessage,
    ) -> Result<SendReceipt, QueueError> {
        (**self).send(queue, message).await
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        (**self).receive(queue, max, wait).await
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        (**self).delete(queue, receipt_handle).await
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        (**self)
            .change_visibility(queue, receipt_handle, timeout)
            .await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        (**self).stats(queue).await
    }

    async fn dead_letters(
        &self,
        queue: &str,
        max: usize,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        (**self).dead_letters(queue, max).await
    }

    async fn peek(&self, queue: &str, max: usize) -> Result<Vec<PeekedMessage>, QueueError> {
        (**self).peek(queue, max).await
    }

    async fn redrive(&self, queue: &str, message_id: Option<&str>) -> Result<usize, QueueError> {
        (**self).redrive(queue, message_id).await
    }

    async fn purge(&self, queue: &str) -> Result<usize, QueueError> {
        (**self).purge(queue).await
    }
}
