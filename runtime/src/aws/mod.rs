//! AWS plumbing shared by the AWS backends: configuration from the environment the
//! deploy program sets, one HTTP client (rustls with ring: a single TLS stack, no
//! aws-lc build), static credentials from the environment (what Lambda provides), and
//! explicit regions and endpoints — nothing ever falls back to the instance metadata
//! address.

pub mod connections;
pub mod dynamodb;

use std::sync::OnceLock;

use aws_credential_types::Credentials;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Environment variables the runtime reads (set by the deploy program on every Lambda).
pub mod env {
    /// The region (set by Lambda itself).
    pub const REGION: &str = "AWS_REGION";
    /// Access key (set by Lambda itself).
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// Secret key (set by Lambda itself).
    pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// Session token (set by Lambda itself).
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// The connections table.
    pub const CONNECTIONS_TABLE: &str = "SWITCHBOARD_CONNECTIONS_TABLE";
    /// The rooms table.
    pub const ROOMS_TABLE: &str = "SWITCHBOARD_ROOMS_TABLE";
    /// The `@connections` endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`);
    /// when unset, taken from each event's `domainName` and `stage`.
    pub const MANAGEMENT_ENDPOINT: &str = "SWITCHBOARD_MANAGEMENT_ENDPOINT";
    /// A DynamoDB endpoint override (moto, DynamoDB Local).
    pub const DYNAMODB_ENDPOINT: &str = "SWITCHBOARD_DYNAMODB_ENDPOINT";
    /// An SQS endpoint override (local emulators).
    pub const SQS_ENDPOINT: &str = "SWITCHBOARD_SQS_ENDPOINT";
}

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
            region: "us-east-1".to_owned(),
            credentials: Credentials::new(
                "AKIDLOCAL",
                "local-secret",
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

/// A DynamoDB client for these settings.
pub fn dynamodb_client(settings: &AwsSettings) -> aws_sdk_dynamodb::Client {
    let mut builder = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(
            settings.region.clone(),
        ))
        .credentials_provider(settings.credentials.clone())
        .http_client(http_client());
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
