//! Sharded fan-out: a send to more recipients than a threshold is split into shards
//! and handed to an internal queue ([`QUEUE`]), whose consumers (the `fanout` Lambda
//! role on AWS, an in-process task in the local gateway) post each shard.
//!
//! | step | who | what |
//! |---|---|---|
//! | look up | the caller's `Target::send` | the recipients' ids, as an inline send does |
//! | split | the caller | up to [`Sharding::threshold`] recipients: inline, as before; more: shards of [`Sharding::shard_size`] ids, each one queue message carrying the frame once (serialised once by the caller) |
//! | post | a consumer, per shard | bounded concurrency, the process's [`RateBudget`], 429/5xx retried with jittered backoff ([`Sharding::post_retries`]) |
//! | owed | the consumer | recipients still unserved after the retries are queued again as a new shard with `attempt + 1` (only them: the served are not posted twice); after [`Sharding::max_attempts`] they go to the dead-letter queue, still listed |
//! | gone | the consumer | a 410 removes the record, as inline |
//!
//! What it cannot avoid: a consumer that crashes (or times out) mid-shard acknowledges
//! nothing, so the whole shard comes back after the visibility timeout and the
//! recipients it had already served get the frame twice. Frames of rooms with history
//! carry `seq`, so clients drop those duplicates; other frames do not. A caller whose
//! queueing fails half way gets an error after some shards were queued; retrying the
//! send reaches those recipients twice.
//!
//! The queue is a *standard* queue ([`queue_settings`]; SQS standard on AWS, the
//! embedded queue's standard kind locally) with a dead-letter queue: shards are
//! independent, so they need neither FIFO's groups nor its deduplication window, and a
//! standard queue has no per-group throughput limit. A shard delivered twice (SQS's
//! at-least-once) posts twice; frames of rooms with history carry `seq`, so clients drop
//! those duplicates.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::backend::PostError;
pub use crate::names::fanout::QUEUE;
use crate::names::fanout::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_POST_RETRIES, DEFAULT_SHARD_SIZE, DEFAULT_THRESHOLD,
};
use crate::queue::{MAX_BODY_BYTES, OutgoingMessage, Queue, QueueError, dead_letter_queue_name};
use crate::request::Services;
use crate::response::Frame;

/// How the fan-out queue is declared on the embedded queue: standard, SQS's defaults
/// otherwise (30 s visibility, 5 receives before the dead-letter queue).
pub fn queue_settings() -> crate::queue::QueueSettings {
    crate::queue::QueueSettings::standard()
}

/// Room left in a shard message for everything but the recipients and the frame.
const ENVELOPE_SLACK: usize = 512;
/// How many shard messages a caller sends at once.
const ENQUEUE_CONCURRENCY: usize = 16;

/// Sharded fan-out settings: where shards go and how they are posted.
#[derive(Clone)]
pub struct Sharding {
    /// The queue that holds [`QUEUE`] (and its dead-letter queue).
    pub queue: Arc<dyn Queue>,
    /// Sends to more recipients than this are sharded; up to it they run inline.
    pub threshold: usize,
    /// Recipients per shard (fewer when the frame is large: a shard message stays
    /// within SQS's 256 KB).
    pub shard_size: usize,
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
            threshold: DEFAULT_THRESHOLD,
            shard_size: DEFAULT_SHARD_SIZE,
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

/// A token bucket: at most `per_sec` posts per second, with a burst of 100 ms worth
/// (a full second's burst would overrun an account limit enforced over shorter
/// windows and earn 429s).
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
        let burst = (per_sec / 10.0).max(1.0);
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

/// One shard: a queue message of [`QUEUE`] (or, with the recipients still owed, of its
/// dead-letter queue).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shard {
    /// The send this shard belongs to (shared by its shards).
    pub send_id: String,
    /// The shard's number within the send.
    pub shard: u32,
    /// How many times this shard's recipients were queued before (0: first).
    pub attempt: u32,
    /// The frame: its text, or base64 of its bytes when [`binary`](Self::binary).
    pub frame: String,
    /// Whether the frame is binary.
    #[serde(default)]
    pub binary: bool,
    /// The connection whose record a 410 must keep (the caller during `$connect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect: Option<String>,
    /// The connections still owed the frame.
    pub recipients: Vec<String>,
}

impl Shard {
    /// The frame this shard delivers.
    pub fn decode_frame(&self) -> Result<Frame, FanoutError> {
        if self.binary {
            base64::engine::general_purpose::STANDARD
                .decode(&self.frame)
                .map(Frame::binary)
                .map_err(|e| FanoutError::Malformed(format!("frame: {e}")))
        } else {
            Ok(Frame::text(self.frame.clone()))
        }
    }

    fn message(&self) -> Result<OutgoingMessage, FanoutError> {
        let body =
            serde_json::to_string(self).map_err(|e| FanoutError::Malformed(e.to_string()))?;
        let id = format!("{}-{}-{}", self.send_id, self.shard, self.attempt);
        Ok(OutgoingMessage::new(body, id.clone(), id))
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
}

/// The frame's text and whether it is binary (base64), as a shard carries it.
fn encode(frame: &Frame) -> (String, bool) {
    match frame.as_text() {
        Some(text) => (text.to_owned(), false),
        None => (
            base64::engine::general_purpose::STANDARD.encode(frame.as_bytes()),
            true,
        ),
    }
}

/// Splits `ids` into shards and queues them; returns how many recipients were queued,
/// or `None` when the send is small enough to run inline (at most the threshold).
pub(crate) async fn enqueue(
    sharding: &Sharding,
    protect: Option<&str>,
    ids: &[String],
    frame: &Frame,
) -> Result<Option<usize>, FanoutError> {
    if ids.len() <= sharding.threshold {
        return Ok(None);
    }
    let (text, binary) = encode(frame);
    let frame_len = serde_json::to_string(&text).map_or(text.len() * 2, |s| s.len());
    let longest = ids.iter().map(String::len).max().unwrap_or(0) + 3;
    let room = MAX_BODY_BYTES.saturating_sub(frame_len + ENVELOPE_SLACK);
    let per_shard = sharding.shard_size.min(room / longest).max(1);
    let send_id = crate::ids::new_id();
    let shards: Vec<Shard> = ids
        .chunks(per_shard)
        .enumerate()
        .map(|(i, chunk)| Shard {
            send_id: send_id.clone(),
            shard: u32::try_from(i).unwrap_or(u32::MAX),
            attempt: 0,
            frame: text.clone(),
            binary,
            protect: protect.map(str::to_owned),
            recipients: chunk.to_vec(),
        })
        .collect();
    let mut sends = futures_util::stream::iter(shards)
        .map(|shard| async move {
            let message = shard.message()?;
            sharding.queue.send(QUEUE, &message).await?;
            Ok::<_, FanoutError>(())
        })
        .buffer_unordered(ENQUEUE_CONCURRENCY);
    while let Some(sent) = sends.next().await {
        sent?;
    }
    tracing::debug!(
        send_id,
        recipients = ids.len(),
        per_shard,
        "fan-out sharded"
    );
    Ok(Some(ids.len()))
}

/// How one recipient ended.
enum Outcome {
    Delivered,
    Gone,
    Failed,
    Owed,
}

/// Runs one shard message's body: posts to its recipients, and queues again (or
/// dead-letters) those still owed. `Ok` means the message may be deleted; `Err` leaves
/// it to come back (a malformed body goes to the dead-letter queue that way).
pub async fn run_shard(services: &Services, body: &str) -> Result<ShardReport, FanoutError> {
    let sharding = services
        .send
        .sharding
        .as_ref()
        .ok_or(FanoutError::NotConfigured)?;
    let shard: Shard =
        serde_json::from_str(body).map_err(|e| FanoutError::Malformed(e.to_string()))?;
    let frame = shard.decode_frame()?;
    let concurrency = services.send.fanout_concurrency.max(1);
    let throttled = std::sync::atomic::AtomicUsize::new(0);
    let (frame_ref, throttled_ref, shard_ref) = (&frame, &throttled, &shard);
    let mut results = futures_util::stream::iter(shard.recipients.clone())
        .map(move |id: String| async move {
            let outcome =
                post_one(services, sharding, shard_ref, &id, frame_ref, throttled_ref).await;
            (id, outcome)
        })
        .buffer_unordered(concurrency);
    let mut report = ShardReport::default();
    let mut owed = Vec::new();
    while let Some((id, outcome)) = results.next().await {
        match outcome {
            Outcome::Delivered => report.delivered += 1,
            Outcome::Gone => report.gone += 1,
            Outcome::Failed => report.failed += 1,
            Outcome::Owed => owed.push(id),
        }
    }
    drop(results);
    report.throttled = throttled.into_inner();
    if !owed.is_empty() {
        let next = Shard {
            attempt: shard.attempt + 1,
            recipients: owed,
            ..shard.clone()
        };
        let message = next.message()?;
        if next.attempt >= sharding.max_attempts {
            report.dead_lettered = next.recipients.len();
            let dlq = dead_letter_queue_name(QUEUE);
            sharding.queue.send(&dlq, &message).await?;
            tracing::warn!(send_id = %shard.send_id, shard = shard.shard, owed = report.dead_lettered, "fan-out shard dead-lettered");
        } else {
            report.requeued = next.recipients.len();
            sharding.queue.send(QUEUE, &message).await?;
        }
    }
    Ok(report)
}

/// Posts to one recipient within the budget, retrying 429/5xx with jittered backoff.
async fn post_one(
    services: &Services,
    sharding: &Sharding,
    shard: &Shard,
    id: &str,
    frame: &Frame,
    throttled: &std::sync::atomic::AtomicUsize,
) -> Outcome {
    let mut retry = 0;
    loop {
        if let Some(budget) = &sharding.rate {
            budget.acquire().await;
        }
        match services.client.post(id, frame).await {
            Ok(()) => return Outcome::Delivered,
            Err(PostError::Gone(_)) => {
                if shard.protect.as_deref() != Some(id)
                    && let Err(e) = services.store.remove_connection(id).await
                {
                    tracing::warn!(connection_id = id, error = %e, "could not remove a gone connection");
                }
                return Outcome::Gone;
            }
            Err(e) if e.is_unavailable() => {
                if matches!(e, PostError::Throttled) {
                    throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if retry >= sharding.post_retries {
                    return Outcome::Owed;
                }
                tokio::time::sleep(jittered(sharding.backoff, retry)).await;
                retry += 1;
            }
            Err(e) => {
                tracing::warn!(connection_id = id, error = %e, "fan-out post refused");
                return Outcome::Failed;
            }
        }
    }
}

/// "Equal jitter": half the nominal delay plus a random part of the other half; the
/// nominal delay doubles per retry, capped at 2 s.
fn jittered(base: Duration, retry: u32) -> Duration {
    let nominal = base
        .checked_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .unwrap_or(Duration::from_secs(2))
        .min(Duration::from_secs(2));
    let half = nominal / 2;
    let extra = rand::random_range(0..=half.as_micros().max(1) as u64);
    half + Duration::from_micros(extra)
}

/// Receives up to one batch of [`QUEUE`] (waiting up to `wait`), runs its shards
/// concurrently and deletes the ones that ran; returns the reports of those. The one
/// consumer loop step of the local gateway, the tests and the simulator.
pub async fn consume_batch(
    services: &Services,
    wait: Duration,
) -> Result<Vec<ShardReport>, FanoutError> {
    let sharding = services
        .send
        .sharding
        .as_ref()
        .ok_or(FanoutError::NotConfigured)?;
    let queue = &sharding.queue;
    let messages = queue
        .receive(QUEUE, crate::queue::MAX_RECEIVE_BATCH, wait)
        .await?;
    let runs = messages.iter().map(|m| async move {
        let run = run_shard(services, &m.body).await;
        (m, run)
    });
    let mut reports = Vec::new();
    for (message, run) in futures_util::future::join_all(runs).await {
        match run {
            Ok(report) => {
                queue.delete(QUEUE, &message.receipt_handle).await?;
                reports.push(report);
            }
            Err(e) => tracing::warn!(error = %e, "fan-out shard failed; it comes back"),
        }
    }
    Ok(reports)
}

/// The `fanout` role's answer to one SQS event of [`QUEUE`]: its shards run
/// concurrently; the ones that could not run (their owed recipients could not be
/// queued again, or the body is not a shard) are reported as failures
/// (`ReportBatchItemFailures`), so SQS delivers them again and, after the queue's
/// `maxReceiveCount`, moves them to the dead-letter queue.
pub async fn handle_sqs_event(
    services: &Services,
    event: &aws_lambda_events::sqs::SqsEvent,
) -> aws_lambda_events::sqs::SqsBatchResponse {
    let runs = event.records.iter().map(|record| async move {
        let body = record.body.as_deref().unwrap_or_default();
        (record, run_shard(services, body).await)
    });
    let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
    for (record, run) in futures_util::future::join_all(runs).await {
        match run {
            Ok(report) => tracing::debug!(?report, "fan-out shard done"),
            Err(e) => {
                tracing::warn!(error = %e, "fan-out shard failed; SQS delivers it again");
                response.add_failure(record.message_id.clone().unwrap_or_default());
            }
        }
    }
    response
}
