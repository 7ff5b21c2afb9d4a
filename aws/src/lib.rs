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
//!
//! # One client builder
//!
//! Every SDK client of this crate is built by [`ClientBuilder`]: the region and static
//! credentials of [`AwsSettings`], the shared [`http_client`], the endpoint override
//! (the settings' by default), and a retry and timeout policy ([`client_policy`] by
//! default; the `@connections` client passes its own).

pub mod connections;
pub mod dynamodb;
pub mod fanout;
pub mod history;
pub mod http;
pub mod jwt;
pub mod lambda;
pub mod sqs;

use std::sync::OnceLock;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

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
pub fn client_policy() -> (RetryConfig, TimeoutConfig) {
    let retry = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);
    let timeout = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    (retry, timeout)
}

/// The one way this crate builds an SDK client, whatever the service: the settings'
/// region and static credentials, the shared [`http_client`], an endpoint override, and
/// a retry and timeout policy.
///
/// ```ignore
/// let dynamodb: aws_sdk_dynamodb::Client = ClientBuilder::new(&settings).build();
/// let management: aws_sdk_apigatewaymanagement::Client = ClientBuilder::new(&settings)
///     .endpoint(Some("https://abc.execute-api.eu-west-1.amazonaws.com/ws"))
///     .policy(RetryConfig::disabled(), TimeoutConfig::disabled())
///     .build();
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder<'a> {
    settings: &'a AwsSettings,
    endpoint: Option<&'a str>,
    policy: Option<(RetryConfig, TimeoutConfig)>,
}

impl<'a> ClientBuilder<'a> {
    /// A client of `settings`: their endpoint override if any, [`client_policy`]'s
    /// retries and timeouts.
    pub fn new(settings: &'a AwsSettings) -> Self {
        Self {
            settings,
            endpoint: settings.endpoint.as_deref(),
            policy: Some(client_policy()),
        }
    }

    /// Replaces the endpoint (`None`: the service's regional endpoint).
    pub fn endpoint(mut self, endpoint: Option<&'a str>) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// Replaces the retry and timeout policy.
    pub fn policy(mut self, retry: RetryConfig, timeout: TimeoutConfig) -> Self {
        self.policy = Some((retry, timeout));
        self
    }

    /// Leaves retries and timeouts to the SDK's defaults.
    pub fn sdk_default_policy(mut self) -> Self {
        self.policy = None;
        self
    }

    /// The client.
    pub fn build<C: SdkClient>(&self) -> C {
        C::from_builder(self)
    }
}

/// An SDK client [`ClientBuilder`] can build: DynamoDB, SQS, `@connections`.
pub trait SdkClient: sealed::Sealed + Sized {
    /// Builds the client as `builder` says.
    fn from_builder(builder: &ClientBuilder<'_>) -> Self;
}

mod sealed {
    /// Only the SDK clients of this crate are [`SdkClient`](super::SdkClient)s.
    pub trait Sealed {}
}

/// Implements [`SdkClient`] for SDK crates, whose config builders have the same methods
/// but no common trait.
macro_rules! sdk_client {
    ($($sdk:ident),+ $(,)?) => {$(
        impl sealed::Sealed for $sdk::Client {}

        impl SdkClient for $sdk::Client {
            fn from_builder(builder: &ClientBuilder<'_>) -> Self {
                let mut config = $sdk::Config::builder()
                    .behavior_version($sdk::config::BehaviorVersion::latest())
                    .region($sdk::config::Region::new(builder.settings.region.clone()))
                    .credentials_provider(builder.settings.credentials.clone())
                    .http_client(http_client());
                if let Some((retry, timeout)) = &builder.policy {
                    config = config
                        .retry_config(retry.clone())
                        .timeout_config(timeout.clone());
                }
                if let Some(endpoint) = builder.endpoint {
                    config = config.endpoint_url(endpoint);
                }
                $sdk::Client::from_conf(config.build())
            }
        }
    )+};
}

sdk_client!(aws_sdk_dynamodb, aws_sdk_sqs, aws_sdk_apigatewaymanagement);

/// A DynamoDB client for these settings, with [`client_policy`]'s retries and timeouts.
pub fn dynamodb_client(settings: &AwsSettings) -> aws_sdk_dynamodb::Client {
    ClientBuilder::new(settings).build()
}

/// An `@connections` client for one management endpoint (`https://{domain}/{stage}`),
/// with the SDK's default retries and timeouts; [`connections::ManagementApi`] builds
/// its clients with its own policy instead.
pub fn management_client(
    settings: &AwsSettings,
    endpoint: &str,
) -> aws_sdk_apigatewaymanagement::Client {
    ClientBuilder::new(settings)
        .endpoint(Some(endpoint))
        .sdk_default_policy()
        .build()
}
