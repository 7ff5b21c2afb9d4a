//! JSON Web Token verification for Amazon Cognito user pools (or any issuer of RS256
//! tokens with a JWKS endpoint), and a `$connect` authorizer built on it.
//!
//! * [`JwtConfig`]: issuer, JWKS URL, expected token use, app client id, required groups,
//!   clock leeway, JWKS refresh interval, size limit; [`JwtConfig::from_env`] reads the
//!   `SWITCHBOARD_JWT_*` variables.
//! * [`JwtVerifier`]: RS256 only, signature checked with `ring` against the issuer's JWKS
//!   (fetched over HTTP(S) with the runtime's rustls/ring client and cached), then
//!   `iss`, `exp`, `nbf`, `iat`, `token_use`, `aud` / `client_id` and `cognito:groups`.
//!   Every failure is a typed [`JwtError`]; no input panics.
//! * [`JwtAuthorizer`]: an [`Authorizer`] that takes the token from the `token` query
//!   parameter, a `Sec-WebSocket-Protocol` entry that looks like a JWT (browsers cannot
//!   set headers on a WebSocket), or `Authorization: Bearer`, and answers API Gateway's
//!   way: no token 401, a rejected token 403 (Deny), keys unavailable 500.
//!
//! An unknown `kid` refetches the JWKS at most once per
//! [`JwtConfig::jwks_refresh_interval`], and concurrent callers share that one fetch, so
//! garbage tokens cannot make the verifier hammer the issuer. A failed refetch keeps the
//! cached keys.
//!
//! Known keys are refreshed on a schedule as well: once the key set is older than
//! [`JwtConfig::jwks_max_age`] (10 minutes by default), the next verification refetches
//! it first (one caller fetches; the others go on with the cached keys meanwhile), so a
//! long-running process follows a rotation and stops accepting keys the issuer dropped.
//! A failed scheduled refresh keeps the old keys and is retried after
//! [`JwtConfig::jwks_refresh_interval`]. No background task: a frozen Lambda container
//! refreshes on its next invocation. The schedule reads a [`Clock`]
//! ([`JwtVerifier::with_clock`]), so tests move time instead of waiting.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::IamPolicyEffect;
use aws_smithy_http_client::{Connector, tls};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::error::display::DisplayErrorContext;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::ConfigError;
use switchboard_core::auth::{self, AuthError, Authorizer, MAX_AUTHORIZER_RESULT_BYTES};
use switchboard_core::clock::Clock;

use switchboard_core::names::env;

/// The only signature algorithm accepted.
pub const ALGORITHM: &str = "RS256";
/// Default clock leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default minimum time between two JWKS fetches caused by unknown key ids.
pub const DEFAULT_JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Default age after which a known key set is refetched before use.
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Default limit on a token's length in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Default time limit of one JWKS fetch (connect, request and body).
pub const DEFAULT_JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS document larger than this is refused.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// While no key set has ever been fetched, failed fetches are retried no more often
/// than this (or the refresh interval, if shorter).
const INITIAL_RETRY: Duration = Duration::from_secs(1);
/// Longest excerpt of an attacker-controlled value kept in an error message.
const EXCERPT_CHARS: usize = 64;
/// Longest `groups` string put in the authorizer context.
const MAX_GROUPS_CONTEXT_BYTES: usize = 2048;

/// Which kind of Cognito token is accepted (`token_use`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenUse {
    /// ID tokens (`token_use` = `id`); the audience is checked against `aud`.
    #[default]
    Id,
    /// Access tokens (`token_use` = `access`); the audience is checked against `client_id`.
    Access,
    /// Either: `token_use` is not checked; the audience is checked against `client_id`
    /// for access tokens and `aud` for all others.
    Any,
}

impl TokenUse {
    /// `id`, `access` or `any`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenUse::Id => "id",
            TokenUse::Access => "access",
            TokenUse::Any => "any",
        }
    }
}

impl fmt::Display for TokenUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenUse {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "id" => Ok(TokenUse::Id),
            "access" => Ok(TokenUse::Access),
            "any" => Ok(TokenUse::Any),
            other => Err(format!(
                "token use must be id, access or any, not {:?}",
                excerpt(other)
            )),
        }
    }
}

/// What a token must satisfy, and where the keys are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtConfig {
    /// The exact `iss` (`https://cognito-idp.{region}.amazonaws.com/{userPoolId}`).
    pub issuer: String,
    /// The JWKS document (`http://` for emulators, `https://` for Cognito).
    pub jwks_url: String,
    /// Which tokens are accepted.
    pub token_use: TokenUse,
    /// The app client id: compared with `aud` (id tokens) or `client_id` (access
    /// tokens). `None` accepts every client of the pool.
    pub audience: Option<String>,
    /// Groups the caller must all be in (`cognito:groups`).
    pub required_groups: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// An unknown `kid` refetches the JWKS at most once per this interval (and a failed
    /// scheduled refresh is retried after it).
    pub jwks_refresh_interval: Duration,
    /// A key set older than this is refetched before its next use (the scheduled
    /// refresh that follows rotations and revocations).
    pub jwks_max_age: Duration,
    /// Longer tokens are refused before any parsing.
    pub max_token_bytes: usize,
    /// Time limit of one JWKS fetch.
    pub jwks_timeout: Duration,
}

impl JwtConfig {
    /// A configuration for `issuer` with the defaults: keys at
    /// `{issuer}/.well-known/jwks.json`, id tokens, no audience or group check,
    /// 60 s leeway, 5 min refresh interval, 10 min key-set age, 16 KB limit, 5 s fetch
    /// timeout.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Self {
            jwks_url: default_jwks_url(&issuer),
            issuer,
            token_use: TokenUse::default(),
            audience: None,
            required_groups: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            jwks_refresh_interval: DEFAULT_JWKS_REFRESH_INTERVAL,
            jwks_max_age: DEFAULT_JWKS_MAX_AGE,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            jwks_timeout: DEFAULT_JWKS_TIMEOUT,
        }
    }

    /// The configuration for a Cognito user pool:
    /// issuer `https://cognito-idp.{region}.amazonaws.com/{user_pool_id}`.
    pub fn cognito(region: &str, user_pool_id: &str) -> Self {
        Self::new(format!(
            "https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        ))
    }

    /// With another JWKS URL.
    pub fn with_jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = url.into();
        self
    }

    /// Refetching a known key set once it is older than `max_age`.
    pub fn with_jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = max_age;
        self
    }

    /// With the app client id to check.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Accepting this kind of token.
    pub fn with_token_use(mut self, token_use: TokenUse) -> Self {
        self.token_use = token_use;
        self
    }

    /// Requiring membership in all of these groups.
    pub fn with_required_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Reads the [`mod@env`] variables, reporting every problem at once.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`JwtConfig::from_env`], with the variables from `lookup` (tests, other sources).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let issuer = get(env::JWT_ISSUER);
        match &issuer {
            None => problems.push(format!("{} is not set", env::JWT_ISSUER)),
            Some(i) if !is_http_url(i) => problems.push(format!(
                "{} must be an http:// or https:// URL",
                env::JWT_ISSUER
            )),
            Some(_) => {}
        }
        let jwks_url = get(env::JWKS_URL);
        if let Some(url) = &jwks_url
            && !is_http_url(url)
        {
            problems.push(format!(
                "{} must be an http:// or https:// URL",
                env::JWKS_URL
            ));
        }
        let token_use = match get(env::JWT_TOKEN_USE).map(|v| v.parse::<TokenUse>()) {
            None => TokenUse::default(),
            Some(Ok(t)) => t,
            Some(Err(why)) => {
                problems.push(format!("{}: {why}", env::JWT_TOKEN_USE));
                TokenUse::default()
            }
        };
        let max_age = match get(env::JWKS_MAX_AGE_SECS).map(|v| v.parse::<u64>()) {
            None => None,
            Some(Ok(secs)) if secs > 0 => Some(secs),
            Some(_) => {
                problems.push(format!(
                    "{} must be a positive number of seconds",
                    env::JWKS_MAX_AGE_SECS
                ));
                None
            }
        };
        let required_groups = get(env::JWT_GROUPS)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        match issuer {
            Some(issuer) if problems.is_empty() => {
                let mut config = Self::new(issuer);
                if let Some(url) = jwks_url {
                    config.jwks_url = url;
                }
                config.token_use = token_use;
                if let Some(secs) = max_age {
                    config.jwks_max_age = Duration::from_secs(secs);
                }
                config.audience = get(env::JWT_AUDIENCE);
                config.required_groups = required_groups;
                Ok(config)
            }
            _ => Err(ConfigError { problems }),
        }
    }
}

fn default_jwks_url(issuer: &str) -> String {
    format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a compact JWS: wrong number of parts, not base64url, not JSON, a required
    /// field missing or of the wrong type. The message never quotes the token.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// Longer than [`JwtConfig::max_token_bytes`].
    #[error("token is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The token's length.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not RS256 (`none`, `HS256`, `ES256`, ...), or the key's `kty`/`alg`/`use` does not
    /// allow RS256 signatures.
    #[error("unsupported algorithm: {0} (only RS256 with an RSA signing key is accepted)")]
    UnsupportedAlgorithm(String),
    /// No key with this `kid` in the JWKS (after at most one refetch per interval).
    #[error("unknown signing key {0:?}")]
    UnknownKey(String),
    /// The signature does not verify with the key named by `kid`.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is past (beyond the leeway).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token not valid yet: {claim} is {at} (now {now})")]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// Its value.
        at: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// `iss` is not the configured issuer.
    #[error("wrong issuer {0:?}")]
    WrongIssuer(String),
    /// `aud` (id token) or `client_id` (access token) is not the configured app client.
    #[error("wrong audience: {0}")]
    WrongAudience(String),
    /// `token_use` is not the configured one.
    #[error("wrong token use {found:?}, expected {expected}")]
    WrongTokenUse {
        /// What was configured.
        expected: TokenUse,
        /// The token's `token_use`, if any.
        found: Option<String>,
    },
    /// The caller is not in a required group.
    #[error("not in required group {0:?}")]
    MissingGroup(String),
    /// The keys could not be fetched and none are cached.
    #[error("signing keys unavailable from {url}: {reason}")]
    Jwks {
        /// The JWKS URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl JwtError {
    /// Whether the verifier, not the token, is at fault (keys unavailable): the
    /// authorizer answers 500 rather than 403.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, JwtError::Jwks { .. })
    }
}

/// A verified token's claims.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    sub: String,
    username: String,
    groups: Vec<String>,
    token_use: Option<String>,
    exp: i64,
    raw: Map<String, Value>,
}

impl Claims {
    /// `sub`: the user's stable id.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `cognito:username`, else `username` (access tokens), else `sub`.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// `cognito:groups` (empty when absent).
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// `token_use` (`id` or `access` for Cognito).
    pub fn token_use(&self) -> Option<&str> {
        self.token_use.as_deref()
    }

    /// `exp`, in seconds since the epoch.
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// One claim of the payload.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.raw.get(name)
    }

    /// The whole payload.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }
}

/// A usable RS256 key, or why the key of that `kid` cannot verify RS256 signatures.
#[derive(Clone, Debug)]
enum KeyEntry {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Unusable(String),
}

type KeySet = HashMap<String, KeyEntry>;

/// Parses a JWKS document. Keys without a `kid` are ignored; keys that cannot verify
/// RS256 are kept with the reason, so that a token naming one is refused as an
/// unsupported algorithm rather than triggering refetches.
fn parse_jwks(body: &[u8]) -> Result<KeySet, String> {
    #[derive(Deserialize)]
    struct Jwks {
        keys: Vec<Value>,
    }
    let jwks: Jwks =
        serde_json::from_slice(body).map_err(|_| "not a JWKS document (no `keys` array)")?;
    let mut set = KeySet::new();
    for key in &jwks.keys {
        let Some(kid) = key.get("kid").and_then(Value::as_str) else {
            continue;
        };
        let entry = parse_jwk(kid, key);
        match (set.get(kid), &entry) {
            // The first usable key of a kid wins.
            (Some(KeyEntry::Rsa { .. }), _) => {}
            (Some(KeyEntry::Unusable(_)), KeyEntry::Unusable(_)) => {}
            _ => {
                set.insert(kid.to_owned(), entry);
            }
        }
    }
    if !set.values().any(|k| matches!(k, KeyEntry::Rsa { .. })) {
        return Err("the JWKS has no RS256 signing key".to_owned());
    }
    Ok(set)
}

fn parse_jwk(kid: &str, key: &Value) -> KeyEntry {
    let field = |name: &str| key.get(name).and_then(Value::as_str);
    let kid = excerpt(kid);
    let kty = field("kty").unwrap_or_default();
    if kty != "RSA" {
        return KeyEntry::Unusable(format!("key {kid:?} has kty {:?}", excerpt(kty)));
    }
    if let Some(alg) = key.get("alg")
        && alg.as_str() != Some(ALGORITHM)
    {
        let alg = alg.as_str().map(excerpt).unwrap_or_default();
        return KeyEntry::Unusable(format!("key {kid:?} is for {alg:?}"));
    }
    if let Some(usage) = key.get("use")
        && usage.as_str() != Some("sig")
    {
        return KeyEntry::Unusable(format!("key {kid:?} is not a signing key"));
    }
    if let Some(ops) = key.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")))
    {
        return KeyEntry::Unusable(format!("key {kid:?} does not allow verify"));
    }
    let component = |name: &str| {
        field(name)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .map(|mut bytes| {
                let zeros = bytes.iter().take_while(|b| **b == 0).count();
                bytes.drain(..zeros);
                bytes
            })
            .filter(|b| !b.is_empty())
    };
    let (Some(n), Some(e)) = (component("n"), component("e")) else {
        return KeyEntry::Unusable(format!("key {kid:?} has no valid n and e"));
    };
    if !(256..=1024).contains(&n.len()) {
        return KeyEntry::Unusable(format!(
            "key {kid:?} has a {}-bit modulus (2048 to 8192 accepted)",
            n.len() * 8
        ));
    }
    KeyEntry::Rsa { n, e }
}

/// Where the keys come from.
enum KeySource {
    /// Given once, never refetched.
    Static,
    /// Fetched from `jwks_url`; the HTTP connector is built on first use.
    Http(OnceLock<Connector>),
}

#[derive(Default)]
struct FetchState {
    /// Epoch milliseconds of the last fetch attempt.
    last_attempt: Option<i64>,
    loaded: bool,
    last_error: Option<String>,
}

/// Verifies RS256 JWTs against an issuer's JWKS. Share one per process (`Arc`): it
/// caches the keys.
pub struct JwtVerifier {
    config: JwtConfig,
    source: KeySource,
    keys: RwLock<Arc<KeySet>>,
    fetch: Mutex<FetchState>,
    fetches: AtomicU64,
    /// Epoch milliseconds at which the cached key set is due for its scheduled refresh
    /// (`i64::MAX` until one is loaded over HTTP).
    refresh_due: AtomicI64,
    clock: Clock,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("config", &self.config)
            .field("static_keys", &matches!(self.source, KeySource::Static))
            .field("jwks_fetches", &self.jwks_fetches())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

impl JwtVerifier {
    /// A verifier that fetches the keys from `config.jwks_url` on first use.
    pub fn new(config: JwtConfig) -> Self {
        Self {
            config,
            source: KeySource::Http(OnceLock::new()),
            keys: RwLock::new(Arc::new(KeySet::new())),
            fetch: Mutex::new(FetchState::default()),
            fetches: AtomicU64::new(0),
            refresh_due: AtomicI64::new(i64::MAX),
            clock: Clock::System,
        }
    }

    /// With the schedule's clock (tests: a [`Clock::manual`]).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A verifier with a fixed key set (a JWKS document), never fetched (tests).
    pub fn with_static_jwks(config: JwtConfig, jwks_json: &str) -> Result<Self, JwtError> {
        let keys = parse_jwks(jwks_json.as_bytes()).map_err(|reason| JwtError::Jwks {
            url: "(static)".to_owned(),
            reason,
        })?;
        Ok(Self {
            config,
            source: KeySource::Static,
            keys: RwLock::new(Arc::new(keys)),
            fetch: Mutex::new(FetchState {
                loaded: true,
                ..FetchState::default()
            }),
            fetches: AtomicU64::new(0),
            refresh_due: AtomicI64::new(i64::MAX),
            clock: Clock::System,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// How many JWKS fetches were attempted (successful or not).
    pub fn jwks_fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        self.verify_at(token, unix_now()).await
    }

    /// As [`JwtVerifier::verify`], with the clock at `now` (seconds since the epoch).
    pub async fn verify_at(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        // 1. Size and structure, before any decoding.
        if token.len() > self.config.max_token_bytes {
            return Err(JwtError::TooLarge {
                size: token.len(),
                limit: self.config.max_token_bytes,
            });
        }
        if token.is_empty() {
            return Err(JwtError::Malformed("empty token"));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("not three dot-separated parts"));
        };
        let header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| JwtError::Malformed("header is not base64url"))?;
        let header: Header = serde_json::from_slice(&header)
            .map_err(|_| JwtError::Malformed("header is not a JSON object with an alg"))?;
        // 2. The algorithm: RS256, whatever the header claims.
        if header.alg != ALGORITHM {
            return Err(JwtError::UnsupportedAlgorithm(format!(
                "{:?}",
                excerpt(&header.alg)
            )));
        }
        if header.crit.is_some() {
            return Err(JwtError::Malformed("critical header extensions"));
        }
        let Some(kid) = header.kid.filter(|k| !k.is_empty()) else {
            return Err(JwtError::Malformed("no kid in the header"));
        };
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| JwtError::Malformed("payload is not base64url"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
        if signature.is_empty() {
            return Err(JwtError::Malformed("empty signature"));
        }
        // 3. The key and the signature over `header.payload` as received.
        let (n, e) = match self.key(&kid).await? {
            KeyEntry::Rsa { n, e } => (n, e),
            KeyEntry::Unusable(why) => {
                return Err(JwtError::UnsupportedAlgorithm(format!("RS256 with {why}")));
            }
        };
        let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed, &signature)
            .map_err(|_| JwtError::BadSignature)?;
        // 4. The claims.
        let raw: Map<String, Value> = serde_json::from_slice(&payload)
            .map_err(|_| JwtError::Malformed("payload is not a JSON object"))?;
        self.check_claims(raw, now)
    }

    fn check_claims(&self, raw: Map<String, Value>, now: i64) -> Result<Claims, JwtError> {
        let config = &self.config;
        let leeway = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        match raw.get("iss") {
            Some(Value::String(iss)) if *iss == config.issuer => {}
            Some(Value::String(iss)) => return Err(JwtError::WrongIssuer(excerpt(iss))),
            _ => return Err(JwtError::WrongIssuer(String::new())),
        }
        let exp = numeric_date(&raw, "exp")?.ok_or(JwtError::Malformed("no exp"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(JwtError::Expired { exp, now });
        }
        for claim in ["nbf", "iat"] {
            if let Some(at) = numeric_date(&raw, claim)?
                && at > now.saturating_add(leeway)
            {
                return Err(JwtError::NotYetValid { claim, at, now });
            }
        }
        let token_use = match raw.get("token_use") {
            None => None,
            Some(Value::String(t)) => Some(t.clone()),
            Some(_) => return Err(JwtError::Malformed("token_use is not a string")),
        };
        let use_matches = match config.token_use {
            TokenUse::Id => token_use.as_deref() == Some("id"),
            TokenUse::Access => token_use.as_deref() == Some("access"),
            TokenUse::Any => true,
        };
        if !use_matches {
            return Err(JwtError::WrongTokenUse {
                expected: config.token_use,
                found: token_use.as_deref().map(excerpt),
            });
        }
        if let Some(audience) = &config.audience {
            if token_use.as_deref() == Some("access") {
                match raw.get("client_id") {
                    Some(Value::String(c)) if c == audience => {}
                    Some(Value::String(c)) => {
                        return Err(JwtError::WrongAudience(format!(
                            "client_id {:?}",
                            excerpt(c)
                        )));
                    }
                    _ => return Err(JwtError::WrongAudience("no client_id".to_owned())),
                }
            } else {
                let ok = match raw.get("aud") {
                    Some(Value::String(a)) => a == audience,
                    Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
                    _ => false,
                };
                if !ok {
                    let found = match raw.get("aud") {
                        Some(Value::String(a)) => format!("aud {:?}", excerpt(a)),
                        Some(_) => "aud does not contain the app client".to_owned(),
                        None => "no aud".to_owned(),
                    };
                    return Err(JwtError::WrongAudience(found));
                }
            }
        }
        let groups: Vec<String> = match raw.get("cognito:groups") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|g| g.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or(JwtError::Malformed(
                    "cognito:groups is not a list of strings",
                ))?,
            Some(_) => return Err(JwtError::Malformed("cognito:groups is not a list")),
        };
        if let Some(missing) = config.required_groups.iter().find(|g| !groups.contains(g)) {
            return Err(JwtError::MissingGroup(missing.clone()));
        }
        let sub = match raw.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(JwtError::Malformed("no sub")),
        };
        let username = ["cognito:username", "username"]
            .iter()
            .find_map(|k| raw.get(*k).and_then(Value::as_str))
            .filter(|u| !u.is_empty())
            .unwrap_or(&sub)
            .to_owned();
        Ok(Claims {
            sub,
            username,
            groups,
            token_use,
            exp,
            raw,
        })
    }

    fn cached(&self, kid: &str) -> Option<KeyEntry> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.get(kid).cloned()
    }

    /// The key for `kid`: from the cache, else after a refetch if the last attempt is
    /// older than the refresh interval. Concurrent callers share one fetch.
    async fn key(&self, kid: &str) -> Result<KeyEntry, JwtError> {
        if self.clock.now_ms() >= self.refresh_due.load(Ordering::Relaxed) {
            self.scheduled_refresh().await;
        }
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let KeySource::Http(connector) = &self.source else {
            return Err(JwtError::UnknownKey(excerpt(kid)));
        };
        let mut state = self.fetch.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let gap = if state.loaded {
            self.config.jwks_refresh_interval
        } else {
            self.config.jwks_refresh_interval.min(INITIAL_RETRY)
        };
        let now = self.clock.now_ms();
        let due = state
            .last_attempt
            .is_none_or(|t| now.saturating_sub(t) >= millis(gap));
        if due
            && self.fetch_into(&mut state, connector).await
            && let Some(key) = self.cached(kid)
        {
            return Ok(key);
        }
        if !state.loaded {
            return Err(JwtError::Jwks {
                url: self.config.jwks_url.clone(),
                reason: state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not fetched yet".to_owned()),
            });
        }
        Err(JwtError::UnknownKey(excerpt(kid)))
    }

    /// The scheduled refresh of a known key set: one caller fetches (the others keep
    /// using the cached keys); a failure keeps the keys and retries after the refresh
    /// interval.
    async fn scheduled_refresh(&self) {
        let KeySource::Http(connector) = &self.source else {
            return;
        };
        let Ok(mut state) = self.fetch.try_lock() else {
            return;
        };
        if self.clock.now_ms() < self.refresh_due.load(Ordering::Relaxed) {
            return;
        }
        tracing::debug!(url = %self.config.jwks_url, "scheduled JWKS refresh");
        if !self.fetch_into(&mut state, connector).await {
            let retry = self
                .clock
                .now_ms()
                .saturating_add(millis(self.config.jwks_refresh_interval));
            self.refresh_due.store(retry, Ordering::Relaxed);
        }
    }

    /// One fetch: on success the key set is replaced (keys the issuer dropped are gone)
    /// and the next scheduled refresh set; on failure the cached keys stay. Whether it
    /// succeeded.
    async fn fetch_into(&self, state: &mut FetchState, connector: &OnceLock<Connector>) -> bool {
        let now = self.clock.now_ms();
        state.last_attempt = Some(now);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch_jwks(connector).await {
            Ok(keys) => {
                tracing::info!(
                    url = %self.config.jwks_url,
                    keys = keys.len(),
                    "fetched the JWKS"
                );
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                state.loaded = true;
                state.last_error = None;
                let due = now.saturating_add(millis(self.config.jwks_max_age));
                self.refresh_due.store(due, Ordering::Relaxed);
                true
            }
            Err(reason) => {
                tracing::warn!(
                    url = %self.config.jwks_url,
                    reason = %reason,
                    cached = state.loaded,
                    "JWKS fetch failed"
                );
                state.last_error = Some(reason);
                false
            }
        }
    }

    async fn fetch_jwks(&self, connector: &OnceLock<Connector>) -> Result<KeySet, String> {
        let url = &self.config.jwks_url;
        if !is_http_url(url) {
            return Err("the JWKS URL is not an http:// or https:// URL".to_owned());
        }
        let mut request = HttpRequest::get(url).map_err(|e| format!("bad JWKS URL: {e}"))?;
        request.headers_mut().insert("accept", "application/json");
        let connector = connector.get_or_init(|| {
            Connector::builder()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build()
        });
        let response = connector.call(request);
        let fetch = async move {
            let response = response
                .await
                .map_err(|e| format!("request failed: {}", DisplayErrorContext(&e)))?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                return Err(format!("HTTP {status}"));
            }
            let mut body = ByteStream::new(response.into_body());
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| format!("reading the body: {e}"))?;
                if bytes.len() + chunk.len() > MAX_JWKS_BYTES {
                    return Err(format!("the JWKS is over {MAX_JWKS_BYTES} bytes"));
                }
                bytes.extend_from_slice(&chunk);
            }
            parse_jwks(&bytes)
        };
        tokio::time::timeout(self.config.jwks_timeout, fetch)
            .await
            .map_err(|_| format!("timed out after {:?}", self.config.jwks_timeout))?
    }
}

/// A NumericDate claim: missing `None`, a number (fractions truncated towards the
/// past), anything else malformed.
fn numeric_date(raw: &Map<String, Value>, claim: &'static str) -> Result<Option<i64>, JwtError> {
    match raw.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            // Saturating float-to-int conversion; JSON has no NaN.
            (None, Some(f)) => Ok(Some(f.floor() as i64)),
            (None, None) => Err(JwtError::Malformed("a date claim is not a number")),
        },
        Some(_) => Err(match claim {
            "exp" => JwtError::Malformed("exp is not a number"),
            "nbf" => JwtError::Malformed("nbf is not a number"),
            _ => JwtError::Malformed("iat is not a number"),
        }),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// At most [`EXCERPT_CHARS`] characters of an untrusted value, control characters
/// replaced, for error messages and logs.
fn excerpt(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out
}

pub use switchboard_core::auth::looks_like_jwt;

/// Where the authorizer found the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The `token` query parameter.
    Query,
    /// An entry of `Sec-WebSocket-Protocol`.
    Protocol,
    /// `Authorization: Bearer`.
    Bearer,
}

impl TokenSource {
    /// `query`, `protocol` or `bearer`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Query => "query",
            TokenSource::Protocol => "protocol",
            TokenSource::Bearer => "bearer",
        }
    }
}

/// The token of an upgrade request: the `token` query parameter, else the first
/// `Sec-WebSocket-Protocol` entry that [`looks_like_jwt`], else `Authorization: Bearer`.
/// Empty values count as absent.
pub fn token_from_request(
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Option<(&str, TokenSource)> {
    if let Some(token) = request
        .query_string_parameters
        .first("token")
        .filter(|t| !t.is_empty())
    {
        return Some((token, TokenSource::Query));
    }
    let values = |name: &'static str| {
        request
            .headers
            .get_all(name)
            .iter()
            .chain(request.multi_value_headers.get_all(name).iter())
            .filter_map(|v| v.to_str().ok())
    };
    if let Some(token) = values("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| looks_like_jwt(p))
    {
        return Some((token, TokenSource::Protocol));
    }
    values("authorization")
        .filter_map(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .find(|t| !t.is_empty())
        .map(|t| (t, TokenSource::Bearer))
}

/// A `$connect` authorizer that accepts callers with a valid JWT.
///
/// No token: 401. A token that fails verification: Deny (403), the reason logged at info
/// (never the token). Keys unavailable: 500. Accepted: Allow on the `methodArn`,
/// `principalId` = `sub`, context `username`, `sub`, `groups` (comma-joined), `tokenUse`,
/// `expiresAt` (`exp`, a number) and `authMethod` = `jwt`.
#[derive(Clone, Debug)]
pub struct JwtAuthorizer {
    verifier: Arc<JwtVerifier>,
}

impl JwtAuthorizer {
    /// An authorizer over this verifier.
    pub fn new(verifier: Arc<JwtVerifier>) -> Self {
        Self { verifier }
    }

    /// An authorizer configured by [`JwtConfig::from_env`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(Arc::new(
            JwtVerifier::new(JwtConfig::from_env()?),
        )))
    }

    /// The verifier.
    pub fn verifier(&self) -> &Arc<JwtVerifier> {
        &self.verifier
    }
}

/// The `principalId` of a Deny result.
const DENIED_PRINCIPAL: &str = "unauthorized";

#[async_trait]
impl Authorizer for JwtAuthorizer {
    async fn authorize(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<ApiGatewayCustomAuthorizerResponse, AuthError> {
        let method_arn = request.method_arn.as_deref().unwrap_or_default();
        let Some((token, source)) = token_from_request(request) else {
            return Err(AuthError::Unauthorized(
                "no token: connect with ?token=JWT or offer it as a Sec-WebSocket-Protocol"
                    .to_owned(),
            ));
        };
        let claims = match self.verifier.verify(token).await {
            Ok(claims) => claims,
            Err(e) if e.is_unavailable() => return Err(AuthError::Failed(e.to_string())),
            Err(e) => {
                tracing::info!(reason = %e, source = source.as_str(), "token rejected");
                return Ok(auth::policy(
                    DENIED_PRINCIPAL,
                    IamPolicyEffect::Deny,
                    method_arn,
                    Map::new(),
                ));
            }
        };
        let mut context = Map::new();
        context.insert("username".to_owned(), claims.username().into());
        context.insert("sub".to_owned(), claims.sub().into());
        let (groups, truncated) = join_groups(claims.groups());
        context.insert("groups".to_owned(), groups.into());
        if truncated {
            context.insert("groupsTruncated".to_owned(), true.into());
        }
        if let Some(token_use) = claims.token_use() {
            context.insert("tokenUse".to_owned(), token_use.into());
        }
        context.insert("expiresAt".to_owned(), claims.exp().into());
        context.insert("authMethod".to_owned(), "jwt".into());
        let result = auth::policy(claims.sub(), IamPolicyEffect::Allow, method_arn, context);
        let size = serde_json::to_vec(&result).map_or(usize::MAX, |v| v.len());
        if size > MAX_AUTHORIZER_RESULT_BYTES {
            return Err(AuthError::Failed(format!(
                "the authorizer result for {:?} would be {size} bytes",
                excerpt(claims.sub())
            )));
        }
        tracing::debug!(
            sub = claims.sub(),
            source = source.as_str(),
            "token accepted"
        );
        Ok(result)
    }
}

/// The groups, comma-joined, cut at a group boundary to at most
/// [`MAX_GROUPS_CONTEXT_BYTES`]; `true` when some were left out.
fn join_groups(groups: &[String]) -> (String, bool) {
    let mut out = String::new();
    for group in groups {
        let extra = group.len() + usize::from(!out.is_empty());
        if out.len() + extra > MAX_GROUPS_CONTEXT_BYTES {
            return (out, true);
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(group);
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_lookup() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let config = JwtConfig::from_lookup(vars(&[
            (
                env::JWT_ISSUER,
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/",
            ),
            (env::JWT_AUDIENCE, " client123 "),
            (env::JWT_TOKEN_USE, "Access"),
            (env::JWT_GROUPS, "admins, ,staff,"),
        ]))
        .unwrap();
        assert_eq!(
            config.jwks_url,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json"
        );
        assert_eq!(config.audience.as_deref(), Some("client123"));
        assert_eq!(config.token_use, TokenUse::Access);
        assert_eq!(config.required_groups, vec!["admins", "staff"]);
        assert_eq!(config.leeway, DEFAULT_LEEWAY);

        let config = JwtConfig::from_lookup(vars(&[
            (env::JWT_ISSUER, "https://issuer.example"),
            (
                env::JWKS_URL,
                "http://127.0.0.1:5000/pool/.well-known/jwks.json",
            ),
        ]))
        .unwrap();
        assert_eq!(config.token_use, TokenUse::Id);
        assert_eq!(
            config.jwks_url,
            "http://127.0.0.1:5000/pool/.well-known/jwks.json"
        );
        assert!(config.required_groups.is_empty());

        let err = JwtConfig::from_lookup(vars(&[
            (env::JWKS_URL, "ftp://x"),
            (env::JWT_TOKEN_USE, "refresh"),
        ]))
        .unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
        let err = JwtConfig::from_lookup(vars(&[(env::JWT_ISSUER, "issuer")])).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
    }

    #[test]
    fn jwt_shapes() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJz."));
        assert!(!looks_like_jwt("chat"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt(".b.c"));
        assert!(!looks_like_jwt("a.b.c="));
        assert!(!looks_like_jwt("a+b.c.d"));
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt("abc"), "abc");
        assert_eq!(excerpt("a\nb"), "a?b");
        assert_eq!(
            excerpt(&"x".repeat(1000)).chars().count(),
            EXCERPT_CHARS + 1
        );
    }

    #[test]
    fn groups_are_capped() {
        assert_eq!(join_groups(&[]), (String::new(), false));
        let groups = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(join_groups(&groups), ("a,b".to_owned(), false));
        let many: Vec<String> = (0..500).map(|i| format!("group-{i:04}")).collect();
        let (joined, truncated) = join_groups(&many);
        assert!(truncated);
        assert!(joined.len() <= MAX_GROUPS_CONTEXT_BYTES);
        assert!(joined.split(',').all(|g| g.len() == 10));
    }

    #[test]
    fn jwks_parsing() {
        assert!(parse_jwks(b"not json").is_err());
        assert!(parse_jwks(br#"{"keys": []}"#).is_err());
        let n = URL_SAFE_NO_PAD.encode([0xC5u8; 256]);
        let short = URL_SAFE_NO_PAD.encode([0xC5u8; 128]);
        let padded = URL_SAFE_NO_PAD.encode([[0u8].as_slice(), &[0xC5u8; 256]].concat());
        let doc = serde_json::json!({"keys": [
            {"kid": "good", "kty": "RSA", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB"},
            {"kid": "padded", "kty": "RSA", "n": padded, "e": "AAEAAQ"},
            {"kid": "ec", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kid": "hs", "kty": "RSA", "alg": "HS256", "n": n, "e": "AQAB"},
            {"kid": "enc", "kty": "RSA", "use": "enc", "n": n, "e": "AQAB"},
            {"kid": "small", "kty": "RSA", "n": short, "e": "AQAB"},
            {"kid": "broken", "kty": "RSA", "n": "***", "e": "AQAB"},
            {"kty": "RSA", "n": n, "e": "AQAB"}
        ]});
        let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert!(matches!(set["good"], KeyEntry::Rsa { .. }));
        assert!(
            matches!(&set["padded"], KeyEntry::Rsa { n, e } if n.len() == 256 && e == &[1, 0, 1])
        );
        for kid in ["ec", "hs", "enc", "small", "broken"] {
            assert!(matches!(set[kid], KeyEntry::Unusable(_)), "{kid}");
        }
        assert_eq!(set.len(), 7);
    }
}
