//! The target of a run: the URLs the user gave, how connections get their identity, and
//! the `@connections` client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_apigatewaymanagement::Client as MgmtClient;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use rand::Rng;
use rustls::ClientConfig;
use serde_json::{Value, json};
use switchboard_core::names::{env as aws_env, local_credentials};
use tokio::sync::Mutex;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{self};

use crate::client::Client;
use crate::error::ParityError;
use crate::options::{LOCAL_IDLE_WAIT, Options, TokenFrom};
use crate::wire::{self, HttpResponse, Url, encode};

/// The `User-Agent` every request of a run sends (the `@connections` GET check expects it).
pub const USER_AGENT: &str = "switchboard-parity/1.0";

/// The longest single wait against a loopback target.
const LOCAL_STEP: Duration = Duration::from_secs(5);
/// ... and against a deployed stage (a Lambda cold start, CloudFront in between).
const REMOTE_STEP: Duration = Duration::from_secs(15);
/// API Gateway's documented idle timeout, the default wait against a deployed stage.
const REMOTE_IDLE_WAIT: Duration =
    Duration::from_secs(switchboard_core::names::limits::IDLE_TIMEOUT_SECS);

/// How connections and HTTP calls get an identity.
enum Tokens {
    Local {
        token_url: String,
    },
    Cognito {
        url: String,
        body: Value,
        cached: Mutex<Option<String>>,
    },
    DevUser,
}

/// The `@connections` side: the SDK client, or why there is none.
enum Management {
    Ready(MgmtClient),
    Unavailable(String),
}

/// Where a run goes. Built only from [`Options`] the user gave.
pub struct Target {
    ws: String,
    http: String,
    loopback: bool,
    tokens: Tokens,
    management: Management,
    idle_wait: Duration,
    step: Duration,
    tls: Option<Arc<ClientConfig>>,
    run_id: String,
    counter: AtomicU64,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("ws", &self.ws)
            .field("http", &self.http)
            .field("loopback", &self.loopback)
            .finish_non_exhaustive()
    }
}

fn bad(what: &'static str, url: &str, reason: impl Into<String>) -> ParityError {
    ParityError::BadUrl {
        what,
        url: url.to_owned(),
        reason: reason.into(),
    }
}

impl Target {
    /// Checks the options and builds the target; refuses to run without `--ws` and `--http`.
    pub fn from_options(options: &Options) -> Result<Self, ParityError> {
        let (Some(ws), Some(http_base)) = (options.ws.as_deref(), options.http.as_deref()) else {
            return Err(ParityError::NoTarget);
        };
        let ws_url = Url::parse(ws).map_err(|e| bad("--ws", ws, e))?;
        if !ws.starts_with("ws://") && !ws.starts_with("wss://") {
            return Err(bad(
                "--ws",
                ws,
                "a WebSocket URL starts with ws:// or wss://",
            ));
        }
        let http_url = Url::parse(http_base).map_err(|e| bad("--http", http_base, e))?;
        if !http_base.starts_with("http://") && !http_base.starts_with("https://") {
            return Err(bad("--http", http_base, "starts with http:// or https://"));
        }
        let loopback = ws_url.is_loopback() && http_url.is_loopback();
        let http_base = http_base.trim_end_matches('/').to_owned();
        let tokens = tokens(options, &http_base)?;
        let endpoint = match &options.connections_endpoint {
            Some(e) => Some(e.trim_end_matches('/').to_owned()),
            // The local gateway's endpoint: the WebSocket URL's stage, over HTTP.
            None if ws_url.is_loopback() => Some(format!(
                "{}://{}:{}{}",
                if ws_url.tls { "https" } else { "http" },
                ws_url.host,
                ws_url.port,
                ws_url.path.split('?').next().unwrap_or("/ws")
            )),
            None => None,
        };
        if let Some(e) = &endpoint {
            Url::parse(e).map_err(|r| bad("--connections-endpoint", e, r))?;
        }
        let needs_tls = [Some(ws), Some(http_base.as_str()), endpoint.as_deref()]
            .into_iter()
            .flatten()
            .any(|u| u.starts_with("https://") || u.starts_with("wss://"))
            || matches!(&tokens, Tokens::Cognito { url, .. } if url.starts_with("https://"));
        let tls = if needs_tls { Some(tls_config()?) } else { None };
        let management = management(endpoint.as_deref());
        let idle_wait = options
            .idle_wait_secs
            .map(Duration::from_secs)
            .unwrap_or(if loopback {
                LOCAL_IDLE_WAIT
            } else {
                REMOTE_IDLE_WAIT
            });
        let run_id: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(6)
            .map(|b| char::from(b).to_ascii_lowercase())
            .collect();
        Ok(Self {
            ws: ws.to_owned(),
            http: http_base,
            loopback,
            tokens,
            management,
            idle_wait,
            step: if loopback { LOCAL_STEP } else { REMOTE_STEP },
            tls,
            run_id,
            counter: AtomicU64::new(0),
        })
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> &str {
        &self.ws
    }

    /// The HTTP base URL.
    pub fn http_url(&self) -> &str {
        &self.http
    }

    /// Whether every URL of the target is a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// The longest single wait (5 s on loopback, 15 s otherwise).
    pub fn step(&self) -> Duration {
        self.step
    }

    /// How long the idle checks wait.
    pub fn idle_wait(&self) -> Duration {
        self.idle_wait
    }

    /// Whether every connection of the run is the same user (Cognito).
    pub fn single_user(&self) -> bool {
        matches!(self.tokens, Tokens::Cognito { .. })
    }

    /// A name unique to this run and call (`pty-{run}-{n}-{base}`): users and rooms of
    /// parallel runs on one stage never meet.
    pub fn unique(&self, base: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("pty-{}-{n}-{base}", self.run_id)
    }

    /// The `@connections` client, or why there is none (the checks that need it skip).
    pub fn management(&self) -> Result<&MgmtClient, String> {
        match &self.management {
            Management::Ready(c) => Ok(c),
            Management::Unavailable(why) => Err(why.clone()),
        }
    }

    /// An id token for `user` (`None` with dev identities).
    pub async fn token(&self, user: &str) -> Result<Option<String>, String> {
        match &self.tokens {
            Tokens::DevUser => Ok(None),
            Tokens::Local { token_url } => {
                let body = json!({"username": user}).to_string();
                let res = self
                    .http_raw(
                        token_url,
                        "POST",
                        &[("content-type", "application/json")],
                        body.as_bytes(),
                    )
                    .await?;
                id_token(&res, "/local/token", &["idToken"])
            }
            Tokens::Cognito { url, body, cached } => {
                let mut cached = cached.lock().await;
                if let Some(token) = cached.as_ref() {
                    return Ok(Some(token.clone()));
                }
                let headers = [
                    ("content-type", "application/x-amz-json-1.1"),
                    (
                        "x-amz-target",
                        "AWSCognitoIdentityProviderService.InitiateAuth",
                    ),
                ];
                let res = self
                    .http_raw(url, "POST", &headers, body.to_string().as_bytes())
                    .await?;
                let token = id_token(
                    &res,
                    "Cognito InitiateAuth",
                    &["AuthenticationResult", "IdToken"],
                )?;
                cached.clone_from(&token);
                Ok(token)
            }
        }
    }

    /// The query that identifies `user` on an upgrade: `token=..` or `user=..`.
    pub async fn identity_query(&self, user: &str) -> Result<String, String> {
        Ok(match self.token(user).await? {
            Some(token) => format!("token={}", encode(&token)),
            None => format!("user={}", encode(user)),
        })
    }

    /// Opens a connection as `user`.
    pub async fn connect(&self, user: &str) -> Result<Client, String> {
        let query = self.identity_query(user).await?;
        match self.upgrade(Some(&query), &[]).await? {
            Ok((client, _)) => Ok(client),
            Err(status) => Err(format!("the upgrade as {user} was refused with {status}")),
        }
    }

    /// An upgrade with `query` and extra headers: `Ok(Ok(..))` open, `Ok(Err(status))`
    /// refused with an HTTP status, `Err` any other failure.
    pub async fn upgrade(
        &self,
        query: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Result<(Client, Response), u16>, String> {
        let url = match query {
            Some(q) if self.ws.contains('?') => format!("{}&{q}", self.ws),
            Some(q) => format!("{}?{q}", self.ws),
            None => self.ws.clone(),
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("upgrade request: {e}"))?;
        let h = request.headers_mut();
        h.insert("user-agent", HeaderValue::from_static(USER_AGENT));
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            h.insert(name, value);
        }
        let connector = match &self.tls {
            Some(config) => Connector::Rustls(Arc::clone(config)),
            None => Connector::Plain,
        };
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector));
        match tokio::time::timeout(self.step, connect).await {
            Err(_) => Err(format!("no upgrade answer within {:?}", self.step)),
            Ok(Ok((ws, response))) => Ok(Ok((Client::new(ws, self.step), response))),
            Ok(Err(tungstenite::Error::Http(response))) => Ok(Err(response.status().as_u16())),
            Ok(Err(e)) => Err(format!("upgrade failed: {e}")),
        }
    }

    /// A request to `{http}{path}`, with `Authorization: Bearer` for `user` when given.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
    ) -> Result<HttpResponse, String> {
        let mut path = path.to_owned();
        let bearer = match user {
            Some(user) => match self.token(user).await? {
                Some(token) => Some(format!("Bearer {token}")),
                None => {
                    path = format!(
                        "{path}{}user={}",
                        if path.contains('?') { '&' } else { '?' },
                        encode(user)
                    );
                    None
                }
            },
            None => None,
        };
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        self.http_raw(&format!("{}{path}", self.http), method, &headers, b"")
            .await
    }

    /// A request to `{http}{path}` with the headers given, as is.
    pub async fn http_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, String> {
        self.http_raw(&format!("{}{path}", self.http), method, headers, b"")
            .await
    }

    async fn http_raw(
        &self,
        url: &str,
        method: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, String> {
        wire::request(self.tls.as_ref(), url, method, headers, body, self.step).await
    }
}

fn id_token(res: &HttpResponse, what: &str, path: &[&str]) -> Result<Option<String>, String> {
    if res.status != 200 {
        return Err(format!("{what} answered {}: {}", res.status, res.text()));
    }
    let body = res.json();
    let token = path.iter().fold(&body, |v, key| &v[*key]);
    token
        .as_str()
        .map(|t| Some(t.to_owned()))
        .ok_or_else(|| format!("{what}: no token in {}", res.text()))
}

fn tokens(options: &Options, http_base: &str) -> Result<Tokens, ParityError> {
    Ok(match options.token_from {
        TokenFrom::None => Tokens::DevUser,
        TokenFrom::Local => Tokens::Local {
            token_url: format!("{http_base}/local/token"),
        },
        TokenFrom::Cognito => {
            let client_id = options
                .cognito_client_id
                .clone()
                .ok_or(ParityError::CognitoIncomplete("--cognito-client-id"))?;
            let username = options
                .username
                .clone()
                .ok_or(ParityError::CognitoIncomplete("--username"))?;
            let password = options
                .password
                .clone()
                .ok_or(ParityError::CognitoIncomplete("--password"))?;
            let url = match &options.cognito_endpoint {
                Some(endpoint) => {
                    Url::parse(endpoint).map_err(|e| bad("--cognito-endpoint", endpoint, e))?;
                    endpoint.clone()
                }
                None => {
                    let region = options
                        .cognito_region
                        .clone()
                        .or_else(|| std::env::var(aws_env::REGION).ok())
                        .filter(|r| {
                            !r.is_empty()
                                && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        })
                        .ok_or(ParityError::CognitoIncomplete(
                            "--cognito-region (or AWS_REGION)",
                        ))?;
                    format!("https://cognito-idp.{region}.amazonaws.com/")
                }
            };
            Tokens::Cognito {
                url,
                body: json!({
                    "AuthFlow": "USER_PASSWORD_AUTH",
                    "ClientId": client_id,
                    "AuthParameters": {"USERNAME": username, "PASSWORD": password},
                }),
                cached: Mutex::new(None),
            }
        }
    })
}

/// rustls with ring and the system's root certificates.
fn tls_config() -> Result<Arc<ClientConfig>, ParityError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(ParityError::Tls(
            "no root certificates found on this system".to_owned(),
        ));
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ParityError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The SDK client for `endpoint`: credentials from the standard environment variables
/// only; against a loopback endpoint without them, the local gateway's stand-in.
fn management(endpoint: Option<&str>) -> Management {
    let Some(endpoint) = endpoint else {
        return Management::Unavailable(
            "no --connections-endpoint (https://{api-id}.execute-api.{region}.amazonaws.com/{stage})".to_owned(),
        );
    };
    let loopback = Url::parse(endpoint).is_ok_and(|u| u.is_loopback());
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let credentials = match (var(aws_env::ACCESS_KEY_ID), var(aws_env::SECRET_ACCESS_KEY)) {
        (Some(key), Some(secret)) => Credentials::new(
            key,
            secret,
            var(aws_env::SESSION_TOKEN),
            None,
            "environment",
        ),
        _ if loopback => Credentials::new(
            local_credentials::ACCESS_KEY_ID,
            local_credentials::SECRET_ACCESS_KEY,
            None,
            None,
            "local stand-in",
        ),
        _ => {
            return Management::Unavailable(format!(
                "no credentials: set {} and {}",
                aws_env::ACCESS_KEY_ID,
                aws_env::SECRET_ACCESS_KEY
            ));
        }
    };
    let region = var(aws_env::REGION)
        .or_else(|| region_of(endpoint))
        .unwrap_or_else(|| local_credentials::REGION.to_owned());
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region))
        .credentials_provider(credentials)
        .retry_config(RetryConfig::disabled())
        .http_client(http_client)
        .build();
    Management::Ready(MgmtClient::from_conf(config))
}

/// `us-east-1` from `https://abc.execute-api.us-east-1.amazonaws.com/prod`.
fn region_of(endpoint: &str) -> Option<String> {
    let host = Url::parse(endpoint).ok()?.host;
    let rest = host.split(".execute-api.").nth(1)?;
    rest.split('.').next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_without_a_target() {
        let err = Target::from_options(&Options::default()).map(|_| ());
        assert!(matches!(err, Err(ParityError::NoTarget)), "{err:?}");
        let only_ws = Options {
            ws: Some("ws://127.0.0.1:1/ws".into()),
            ..Options::default()
        };
        assert!(matches!(
            Target::from_options(&only_ws),
            Err(ParityError::NoTarget)
        ));
        let swapped = Options {
            ws: Some("http://127.0.0.1:1/ws".into()),
            http: Some("http://127.0.0.1:1".into()),
            ..Options::default()
        };
        assert!(matches!(
            Target::from_options(&swapped),
            Err(ParityError::BadUrl { .. })
        ));
    }

    #[test]
    fn a_remote_target_gets_no_management_endpoint_by_default() {
        let remote = Options {
            ws: Some("ws://192.0.2.1/ws".into()),
            http: Some("http://192.0.2.1".into()),
            ..Options::default()
        };
        let t = Target::from_options(&remote).unwrap_or_else(|e| panic!("{e}"));
        assert!(!t.is_loopback());
        assert!(t.management().is_err());
        assert_eq!(t.idle_wait(), REMOTE_IDLE_WAIT);
        assert_eq!(
            region_of("https://a1.execute-api.eu-west-2.amazonaws.com/prod").as_deref(),
            Some("eu-west-2")
        );
        let cognito = Options {
            token_from: TokenFrom::Cognito,
            ..remote
        };
        assert!(matches!(
            Target::from_options(&cognito),
            Err(ParityError::CognitoIncomplete(_))
        ));
    }

    /// One Cognito API call to moto (unsigned JSON, as moto accepts).
    async fn cognito_call(endpoint: &str, action: &str, body: Value) -> Value {
        let target = format!("AWSCognitoIdentityProviderService.{action}");
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let res = wire::request(
            None,
            endpoint,
            "POST",
            &headers,
            body.to_string().as_bytes(),
            LOCAL_STEP,
        )
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
        assert_eq!(res.status, 200, "{action}: {}", res.text());
        res.json()
    }

    /// `--token-from cognito` against moto's Cognito: `InitiateAuth` with
    /// `USER_PASSWORD_AUTH` gives an id token, asked once per run; a wrong password is
    /// a clear error.
    #[tokio::test]
    async fn cognito_tokens_from_moto() {
        let Some(moto) = switchboard_testing::moto_endpoint("cognito_tokens_from_moto") else {
            return;
        };
        let pool = cognito_call(&moto, "CreateUserPool", json!({"PoolName": "parity"})).await;
        let pool_id = pool["UserPool"]["Id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let client = cognito_call(
            &moto,
            "CreateUserPoolClient",
            json!({"UserPoolId": pool_id, "ClientName": "web", "GenerateSecret": false,
                   "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH"]}),
        )
        .await;
        let client_id = client["UserPoolClient"]["ClientId"]
            .as_str()
            .unwrap_or_default();
        cognito_call(
            &moto,
            "AdminCreateUser",
            json!({"UserPoolId": pool_id, "Username": "parity", "MessageAction": "SUPPRESS"}),
        )
        .await;
        let password = "Correct-Horse-9-Battery!";
        cognito_call(
            &moto,
            "AdminSetUserPassword",
            json!({"UserPoolId": pool_id, "Username": "parity", "Password": password, "Permanent": true}),
        )
        .await;
        let options = |password: &str| Options {
            ws: Some("ws://127.0.0.1:1/ws".into()),
            http: Some("http://127.0.0.1:1".into()),
            token_from: TokenFrom::Cognito,
            cognito_client_id: Some(client_id.to_owned()),
            cognito_endpoint: Some(format!("{moto}/")),
            username: Some("parity".into()),
            password: Some(password.into()),
            ..Options::default()
        };
        let t = Target::from_options(&options(password)).unwrap_or_else(|e| panic!("{e}"));
        assert!(t.single_user());
        let token = t.token("anyone").await.unwrap_or_else(|e| panic!("{e}"));
        let token = token.unwrap_or_default();
        assert_eq!(token.split('.').count(), 3, "{token}");
        // Cached: the same token for every later connection of the run.
        assert_eq!(t.token("someone-else").await, Ok(Some(token.clone())));
        let query = t.identity_query("x").await.unwrap_or_default();
        assert!(query.starts_with("token=") && query.len() > 20, "{query}");
        let wrong = Target::from_options(&options("wrong")).unwrap_or_else(|e| panic!("{e}"));
        let err = wrong.token("x").await.map(|_| ()).unwrap_err();
        assert!(err.contains("NotAuthorized"), "{err}");
    }
}
