//! The runner's options: every flag also from an environment variable ([`env`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// The environment variables the runner reads (each the twin of a flag).
pub mod env {
    /// `--ws`: the WebSocket URL (`ws://127.0.0.1:3000/ws`, `wss://d123.cloudfront.net/ws`).
    pub const WS: &str = "SWITCHBOARD_PARITY_WS";
    /// `--http`: the base URL whose `/http/*` is the app's HTTP API.
    pub const HTTP: &str = "SWITCHBOARD_PARITY_HTTP";
    /// `--token-from`: `local`, `cognito` or `none`.
    pub const TOKEN_FROM: &str = "SWITCHBOARD_PARITY_TOKEN_FROM";
    /// `--cognito-client-id`: the user pool's app client id.
    pub const COGNITO_CLIENT_ID: &str = "SWITCHBOARD_PARITY_COGNITO_CLIENT_ID";
    /// `--cognito-region`: the user pool's region (else `AWS_REGION`).
    pub const COGNITO_REGION: &str = "SWITCHBOARD_PARITY_COGNITO_REGION";
    /// `--cognito-endpoint`: another Cognito endpoint (an emulator such as moto).
    pub const COGNITO_ENDPOINT: &str = "SWITCHBOARD_PARITY_COGNITO_ENDPOINT";
    /// `--username`: the Cognito user the run signs in as.
    pub const USERNAME: &str = "SWITCHBOARD_PARITY_USERNAME";
    /// `--password`: that user's password.
    pub const PASSWORD: &str = "SWITCHBOARD_PARITY_PASSWORD";
    /// `--connections-endpoint`: the `@connections` endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub const CONNECTIONS_ENDPOINT: &str = "SWITCHBOARD_PARITY_CONNECTIONS_ENDPOINT";
    /// `--idle-wait-secs`: the idle timeout the idle checks wait for.
    pub const IDLE_WAIT_SECS: &str = "SWITCHBOARD_PARITY_IDLE_WAIT_SECS";
    /// `--json`: where to write the JSON report.
    pub const JSON: &str = "SWITCHBOARD_PARITY_JSON";
    /// `--only`: run the checks whose name contains this.
    pub const ONLY: &str = "SWITCHBOARD_PARITY_ONLY";
}

/// The idle wait against a loopback target when none is given: start the local gateway
/// with `--idle-timeout 5` to match.
pub const LOCAL_IDLE_WAIT: Duration = Duration::from_secs(5);

/// Where the connections' tokens come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TokenFrom {
    /// The local gateway's issuer: `POST {http}/local/token`.
    #[default]
    Local,
    /// Cognito: `InitiateAuth` (`USER_PASSWORD_AUTH`) as `--username`; every connection
    /// of the run is that one user.
    Cognito,
    /// No token: identities as `?user=NAME` (a local gateway started with `--dev-auth`).
    None,
}

/// Runs the parity checks against a target: the local gateway or a deployed stage.
#[derive(Clone, Debug, Default, Parser)]
#[command(name = "switchboard-parity", version)]
pub struct Options {
    /// The WebSocket URL, e.g. ws://127.0.0.1:3000/ws or wss://dxxxx.cloudfront.net/ws.
    #[arg(long, env = env::WS)]
    pub ws: Option<String>,
    /// The base URL of the app's HTTP API (its `/http/*`), e.g. http://127.0.0.1:3000.
    #[arg(long, env = env::HTTP)]
    pub http: Option<String>,
    /// Where tokens come from.
    #[arg(long, value_enum, default_value_t = TokenFrom::Local, env = env::TOKEN_FROM)]
    pub token_from: TokenFrom,
    /// The Cognito app client id (with --token-from cognito).
    #[arg(long, env = env::COGNITO_CLIENT_ID)]
    pub cognito_client_id: Option<String>,
    /// The Cognito region (default: AWS_REGION).
    #[arg(long, env = env::COGNITO_REGION)]
    pub cognito_region: Option<String>,
    /// Cognito's endpoint (default: `https://cognito-idp.REGION.amazonaws.com/`); for
    /// an emulator such as moto.
    #[arg(long, env = env::COGNITO_ENDPOINT)]
    pub cognito_endpoint: Option<String>,
    /// The Cognito user name.
    #[arg(long, env = env::USERNAME)]
    pub username: Option<String>,
    /// The Cognito user's password.
    #[arg(long, env = env::PASSWORD, hide_env_values = true)]
    pub password: Option<String>,
    /// The `@connections` endpoint for the AWS SDK (default for a loopback target:
    /// `{http}/ws`; a deployed stage: `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`,
    /// without it the `@connections` checks are skipped).
    #[arg(long, env = env::CONNECTIONS_ENDPOINT)]
    pub connections_endpoint: Option<String>,
    /// Seconds of silence after which the target closes an idle connection (default:
    /// 5 for a loopback target, 600 — API Gateway's documented 10 minutes — otherwise).
    #[arg(long, env = env::IDLE_WAIT_SECS)]
    pub idle_wait_secs: Option<u64>,
    /// Also write the report as JSON to this file.
    #[arg(long, env = env::JSON)]
    pub json: Option<PathBuf>,
    /// Run only the checks whose name contains this text.
    #[arg(long, env = env::ONLY)]
    pub only: Option<String>,
}
