//! The consumers' side: running shards and page tasks, one batch at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};

use super::message::{FrameField, PageTask, Probe, ShardHeader, ShardIn, TaskKind, decode_frame};
use super::send::{queue_shards, read_page};
use super::{FanoutError, FrameStore, QUEUE, ShardReport, Sharding};
use crate::backend::PostError;
use crate::queue::dead_letter_queue_name;
use crate::request::Services;
use crate::response::Frame;

/// Frames stored by reference, loaded once per batch (shards of one send share one).
#[derive(Default)]
struct FrameCache {
    cells: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Frame>>>>,
}

impl FrameCache {
    async fn get(&self, frames: &dyn FrameStore, key: &str) -> Result<Frame, FanoutError> {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(cells.entry(key.to_owned()).or_default())
        };
        cell.get_or_try_init(|| async {
            frames
                .get(key)
                .await?
                .ok_or_else(|| FanoutError::FrameGone(key.to_owned()))
        })
        .await
        .cloned()
    }
}

/// Runs one fan-out queue message's body: a shard (posts to its recipients, and
/// queues again or dead-letters those still owed) or a page task (reads the page,
/// queues the next page's task and the page's recipients as shards). `Ok` means the
/// message may be deleted; `Err` leaves it to come back (a malformed body goes to the
/// dead-letter queue that way).
pub async fn run_message(services: &Services, body: &str) -> Result<ShardReport, FanoutError> {
    run_cached(services, body, &FrameCache::default()).await
}

async fn run_cached(
    services: &Services,
    body: &str,
    cache: &FrameCache,
) -> Result<ShardReport, FanoutError> {
    let sharding = services
        .send
        .sharding
        .as_ref()
        .ok_or(FanoutError::NotConfigured)?;
    let malformed = |e: serde_json::Error| FanoutError::Malformed(e.to_string());
    let probe: Probe = serde_json::from_str(body).map_err(malformed)?;
    match probe.kind {
        TaskKind::Shard => {
            let shard: ShardIn<'_> = serde_json::from_str(body).map_err(malformed)?;
            run_shard(services, sharding, &shard, cache).await
        }
        TaskKind::Page => {
            let task: PageTask<'_> = serde_json::from_str(body).map_err(malformed)?;
            run_page(services, sharding, &task).await
        }
    }
}

/// Reads a page task's page; queues the next page's task first, then the page's ids
/// as shards.
async fn run_page(
    services: &Services,
    sharding: &Sharding,
    task: &PageTask<'_>,
) -> Result<ShardReport, FanoutError> {
    let page = read_page(
        &*services.store,
        &task.source,
        Some(&task.after),
        sharding.page_size,
    )
    .await?;
    if let Some(after) = page.next {
        let next = PageTask {
            page: task.page.saturating_add(1),
            after,
            send_id: task.send_id.clone(),
            source: task.source.clone(),
            frame_ref: task.frame_ref.clone(),
            protect: task.protect.clone(),
            except: task.except.clone(),
            ..*task
        };
        sharding.queue.send(QUEUE, &next.message()?).await?;
    }
    let except = task.except.as_deref();
    let ids: Vec<String> = page
        .ids
        .into_iter()
        .filter(|id| Some(id.as_str()) != except)
        .collect();
    let header = ShardHeader {
        send_id: &task.send_id,
        page: task.page,
        frame: task.frame_field()?,
        binary: task.binary,
        protect: task.protect.as_deref(),
    };
    let paged = queue_shards(sharding, &header, &ids).await?;
    Ok(ShardReport {
        paged,
        ..ShardReport::default()
    })
}

/// How one recipient ended.
enum Outcome {
    Delivered,
    Gone,
    Failed,
    Owed,
}

/// Posts a shard's frame to its recipients; queues again (or dead-letters) the owed.
async fn run_shard(
    services: &Services,
    sharding: &Sharding,
    shard: &ShardIn<'_>,
    cache: &FrameCache,
) -> Result<ShardReport, FanoutError> {
    let field = shard.frame_field()?;
    let frame = match field {
        FrameField::Inline(json) => decode_frame(json, shard.binary)?,
        FrameField::Stored(key) => cache.get(&*sharding.frames, key).await?,
    };
    let concurrency = services.send.fanout_concurrency.max(1);
    let throttled = AtomicUsize::new(0);
    let protect = shard.protect.as_deref();
    let (frame_ref, throttled_ref) = (&frame, &throttled);
    let recipients = &shard.recipients;
    let mut results = futures_util::stream::iter(0..recipients.len())
        .map(move |i| {
            let id = &recipients[i];
            async move {
                let outcome =
                    post_one(services, sharding, protect, id, frame_ref, throttled_ref).await;
                (id, outcome)
            }
            .boxed()
        })
        .buffer_unordered(concurrency);
    let mut report = ShardReport::default();
    let mut owed = Vec::new();
    while let Some((id, outcome)) = results.next().await {
        match outcome {
            Outcome::Delivered => report.delivered += 1,
            Outcome::Gone => report.gone += 1,
            Outcome::Failed => report.failed += 1,
            Outcome::Owed => owed.push(id.clone()),
        }
    }
    drop(results);
    report.throttled = throttled.into_inner();
    // The same counters as an inline send's (the dashboard's fan-out widgets).
    (services.metrics).fanout(report.delivered + report.gone + report.failed, report.gone);
    if owed.is_empty() {
        return Ok(report);
    }
    let header = ShardHeader {
        send_id: &shard.send_id,
        page: shard.page,
        frame: field,
        binary: shard.binary,
        protect,
    };
    let attempt = shard.attempt.saturating_add(1);
    let message = header.shard(shard.shard, attempt, &owed).message()?;
    if attempt >= sharding.max_attempts {
        report.dead_lettered = owed.len();
        sharding
            .queue
            .send(&dead_letter_queue_name(QUEUE), &message)
            .await?;
        tracing::warn!(send_id = %shard.send_id, shard = shard.shard, owed = owed.len(), "fan-out shard dead-lettered");
    } else {
        report.requeued = owed.len();
        sharding.queue.send(QUEUE, &message).await?;
    }
    Ok(report)
}

/// Posts to one recipient within the budget, retrying 429/5xx with jittered backoff.
async fn post_one(
    services: &Services,
    sharding: &Sharding,
    protect: Option<&str>,
    id: &str,
    frame: &Frame,
    throttled: &AtomicUsize,
) -> Outcome {
    let mut retry = 0;
    loop {
        if let Some(budget) = &sharding.rate {
            budget.acquire().await;
        }
        match services.client.post(id, frame).await {
            Ok(()) => return Outcome::Delivered,
            Err(PostError::Gone(_)) => {
                if protect != Some(id)
                    && let Err(e) = services.store.remove_connection(id).await
                {
                    tracing::warn!(connection_id = id, error = %e, "could not remove a gone connection");
                }
                return Outcome::Gone;
            }
            Err(e) if e.is_unavailable() => {
                if matches!(e, PostError::Throttled) {
                    throttled.fetch_add(1, Ordering::Relaxed);
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

/// Receives up to one batch of [`QUEUE`] (waiting up to `wait`), runs its messages
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
    let cache = FrameCache::default();
    let runs = messages.iter().map(|m| {
        let cache = &cache;
        async move { (m, run_cached(services, &m.body, cache).await) }
    });
    let mut reports = Vec::new();
    for (message, run) in futures_util::future::join_all(runs).await {
        match run {
            Ok(report) => {
                queue.delete(QUEUE, &message.receipt_handle).await?;
                reports.push(report);
            }
            Err(e) => tracing::warn!(error = %e, "fan-out message failed; it comes back"),
        }
    }
    Ok(reports)
}

/// The `fanout` role's answer to one SQS event of [`QUEUE`]: its messages run
/// concurrently (stored frames loaded once for the batch); the ones that could not
/// run (owed recipients or a page could not be queued, the store failed, the body is
/// not a fan-out message) are reported as failures (`ReportBatchItemFailures`), so SQS
/// delivers them again and, after the queue's `maxReceiveCount`, moves them to the
/// dead-letter queue.
pub async fn handle_sqs_event(
    services: &Services,
    event: &aws_lambda_events::sqs::SqsEvent,
) -> aws_lambda_events::sqs::SqsBatchResponse {
    let cache = FrameCache::default();
    let runs = event.records.iter().map(|record| {
        let cache = &cache;
        async move {
            let body = record.body.as_deref().unwrap_or_default();
            (record, run_cached(services, body, cache).await)
        }
    });
    let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
    for (record, run) in futures_util::future::join_all(runs).await {
        match run {
            Ok(report) => tracing::debug!(?report, "fan-out message done"),
            Err(e) => {
                tracing::warn!(error = %e, "fan-out message failed; SQS delivers it again");
                response.add_failure(record.message_id.clone().unwrap_or_default());
            }
        }
    }
    response
}
