//! The SQS [`Queue`]: FIFO queues, each with a FIFO dead-letter queue, and standard
//! queues (the fan-out queue) reached by explicit URLs without `.fifo`.
//!
//! # Names
//!
//! Logical queue names (what handlers and consumers use) map to SQS queues through
//! [`QueueNames`]: explicit queue URLs, a naming rule (`{app}-{stage}-{queue}.fifo`, see
//! [`QueueNames::for_app`]), or both (explicit URLs win). A name resolved by the rule is
//! looked up once with `GetQueueUrl` and its URL cached for the life of the [`SqsQueue`]
//! (and its clones). The dead-letter queue of `orders` is the logical queue `orders-dlq`
//! ([`dead_letter_queue_name`]), so by the rule `{app}-{stage}-orders-dlq.fifo`; with
//! explicit URLs, map it too. A name the rule cannot turn into a valid SQS queue name
//! (letters, digits, `-`, `_`; at most 80 characters with `.fifo`) is
//! [`QueueError::UnknownQueue`] without a call.
//!
//! # Calls per operation
//!
//! | operation           | SQS calls (plus one `GetQueueUrl` per queue, the first time)                       |
//! |---------------------|-----------------------------------------------------------------------------------|
//! | `send`              | 1 `SendMessage`; to a FIFO queue with `MessageGroupId` and `MessageDeduplicationId` |
//! | `receive`           | 1 `ReceiveMessage` (`MaxNumberOfMessages`, `WaitTimeSeconds`, system attributes)  |
//! | `delete`            | 1 `DeleteMessage`                                                                  |
//! | `change_visibility` | 1 `ChangeMessageVisibility`                                                        |
//! | `stats`             | 1 `GetQueueAttributes` on the queue, 1 on its dead-letter queue if it has a `RedrivePolicy` |
//! | `dead_letters`      | 1 `ReceiveMessage` on the dead-letter queue + 1 `ChangeMessageVisibilityBatch` (release) |
//!
//! Arguments are checked before any call: [`OutgoingMessage::validate`],
//! [`validate_receive`] and [`validate_visibility`] errors never reach SQS. SQS takes
//! whole seconds: waits and visibility timeouts are rounded **up** (a 1.5 s timeout is
//! 2 s; zero stays zero).
//!
//! # Standard queues
//!
//! A queue whose URL does not end in `.fifo` ([`is_fifo_url`]) is standard: `send`
//! leaves the group and deduplication ids out (SQS refuses them there) and checks the
//! body only. `create_queues` and the naming rule make FIFO queues only; the deploy
//! program creates the standard fan-out queue and hands its URL to the functions.
//!
//! # Differences from the trait's contract (SQS itself)
//!
//! - **Duplicates are not reported.** `SendMessage` accepts a duplicate without saying so:
//!   [`SendReceipt::duplicate`] is always `false`, and `message_id` and `sequence` are
//!   what SQS returned for this call, not necessarily the original's.
//! - **The deduplication window** is fixed at 5 minutes by SQS;
//!   [`QueueSettings::dedup_window`] is ignored.
//! - **Counts are approximate** ([`QueueStats`]); `dead_letters` counts the dead-letter
//!   queue's visible and in-flight messages.
//! - **`dead_letters` receives**: the messages are received from the dead-letter queue
//!   and released at once (visibility 0, one `ChangeMessageVisibilityBatch`), so their
//!   receive counts grow; the receipt handles returned are those of that (released)
//!   delivery. A failed release is logged, not returned: the messages then reappear
//!   after the dead-letter queue's visibility timeout. A receive without waiting
//!   samples a subset of SQS's servers, so it may return fewer messages than exist.
//! - **Receipt handles**: SQS (not this type) decides what is stale. A message no longer
//!   in flight answers `ChangeMessageVisibility` with `MessageNotInflight`, which is
//!   [`QueueError::InvalidReceipt`]; so are `ReceiptHandleIsInvalid` and an
//!   `InvalidParameterValue` about the `ReceiptHandle`.
//! - **Lenient attributes**: a received message without `MessageGroupId`,
//!   `MessageDeduplicationId`, `SequenceNumber` or `SentTimestamp` (a standard queue
//!   behind an explicit URL) reads them as empty or 0, and without
//!   `ApproximateReceiveCount` as 1, rather than failing a receive whose messages are
//!   already in flight.
//!
//! # Errors
//!
//! `ThrottlingException`, `Throttling`, `RequestThrottled` and `KMS.ThrottlingException`
//! (after the SDK's own retries) are [`QueueError::Throttled`];
//! `AWS.SimpleQueueService.NonExistentQueue` / `QueueDoesNotExist` are
//! [`QueueError::UnknownQueue`] with the logical name (and drop the cached URL);
//! receipt-handle errors (above) are [`QueueError::InvalidReceipt`]; anything else is
//! [`QueueError::Backend`] with the SDK error and its causes.
//!
//! # Creating queues
//!
//! [`SqsQueue::create_queues`] is for local development and tests (the deploy program
//! owns real queues): it creates the FIFO dead-letter queue (14-day retention) and the
//! FIFO queue (`ContentBasedDeduplication=false`, the settings' `VisibilityTimeout`, a
//! `RedrivePolicy` to the dead-letter queue with the settings' `maxReceiveCount`). It is
//! idempotent: an existing queue with other attributes has its mutable ones updated.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};

use crate::{AwsSettings, ClientBuilder};
use switchboard_core::names::queue::{FIFO_SUFFIX, sqs_fifo_name, stage_prefix, valid_fifo_name};
use switchboard_core::queue::{
    MAX_RECEIVE_BATCH, MAX_VISIBILITY_TIMEOUT, OutgoingMessage, Queue, QueueError, QueueKind,
    QueueSettings, QueueStats, ReceivedMessage, SendReceipt, dead_letter_queue_name,
    validate_receive, validate_visibility,
};

pub use switchboard_core::names::queue::MAX_QUEUE_NAME_CHARS;

/// The retention [`SqsQueue::create_queues`] gives dead-letter queues: 14 days, SQS's
/// maximum (a FIFO message keeps its original enqueue time when redriven).
pub const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The largest `maxReceiveCount` SQS accepts in a `RedrivePolicy`.
pub const MAX_RECEIVE_COUNT: u32 = 1000;

/// Error codes that mean "slow down".
const THROTTLING_CODES: [&str; 4] = [
    "ThrottlingException",
    "Throttling",
    "RequestThrottled",
    "KMS.ThrottlingException",
];

/// Error codes that mean "no such queue" (the query-compatible code the SDK reports, and
/// the JSON protocol's shape name).
const NO_QUEUE_CODES: [&str; 2] = [
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
];

/// Error codes that mean "this receipt handle cannot be used".
const RECEIPT_CODES: [&str; 3] = [
    "ReceiptHandleIsInvalid",
    "AWS.SimpleQueueService.MessageNotInflight",
    "MessageNotInflight",
];

/// Error codes of `CreateQueue` when a queue of that name exists with other attributes.
const QUEUE_EXISTS_CODES: [&str; 2] = ["QueueAlreadyExists", "QueueNameExists"];

/// The system attributes every receive asks for.
const RECEIVE_ATTRIBUTES: [MessageSystemAttributeName; 5] = [
    MessageSystemAttributeName::ApproximateReceiveCount,
    MessageSystemAttributeName::MessageGroupId,
    MessageSystemAttributeName::MessageDeduplicationId,
    MessageSystemAttributeName::SentTimestamp,
    MessageSystemAttributeName::SequenceNumber,
];

/// An SQS client for these settings (one shared HTTP client, static credentials,
/// explicit region, the endpoint override if any), with the retries and timeouts of
/// [`client_policy`](crate::client_policy) (standard mode, 3 attempts, calls bounded by 9 s).
pub fn sqs_client(settings: &AwsSettings) -> Client {
    ClientBuilder::new(settings).build()
}

/// How logical queue names map to SQS queues: explicit URLs, then an optional naming
/// rule `{prefix}{queue}.fifo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueNames {
    prefix: Option<String>,
    urls: BTreeMap<String, String>,
}

impl QueueNames {
    /// The deploy program's rule: `{app}-{stage}-{queue}.fifo`, so the dead-letter queue
    /// of `orders` is `{app}-{stage}-orders-dlq.fifo`.
    pub fn for_app(app: &str, stage: &str) -> Self {
        Self::prefixed(stage_prefix(app, stage))
    }

    /// The rule `{prefix}{queue}.fifo` (`.fifo` is not doubled when the logical name
    /// already ends with it).
    pub fn prefixed(prefix: impl Into<String>) -> Self {
        Self {
            prefix: Some(prefix.into()),
            urls: BTreeMap::new(),
        }
    }

    /// Explicit queue URLs by logical name, and no rule: other names are unknown.
    pub fn from_urls<N, U>(urls: impl IntoIterator<Item = (N, U)>) -> Self
    where
        N: Into<String>,
        U: Into<String>,
    {
        Self {
            prefix: None,
            urls: urls
                .into_iter()
                .map(|(n, u)| (n.into(), u.into()))
                .collect(),
        }
    }

    /// With one more explicit URL (it wins over the rule).
    pub fn with_url(mut self, queue: impl Into<String>, url: impl Into<String>) -> Self {
        self.urls.insert(queue.into(), url.into());
        self
    }

    /// The rule's prefix, if there is a rule.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The explicit URL of a logical queue, if any.
    pub fn url(&self, queue: &str) -> Option<&str> {
        self.urls.get(queue).map(String::as_str)
    }

    /// The SQS queue name of a logical queue: the last path segment of its explicit URL,
    /// or the rule's name. `None` when neither applies, the logical name is empty, or the
    /// rule's name is not a valid SQS FIFO queue name.
    pub fn physical_name(&self, queue: &str) -> Option<String> {
        if let Some(url) = self.url(queue) {
            return url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
        }
        self.rule_name(queue)
    }

    /// The rule's SQS name for a logical queue, if there is a rule and the name is valid.
    fn rule_name(&self, queue: &str) -> Option<String> {
        sqs_fifo_name(self.prefix.as_deref()?, queue)
    }
}

/// Whether a queue URL names a FIFO queue (SQS requires their names to end in `.fifo`).
pub fn is_fifo_url(url: &str) -> bool {
    url.trim_end_matches('/').ends_with(FIFO_SUFFIX)
}

/// A [`Queue`] on SQS queues, FIFO or (by a URL without `.fifo`) standard (see the
/// [module docs](self)).
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    names: QueueNames,
    /// URLs found with `GetQueueUrl` or made by `create_queues`, by logical name.
    resolved: Arc<RwLock<HashMap<String, String>>>,
}

impl fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsQueue")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl SqsQueue {
    /// A queue set on this client.
    pub fn new(client: Client, names: QueueNames) -> Self {
        Self {
            client,
            names,
            resolved: Arc::default(),
        }
    }

    /// A queue set with a client for these settings ([`sqs_client`]).
    pub fn from_settings(settings: &AwsSettings, names: QueueNames) -> Self {
        Self::new(sqs_client(settings), names)
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The name mapping.
    pub fn names(&self) -> &QueueNames {
        &self.names
    }

    /// The URL of a logical queue: explicit, cached, or looked up with `GetQueueUrl`
    /// (then cached). [`QueueError::UnknownQueue`] when there is no such queue.
    pub async fn queue_url(&self, queue: &str) -> Result<String, QueueError> {
        if let Some(url) = self.names.url(queue) {
            return Ok(url.to_owned());
        }
        if let Some(url) = self.cached(queue) {
            return Ok(url);
        }
        let Some(name) = self.names.rule_name(queue) else {
            return Err(QueueError::UnknownQueue(queue.to_owned()));
        };
        let out = self
            .client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| self.sdk_error("get_queue_url", queue, e))?;
        let url = out
            .queue_url()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| backend("get_queue_url", "the response has no QueueUrl"))?
            .to_owned();
        self.remember(queue, &url);
        Ok(url)
    }

    /// Creates the queue and its dead-letter queue if they do not exist, or updates their
    /// mutable attributes if they do (see the [module docs](self#creating-queues)).
    /// For local development and tests. Returns the queue's URL.
    pub async fn create_queues(
        &self,
        queue: &str,
        settings: &QueueSettings,
    ) -> Result<String, QueueError> {
        const OP: &str = "create_queues";
        if settings.kind != QueueKind::Fifo {
            return Err(QueueError::InvalidParameter(
                "create_queues makes FIFO queues; the deploy program creates standard ones".into(),
            ));
        }
        validate_visibility(settings.visibility_timeout)?;
        if !(1..=MAX_RECEIVE_COUNT).contains(&settings.max_receive_count) {
            return Err(QueueError::InvalidParameter(format!(
                "max_receive_count must be 1 to {MAX_RECEIVE_COUNT}, not {}",
                settings.max_receive_count
            )));
        }
        let name = self
            .names
            .physical_name(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))?;
        let dlq = dead_letter_queue_name(queue);
        let dlq_name = match self.names.physical_name(&dlq) {
            Some(n) => n,
            None => dead_letter_queue_name(&name),
        };
        for n in [&name, &dlq_name] {
            if !valid_fifo_name(n) {
                return Err(QueueError::InvalidParameter(format!(
                    "{n:?} is not a valid SQS FIFO queue name"
                )));
            }
        }

        let dlq_attributes = vec![
            (
                QueueAttributeName::ContentBasedDeduplication,
                "false".to_owned(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                DEAD_LETTER_RETENTION.as_secs().to_string(),
            ),
        ];
        let dlq_url = self.ensure_queue(&dlq, &dlq_name, dlq_attributes).await?;
        let arn = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| self.sdk_error(OP, &dlq, e))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| backend(OP, "the dead-letter queue has no QueueArn"))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": settings.max_receive_count,
        })
        .to_string();
        let attributes = vec![
            (
                QueueAttributeName::ContentBasedDeduplication,
                "false".to_owned(),
            ),
            (
                QueueAttributeName::VisibilityTimeout,
                whole_secs(settings.visibility_timeout).to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ];
        self.ensure_queue(queue, &name, attributes).await
    }

    /// `CreateQueue` (FIFO, these attributes); if it exists with other attributes,
    /// `GetQueueUrl` + `SetQueueAttributes`. Caches the URL under the logical name.
    async fn ensure_queue(
        &self,
        queue: &str,
        name: &str,
        attributes: Vec<(QueueAttributeName, String)>,
    ) -> Result<String, QueueError> {
        const OP: &str = "create_queues";
        let mut create = self
            .client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::FifoQueue, "true");
        for (k, v) in &attributes {
            create = create.attributes(k.clone(), v);
        }
        let url = match create.send().await {
            Ok(out) => out.queue_url().unwrap_or_default().to_owned(),
            Err(err) if err.code().is_some_and(|c| QUEUE_EXISTS_CODES.contains(&c)) => {
                let url = self
                    .client
                    .get_queue_url()
                    .queue_name(name)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error(OP, queue, e))?
                    .queue_url()
                    .unwrap_or_default()
                    .to_owned();
                if !url.is_empty() {
                    self.client
                        .set_queue_attributes()
                        .queue_url(&url)
                        .set_attributes(Some(attributes.into_iter().collect()))
                        .send()
                        .await
                        .map_err(|e| self.sdk_error(OP, queue, e))?;
                }
                url
            }
            Err(err) => return Err(self.sdk_error(OP, queue, err)),
        };
        if url.is_empty() {
            return Err(backend(OP, "the response has no QueueUrl"));
        }
        if self.names.url(queue).is_none() {
            self.remember(queue, &url);
        }
        Ok(url)
    }

    fn cached(&self, queue: &str) -> Option<String> {
        self.resolved
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(queue)
            .cloned()
    }

    fn remember(&self, queue: &str, url: &str) {
        self.resolved
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(queue.to_owned(), url.to_owned());
    }

    fn forget(&self, queue: &str) {
        self.resolved
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(queue);
    }

    /// [`sdk_error`], dropping the cached URL of a queue SQS says does not exist.
    fn sdk_error<E, R>(
        &self,
        operation: &'static str,
        queue: &str,
        err: SdkError<E, R>,
    ) -> QueueError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let err = sdk_error(operation, queue, err);
        if matches!(err, QueueError::UnknownQueue(_)) {
            self.forget(queue);
        }
        err
    }

    /// One `ReceiveMessage` with the attributes [`ReceivedMessage`] needs.
    async fn receive_from(
        &self,
        operation: &'static str,
        queue: &str,
        url: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(i32::MAX))
            .wait_time_seconds(whole_secs(wait))
            .set_message_system_attribute_names(Some(RECEIVE_ATTRIBUTES.to_vec()))
            .send()
            .await
            .map_err(|e| self.sdk_error(operation, queue, e))?;
        Ok(out.messages().to_vec())
    }

    /// `ApproximateNumberOfMessages`, `...NotVisible`, and whether a `RedrivePolicy` is set.
    async fn counts(&self, queue: &str) -> Result<(usize, usize, bool), QueueError> {
        const OP: &str = "stats";
        let url = self.queue_url(queue).await?;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| self.sdk_error(OP, queue, e))?;
        let empty = HashMap::new();
        let attributes = out.attributes().unwrap_or(&empty);
        let count = |name: QueueAttributeName| -> Result<usize, QueueError> {
            let value = attributes
                .get(&name)
                .ok_or_else(|| backend(OP, &format!("the response has no {}", name.as_str())))?;
            value
                .trim()
                .parse()
                .map_err(|_| backend(OP, &format!("{} is {value:?}, not a count", name.as_str())))
        };
        let visible = count(QueueAttributeName::ApproximateNumberOfMessages)?;
        let in_flight = count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?;
        let redrive = attributes
            .get(&QueueAttributeName::RedrivePolicy)
            .is_some_and(|p| !p.trim().is_empty());
        Ok((visible, in_flight, redrive))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(
        &self,
        queue: &str,
        message: &OutgoingMessage,
    ) -> Result<SendReceipt, QueueError> {
        // SQS refuses group and deduplication ids on a standard queue; only FIFO
        // queues' names (so their URLs) end in `.fifo`. Checked before any call.
        let fifo = self
            .names
            .physical_name(queue)
            .is_none_or(|name| name.ends_with(FIFO_SUFFIX));
        if fifo {
            message.validate()?;
        } else {
            message.validate_body()?;
        }
        let url = self.queue_url(queue).await?;
        let mut send = self
            .client
            .send_message()
            .queue_url(&url)
            .message_body(&message.body);
        if fifo && is_fifo_url(&url) {
            send = send
                .message_group_id(&message.group_id)
                .message_deduplication_id(&message.dedup_id);
        }
        let out = send
            .send()
            .await
            .map_err(|e| self.sdk_error("send", queue, e))?;
        Ok(SendReceipt {
            message_id: out.message_id().unwrap_or_default().to_owned(),
            duplicate: false,
            sequence: out
                .sequence_number()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
        })
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        validate_receive(max, wait)?;
        let url = self.queue_url(queue).await?;
        let messages = self.receive_from("receive", queue, &url, max, wait).await?;
        messages.iter().map(|m| received("receive", m)).collect()
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        if receipt_handle.is_empty() {
            return Err(QueueError::InvalidReceipt(
                "the receipt handle is empty".into(),
            ));
        }
        let url = self.queue_url(queue).await?;
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| self.sdk_error("delete", queue, e))?;
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: &str,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        validate_visibility(timeout)?;
        if receipt_handle.is_empty() {
            return Err(QueueError::InvalidReceipt(
                "the receipt handle is empty".into(),
            ));
        }
        let url = self.queue_url(queue).await?;
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(whole_secs(timeout))
            .send()
            .await
            .map_err(|e| self.sdk_error("change_visibility", queue, e))?;
        Ok(())
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let (visible, in_flight, redrive) = self.counts(queue).await?;
        let dead_letters = if redrive {
            let (dl_visible, dl_in_flight, _) = self.counts(&dead_letter_queue_name(queue)).await?;
            dl_visible + dl_in_flight
        } else {
            0
        };
        Ok(QueueStats {
            visible,
            in_flight,
            dead_letters,
        })
    }

    async fn dead_letters(
        &self,
        queue: &str,
        max: usize,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        const OP: &str = "dead_letters";
        validate_receive(max, Duration::ZERO)?;
        let dlq = dead_letter_queue_name(queue);
        let url = self.queue_url(&dlq).await?;
        let messages = self
            .receive_from(OP, &dlq, &url, max, Duration::ZERO)
            .await?;
        let result = messages
            .iter()
            .map(|m| received(OP, m))
            .collect::<Result<Vec<_>, _>>();
        release(&self.client, &url, &messages).await;
        result
    }
}

/// Makes received dead letters visible again at once (best effort, logged).
async fn release(client: &Client, url: &str, messages: &[Message]) {
    let entries = messages
        .iter()
        .take(MAX_RECEIVE_BATCH)
        .enumerate()
        .filter_map(|(i, m)| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle()?)
                .visibility_timeout(0)
                .build()
                .ok()
        })
        .collect::<Vec<_>>();
    if entries.is_empty() {
        return;
    }
    match client
        .change_message_visibility_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await
    {
        Ok(out) => {
            for failed in out.failed() {
                tracing::warn!(
                    queue_url = url,
                    code = failed.code(),
                    message = failed.message().unwrap_or_default(),
                    "dead_letters: a dead letter was not released; it reappears after the \
                     dead-letter queue's visibility timeout"
                );
            }
        }
        Err(err) => tracing::warn!(
            queue_url = url,
            error = %DisplayErrorContext(&err),
            "dead_letters: the dead letters were not released; they reappear after the \
             dead-letter queue's visibility timeout"
        ),
    }
}

/// An SQS message as a [`ReceivedMessage`] (lenient about system attributes, see the
/// [module docs](self)).
fn received(operation: &'static str, message: &Message) -> Result<ReceivedMessage, QueueError> {
    let message_id = message
        .message_id()
        .ok_or_else(|| backend(operation, "a message has no MessageId"))?;
    let receipt_handle = message
        .receipt_handle()
        .ok_or_else(|| backend(operation, "a message has no ReceiptHandle"))?;
    let attribute = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|a| a.get(&name))
            .map(|v| v.trim())
    };
    Ok(ReceivedMessage {
        message_id: message_id.to_owned(),
        body: message.body().unwrap_or_default().to_owned(),
        group_id: attribute(MessageSystemAttributeName::MessageGroupId)
            .unwrap_or_default()
            .to_owned(),
        dedup_id: attribute(MessageSystemAttributeName::MessageDeduplicationId)
            .unwrap_or_default()
            .to_owned(),
        sequence: attribute(MessageSystemAttributeName::SequenceNumber)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        receipt_handle: receipt_handle.to_owned(),
        receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        sent_at_ms: attribute(MessageSystemAttributeName::SentTimestamp)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    })
}

/// A duration as the whole seconds SQS takes, rounded up (bounded by
/// [`MAX_VISIBILITY_TIMEOUT`], the longest duration any SQS parameter takes).
fn whole_secs(duration: Duration) -> i32 {
    let duration = duration.min(MAX_VISIBILITY_TIMEOUT);
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// Maps an SDK error (see the [module docs](self#errors)); `queue` is the logical name.
fn sdk_error<E, R>(operation: &'static str, queue: &str, err: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    let code = err.code().unwrap_or_default();
    let message = || err.message().unwrap_or(code).to_owned();
    if THROTTLING_CODES.contains(&code) {
        QueueError::Throttled { operation }
    } else if NO_QUEUE_CODES.contains(&code) {
        QueueError::UnknownQueue(queue.to_owned())
    } else if RECEIPT_CODES.contains(&code)
        || (code == "InvalidParameterValue"
            && err.message().is_some_and(|m| m.contains("ReceiptHandle")))
    {
        QueueError::InvalidReceipt(message())
    } else {
        QueueError::Backend {
            operation,
            message: DisplayErrorContext(&err).to_string(),
        }
    }
}

fn backend(operation: &'static str, message: &str) -> QueueError {
    QueueError::Backend {
        operation,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::error::ErrorMetadata;
    use aws_sdk_sqs::operation::send_message::SendMessageError;

    fn service_error(code: &str, message: &str) -> SdkError<SendMessageError, ()> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(SendMessageError::generic(meta), ())
    }

    #[test]
    fn throttling_codes_map_to_throttled() {
        for code in THROTTLING_CODES {
            let err = sdk_error("send", "orders", service_error(code, "slow down"));
            assert_eq!(err, QueueError::Throttled { operation: "send" }, "{code}");
        }
    }

    #[test]
    fn missing_queues_map_to_unknown_queue() {
        for code in NO_QUEUE_CODES {
            let err = sdk_error("send", "orders", service_error(code, "no such queue"));
            assert_eq!(err, QueueError::UnknownQueue("orders".into()), "{code}");
        }
    }

    #[test]
    fn receipt_errors_map_to_invalid_receipt() {
        for code in RECEIPT_CODES {
            let err = sdk_error("delete", "orders", service_error(code, "stale handle"));
            assert_eq!(
                err,
                QueueError::InvalidReceipt("stale handle".into()),
                "{code}"
            );
        }
        let msg = "Value abc for parameter ReceiptHandle is invalid. Reason: expired.";
        let err = sdk_error(
            "change_visibility",
            "orders",
            service_error("InvalidParameterValue", msg),
        );
        assert_eq!(err, QueueError::InvalidReceipt(msg.into()));
    }

    #[test]
    fn other_errors_keep_the_sdk_message() {
        let err = sdk_error(
            "send",
            "orders",
            service_error("InvalidParameterValue", "the service said so"),
        );
        match err {
            QueueError::Backend { operation, message } => {
                assert_eq!(operation, "send");
                assert!(message.contains("InvalidParameterValue"), "{message}");
                assert!(message.contains("the service said so"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn naming_rule() {
        let names = QueueNames::for_app("chat", "dev");
        assert_eq!(
            names.physical_name("orders").as_deref(),
            Some("chat-dev-orders.fifo")
        );
        assert_eq!(
            names.physical_name("orders.fifo").as_deref(),
            Some("chat-dev-orders.fifo")
        );
        assert_eq!(
            names
                .physical_name(&dead_letter_queue_name("orders"))
                .as_deref(),
            Some("chat-dev-orders-dlq.fifo")
        );
        assert_eq!(
            names
                .physical_name(&dead_letter_queue_name("orders.fifo"))
                .as_deref(),
            Some("chat-dev-orders-dlq.fifo")
        );
        for bad in ["", "has space", "a/b", "dot.ted", &"x".repeat(80)] {
            assert_eq!(names.physical_name(bad), None, "{bad:?}");
        }
        let explicit = names.with_url("jobs", "https://sqs.eu-west-1.amazonaws.com/1/other.fifo");
        assert_eq!(
            explicit.physical_name("jobs").as_deref(),
            Some("other.fifo")
        );
        let only_urls = QueueNames::from_urls([("jobs", "http://localhost/1/jobs.fifo")]);
        assert_eq!(only_urls.physical_name("orders"), None);
        assert_eq!(only_urls.url("jobs"), Some("http://localhost/1/jobs.fifo"));
    }

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(whole_secs(Duration::ZERO), 0);
        assert_eq!(whole_secs(Duration::from_millis(1)), 1);
        assert_eq!(whole_secs(Duration::from_millis(1500)), 2);
        assert_eq!(whole_secs(Duration::from_secs(20)), 20);
        assert_eq!(whole_secs(Duration::from_secs(u64::MAX)), 43_200);
    }

    #[test]
    fn messages_read_leniently() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh")
            .body("hello")
            .attributes(MessageSystemAttributeName::MessageGroupId, "g")
            .attributes(MessageSystemAttributeName::MessageDeduplicationId, "d")
            .attributes(
                MessageSystemAttributeName::SequenceNumber,
                "18889054405853210000",
            )
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000123")
            .build();
        let r = received("receive", &m).unwrap();
        assert_eq!(
            r,
            ReceivedMessage {
                message_id: "m-1".into(),
                body: "hello".into(),
                group_id: "g".into(),
                dedup_id: "d".into(),
                sequence: 18_889_054_405_853_210_000,
                receipt_handle: "rh".into(),
                receive_count: 3,
                sent_at_ms: 1_700_000_000_123,
            }
        );
        let bare = Message::builder()
            .message_id("m-2")
            .receipt_handle("rh")
            .build();
        let r = received("receive", &bare).unwrap();
        assert_eq!(
            (r.group_id.as_str(), r.sequence, r.receive_count),
            ("", 0, 1)
        );
        let no_handle = Message::builder().message_id("m-3").build();
        assert!(matches!(
            received("receive", &no_handle),
            Err(QueueError::Backend { .. })
        ));
    }
}
