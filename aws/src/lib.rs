//! AWS plumbing shared by the AWS backends: configuration from the environment the
//! deploy program sets, one HTTP client (rustls with ring: a single TLS stack, no
//! aws-lc build), static credentials from the environment (what Lambda provides), and
//! explicit regions and endpoints — nothing ever falls back to the instance metadata
//! address.
//!
//! # Retries and timeouts (DynamoDB, SQS)
//!
//! The DynamoDB and SQS clients ([`dynamodb_client`], [`crate::sqs::sqs_client`])
//! are configured deliberately rather than with the SDK's defaults, so that a store or
//! queue outage gives a caller an answer well inside API Gateway's 29 s integration
//! timeout ([`client_policy`]):
//!
//! | setting | value | why |
//! |---|---|---|
//! | retry mode | standard, [`MAX_ATTEMPTS`] = 3 attempts (2 retries) | transient errors (connection refused or reset, timeouts, 5xx, throttling) are retried by the SDK |
//! | backoff | full jitter, [`INITIAL_BACKOFF`] = 50 ms doubling, at most [`MAX_BACKOFF`] = 1 s | an endpoint that refuses connections fails a call in about 0.15 s, not 3 s as with the SDK's default 1 s base |
//! | connect timeout | [`CONNECT_TIMEOUT`] = 2 s | an address that does not answer |
//! | attempt timeout | [`ATTEMPT_TIMEOUT`] = 4 s | one request that hangs (DynamoDB and SQS answer in milliseconds) |
//! | operation timeout | [`OPERATION_TIMEOUT`] = 9 s | one call, retries included: two calls that hang still fit in 29 s |
//!
//! The SDK's retry quota (a token bucket per client) still applies: during a long outage
//! a warm process stops retrying once the bucket is empty and fails at the first
//! attempt, and successes refill it. SQS `SendMessage` retries are safe: a FIFO message
//! carries its deduplication id. The `@connections` client has its own policy (see
//! [`connections`]).

pub mod connections;
pub mod dynamodb;
pub mod http;
pub mod jwt;
pub mod lambda;
pub mod sqs;

use std::sync::OnceLock;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Environment variables the runtime reads: one home, [`switchboard_core::names::env`].
pub use switchboard_core::names::env;
use switchboard_core::names::local_credentials;

/// What is missing or malformed in the environment, all at once.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration incomplete: {}", .problems.join("; "))]
pub struct ConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// Region, credentials and endpoint for an AWS client.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// The region.
    pub region: String,
    /// Static credentials.
    pub credentials: Credentials,
    /// An endpoint override (emulators).
    pub endpoint: Option<String>,
}

impl AwsSettings {
    /// Settings with explicit values (tests, local tools).
    pub fn new(region: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            region: region.into(),
            credentials,
            endpoint: None,
        }
    }

    /// Static dummy credentials and `us-east-1`, for emulators.
    pub fn local(endpoint: impl Into<String>) -> Self {
        Self {
            region: local_credentials::REGION.to_owned(),
            credentials: Credentials::new(
                local_credentials::ACCESS_KEY_ID,
                local_credentials::SECRET_ACCESS_KEY,
                None,
                None,
                "switchboard-local",
            ),
            endpoint: Some(endpoint.into()),
        }
    }

    /// Reads `AWS_REGION` and the credential variables, collecting what is missing.
    pub fn from_env(problems: &mut Vec<String>) -> Option<Self> {
        let region = required(env::REGION, problems);
        let key = required(env::ACCESS_KEY_ID, problems);
        let secret = required(env::SECRET_ACCESS_KEY, problems);
        let token = std::env::var(env::SESSION_TOKEN)
            .ok()
            .filter(|t| !t.is_empty());
        Some(Self {
            region: region?,
            credentials: Credentials::new(key?, secret?, token, None, "environment"),
            endpoint: None,
        })
    }

    /// With an endpoint override.
    pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.endpoint = endpoint;
        self
    }
}

/// Reads a required variable, recording its absence.
pub(crate) fn required(name: &str, problems: &mut Vec<String>) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            problems.push(format!("{name} is not set"));
            None
        }
    }
}

/// The process-wide HTTP client: hyper + rustls (ring), connection pooling, HTTP and
/// HTTPS endpoints.
pub fn http_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https()
        })
        .clone()
}

/// Attempts per DynamoDB or SQS call (the first plus 2 retries).
pub const MAX_ATTEMPTS: u32 = 3;
/// The nominal delay before the first retry; doubles per retry (full jitter: the SDK
/// sleeps a random fraction of it).
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// The cap of one retry's nominal delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Connect timeout of one DynamoDB or SQS request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of one attempt (connect, send, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// Timeout of a whole call, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(9);

/// The retry and timeout configuration of the DynamoDB and SQS clients (see the
/// [module documentation](self#retries-and-timeouts-dynamodb-sqs)).
pub fn client_policy() -> (
    aws_smithy_types::retry::RetryConfig,
    aws_smithy_types::timeout::TimeoutConfig,
) {
    let retry = aws_smithy_types::retry::RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);
    let timeout = aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    (retry, timeout)
}

/// A DynamoDB client for these settings, with [`client_policy`]'s retries and timeouts.
pub fn dynamodb_client(settings: &AwsSettings) -> aws_sdk_dynamodb::Client {
    let (retry, timeout) = client_policy();
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(
            settings.region.clone(),
        ))
        .credentials_provider(settings.credentials.clone())
        .http_client(http_client())
        .retry_config(retry)
        .timeout_config(timeout);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// An `@connections` client for one management endpoint (`https://{domain}/{stage}`).
pub fn management_client(
    settings: &AwsSettings,
    endpoint: &str,
) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new(
            settings.region.clone(),
        ))
        .credentials_provider(settings.credentials.clone())
        .http_client(http_client())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}
