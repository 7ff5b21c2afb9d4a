//! Queue consumers: `#[queue_consumer("orders")]` on an `async fn` that takes the typed
//! message (and optionally a [`QueueCtx`] first).
//!
//! ```ignore
//! use switchboard::prelude::*;
//!
//! #[derive(Deserialize)]
//! struct PlaceOrder { item: String, qty: u32 }
//!
//! /// Fulfils an order and tells the customer.
//! #[queue_consumer("orders", batch_size = 10, timeout = 30)]
//! async fn fulfil(ctx: QueueCtx, order: Message<PlaceOrder>) -> Result<(), WsError> {
//!     ctx.sender().send(&serde_json::json!({"action": "orderPlaced", "item": order.body.item})).await?;
//!     Ok(())
//! }
//! ```
//!
//! A consumer runs once per message; `Ok` deletes the message, `Err` (or a panic, or a
//! body that is not a valid envelope of the expected type) leaves it on the queue to be
//! delivered again after the visibility timeout, and after `maxReceiveCount` deliveries
//! it moves to the dead-letter queue. Delivery is at least once: make consumers
//! idempotent (the [`Message::message_id`] is stable across deliveries).
//!
//! [`process_batch`] is the one place batches are handled, for the `queue:<name>` Lambda
//! role (an SQS event with `ReportBatchItemFailures`) and for the local gateway's
//! embedded consumers alike: messages of one group run in order, one at a time; groups
//! run concurrently; once a message fails, the later messages of its group in the batch
//! are not run and are reported as failed too, so that the group's order holds when
//! they come back.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{ConnectionRecord, Member};
use crate::context::{Outbox, Target};
use crate::identity::Identity;
use crate::queue::envelope::{self, Sender};
use crate::registry::SourceLocation;
use crate::request::Services;
use crate::response::WsError;

/// Options of `#[queue_consumer("q", batch_size = 10, memory = 512, timeout = 30)]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerOptions {
    /// Lambda memory in MB for the consumer's function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// Lambda timeout in seconds for the consumer's function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
    /// How many messages one invocation receives (1..=10; SQS FIFO's limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
}

/// One registered consumer, as submitted by `#[queue_consumer]`.
#[derive(Clone, Copy)]
pub struct ConsumerDef {
    /// The logical queue name.
    pub queue: &'static str,
    /// The function's name.
    pub function: &'static str,
    /// `module_path!()` of the function.
    pub module: &'static str,
    /// Where it was declared.
    pub location: SourceLocation,
    /// Options from the attribute.
    pub options: ConsumerOptions,
    /// The function's doc comment (first paragraph).
    pub doc: &'static str,
    /// Builds the type-erased consumer.
    pub consumer: fn() -> BoxedConsumer,
}

impl fmt::Debug for ConsumerDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerDef")
            .field("queue", &self.queue)
            .field("function", &self.function)
            .field("module", &self.module)
            .field("location", &self.location)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ConsumerDef);

/// A message as a consumer receives it: the typed payload and where it came from.
#[derive(Clone, Debug)]
pub struct Message<T> {
    /// The payload.
    pub body: T,
    /// Who sent it.
    pub sender: Sender,
    /// When it was forwarded (RFC 3339).
    pub sent_at: String,
    /// The route that forwarded it.
    pub route: Option<String>,
    /// The queue's message id: stable across deliveries (use it for idempotency).
    pub message_id: String,
    /// The message group.
    pub group_id: String,
    /// How many times it has been delivered, this time included.
    pub receive_count: u32,
}

impl<T> Message<T> {
    /// The sender's identity.
    pub fn identity(&self) -> &Identity {
        &self.sender.identity
    }

    /// The sender's username.
    pub fn username(&self) -> &str {
        self.sender.identity.username()
    }
}

/// One queue message to process, as SQS or the embedded queue delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The queue's message id (what `ReportBatchItemFailures` reports).
    pub message_id: String,
    /// The raw body: an [envelope].
    pub body: String,
    /// The message group (empty if unknown).
    pub group_id: String,
    /// The delivery count.
    pub receive_count: u32,
}

/// Why a message was not processed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConsumeError {
    /// The body is not an envelope, or its payload is not the consumer's type.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The consumer returned an error.
    #[error("the consumer failed: {0}")]
    Failed(String),
    /// The consumer panicked.
    #[error("the consumer panicked: {0}")]
    Panicked(String),
    /// An earlier message of the same group failed in this batch, so this one was not
    /// run (to keep the group's order).
    #[error("not run: message {0} of the same group failed before it")]
    Blocked(String),
}

/// What a consumer may return: `()` or `Result<(), E>` with a displayable error.
pub trait IntoConsumerResult {
    /// `Ok` to delete the message, `Err(reason)` to have it delivered again.
    fn into_consumer_result(self) -> Result<(), String>;
}

impl IntoConsumerResult for () {
    fn into_consumer_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> IntoConsumerResult for Result<(), E> {
    fn into_consumer_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// The future a type-erased consumer returns.
pub type ConsumerFuture = Pin<Box<dyn Future<Output = Result<(), ConsumeError>> + Send>>;

/// An async function usable as a queue consumer. Implemented for
/// `async fn(QueueCtx, Message<T>) -> R` and `async fn(Message<T>) -> R` where `T` is
/// deserialisable and `R` is `()` or `Result<(), E: Display>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid Switchboard queue consumer",
    label = "not a valid consumer",
    note = "a consumer is an `async fn(ctx: QueueCtx, msg: Message<T>)` or `async fn(msg: Message<T>)` with `T: DeserializeOwned`, returning `()` or `Result<(), E>` with `E: Display`"
)]
pub trait Consumer<M>: Clone + Send + Sync + Sized + 'static {
    /// Runs the consumer for one message.
    fn call(self, ctx: QueueCtx, record: &Record) -> ConsumerFuture;
}

/// A consumer with its types erased, as stored in the registry.
pub trait ErasedConsumer: Send + Sync + 'static {
    /// Runs the consumer for one message.
    fn call(&self, ctx: QueueCtx, record: &Record) -> ConsumerFuture;
}

/// A shared, type-erased consumer.
pub type BoxedConsumer = Arc<dyn ErasedConsumer>;

struct Erased<C, M> {
    consumer: C,
    _marker: std::marker::PhantomData<fn() -> M>,
}

impl<C: Consumer<M>, M: 'static> ErasedConsumer for Erased<C, M> {
    fn call(&self, ctx: QueueCtx, record: &Record) -> ConsumerFuture {
        self.consumer.clone().call(ctx, record)
    }
}

/// Erases a consumer's types. Used by `#[queue_consumer]` and by tests that register
/// consumers by hand.
pub fn erase_consumer<C: Consumer<M>, M: 'static>(consumer: C) -> BoxedConsumer {
    Arc::new(Erased {
        consumer,
        _marker: std::marker::PhantomData,
    })
}

/// Reads a record into a typed message, with the sender for the context.
fn decode<T: DeserializeOwned>(record: &Record) -> Result<Message<T>, ConsumeError> {
    let envelope = envelope::parse(&record.body).map_err(ConsumeError::Malformed)?;
    let body = serde_json::from_str(envelope.payload.get()).map_err(|e| {
        ConsumeError::Malformed(format!(
            "the payload is not a {}: {e}",
            std::any::type_name::<T>()
        ))
    })?;
    Ok(Message {
        body,
        sender: envelope.sender,
        sent_at: envelope.sent_at,
        route: envelope.route,
        message_id: record.message_id.clone(),
        group_id: record.group_id.clone(),
        receive_count: record.receive_count,
    })
}

fn finish<R: IntoConsumerResult>(fut: impl Future<Output = R> + Send + 'static) -> ConsumerFuture {
    Box::pin(async move {
        match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
            Ok(r) => r.into_consumer_result().map_err(ConsumeError::Failed),
            Err(panic) => Err(ConsumeError::Panicked(crate::dispatch::panic_message(
                &*panic,
            ))),
        }
    })
}

/// Marker for consumers taking a context and a message.
#[derive(Debug)]
pub enum WithCtx {}

/// Marker for consumers taking only a message.
#[derive(Debug)]
pub enum MessageOnly {}

impl<F, Fut, T, R> Consumer<(WithCtx, T, R)> for F
where
    F: FnOnce(QueueCtx, Message<T>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
    R: IntoConsumerResult + 'static,
{
    fn call(self, mut ctx: QueueCtx, record: &Record) -> ConsumerFuture {
        match decode::<T>(record) {
            Ok(message) => {
                ctx.sender = message.sender.clone();
                finish(self(ctx, message))
            }
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

impl<F, Fut, T, R> Consumer<(MessageOnly, T, R)> for F
where
    F: FnOnce(Message<T>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
    R: IntoConsumerResult + 'static,
{
    fn call(self, _ctx: QueueCtx, record: &Record) -> ConsumerFuture {
        match decode::<T>(record) {
            Ok(message) => finish(self(message)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// A consumer's context: send to connections, users, rooms; look up members.
#[derive(Clone)]
pub struct QueueCtx {
    services: Arc<Services>,
    queue: String,
    sender: Sender,
}

impl fmt::Debug for QueueCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueCtx")
            .field("queue", &self.queue)
            .field("sender", &self.sender.connection_id)
            .finish_non_exhaustive()
    }
}

impl QueueCtx {
    /// A context for consuming `queue`.
    pub fn new(services: Arc<Services>, queue: impl Into<String>) -> Self {
        Self {
            services,
            queue: queue.into(),
            sender: Sender::default(),
        }
    }

    /// The queue being consumed.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Application state of type `S`, if the app provided one.
    pub fn state<S: Clone + Send + Sync + 'static>(&self) -> Option<S> {
        self.outbox().state()
    }

    fn me(&self) -> Option<&str> {
        Some(self.sender.connection_id.as_str()).filter(|c| !c.is_empty())
    }

    /// The shared operations, as the consumer of a message: "me" is the connection that
    /// sent it. A failed lookup is reported as `internal` (logged), as consumers always
    /// have; a failed send's lookup as in every context.
    fn outbox(&self) -> Outbox<'_> {
        Outbox::new(&self.services)
            .me(self.me())
            .lookup_error(WsError::internal)
    }

    /// Sends to the connection the message came from (if it is still open; a closed one
    /// counts as `gone` in the [`Delivery`](crate::Delivery)).
    pub fn sender(&self) -> Target<'_> {
        self.outbox().connection(self.sender.connection_id.clone())
    }

    /// Sends to one connection.
    pub fn connection(&self, connection_id: impl Into<String>) -> Target<'_> {
        self.outbox().connection(connection_id)
    }

    /// Sends to every connection of a user.
    pub fn user(&self, username: impl Into<String>) -> Target<'_> {
        self.outbox().user(username)
    }

    /// Sends to every member of a room.
    pub fn room(&self, room: impl Into<String>) -> Target<'_> {
        self.outbox().room(room)
    }

    /// Sends to every open connection.
    pub fn broadcast(&self) -> Target<'_> {
        self.outbox().broadcast()
    }

    /// The members of a room.
    pub async fn members(&self, room: &str) -> Result<Vec<Member>, WsError> {
        self.outbox().members(room).await
    }

    /// The open connections of a user.
    pub async fn connections_of(&self, username: &str) -> Result<Vec<ConnectionRecord>, WsError> {
        self.outbox().connections_of(username).await
    }
}

/// What happened to one message of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemOutcome {
    /// The message id.
    pub message_id: String,
    /// `Ok` when processed (delete it), else why not (report it).
    pub result: Result<(), ConsumeError>,
}

/// Processes a batch: groups concurrently, each group in order, a group stopped at its
/// first failure (its later messages reported as [`ConsumeError::Blocked`]). The outcomes
/// come back in the batch's order. Never panics on a message.
pub async fn process_batch(
    consumer: &BoxedConsumer,
    services: &Arc<Services>,
    queue: &str,
    records: &[Record],
) -> Vec<ItemOutcome> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let slot = *index.entry(r.group_id.as_str()).or_insert_with(|| {
            groups.push((r.group_id.as_str(), Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(i);
    }
    let runs = groups.into_iter().map(|(_, members)| async move {
        let mut out = Vec::with_capacity(members.len());
        let mut failed: Option<String> = None;
        for i in members {
            let record = &records[i];
            let result = match &failed {
                Some(first) => Err(ConsumeError::Blocked(first.clone())),
                None => {
                    let ctx = QueueCtx::new(Arc::clone(services), queue);
                    consumer.call(ctx, record).await
                }
            };
            if let Err(e) = &result {
                if failed.is_none() {
                    failed = Some(record.message_id.clone());
                }
                match e {
                    ConsumeError::Blocked(_) => tracing::debug!(
                        queue,
                        message_id = %record.message_id,
                        reason = %e,
                        "message not processed"
                    ),
                    _ => tracing::warn!(
                        queue,
                        message_id = %record.message_id,
                        receive_count = record.receive_count,
                        reason = %e,
                        "message not processed; it will be delivered again"
                    ),
                }
            }
            out.push((i, result));
        }
        out
    });
    let mut done: Vec<(usize, Result<(), ConsumeError>)> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    done.sort_by_key(|(i, _)| *i);
    let failures = done.iter().filter(|(_, r)| r.is_err()).count();
    services.metrics.queue_batch(queue, failures);
    done.into_iter()
        .map(|(i, result)| ItemOutcome {
            message_id: records[i].message_id.clone(),
            result,
        })
        .collect()
}

/// The records of an SQS event, as [`process_batch`] takes them. A record without a
/// message id cannot be reported, so it gets an empty one (and is logged).
pub fn records_of(event: &aws_lambda_events::sqs::SqsEvent) -> Vec<Record> {
    event
        .records
        .iter()
        .map(|m| {
            let message_id = m.message_id.clone().unwrap_or_default();
            if message_id.is_empty() {
                tracing::warn!("an SQS record without a messageId");
            }
            Record {
                message_id,
                body: m.body.clone().unwrap_or_default(),
                group_id: m
                    .attributes
                    .get("MessageGroupId")
                    .cloned()
                    .unwrap_or_default(),
                receive_count: m
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            }
        })
        .collect()
}

/// The `queue:<name>` role's answer to one SQS event: the messages to deliver again
/// (`ReportBatchItemFailures`); every other message of the batch is deleted by Lambda.
pub async fn handle_sqs_event(
    consumer: &BoxedConsumer,
    services: &Arc<Services>,
    queue: &str,
    event: &aws_lambda_events::sqs::SqsEvent,
) -> aws_lambda_events::sqs::SqsBatchResponse {
    let records = records_of(event);
    let outcomes = process_batch(consumer, services, queue, &records).await;
    let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
    for outcome in outcomes {
        if outcome.result.is_err() {
            response.add_failure(outcome.message_id);
        }
    }
    response
}
