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
//!
//! Unverified on AWS: the code paths are those the simulator and the tests run, with
//! the real SQS client tested on moto elsewhere; no deployed stage ran them yet.

use std::sync::Arc;
use std::time::Instant;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use switchboard_core::fanout::{QUEUE, Sharding};
use switchboard_core::names::env;
use switchboard_core::names::fanout::{RATE_ENV, THRESHOLD_ENV};
use switchboard_core::queue::dead_letter_queue_name;
use switchboard_core::request::Services;

use crate::lambda::LambdaError;
use crate::{AwsSettings, ConfigError};

/// The sharding the environment configures: `None` when the fan-out queue's URL is
/// not set (the app does not send to rooms or everyone, or the stage predates it).
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
                Ok::<_, Diagnostic>(response)
            }
        },
    );
    lambda_runtime::run(handler)
        .await
        .map_err(|e| LambdaError::Runtime(e.to_string()))
}
