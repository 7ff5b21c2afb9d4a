//! Embedded queue consumers: what SQS event source mappings do in AWS, in-process.
//!
//! One task per `#[queue_consumer]` long-polls its queue (batches of the consumer's
//! `batch_size`, default 10), runs the batch through the same
//! [`process_batch`](switchboard_core::consumer::process_batch) as the `queue:<name>` Lambda role,
//! deletes what succeeded and leaves the rest in flight, to be delivered again when the
//! visibility timeout expires (and moved to the dead-letter queue after
//! `max_receive_count` deliveries) — as a Lambda reporting `batchItemFailures` does.
//!
//! With sharded fan-out configured (`App::fanout_threshold`), [`FANOUT_CONSUMERS`]
//! tasks consume the internal fan-out queue with the same
//! [`consume_batch`](switchboard_core::fanout::consume_batch) step the `fanout`
//! role runs, as that function's concurrency does in AWS.
//!
//! `GET /local/queues` shows every queue's depth, in-flight and dead-letter counts and
//! what its consumer has done; `fanout` (null when sends are never sharded) the fan-out
//! queue's and what its consumers did (messages run, posts delivered, gone, failed,
//! throttled, recipients requeued, dead-lettered, read by page tasks).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use switchboard_core::consumer::{BoxedConsumer, ConsumeError, Record, process_batch};
use switchboard_core::fanout::{QUEUE, ShardReport, Sharding};
use switchboard_core::queue::{MAX_RECEIVE_BATCH, Queue, QueueError, QueueStats, ReceivedMessage};
use switchboard_core::request::Services;

/// How long one receive waits for messages before looking at the stop signal again.
const POLL_WAIT: Duration = Duration::from_secs(1);

/// How long to wait after a backend error before polling again (doubles up to 5 s).
const ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// How many in-process consumers the fan-out queue has (the `fanout` function's
/// concurrency, locally).
pub(crate) const FANOUT_CONSUMERS: usize = 4;

/// What a consumer has done since the gateway started.
#[derive(Debug, Default)]
pub(crate) struct ConsumerCounters {
    /// Messages the consumer processed (and that were deleted).
    processed: AtomicU64,
    /// Deliveries the consumer failed (the message comes back or goes to the DLQ).
    failed: AtomicU64,
    /// Deliveries not run because an earlier message of their group failed in the same
    /// batch (they come back too, with a higher receive count).
    blocked: AtomicU64,
    /// Batches run.
    batches: AtomicU64,
}

/// What the in-process fan-out consumers did since the gateway started (the sums of
/// their [`ShardReport`]s), for `GET /local/queues`.
#[derive(Debug, Default)]
struct FanoutTally {
    /// Fan-out messages (shards and page tasks) run and deleted.
    messages: AtomicU64,
    delivered: AtomicU64,
    gone: AtomicU64,
    failed: AtomicU64,
    throttled: AtomicU64,
    requeued: AtomicU64,
    dead_lettered: AtomicU64,
    paged: AtomicU64,
}

impl FanoutTally {
    fn add(&self, report: &ShardReport) {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        self.messages.fetch_add(1, Ordering::Relaxed);
        for (counter, v) in [
            (&self.delivered, report.delivered),
            (&self.gone, report.gone),
            (&self.failed, report.failed),
            (&self.throttled, report.throttled),
            (&self.requeued, report.requeued),
            (&self.dead_lettered, report.dead_lettered),
            (&self.paged, report.paged),
        ] {
            counter.fetch_add(n(v), Ordering::Relaxed);
        }
    }

    /// The tally as JSON, with the fan-out queue's depths.
    async fn view(&self, sharding: &Sharding) -> serde_json::Value {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let depths = sharding.queue.stats(QUEUE).await.map_err(|e| e.to_string());
        let depth = |f: fn(&QueueStats) -> usize| depths.as_ref().ok().map(f);
        serde_json::json!({
            "queue": QUEUE,
            "threshold": sharding.threshold,
            "visible": depth(|s| s.visible),
            "inFlight": depth(|s| s.in_flight),
            "deadLetters": depth(|s| s.dead_letters),
            "error": depths.as_ref().err(),
            "messages": load(&self.messages),
            "delivered": load(&self.delivered),
            "gone": load(&self.gone),
            "failed": load(&self.failed),
            "throttled": load(&self.throttled),
            "requeued": load(&self.requeued),
            "deadLettered": load(&self.dead_lettered),
            "paged": load(&self.paged),
        })
    }
}

struct Running {
    queue: &'static str,
    function: &'static str,
    counters: Arc<ConsumerCounters>,
}

/// The embedded consumers of a local gateway.
pub(crate) struct EmbeddedConsumers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    running: Arc<Vec<Running>>,
    services: Arc<Services>,
    fanout: Arc<FanoutTally>,
}

impl EmbeddedConsumers {
    /// Starts one task per registered consumer (none without a queue backend).
    pub(crate) fn start(services: &Arc<Services>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut running = Vec::new();
        if let Some(queue) = &services.queue {
            for c in services.registry.consumers() {
                let counters = Arc::new(ConsumerCounters::default());
                running.push(Running {
                    queue: c.def.queue,
                    function: c.def.function,
                    counters: Arc::clone(&counters),
                });
                let batch = c
                    .def
                    .options
                    .batch_size
                    .map_or(MAX_RECEIVE_BATCH, |b| b as usize)
                    .clamp(1, MAX_RECEIVE_BATCH);
                tasks.push(tokio::spawn(consume(
                    c.def.queue,
                    batch,
                    Arc::clone(&c.consumer),
                    Arc::clone(services),
                    Arc::clone(queue),
                    counters,
                    stopped.clone(),
                )));
            }
        }
        let fanout = Arc::new(FanoutTally::default());
        if services.send.sharding.is_some() {
            for _ in 0..FANOUT_CONSUMERS {
                tasks.push(tokio::spawn(consume_fanout(
                    Arc::clone(services),
                    Arc::clone(&fanout),
                    stopped.clone(),
                )));
            }
        }
        Self {
            stop,
            tasks,
            running: Arc::new(running),
            services: Arc::clone(services),
            fanout,
        }
    }

    /// Stops polling and waits (up to `grace`) for the batches in progress to finish;
    /// what was not processed stays on the queue.
    pub(crate) async fn drain(self, grace: Duration) {
        let _ = self.stop.send(true);
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("queue consumers still busy after the shutdown grace period");
        }
    }

    /// `GET /local/queues`.
    pub(crate) fn routes(&self) -> Router {
        let view = QueueView {
            services: Arc::clone(&self.services),
            running: Arc::clone(&self.running),
            fanout: Arc::clone(&self.fanout),
        };
        Router::new()
            .route("/local/queues", get(queues_json))
            .with_state(Arc::new(view))
    }
}

async fn consume(
    queue_name: &'static str,
    batch: usize,
    consumer: BoxedConsumer,
    services: Arc<Services>,
    queue: Arc<dyn Queue>,
    counters: Arc<ConsumerCounters>,
    mut stopped: watch::Receiver<bool>,
) {
    tracing::info!(queue = queue_name, "embedded consumer started");
    let mut backoff = ERROR_BACKOFF;
    loop {
        if *stopped.borrow() {
            break;
        }
        let received = tokio::select! {
            r = queue.receive(queue_name, batch, POLL_WAIT) => r,
            _ = stopped.changed() => break,
        };
        let messages = match received {
            Ok(m) => {
                backoff = ERROR_BACKOFF;
                m
            }
            Err(e) => {
                tracing::warn!(queue = queue_name, error = %e, "receive failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        counters.batches.fetch_add(1, Ordering::Relaxed);
        let (records, receipts): (Vec<Record>, Vec<String>) =
            messages.into_iter().map(split).unzip();
        let outcomes = process_batch(&consumer, &services, queue_name, &records).await;
        for (receipt, outcome) in receipts.iter().zip(outcomes) {
            if outcome.result.is_ok() {
                counters.processed.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = delete_with_retry(&*queue, queue_name, receipt).await {
                    // The message comes back after its visibility timeout and is
                    // processed again: consumers are at-least-once.
                    tracing::warn!(queue = queue_name, error = %e, "delete failed");
                }
            } else if matches!(outcome.result, Err(ConsumeError::Blocked(_))) {
                counters.blocked.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    tracing::info!(queue = queue_name, "embedded consumer stopped");
}

/// Runs shards of the fan-out queue until stopped.
async fn consume_fanout(
    services: Arc<Services>,
    tally: Arc<FanoutTally>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = ERROR_BACKOFF;
    loop {
        if *stopped.borrow() {
            break;
        }
        let step = tokio::select! {
            r = switchboard_core::fanout::consume_batch(&services, POLL_WAIT) => r,
            _ = stopped.changed() => break,
        };
        match step {
            Err(e) => {
                tracing::warn!(error = %e, "fan-out consumer: receive failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Ok(reports) => {
                reports.iter().for_each(|r| tally.add(r));
                backoff = ERROR_BACKOFF;
            }
        }
    }
}

async fn delete_with_retry(
    queue: &dyn Queue,
    name: &str,
    receipt_handle: &str,
) -> Result<(), QueueError> {
    let mut delay = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        match queue.delete(name, receipt_handle).await {
            Ok(()) => return Ok(()),
            Err(e @ (QueueError::Throttled { .. } | QueueError::Backend { .. })) if attempt < 3 => {
                tracing::debug!(error = %e, "delete failed; retrying");
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A delivered message as the batch sees it, and its receipt handle for the delete.
fn split(m: ReceivedMessage) -> (Record, String) {
    let record = Record {
        message_id: m.message_id,
        body: m.body,
        group_id: m.group_id,
        receive_count: m.receive_count,
    };
    (record, m.receipt_handle)
}

struct QueueView {
    services: Arc<Services>,
    running: Arc<Vec<Running>>,
    fanout: Arc<FanoutTally>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QueueRow {
    name: &'static str,
    dead_letter_queue: String,
    producers: Vec<&'static str>,
    visible: Option<usize>,
    in_flight: Option<usize>,
    dead_letters: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    consumer: Option<ConsumerRow>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerRow {
    #[serde(rename = "fn")]
    function: &'static str,
    processed: u64,
    failed: u64,
    blocked: u64,
    batches: u64,
}

async fn queues_json(State(view): State<Arc<QueueView>>) -> impl IntoResponse {
    let mut rows = Vec::new();
    for q in view.services.registry.queues() {
        let stats = match &view.services.queue {
            Some(backend) => backend.stats(q.name).await.map_err(|e| e.to_string()),
            None => Err("no queue backend".to_owned()),
        };
        let consumer = view
            .running
            .iter()
            .find(|r| r.queue == q.name)
            .map(|r| ConsumerRow {
                function: r.function,
                processed: r.counters.processed.load(Ordering::Relaxed),
                failed: r.counters.failed.load(Ordering::Relaxed),
                blocked: r.counters.blocked.load(Ordering::Relaxed),
                batches: r.counters.batches.load(Ordering::Relaxed),
            });
        let (visible, in_flight, dead_letters, error) = match stats {
            Ok(s) => (
                Some(s.visible),
                Some(s.in_flight),
                Some(s.dead_letters),
                None,
            ),
            Err(e) => (None, None, None, Some(e)),
        };
        rows.push(QueueRow {
            name: q.name,
            dead_letter_queue: switchboard_core::queue::dead_letter_queue_name(q.name),
            producers: q.producers.clone(),
            visible,
            in_flight,
            dead_letters,
            error,
            consumer,
        });
    }
    // The internal fan-out queue (sharded sends), when the app shards.
    let fanout = match &view.services.send.sharding {
        Some(sharding) => view.fanout.view(sharding).await,
        None => serde_json::Value::Null,
    };
    let body = serde_json::json!({ "queues": rows, "fanout": fanout });
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    )
}
