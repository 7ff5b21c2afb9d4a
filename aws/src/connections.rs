//! [`ManagementApi`]: the `@connections` management API of an API Gateway WebSocket
//! stage, through the AWS SDK (`aws-sdk-apigatewaymanagement`).
//!
//! # Calls
//!
//! | [`ConnectionsClient`] | SDK operation        | HTTP                               |
//! |-----------------------|----------------------|------------------------------------|
//! | `post(id, frame)`     | `PostToConnection`   | `POST {endpoint}/@connections/{id}` |
//! | `get(id)`             | `GetConnection`      | `GET {endpoint}/@connections/{id}`  |
//! | `delete(id)`          | `DeleteConnection`   | `DELETE {endpoint}/@connections/{id}` |
//!
//! Connection ids (URL-safe base64 with `=` padding, e.g. `R0oXAdfD0kwCH6w=`) are path
//! labels: the SDK percent-encodes them (`=` becomes `%3D`).
//!
//! Errors, for every call (by the error code API Gateway sends in `x-amzn-errortype`, or
//! else by the HTTP status):
//!
//! - `GoneException` / 410 → [`PostError::Gone`] (closed, or never existed);
//! - `PayloadTooLargeException` / 413 → [`PostError::PayloadTooLarge`]. `post` also
//!   refuses a frame over [`MAX_PAYLOAD_BYTES`] (128 KB) itself, without a request;
//! - `ForbiddenException` / 403 → [`PostError::Forbidden`] (wrong stage or API in the
//!   endpoint, or an IAM policy without `execute-api:ManageConnections`);
//! - `LimitExceededException` / 429 → retried (below), then [`PostError::Throttled`];
//! - anything else (5xx, network, timeouts, unparsable answers) → [`PostError::Other`],
//!   with the whole error chain.
//!
//! A send whose every post failed with `Throttled` or `Other` (the endpoint is down)
//! answers the handler's caller `connections_unavailable` (503) and removes no record;
//! only `Gone` removes a record, so an outage never empties the connection table.
//!
//! # Retries
//!
//! This client is the only retry layer: the SDK's own retries are disabled
//! (`RetryConfig::disabled()`). With the SDK's standard mode on (3 attempts, and
//! `LimitExceededException` is one of its throttling codes), each of our attempts would
//! be up to three requests and the delays would multiply.
//!
//! Only throttling is retried: a 429 means API Gateway refused the request, so sending it
//! again cannot deliver a frame twice. A 5xx or a broken connection may come after the
//! frame was delivered, so a `post` is not repeated (a fan-out counts it as failed).
//! The default policy, [`ThrottleRetry::default`], makes up to 4 retries (5 attempts)
//! after nominal delays of 50, 100, 200 and 400 ms, each with "equal jitter" (a random
//! delay between half and all of the nominal one), so a throttled call gives up after
//! at most 750 ms of waiting plus the attempts themselves. Each attempt is bounded by
//! a 3 s connect timeout and a 10 s attempt timeout.
//!
//! # Endpoint
//!
//! The management endpoint is `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`
//! ([`ManagementApi::endpoint_for`]). It is either
//!
//! - configured: [`ManagementApi::new`] (explicit) or `SWITCHBOARD_MANAGEMENT_ENDPOINT`
//!   (read by [`ManagementApi::from_events`]). A configured endpoint always wins: behind a
//!   custom domain or CloudFront, the events' `domainName` is not the execute-api host,
//!   and `@connections` must be called on the execute-api one;
//! - or taken from the first event: [`ManagementApi::from_events`], then
//!   [`ManagementApi::use_event_endpoint`] with each event's `requestContext.domainName`
//!   and `stage`. The first event fixes it (one function serves one stage).
//!
//! Until an endpoint is known every call fails with [`PostError::Other`]
//! (`no @connections endpoint: ...`). [`AwsSettings::endpoint`] is not used: it is the
//! override of other services (DynamoDB).
//!
//! One SDK client is built per endpoint and reused by every call; [`ManagementApi`] is
//! cheap to clone (clones share it).

use std::error::Error as StdError;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::primitives::{Blob, DateTime};

use super::{AwsSettings, ClientBuilder, env};
use switchboard_core::backend::{ConnectionInfo, ConnectionsClient, PostError};
use switchboard_core::response::Frame;

/// The largest payload `PostToConnection` accepts.
pub use switchboard_core::backend::MAX_MESSAGE_BYTES as MAX_PAYLOAD_BYTES;

/// Connect timeout of one request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Timeout of one attempt (connect, send, answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How throttled calls (`LimitExceededException`, 429) are retried: exponential backoff
/// with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleRetry {
    /// Retries after the first attempt (0: give up at once).
    pub retries: u32,
    /// Nominal delay before the first retry; doubles for each further one.
    pub base_delay: Duration,
    /// Cap of one nominal delay.
    pub max_delay: Duration,
}

impl Default for ThrottleRetry {
    /// 4 retries after 50, 100, 200 and 400 ms (nominal).
    fn default() -> Self {
        Self {
            retries: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
        }
    }
}

impl ThrottleRetry {
    /// The nominal delay before retry number `retry` (0-based), before jitter.
    pub fn nominal_delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The delay actually slept before retry `retry`: between half and all of the
    /// nominal delay, at random, so that throttled senders do not retry in lockstep.
    pub fn jittered_delay(&self, retry: u32) -> Duration {
        let nominal = self.nominal_delay(retry);
        let half = nominal / 2;
        let spread = u64::try_from((nominal - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::random_range(0..=spread))
    }

    /// The most a call can spend sleeping between attempts.
    pub fn max_total_delay(&self) -> Duration {
        (0..self.retries).map(|r| self.nominal_delay(r)).sum()
    }
}

/// The `@connections` API of one stage, through the AWS SDK. See the
/// [module documentation](self) for the endpoint rules, error mapping and retries.
#[derive(Clone)]
pub struct ManagementApi {
    inner: Arc<Inner>,
    retry: ThrottleRetry,
}

struct Inner {
    settings: AwsSettings,
    /// Whether the endpoint was configured (explicit or environment) rather than taken
    /// from an event.
    configured: bool,
    /// The endpoint and its SDK client, once known.
    resolved: OnceLock<Resolved>,
    /// Whether a conflicting event endpoint was already reported.
    mismatch_reported: AtomicBool,
}

struct Resolved {
    endpoint: String,
    client: Client,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi")
            .field("endpoint", &self.endpoint())
            .field("configured", &self.inner.configured)
            .field("region", &self.inner.settings.region)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ManagementApi {
    /// A client of a fixed endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`,
    /// or the local gateway's `management_url()`). Events never change it.
    pub fn new(settings: &AwsSettings, endpoint: impl Into<String>) -> Self {
        Self::with_endpoint(settings, Some(endpoint.into()))
    }

    /// A client whose endpoint is `SWITCHBOARD_MANAGEMENT_ENDPOINT` when that is set, and
    /// otherwise the first event's (see [`use_event_endpoint`](Self::use_event_endpoint)).
    pub fn from_events(settings: &AwsSettings) -> Self {
        let configured = std::env::var(env::MANAGEMENT_ENDPOINT)
            .ok()
            .filter(|v| !v.trim().is_empty());
        Self::with_endpoint(settings, configured)
    }

    /// A client of `endpoint` when it is `Some` (as [`new`](Self::new)), otherwise of the
    /// first event's endpoint (as [`from_events`](Self::from_events), without reading
    /// the environment).
    pub fn with_endpoint(settings: &AwsSettings, endpoint: Option<String>) -> Self {
        let endpoint = endpoint
            .map(|e| e.trim().trim_end_matches('/').to_owned())
            .filter(|e| !e.is_empty());
        let inner = Inner {
            settings: settings.clone(),
            configured: endpoint.is_some(),
            resolved: OnceLock::new(),
            mismatch_reported: AtomicBool::new(false),
        };
        if let Some(endpoint) = endpoint {
            let _ = inner.resolved.set(Resolved::new(&inner.settings, endpoint));
        }
        Self {
            inner: Arc::new(inner),
            retry: ThrottleRetry::default(),
        }
    }

    /// Replaces the retry policy for throttled calls.
    pub fn with_throttle_retry(mut self, retry: ThrottleRetry) -> Self {
        self.retry = retry;
        self
    }

    /// The retry policy for throttled calls.
    pub fn throttle_retry(&self) -> ThrottleRetry {
        self.retry
    }

    /// `https://{domain_name}/{stage}`: the management endpoint of an event.
    pub fn endpoint_for(domain_name: &str, stage: &str) -> String {
        let domain = domain_name.trim().trim_end_matches('/');
        let stage = stage.trim().trim_matches('/');
        if stage.is_empty() {
            format!("https://{domain}")
        } else {
            format!("https://{domain}/{stage}")
        }
    }

    /// Takes the endpoint from an event (`requestContext.domainName` and `stage`), unless
    /// one is known already: a configured endpoint always wins, and the first event's
    /// stays (one function serves one stage; a different one is logged once).
    pub fn use_event_endpoint(&self, domain_name: &str, stage: &str) {
        if domain_name.trim().is_empty() {
            return;
        }
        if let Some(resolved) = self.inner.resolved.get() {
            self.check_event_endpoint(resolved, domain_name, stage);
            return;
        }
        let endpoint = Self::endpoint_for(domain_name, stage);
        let resolved = self
            .inner
            .resolved
            .get_or_init(|| Resolved::new(&self.inner.settings, endpoint));
        tracing::debug!(endpoint = %resolved.endpoint, "@connections endpoint from the event");
    }

    fn check_event_endpoint(&self, resolved: &Resolved, domain_name: &str, stage: &str) {
        if self.inner.configured {
            return;
        }
        let endpoint = Self::endpoint_for(domain_name, stage);
        if endpoint != resolved.endpoint
            && !self.inner.mismatch_reported.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                using = %resolved.endpoint,
                event = %endpoint,
                "event from another @connections endpoint than the first one; still using the first (set SWITCHBOARD_MANAGEMENT_ENDPOINT)"
            );
        }
    }

    /// The endpoint in use, if known yet.
    pub fn endpoint(&self) -> Option<&str> {
        self.inner.resolved.get().map(|r| r.endpoint.as_str())
    }

    /// Whether the endpoint was configured rather than taken from an event.
    pub fn is_configured(&self) -> bool {
        self.inner.configured
    }

    fn resolved(&self, operation: &str) -> Result<&Resolved, PostError> {
        self.inner.resolved.get().ok_or_else(|| {
            PostError::Other(format!(
                "no @connections endpoint: {operation} before any event gave one; set {} or call use_event_endpoint first",
                env::MANAGEMENT_ENDPOINT
            ))
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or throttling outlasts the
    /// retry policy.
    async fn call<T, E, F, Fut>(
        &self,
        operation: &'static str,
        connection_id: &str,
        size: usize,
        attempt: F,
    ) -> Result<T, PostError>
    where
        F: Fn(&Client) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + StdError + 'static,
    {
        let resolved = self.resolved(operation)?;
        let mut retry = 0;
        loop {
            let err = match attempt(&resolved.client).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            match classify(&err) {
                Kind::Throttled if retry < self.retry.retries => {
                    let delay = self.retry.jittered_delay(retry);
                    tracing::debug!(
                        operation,
                        connection_id,
                        retry = retry + 1,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "@connections throttled; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                Kind::Throttled => return Err(PostError::Throttled),
                Kind::Gone => return Err(PostError::Gone(connection_id.to_owned())),
                Kind::TooLarge => {
                    return Err(PostError::PayloadTooLarge {
                        size,
                        limit: MAX_PAYLOAD_BYTES,
                    });
                }
                Kind::Forbidden => {
                    let endpoint = &resolved.endpoint;
                    // A 403 without an error code (no `x-amzn-errortype`) carries its
                    // message only in the error chain.
                    let why = match (err.code(), err.message(), err.raw_response()) {
                        (Some(code), Some(message), _) => format!("{code}: {message}"),
                        (_, _, Some(raw)) => format!(
                            "HTTP {}: {}",
                            raw.status().as_u16(),
                            DisplayErrorContext(&err)
                        ),
                        (_, _, None) => DisplayErrorContext(&err).to_string(),
                    };
                    return Err(PostError::Forbidden(format!(
                        "{operation} on {endpoint}: {why}"
                    )));
                }
                Kind::Other => {
                    return Err(PostError::Other(format!(
                        "{operation} on {}: {}",
                        resolved.endpoint,
                        DisplayErrorContext(&err)
                    )));
                }
            }
        }
    }
}

impl Resolved {
    fn new(settings: &AwsSettings, endpoint: String) -> Self {
        // This client is the only retry layer (see the module documentation).
        let client = ClientBuilder::new(settings)
            .endpoint(Some(&endpoint))
            .policy(
                RetryConfig::disabled(),
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .build();
        Self { endpoint, client }
    }
}

/// What an SDK error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gone,
    TooLarge,
    Forbidden,
    Throttled,
    Other,
}

fn classify<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Kind {
    let status = err.raw_response().map(|r| r.status().as_u16());
    match (err.code(), status) {
        (Some("GoneException"), _) | (_, Some(410)) => Kind::Gone,
        (Some("PayloadTooLargeException"), _) | (_, Some(413)) => Kind::TooLarge,
        (Some("ForbiddenException"), _) | (_, Some(403)) => Kind::Forbidden,
        (Some("LimitExceededException"), _) | (_, Some(429)) => Kind::Throttled,
        _ => Kind::Other,
    }
}

fn epoch_ms(value: Option<&DateTime>, field: &str) -> Result<i64, PostError> {
    let value =
        value.ok_or_else(|| PostError::Other(format!("GetConnection answered without {field}")))?;
    value
        .to_millis()
        .map_err(|e| PostError::Other(format!("GetConnection: {field} out of range: {e}")))
}

#[async_trait]
impl ConnectionsClient for ManagementApi {
    async fn post(&self, connection_id: &str, frame: &Frame) -> Result<(), PostError> {
        let size = frame.len();
        if size > MAX_PAYLOAD_BYTES {
            return Err(PostError::PayloadTooLarge {
                size,
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let data = Blob::new(frame.as_bytes());
        self.call("PostToConnection", connection_id, size, |client| {
            client
                .post_to_connection()
                .connection_id(connection_id)
                .data(data.clone())
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn get(&self, connection_id: &str) -> Result<ConnectionInfo, PostError> {
        let out = self
            .call("GetConnection", connection_id, 0, |client| {
                client.get_connection().connection_id(connection_id).send()
            })
            .await?;
        let connected_at = epoch_ms(out.connected_at(), "connectedAt")?;
        let last_active_at = match out.last_active_at() {
            Some(_) => epoch_ms(out.last_active_at(), "lastActiveAt")?,
            None => connected_at,
        };
        let identity = out.identity();
        Ok(ConnectionInfo {
            connected_at,
            last_active_at,
            source_ip: identity.and_then(|i| i.source_ip()).map(str::to_owned),
            user_agent: identity.and_then(|i| i.user_agent()).map(str::to_owned),
        })
    }

    async fn delete(&self, connection_id: &str) -> Result<(), PostError> {
        self.call("DeleteConnection", connection_id, 0, |client| {
            client
                .delete_connection()
                .connection_id(connection_id)
                .send()
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let r = ThrottleRetry::default();
        let nominal: Vec<u64> = (0..6)
            .map(|i| r.nominal_delay(i).as_millis() as u64)
            .collect();
        assert_eq!(nominal, [50, 100, 200, 400, 400, 400]);
        assert_eq!(r.max_total_delay(), Duration::from_millis(750));
        for i in 0..40 {
            let d = r.jittered_delay(i % 6);
            let n = r.nominal_delay(i % 6);
            assert!(d >= n / 2 && d <= n, "{d:?} outside [{:?}, {n:?}]", n / 2);
        }
        assert_eq!(r.nominal_delay(200), Duration::from_millis(400));
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            ManagementApi::endpoint_for("abc.execute-api.us-east-1.amazonaws.com", "ws"),
            "https://abc.execute-api.us-east-1.amazonaws.com/ws"
        );
        assert_eq!(
            ManagementApi::endpoint_for("abc.example.com/", "/prod/"),
            "https://abc.example.com/prod"
        );
        let settings = AwsSettings::local("http://ignored");
        let api = ManagementApi::new(&settings, "http://127.0.0.1:9/ws/");
        assert_eq!(api.endpoint(), Some("http://127.0.0.1:9/ws"));
        assert!(api.is_configured());
        let lazy = ManagementApi::with_endpoint(&settings, None);
        assert_eq!(lazy.endpoint(), None);
        lazy.use_event_endpoint("", "ws");
        assert_eq!(lazy.endpoint(), None);
        lazy.use_event_endpoint("a.example.com", "ws");
        lazy.use_event_endpoint("b.example.com", "ws");
        assert_eq!(lazy.endpoint(), Some("https://a.example.com/ws"));
        assert!(!lazy.is_configured());
    }
}
