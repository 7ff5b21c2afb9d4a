//! Sharded fan-out: a send to more recipients than a threshold is split into shards
//! and handed to an internal queue ([`QUEUE`]), whose consumers (the `fanout` Lambda
//! role on AWS, in-process tasks in the local gateway) post each shard.
//!
//! | step | who | what |
//! |---|---|---|
//! | first page | the caller's `Target::send` | a room: one page of its members (`Query` with `Limit`); a broadcast: the first page of each of [`Sharding::segments`] parallel `Scan` segments, read concurrently. Page size: [`Sharding::page_size`], at least threshold + 1 |
//! | decide | the caller | every source exhausted and at most [`Sharding::threshold`] recipients: inline, as before; otherwise sharded |
//! | queue | the caller | the ids it read as shards of [`Sharding::shard_size`] (the frame serialised once, copied verbatim into each message), and for each source not exhausted a *page task* (the source, the cursor, the frame); then it returns |
//! | page task | a consumer | reads the next page, queues the page after it as a new task first (so the chain moves on), then the page's ids as shards |
//! | post | a consumer, per shard | bounded concurrency, the process's [`RateBudget`], 429/5xx retried with jittered backoff ([`Sharding::post_retries`]) |
//! | owed | the consumer | recipients still unserved after the retries are queued again as a new shard with `attempt + 1` (only them: the served are not posted twice); after [`Sharding::max_attempts`] they go to the dead-letter queue, still listed |
//! | gone | the consumer | a 410 removes the record, as inline |
//!
//! So the caller's time does not grow with the recipients: one page read per source and
//! a few queue sends, whatever N is. A room's pages are read one after another (each
//! needs the previous cursor): `page_size` ids per step of one `Query`, one `SendMessage`
//! and the next consumer's receive; a broadcast runs `segments` such chains in parallel.
//!
//! A frame too large to travel with a full shard of ids within SQS's 256 KiB is stored
//! once in [`Sharding::frames`] ([`FrameStore`]) for [`FRAME_TTL`], and the messages
//! carry its key; consumers load it once per batch.
//!
//! What it cannot avoid: a consumer that crashes (or times out) mid-shard acknowledges
//! nothing, so the whole shard comes back after the visibility timeout and the
//! recipients it had already served get the frame twice. A page task that comes back
//! after queueing its shards (a crash before the delete) queues them again. SQS's
//! standard queue may itself deliver a message twice. Frames of rooms with history
//! carry `seq`, so clients drop those duplicates; other frames do not. A caller whose
//! queueing fails half way gets an error after some shards were queued; retrying the
//! send reaches those recipients twice. Recipients are those of the store when their
//! page is read: a member who joins before its page is read gets the frame, one who
//! leaves before does not.
//!
//! The queue is a *standard* queue ([`queue_settings`]; SQS standard on AWS, the
//! embedded queue's standard kind locally) with a dead-letter queue: shards are
//! independent, so they need neither FIFO's groups nor its deduplication window, and a
//! standard queue has no per-group throughput limit.

mod frames;
mod message;
mod run;
mod send;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use crate::names::fanout::FRAME_TTL;
pub use crate::names::fanout::QUEUE;
use crate::names::fanout::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_PAGE_SIZE, DEFAULT_POST_RETRIES, DEFAULT_SCAN_SEGMENTS,
    DEFAULT_SHARD_SIZE, DEFAULT_THRESHOLD,
};
use crate::queue::{Queue, QueueError};
pub use frames::{FrameStore, MemoryFrames};
pub use message::{Shard, Source, TaskKind};
pub use run::{consume_batch, handle_sqs_event, run_message};
pub(crate) use send::{Plan, enqueue, send_paged};

/// How the fan-out queue is declared on the embedded queue: standard, SQS's defaults
/// otherwise (30 s visibility, 5 receives before the dead-letter queue).
pub fn queue_settings() -> crate::queue::QueueSettings {
    crate::queue::QueueSettings::standard()
}

/// Sharded fan-out settings: where shards go and how they are posted.
#[derive(Clone)]
pub struct Sharding {
    /// The queue that holds [`QUEUE`] (and its dead-letter queue).
    pub queue: Arc<dyn Queue>,
    /// Where frames too large for a shard message are stored (default: in memory, for
    /// consumers in this process).
    pub frames: Arc<dyn FrameStore>,
    /// Sends to more recipients than this are sharded; up to it they run inline.
    pub threshold: usize,
    /// Recipients per shard message.
    pub shard_size: usize,
    /// Recipients per page read (by the caller: at least `threshold + 1`).
    pub page_size: usize,
    /// Parallel scan segments of a broadcast.
    pub segments: u32,
    /// Retries of one post after a 429 or 5xx, within one attempt of a shard.
    pub post_retries: u32,
    /// Attempts of a shard's owed recipients before they go to the dead-letter queue.
    pub max_attempts: u32,
    /// The nominal first backoff after a 429 (doubles per retry, capped at 2 s).
    pub backoff: Duration,
    /// The `@connections` rate budget of this process, if any.
    pub rate: Option<Arc<RateBudget>>,
}

impl std::fmt::Debug for Sharding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharding")
            .field("threshold", &self.threshold)
            .field("shard_size", &self.shard_size)
            .field("page_size", &self.page_size)
            .field("segments", &self.segments)
            .field("post_retries", &self.post_retries)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Sharding {
    /// Sharding through `queue` with the defaults of [`crate::names::fanout`]. The
    /// queue must hold [`QUEUE`] (declare it on the embedded queue).
    pub fn new(queue: Arc<dyn Queue>) -> Self {
        Self {
            queue,
            frames: Arc::new(MemoryFrames::new()),
            threshold: DEFAULT_THRESHOLD,
            shard_size: DEFAULT_SHARD_SIZE,
            page_size: DEFAULT_PAGE_SIZE,
            segments: DEFAULT_SCAN_SEGMENTS,
            post_retries: DEFAULT_POST_RETRIES,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Duration::from_millis(50),
            rate: None,
        }
    }

    /// Sets the threshold (recipients).
    pub fn threshold(mut self, threshold: usize) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the recipients per shard (at least 1).
    pub fn shard_size(mut self, size: usize) -> Self {
        self.shard_size = size.max(1);
        self
    }

    /// Sets the recipients per page read (at least 1).
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// Sets the parallel scan segments of a broadcast (at least 1).
    pub fn segments(mut self, segments: u32) -> Self {
        self.segments = segments.max(1);
        self
    }

    /// Sets where frames too large for a shard message are stored.
    pub fn frames(mut self, frames: Arc<dyn FrameStore>) -> Self {
        self.frames = frames;
        self
    }

    /// Sets a rate budget of `per_sec` posts per second for this process.
    pub fn rate(mut self, per_sec: u32) -> Self {
        self.rate = Some(Arc::new(RateBudget::new(per_sec)));
        self
    }

    /// Sets the retries per post and the attempts per shard.
    pub fn retries(mut self, post_retries: u32, max_attempts: u32) -> Self {
        self.post_retries = post_retries;
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the first backoff after a 429.
    pub fn backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }
}

/// A token bucket: at most `per_sec` posts per second, with a burst of 50 ms worth.
/// A burst as deep as the account's own (the simulator models 100 ms; API Gateway's is
/// larger) leaves no margin for posts that leave together but arrive unevenly, and
/// each such arrival over the limit costs a 429 and a backoff; half of it left the
/// simulator's 1,000-recipient run without a single 429 (a full second's burst
/// overran the limit outright).
#[derive(Debug)]
pub struct RateBudget {
    per_sec: f64,
    burst: f64,
    state: tokio::sync::Mutex<(f64, tokio::time::Instant)>,
}

impl RateBudget {
    /// A budget of `per_sec` (at least 1) posts per second.
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        let burst = (per_sec / 20.0).max(1.0);
        Self {
            per_sec,
            burst,
            state: tokio::sync::Mutex::new((burst, tokio::time::Instant::now())),
        }
    }

    /// Waits until one post fits the budget, and takes it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = tokio::time::Instant::now();
                let refill = now.duration_since(state.1).as_secs_f64() * self.per_sec;
                state.0 = (state.0 + refill).min(self.burst);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - state.0) / self.per_sec)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Errors of the sharded fan-out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FanoutError {
    /// A shard message is not a shard.
    #[error("fan-out: malformed shard: {0}")]
    Malformed(String),
    /// The queue refused or failed a send.
    #[error("fan-out: queue: {0}")]
    Queue(#[from] QueueError),
    /// The store failed a page read or the frame store a frame.
    #[error("fan-out: store: {0}")]
    Store(#[from] crate::backend::StoreError),
    /// A shard refers to a stored frame that is not there (expired or never stored).
    #[error("fan-out: the stored frame {0:?} is gone")]
    FrameGone(String),
    /// This process has no sharding configured.
    #[error("fan-out: no sharding configured")]
    NotConfigured,
}

/// What one run of a shard did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShardReport {
    /// Posts `@connections` accepted.
    pub delivered: usize,
    /// Recipients that were gone (410; records removed).
    pub gone: usize,
    /// Recipients refused for good (403, 413): not retried.
    pub failed: usize,
    /// Posts answered 429 (each retry counts).
    pub throttled: usize,
    /// Recipients still owed, queued again as a new attempt.
    pub requeued: usize,
    /// Recipients still owed after the last attempt, sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Recipients a page task read and queued as shards.
    pub paged: usize,
}
