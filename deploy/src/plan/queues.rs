//! SQS: a FIFO queue and its FIFO dead-letter queue per queue of the service, the
//! internal fan-out queue as a *standard* queue with a standard dead-letter queue (its
//! shards are independent: no groups, no deduplication window, no FIFO throughput
//! limit), and the event source mappings of their consumers.

use std::collections::BTreeMap;

use super::functions::Functions;
use super::{
    DLQ_RETENTION_SECS, Handle, MAX_RECEIVE_COUNT, Plan, QUEUE_RETENTION_SECS,
    dead_letter_queue_name,
};
use crate::DeployError;
use crate::aws::{EventSourceMapping, SqsQueue};
use crate::input::Input;
use crate::model::{FunctionKind, Queue, Service};
use switchboard_core::names::fanout::QUEUE as FANOUT_QUEUE;
use switchboard_core::names::queue::sqs_name;

/// The queues, by logical name.
pub(super) type Queues = BTreeMap<String, Handle>;

/// Every queue of the service, each after its dead-letter queue.
pub(super) fn queues(p: &mut Plan, service: &Service, prefix: &str) -> Result<Queues, DeployError> {
    let mut queues = Queues::new();
    for q in &service.queues {
        let (queue, dlq) = queue(p, service, prefix, q)?;
        queues.insert(q.name.clone(), queue);
        // The fan-out consumer sends recipients still owed to its dead-letter queue.
        if q.name == FANOUT_QUEUE {
            queues.insert(dead_letter_queue_name(&q.name), dlq);
        }
    }
    Ok(queues)
}

/// One queue and its dead-letter queue.
fn queue(
    p: &mut Plan,
    service: &Service,
    prefix: &str,
    q: &Queue,
) -> Result<(Handle, Handle), DeployError> {
    let fifo = q.name != FANOUT_QUEUE;
    let name = sqs_name(prefix, &q.name)
        .ok_or_else(|| DeployError::Plan(format!("queue name `{}` is not valid in SQS", q.name)))?;
    let dlq_name = sqs_name(prefix, &dead_letter_queue_name(&q.name))
        .ok_or_else(|| DeployError::Plan(format!("queue name `{}` is too long", q.name)))?;
    let consumer_timeout = q
        .consumer
        .as_deref()
        .and_then(|role| service.function(role))
        .map_or(30, |f| f.timeout_secs);
    let dlq = p.add(
        format!("queue-{}-dlq", q.name),
        SqsQueue {
            name: dlq_name,
            fifo_queue: fifo,
            content_based_deduplication: false,
            visibility_timeout_seconds: 30,
            message_retention_seconds: DLQ_RETENTION_SECS,
            sqs_managed_sse_enabled: true,
            redrive_policy: None,
        },
    );
    let queue = p.add(
        format!("queue-{}", q.name),
        SqsQueue {
            name,
            fifo_queue: fifo,
            content_based_deduplication: false,
            // AWS: at least 6 times the consumer's timeout; 12 h at most.
            visibility_timeout_seconds: (consumer_timeout * 6).clamp(30, 43_200),
            message_retention_seconds: QUEUE_RETENTION_SECS,
            sqs_managed_sse_enabled: true,
            redrive_policy: Some(Input::Json(Box::new(Input::object([
                ("deadLetterTargetArn", Some(dlq.out("arn"))),
                ("maxReceiveCount", Some(Input::from(MAX_RECEIVE_COUNT))),
            ])))),
        },
    );
    Ok((queue, dlq))
}

/// The event source mapping of every queue consumer.
pub(super) fn event_sources(
    p: &mut Plan,
    service: &Service,
    queues: &Queues,
    functions: &Functions,
) -> Result<(), DeployError> {
    for f in &service.functions {
        if let FunctionKind::Consumer { queue, batch_size } = &f.kind {
            let q = queues
                .get(queue)
                .ok_or_else(|| DeployError::Plan(format!("no queue {queue}")))?;
            p.add(
                f.slug.clone(),
                EventSourceMapping {
                    event_source_arn: q.out("arn"),
                    function_name: functions.get(&f.role)?.out("arn"),
                    batch_size: *batch_size,
                    function_response_types: vec![Input::str("ReportBatchItemFailures")],
                },
            );
        }
    }
    Ok(())
}
