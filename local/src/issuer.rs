//! The local token issuer: real RS256 JWTs in the shape Amazon Cognito issues, signed with
//! a key kept on disk, so the verifier that checks Cognito's tokens on AWS checks these
//! locally (it fetches the JWKS from the gateway instead of from Cognito).
//!
//! **This is a development sign-in. It proves nothing**: anyone who can reach the local
//! gateway gets a token for any user name and any groups, with no password. The tokens
//! are real signatures by a key that only this machine has, nothing more; never trust
//! this issuer's key anywhere but in local development.
//!
//! | path | what |
//! |---|---|
//! | `GET /local/.well-known/jwks.json` | the public key as a JWKS (Cognito's `{iss}/.well-known/jwks.json`) |
//! | `GET /local/.well-known/openid-configuration` | OpenID discovery document; URLs from the request's `Host` |
//! | `POST /local/token` | `{"username":"alice","groups":["admin"]}` (optionally `"expiresIn":SECONDS`) → `{"idToken","accessToken","expiresIn","tokenType":"Bearer"}` |
//!
//! The key pair (RSA 2048, PKCS#8 PEM) lives in [`KEY_FILE`] under a directory, the
//! project's `.switchboard/` by default, so tokens survive restarts. The directory is
//! created with mode 0700 and the key file with 0600. Deleting the file makes a new key at
//! the next start; tokens signed with the old one then stop verifying.
//!
//! Claims, as Cognito puts them:
//!
//! * id token: `sub`, `cognito:username`, `cognito:groups` (only when there are groups),
//!   `token_use: "id"`, `aud` (the audience: the app client id), `iss`, `iat`,
//!   `auth_time`, `exp`, `jti`, `email_verified: false`;
//! * access token: `sub`, `username`, `cognito:groups` (only when there are groups),
//!   `token_use: "access"`, `client_id` (the audience), `scope:
//!   "aws.cognito.signin.user.admin"`, `iss`, `iat`, `auth_time`, `exp`, `jti`.
//!
//! `sub` is derived from the user name alone (a UUID-shaped hash), so one user keeps one
//! `sub` across restarts and key changes, as a Cognito user keeps theirs.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::rand_core::OsRng;
use rsa::sha2::{Digest, Sha256};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use switchboard_core::auth::valid_username;

/// The default directory of the key file, relative to the working directory (the
/// project's root under `cargo run`).
pub const DEFAULT_DIR: &str = ".switchboard";

/// The name of the key file inside the directory given to
/// [`LocalIssuer::load_or_create`].
pub const KEY_FILE: &str = "local-issuer-key.pem";

/// Path of the JWKS.
pub const JWKS_PATH: &str = "/local/.well-known/jwks.json";

/// Path of the OpenID discovery document.
pub const OPENID_CONFIGURATION_PATH: &str = "/local/.well-known/openid-configuration";

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/local/token";

/// Lifetime of a token when the request names none (Cognito's default: one hour).
pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);

/// The longest lifetime a token may be given (Cognito's maximum for id and access
/// tokens: one day).
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The most groups one token may carry.
pub const MAX_GROUPS: usize = 20;

/// The `scope` of access tokens (what Cognito's user-pool sign-in grants).
pub const ACCESS_TOKEN_SCOPE: &str = "aws.cognito.signin.user.admin";

/// Size of the key pair, in bits.
pub const KEY_BITS: usize = 2048;

/// Largest body `POST /local/token` accepts.
const MAX_TOKEN_BODY_BYTES: usize = 16 * 1024;

/// What went wrong loading the key or issuing a token.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// The key directory or file could not be created, read or written.
    #[error("local token issuer: cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`read`, `create`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The key file exists but does not hold a usable key.
    #[error(
        "local token issuer: the key file {path} is unusable ({reason}); delete it \
         (`rm {path}`) and a new key is generated at the next start (tokens signed with \
         the old key then stop verifying)",
        path = .path.display()
    )]
    CorruptKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating or encoding a new key pair failed.
    #[error("local token issuer: cannot generate a key pair: {0}")]
    KeyGeneration(String),
    /// The user name is not 1-64 characters of letters, digits, `-`, `_`, `.`.
    #[error("invalid username: {0}")]
    InvalidUsername(String),
    /// A group name is invalid, or there are too many groups.
    #[error("invalid groups: {0}")]
    InvalidGroups(String),
    /// The requested lifetime is zero or longer than [`MAX_TTL`].
    #[error("invalid token lifetime: {0}")]
    InvalidTtl(String),
    /// Signing failed.
    #[error("local token issuer: cannot sign a token: {0}")]
    Signing(String),
}

impl IssuerError {
    /// Whether the error is the caller's mistake (a bad request), rather than ours.
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            Self::InvalidUsername(_) | Self::InvalidGroups(_) | Self::InvalidTtl(_)
        )
    }
}

/// What to issue tokens for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// The user name: 1-64 characters of letters, digits, `-`, `_`, `.`.
    pub username: String,
    /// The user's groups (`cognito:groups`): at most [`MAX_GROUPS`], each a valid name by
    /// the user-name rule. Duplicates are dropped.
    pub groups: Vec<String>,
    /// How long the tokens are valid: [`DEFAULT_TTL`] when `None`, at most [`MAX_TTL`],
    /// counted in whole seconds (at least one).
    pub ttl: Option<Duration>,
}

impl TokenRequest {
    /// A request for `username`, without groups, with the default lifetime.
    pub fn new(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            ..Self::default()
        }
    }

    /// Adds groups.
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// Sets the lifetime.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// Issued tokens, as `POST /local/token` returns them (camelCase, like Amplify's
/// session: `idToken`, `accessToken`, `expiresIn`, `tokenType`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The id token (`token_use: "id"`): what the WebSocket authorizer checks.
    pub id_token: String,
    /// The access token (`token_use: "access"`).
    pub access_token: String,
    /// Seconds until both expire.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
}

/// Issues Cognito-shaped RS256 tokens with a key pair kept on disk. Development only:
/// it signs whatever it is asked to (see the [module docs](self)).
pub struct LocalIssuer {
    issuer: String,
    audience: String,
    kid: String,
    key_path: PathBuf,
    signing_key: SigningKey<Sha256>,
    public_key: RsaPublicKey,
}

impl fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.kid)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl LocalIssuer {
    /// Loads the key pair from `dir/`[`KEY_FILE`], or generates one and saves it there
    /// (creating `dir` with mode 0700 and the file with mode 0600).
    ///
    /// `issuer` is the `iss` claim (e.g. `http://127.0.0.1:3000/local`, whose
    /// `/.well-known/jwks.json` is this issuer's JWKS, as with Cognito); `audience` is the
    /// id token's `aud` and the access token's `client_id` (Cognito's app client id).
    ///
    /// A key file that cannot be parsed is an [`IssuerError::CorruptKey`] naming the
    /// file; it is never replaced silently.
    pub fn load_or_create(
        dir: &Path,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, IssuerError> {
        let path = dir.join(KEY_FILE);
        let key = match fs::read(&path) {
            Ok(bytes) => {
                warn_if_readable_by_others(&path);
                parse_key(&path, &bytes)?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_key(dir, &path)?,
            Err(source) => {
                return Err(IssuerError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        Self::from_key(key, path, issuer.into(), audience.into())
    }

    fn from_key(
        key: RsaPrivateKey,
        key_path: PathBuf,
        issuer: String,
        audience: String,
    ) -> Result<Self, IssuerError> {
        let public_key = key.to_public_key();
        let der = public_key
            .to_public_key_der()
            .map_err(|e| IssuerError::CorruptKey {
                path: key_path.clone(),
                reason: format!("its public key cannot be encoded: {e}"),
            })?;
        let digest = Sha256::digest(der.as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..16]);
        Ok(Self {
            issuer,
            audience,
            kid,
            key_path,
            signing_key: SigningKey::<Sha256>::new(key),
            public_key,
        })
    }

    /// The `iss` claim.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The id token's `aud` and the access token's `client_id`.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The key id (`kid`): base64url of the first 16 bytes of the SHA-256 of the public
    /// key's DER (SubjectPublicKeyInfo), so it changes exactly when the key does.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Where the key pair is kept.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The public key as a JWKS, as Cognito serves it:
    /// `{"keys":[{"kty":"RSA","kid":..,"use":"sig","alg":"RS256","n":..,"e":..}]}`.
    pub fn jwks(&self) -> Value {
        json!({
            "keys": [{
                "kty": "RSA",
                "kid": self.kid,
                "use": "sig",
                "alg": "RS256",
                "n": URL_SAFE_NO_PAD.encode(self.public_key.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(self.public_key.e().to_bytes_be()),
            }]
        })
    }

    /// The OpenID discovery document, its URLs under `base_url` (e.g.
    /// `http://127.0.0.1:3000`).
    pub fn openid_configuration(&self, base_url: &str) -> Value {
        let base = base_url.trim_end_matches('/');
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{base}{JWKS_PATH}"),
            "token_endpoint": format!("{base}{TOKEN_PATH}"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "scopes_supported": [ACCESS_TOKEN_SCOPE],
            "token_endpoint_auth_methods_supported": ["none"],
            "claims_supported": [
                "sub", "iss", "aud", "iat", "exp", "auth_time", "jti", "token_use",
                "cognito:username", "cognito:groups", "email_verified", "username",
                "client_id", "scope",
            ],
        })
    }

    /// Issues an id token and an access token for `request`.
    pub fn issue(&self, request: &TokenRequest) -> Result<TokenResponse, IssuerError> {
        validate_username(&request.username)?;
        let groups = validate_groups(&request.groups)?;
        let ttl = match request.ttl {
            None => DEFAULT_TTL.as_secs(),
            Some(ttl) if ttl > MAX_TTL => {
                return Err(IssuerError::InvalidTtl(format!(
                    "{} s is longer than the maximum of {} s",
                    ttl.as_secs(),
                    MAX_TTL.as_secs()
                )));
            }
            Some(ttl) if ttl.as_secs() == 0 => {
                return Err(IssuerError::InvalidTtl(
                    "tokens must be valid for at least one second".to_owned(),
                ));
            }
            Some(ttl) => ttl.as_secs(),
        };
        let now = chrono::Utc::now().timestamp();
        let exp = now.saturating_add_unsigned(ttl);
        let sub = subject(&request.username);

        let mut id = Map::new();
        id.insert("sub".into(), json!(sub));
        id.insert("cognito:username".into(), json!(request.username));
        if !groups.is_empty() {
            id.insert("cognito:groups".into(), json!(groups));
        }
        id.insert("email_verified".into(), json!(false));
        id.insert("token_use".into(), json!("id"));
        id.insert("aud".into(), json!(self.audience));
        id.insert("iss".into(), json!(self.issuer));
        id.insert("auth_time".into(), json!(now));
        id.insert("iat".into(), json!(now));
        id.insert("exp".into(), json!(exp));
        id.insert("jti".into(), json!(switchboard_core::ids::random_uuid()));

        let mut access = Map::new();
        access.insert("sub".into(), json!(sub));
        if !groups.is_empty() {
            access.insert("cognito:groups".into(), json!(groups));
        }
        access.insert("token_use".into(), json!("access"));
        access.insert("scope".into(), json!(ACCESS_TOKEN_SCOPE));
        access.insert("client_id".into(), json!(self.audience));
        access.insert("username".into(), json!(request.username));
        access.insert("iss".into(), json!(self.issuer));
        access.insert("auth_time".into(), json!(now));
        access.insert("iat".into(), json!(now));
        access.insert("exp".into(), json!(exp));
        access.insert("jti".into(), json!(switchboard_core::ids::random_uuid()));

        Ok(TokenResponse {
            id_token: self.sign(&Value::Object(id))?,
            access_token: self.sign(&Value::Object(access))?,
            expires_in: ttl,
            token_type: "Bearer".to_owned(),
        })
    }

    /// `base64url(header).base64url(claims).base64url(RS256 signature)`, the header being
    /// Cognito's `{"kid":..,"alg":"RS256"}`.
    fn sign(&self, claims: &Value) -> Result<String, IssuerError> {
        let header = json!({ "kid": self.kid, "alg": "RS256" });
        let header =
            serde_json::to_vec(&header).map_err(|e| IssuerError::Signing(e.to_string()))?;
        let claims = serde_json::to_vec(claims).map_err(|e| IssuerError::Signing(e.to_string()))?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims));
        // PKCS#1 v1.5 signatures are deterministic; the RNG only blinds the private-key
        // operation against timing side channels.
        let signature = self
            .signing_key
            .try_sign_with_rng(&mut OsRng, token.as_bytes())
            .map_err(|e| IssuerError::Signing(e.to_string()))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_vec()));
        Ok(token)
    }
}

fn validate_username(username: &str) -> Result<(), IssuerError> {
    if valid_username(username) {
        Ok(())
    } else {
        Err(IssuerError::InvalidUsername(format!(
            "{username:?} is not 1-64 characters of letters, digits, '-', '_', '.'"
        )))
    }
}

/// The groups without duplicates, in their order; every name valid.
fn validate_groups(groups: &[String]) -> Result<Vec<&str>, IssuerError> {
    let mut unique: Vec<&str> = Vec::with_capacity(groups.len());
    for group in groups {
        if !valid_username(group) {
            return Err(IssuerError::InvalidGroups(format!(
                "group {group:?} is not 1-64 characters of letters, digits, '-', '_', '.'"
            )));
        }
        if !unique.contains(&group.as_str()) {
            unique.push(group);
        }
    }
    if unique.len() > MAX_GROUPS {
        return Err(IssuerError::InvalidGroups(format!(
            "{} groups; at most {MAX_GROUPS} are allowed",
            unique.len()
        )));
    }
    Ok(unique)
}

/// A UUID-shaped `sub` derived from the user name (SHA-256 of a fixed prefix and the name,
/// shaped as a version-8 UUID): the same user always gets the same `sub`.
fn subject(username: &str) -> String {
    let digest = Sha256::digest(format!("switchboard-local-issuer:sub:{username}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    switchboard_core::ids::uuid_from_bytes(bytes, 0x80)
}

fn parse_key(path: &Path, bytes: &[u8]) -> Result<RsaPrivateKey, IssuerError> {
    let corrupt = |reason: String| IssuerError::CorruptKey {
        path: path.to_owned(),
        reason,
    };
    let pem = std::str::from_utf8(bytes)
        .map_err(|_| corrupt("not text: a PKCS#8 PEM RSA private key was expected".to_owned()))?;
    let key = RsaPrivateKey::from_pkcs8_pem(pem)
        .map_err(|e| corrupt(format!("not a PKCS#8 PEM RSA private key: {e}")))?;
    key.validate()
        .map_err(|e| corrupt(format!("not a valid RSA key: {e}")))?;
    let bits = key.size() * 8;
    if !(KEY_BITS..=8192).contains(&bits) {
        return Err(corrupt(format!(
            "a {bits}-bit key; {KEY_BITS} to 8192 bits are needed"
        )));
    }
    Ok(key)
}

/// Generates a key pair and saves it at `path`. The file appears whole or not at all
/// (written aside, then linked into place); if another process saved one first, that one
/// is used.
fn create_key(dir: &Path, path: &Path) -> Result<RsaPrivateKey, IssuerError> {
    create_dir(dir)?;
    let key = RsaPrivateKey::new(&mut OsRng, KEY_BITS)
        .map_err(|e| IssuerError::KeyGeneration(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| IssuerError::KeyGeneration(e.to_string()))?;
    let tmp = dir.join(format!(
        ".{KEY_FILE}.{}.{}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let io_error = |action, path: &Path| {
        let path = path.to_owned();
        move |source| IssuerError::Io {
            action,
            path,
            source,
        }
    };
    let written = write_private(&tmp, pem.as_bytes()).map_err(io_error("write", &tmp));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let linked = fs::hard_link(&tmp, path);
    let result = match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Another process created the key in the meantime: use theirs.
            let bytes = fs::read(path).map_err(io_error("read", path))?;
            parse_key(path, &bytes)
        }
        // A file system without hard links: a rename is atomic too (but would replace a
        // key another process saved in the meantime).
        Err(_) => fs::rename(&tmp, path)
            .map(|()| key)
            .map_err(io_error("create", path)),
    };
    let _ = fs::remove_file(&tmp);
    if result.is_ok() {
        tracing::info!(path = %path.display(), "generated the local token issuer's key pair");
    }
    result
}

fn create_dir(dir: &Path) -> Result<(), IssuerError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| IssuerError::Io {
        action: "create the directory",
        path: dir.to_owned(),
        source,
    })?;
    // Keeps the private key out of version control even where the project's own
    // .gitignore does not list the directory.
    let _ = fs::write(dir.join(".gitignore"), "*\n");
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "the local token issuer's key file is readable by others; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// The issuer's HTTP endpoints, for the local gateway to mount:
/// `GET` [`JWKS_PATH`], `GET` [`OPENID_CONFIGURATION_PATH`] (its URLs from the request's
/// `Host`) and `POST` [`TOKEN_PATH`].
///
/// `POST /local/token` takes `{"username":"alice","groups":["admin"],"expiresIn":3600}`
/// (`groups` and `expiresIn` optional; other fields are refused, so a `password` is not
/// mistaken for being checked) and answers 200 with a [`TokenResponse`], or 400
/// `{"error":{"code":"invalid_request","message":..}}`; every answer carries
/// `Cache-Control: no-store`. It signs in anyone as anyone: development only.
pub fn routes(issuer: Arc<LocalIssuer>) -> Router {
    Router::new()
        .route(JWKS_PATH, get(jwks_handler))
        .route(OPENID_CONFIGURATION_PATH, get(openid_configuration_handler))
        .route(TOKEN_PATH, post(token_handler))
        .with_state(issuer)
}

async fn jwks_handler(State(issuer): State<Arc<LocalIssuer>>) -> Response {
    axum::Json(issuer.jwks()).into_response()
}

async fn openid_configuration_handler(
    State(issuer): State<Arc<LocalIssuer>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match base_url(&headers, &uri) {
        Some(base) => axum::Json(issuer.openid_configuration(&base)).into_response(),
        None => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a Host header naming this server is required",
        ),
    }
}

/// `http://{Host}` (`https` when `X-Forwarded-Proto` says so), if the host is a plain
/// `host[:port]`.
fn base_url(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let host = match headers.get(header::HOST) {
        Some(value) => value.to_str().ok()?.to_owned(),
        None => uri.authority()?.as_str().to_owned(),
    };
    let plain = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if !plain {
        return None;
    }
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    Some(format!("{scheme}://{host}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenBody {
    username: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

async fn token_handler(State(issuer): State<Arc<LocalIssuer>>, body: Body) -> Response {
    let bytes = match axum::body::to_bytes(body, MAX_TOKEN_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the body is unreadable or larger than {MAX_TOKEN_BODY_BYTES} bytes"),
            );
        }
    };
    let body: TokenBody = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(e) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!(
                    "expected a JSON body {{\"username\":..,\"groups\":[..],\"expiresIn\":..}}: {e}"
                ),
            );
        }
    };
    let request = TokenRequest {
        username: body.username,
        groups: body.groups,
        ttl: body.expires_in.map(Duration::from_secs),
    };
    match issuer.issue(&request) {
        Ok(tokens) => {
            tracing::debug!(username = %request.username, "issued local development tokens");
            no_store(axum::Json(tokens).into_response())
        }
        Err(e) if e.is_invalid_request() => {
            token_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "local token issuer failed");
            token_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

fn token_error(status: StatusCode, code: &str, message: &str) -> Response {
    no_store(error_response(status, code, message))
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
