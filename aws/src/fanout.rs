//! The sharded fan-out on AWS: [`sharding_from_env`] gives every function that sends
//! (routes, consumers, the HTTP API) the SQS fan-out queue, and the `fanout` role
//! ([`serve`]) consumes it with [`handle_sqs_event`](switchboard_core::fanout::handle_sqs_event).
//!
//! | variable | meaning |
//! |---|---|
//! | `SWITCHBOARD_QUEUE_URL_SWITCHBOARD_FANOUT` | the fan-out queue's URL; unset: every send runs inline |
//! | `SWITCHBOARD_QUEUE_URL_SWITCHBOARD_FANOUT_DLQ` | its dead-letter queue's URL (the `fanout` role sends recipients still owed there; without it, a last attempt fails and SQS's redrive moves it) |
//! | `SWITCHBOARD_FANOUT_THRESHOLD` | recipients above which a send is sharded (default 1000) |
//! | `SWITCHBOARD_FANOUT_RATE` | posts per second one `fanout` instance may make (the account's limit / its reserved concurrency) |
//! | `SWITCHBOARD_ROOMS_TABLE` | where frames too large for a shard message are stored ([`DynamoFrames`]); unset: in memory (only right for tests) |
//!
//! The queue is an SQS **standard** queue (its URL has no `.fifo`), so the SQS client
//! sends without group or deduplication ids.
//!
//! Unverified on AWS: the code paths are those the simulator and the tests run, with
//! the real SQS client tested on moto elsewhere; no deployed stage ran them yet.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use switchboard_core::backend::StoreError;
use switchboard_core::fanout::{FrameStore, QUEUE, Sharding};
use switchboard_core::names::env;
use switchboard_core::names::fanout::FRAME_ROOM;
use switchboard_core::names::fanout::{RATE_ENV, THRESHOLD_ENV};
use switchboard_core::names::table::attr;
use switchboard_core::queue::dead_letter_queue_name;
use switchboard_core::request::Services;
use switchboard_core::response::Frame;

use crate::lambda::LambdaError;
use crate::{AwsSettings, ConfigError};

/// The attribute holding a stored frame's bytes (B).
const FRAME_ATTR: &str = "frame";
/// The attribute saying a stored frame is binary (BOOL).
const BINARY_ATTR: &str = "binary";

/// Frames stored by reference in the rooms table: partition key
/// [`FRAME_ROOM`] (a name no client's room has; `rooms()` skips it), sort key the
/// frame's key, the bytes as `B` (a 128 KiB frame fits DynamoDB's 400 KB item), and
/// `expires` for the table's TTL. Senders write with `PutItem` and the `fanout`
/// function reads with a strongly consistent `GetItem` (so a frame written a moment
/// ago is seen); both are in the store capability's policy.
#[derive(Clone, Debug)]
pub struct DynamoFrames {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoFrames {
    /// Frames in `rooms_table`.
    pub fn new(client: aws_sdk_dynamodb::Client, rooms_table: impl Into<String>) -> Self {
        Self {
            client,
            table: rooms_table.into(),
        }
    }
}

#[async_trait]
impl FrameStore for DynamoFrames {
    async fn put(
        &self,
        key: &str,
        frame: &Frame,
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let expires = chrono::Utc::now().timestamp().saturating_add(ttl);
        self.client
            .put_item()
            .table_name(&self.table)
            .item(attr::ROOM, AttributeValue::S(FRAME_ROOM.to_owned()))
            .item(attr::CONNECTION_ID, AttributeValue::S(key.to_owned()))
            .item(FRAME_ATTR, AttributeValue::B(Blob::new(frame.as_bytes())))
            .item(BINARY_ATTR, AttributeValue::Bool(frame.as_text().is_none()))
            .item(attr::EXPIRES, AttributeValue::N(expires.to_string()))
            .send()
            .await
            .map_err(|e| crate::dynamodb::sdk_error("put_frame", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Frame>, StoreError> {
        const OP: &str = "get_frame";
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::ROOM, AttributeValue::S(FRAME_ROOM.to_owned()))
            .key(attr::CONNECTION_ID, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| crate::dynamodb::sdk_error(OP, e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let bytes = match item.get(FRAME_ATTR) {
            Some(AttributeValue::B(blob)) => blob.as_ref().to_vec(),
            _ => {
                return Err(StoreError::Backend {
                    operation: OP,
                    message: format!("the stored frame {key:?} has no `{FRAME_ATTR}` bytes"),
                });
            }
        };
        let binary = matches!(item.get(BINARY_ATTR), Some(AttributeValue::Bool(true)));
        if binary {
            return Ok(Some(Frame::binary(bytes)));
        }
        String::from_utf8(bytes)
            .map(|text| Some(Frame::text(text)))
            .map_err(|_| StoreError::Backend {
                operation: OP,
                message: format!("the stored text frame {key:?} is not UTF-8"),
            })
    }
}

/// The sharding the environment configures: `None` when the fan-out queue's URL is
/// not set (the app does not send to rooms or everyone, or the stage predates it).
/// Frames too large for a shard are stored in the rooms table
/// (`SWITCHBOARD_ROOMS_TABLE`, [`DynamoFrames`]); without it they stay in memory.
pub fn sharding_from_env(aws: &AwsSettings) -> Result<Option<Sharding>, ConfigError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let Some(url) = var(&env::queue_url(QUEUE)) else {
        return Ok(None);
    };
    let mut problems = Vec::new();
    let dlq = dead_letter_queue_name(QUEUE);
    let mut urls = vec![(QUEUE.to_owned(), url)];
    // Only the `fanout` function sends there; elsewhere it is not set.
    if let Some(dlq_url) = var(&env::queue_url(&dlq)) {
        urls.push((dlq, dlq_url));
    }
    let number = |name: &str, problems: &mut Vec<String>| -> Option<u32> {
        let value = var(name)?;
        match value.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(format!("{name} must be a whole number, not {value:?}"));
                None
            }
        }
    };
    let threshold = number(THRESHOLD_ENV, &mut problems);
    let rate = number(RATE_ENV, &mut problems);
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let settings = aws.clone().with_endpoint(var(env::SQS_ENDPOINT));
    let queue =
        crate::sqs::SqsQueue::from_settings(&settings, crate::sqs::QueueNames::from_urls(urls));
    let mut sharding = Sharding::new(Arc::new(queue));
    if let Some(rooms) = var(env::ROOMS_TABLE) {
        let store_settings = aws.clone().with_endpoint(var(env::DYNAMODB_ENDPOINT));
        let client = crate::dynamodb_client(&store_settings);
        sharding = sharding.frames(Arc::new(DynamoFrames::new(client, rooms)));
    }
    if let Some(threshold) = threshold {
        sharding = sharding.threshold(threshold as usize);
    }
    if let Some(rate) = rate {
        sharding = sharding.rate(rate);
    }
    Ok(Some(sharding))
}

/// Serves the `fanout` role: one SQS event of shards per invocation.
pub async fn serve(services: Arc<Services>) -> Result<(), LambdaError> {
    tracing::info!("serving the fan-out queue");
    let handler = service_fn(
        move |event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
            let services = Arc::clone(&services);
            async move {
                let started = Instant::now();
                let response =
                    switchboard_core::fanout::handle_sqs_event(&services, &event.payload).await;
                tracing::info!(
                    request_id = %event.context.request_id,
                    shards = event.payload.records.len(),
                    failed = response.batch_item_failures.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "fan-out batch"
                );
                crate::lambda::flush_metrics(&services.metrics, &mut std::io::stdout().lock());
                Ok::<_, Diagnostic>(response)
            }
        },
    );
    lambda_runtime::run(handler)
        .await
        .map_err(|e| LambdaError::Runtime(e.to_string()))
}
