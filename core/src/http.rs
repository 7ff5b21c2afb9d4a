//! The HTTP API: an axum [`Router`] the app registers with `App::http`,
//! served under [`BASE_PATH`] (`/http`).
//!
//! The app's router declares paths without the prefix (`/me`, `/rooms/{room}/members`);
//! the runtime nests it under `/http` everywhere, because CloudFront forwards `/http/*`
//! unchanged to the HTTP API's `$default` stage:
//!
//! | where | what runs | who checks the token |
//! |---|---|---|
//! | AWS | the `http` Lambda function: HTTP API payload v2 events → `http::Request` → the router (`switchboard_aws::http`) | API Gateway's JWT authorizer; the claims arrive in `requestContext.authorizer.jwt.claims` |
//! | local gateway | the router, on the gateway's own port | the gateway, with the same `JwtVerifier` (`switchboard-aws`) as the `$connect` authorizer |
//!
//! Handlers are plain axum handlers. Switchboard adds extractors:
//!
//! | extractor | gives |
//! |---|---|
//! | [`Identity`] | the caller (`username()`, `claim(..)`); `401` JSON when there is none (`Option<Identity>` never fails) |
//! | [`HttpCtx`] | the connection store and the `@connections` API: `rooms`, `members`, `connections`, `room(r).send(..)`, ... |
//! | [`State<S>`](crate::State) | a value given to `App::state(..)`, by type |
//!
//! Every error leaves as JSON, `{"error":{"code":..,"message":..}}`: a [`WsError`]
//! (also named [`HttpError`]), an unknown path (404), a wrong method (405), a body axum's extractors refuse. Only the
//! gateway's own refusal of a missing or bad token looks like API Gateway's:
//! `401 {"message":"Unauthorized"}`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};

use serde_json::{Map, Value};
use tower::ServiceExt;

pub use axum::{self, Router};

use crate::backend::{ConnectionRecord, ConnectionStore, ConnectionsClient, Member, RoomSummary};
use crate::context::{Outbox, Target};
use crate::extract::State;
use crate::identity::Identity;

use crate::request::Services;
use crate::response::WsError;

/// Where the HTTP API is served, locally and behind CloudFront.
pub const BASE_PATH: &str = "/http";

/// The Lambda handler string (`_HANDLER`) of the HTTP API's function.
pub const ROLE: &str = "http";

/// Error bodies up to this size are rewritten as JSON; larger ones are replaced.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// The error of an HTTP handler: the same type as [`WsError`], kept under this name for
/// HTTP code. It is answered as `{"error":{"code":..,"message":..}}` with its status.
pub type HttpError = WsError;

/// A handler's error as an HTTP response: `{"error":{"code":..,"message":..}}` with its
/// status (500 when the status is not a valid HTTP status). An internal error was logged
/// when it was made.
impl IntoResponse for WsError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        error_response(status, self.code(), self.message())
    }
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The code of an error status without one of ours.
fn status_code_name(status: StatusCode) -> Cow<'static, str> {
    Cow::Borrowed(match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable_entity",
        429 => "too_many_requests",
        500 => "internal",
        501 => "not_implemented",
        503 => "unavailable",
        other => return Cow::Owned(format!("http_{other}")),
    })
}

/// Rewrites every error response that is not JSON yet (axum's own 404, 405 and
/// extractor rejections, an app's plain-text error) as `{"error":{..}}`; the text, if
/// any, becomes the message.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty());
    let message = text.unwrap_or_else(|| match status {
        StatusCode::NOT_FOUND => "no such path".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this path".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    });
    let fresh = error_response(status, &status_code_name(status), &message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let (new_parts, new_body) = fresh.into_parts();
    parts.headers.extend(new_parts.headers);
    Response::from_parts(parts, new_body)
}

async fn not_found(request: Request) -> HttpError {
    HttpError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// The caller, as the runtime established it (never inserted by anything else: the type
/// is private).
#[derive(Clone, Debug)]
struct Caller(Identity);

/// The platform's services, for [`HttpCtx`] and [`State`].
#[derive(Clone)]
struct HttpServices(Arc<Services>);

/// `Identity` in an HTTP handler: the caller API Gateway's JWT authorizer (or the local
/// gateway) vouched for; a request without one is refused with 401 JSON.
impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        caller(parts).ok_or_else(|| {
            HttpError::unauthorized("sign in first: send Authorization: Bearer <id token>")
        })
    }
}

/// `Option<Identity>`: the caller if there is one.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Identity {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Infallible> {
        Ok(caller(parts))
    }
}

fn caller(parts: &Parts) -> Option<Identity> {
    parts
        .extensions
        .get::<Caller>()
        .map(|c| c.0.clone())
        .filter(Identity::is_authenticated)
}

fn services(parts: &Parts) -> Result<Arc<Services>, HttpError> {
    parts
        .extensions
        .get::<HttpServices>()
        .map(|s| Arc::clone(&s.0))
        .ok_or_else(|| {
            HttpError::internal("the HTTP handler runs outside Switchboard's HTTP service")
        })
}

/// `State<S>` in an HTTP handler: the value given to `App::state(..)`; 500 when the app
/// provided none of that type.
impl<S, T> FromRequestParts<T> for State<S>
where
    S: Clone + Send + Sync + 'static,
    T: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &T) -> Result<Self, HttpError> {
        services(parts)?
            .states
            .get::<S>()
            .map(State)
            .ok_or_else(|| {
                HttpError::internal(format!(
                    "no state of type `{}` was provided: add it with App::state",
                    std::any::type_name::<S>()
                ))
            })
    }
}

/// What an HTTP handler can reach of the platform: the connection store (who is
/// connected, rooms and members), sends through `@connections`, application state.
///
/// An axum extractor; it never rejects a request inside Switchboard's HTTP service.
#[derive(Clone)]
pub struct HttpCtx {
    services: Arc<Services>,
    identity: Option<Identity>,
}

impl std::fmt::Debug for HttpCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCtx")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for HttpCtx {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        Ok(Self {
            services: services(parts)?,
            identity: caller(parts),
        })
    }
}

impl HttpCtx {
    /// The caller, if the request carried a valid token.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Application state of type `S`, if the app provided one.
    pub fn state<S: Clone + Send + Sync + 'static>(&self) -> Option<S> {
        self.outbox().state()
    }

    /// The shared operations, from outside any socket: no "me".
    fn outbox(&self) -> Outbox<'_> {
        Outbox::new(&self.services)
    }

    /// The connection store.
    pub fn store(&self) -> &Arc<dyn ConnectionStore> {
        &self.services.store
    }

    /// The `@connections` management API.
    pub fn connections_client(&self) -> &Arc<dyn ConnectionsClient> {
        &self.services.client
    }

    /// Every room with members, and how many connections are in each.
    pub async fn rooms(&self) -> Result<Vec<RoomSummary>, HttpError> {
        self.outbox().rooms().await
    }

    /// The members of a room.
    pub async fn members(&self, room: &str) -> Result<Vec<Member>, HttpError> {
        self.outbox().members(room).await
    }

    /// The rooms one connection is in.
    pub async fn rooms_of(&self, connection_id: &str) -> Result<Vec<String>, HttpError> {
        self.outbox().rooms_of(connection_id).await
    }

    /// Every open connection's record.
    pub async fn connections(&self) -> Result<Vec<ConnectionRecord>, HttpError> {
        self.outbox().connections().await
    }

    /// The open connections of one user.
    pub async fn connections_of(&self, username: &str) -> Result<Vec<ConnectionRecord>, HttpError> {
        self.outbox().connections_of(username).await
    }

    /// Sends to one connection: `.send(&msg).await?`.
    pub fn connection(&self, connection_id: impl Into<String>) -> Target<'_> {
        self.outbox().connection(connection_id)
    }

    /// Sends to every connection of a user.
    pub fn user(&self, username: impl Into<String>) -> Target<'_> {
        self.outbox().user(username)
    }

    /// Sends to every member of a room.
    pub fn room(&self, room: impl Into<String>) -> Target<'_> {
        self.outbox().room(room)
    }

    /// Sends to every open connection.
    pub fn broadcast(&self) -> Target<'_> {
        self.outbox().broadcast()
    }
}

/// The identity API Gateway's HTTP API passes in `requestContext.authorizer`: a JWT
/// authorizer's claims (see [`identity_from_jwt_claims`]), or a Lambda authorizer's
/// context. `None` without either.
pub fn identity_from_authorizer(authorizer: &ApiGatewayRequestAuthorizer) -> Option<Identity> {
    if let Some(jwt) = &authorizer.jwt {
        let identity = identity_from_jwt_claims(&jwt.claims);
        return identity.is_authenticated().then_some(identity);
    }
    if !authorizer.fields.is_empty() {
        let mut identity = Identity::from_authorizer(&authorizer.fields);
        if !identity.is_authenticated() {
            // HTTP API Lambda authorizers (simple responses) give a context without a
            // principal: the context's `sub` or `username` names the caller.
            let principal = ["sub", "username"]
                .iter()
                .find_map(|k| authorizer.fields.get(*k).and_then(Value::as_str))
                .map(str::to_owned)?;
            identity = Identity::new(principal, identity.context().clone());
        }
        return Some(identity);
    }
    None
}

/// The identity of a caller whose JWT API Gateway's JWT authorizer accepted, from the
/// claims as API Gateway passes them (every value a string; arrays as `[a b]`).
///
/// The context has the same keys as the `$connect` authorizer's, so handlers read a
/// caller the same way over WebSocket and HTTP: `username` (`cognito:username`, else
/// `username`, else `sub`), `sub`, `groups` (comma-joined), `tokenUse`, `expiresAt` (a
/// number) and `authMethod` = `jwt`; every other claim keeps its name and string value.
/// The principal is `sub`. Without `sub` the identity is anonymous.
pub fn identity_from_jwt_claims(claims: &HashMap<String, String>) -> Identity {
    let get = |k: &str| claims.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(sub) = get("sub") else {
        return Identity::anonymous();
    };
    let mut context: Map<String, Value> = claims
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let username = get("cognito:username").or(get("username")).unwrap_or(sub);
    context.insert("username".to_owned(), username.into());
    context.insert("sub".to_owned(), sub.into());
    let groups = get("cognito:groups")
        .map(parse_claim_list)
        .unwrap_or_default();
    context.insert("groups".to_owned(), groups.join(",").into());
    match get("token_use") {
        Some(token_use) => context.insert("tokenUse".to_owned(), token_use.into()),
        None => context.remove("tokenUse"),
    };
    match get("exp").and_then(|e| e.parse::<i64>().ok()) {
        Some(exp) => context.insert("expiresAt".to_owned(), exp.into()),
        None => context.remove("expiresAt"),
    };
    context.insert("authMethod".to_owned(), "jwt".into());
    Identity::new(sub, context)
}

/// `[a b c]` (API Gateway's rendering of an array claim), `a,b` or `a`.
fn parse_claim_list(value: &str) -> Vec<String> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A verified token's claims as API Gateway's JWT authorizer passes them on: strings,
/// numbers and booleans as text, arrays as `[a b]`, objects as JSON.
pub fn claims_as_api_gateway(raw: &Map<String, Value>) -> HashMap<String, String> {
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => Some(format!(
                "[{}]",
                items.iter().filter_map(text).collect::<Vec<_>>().join(" ")
            )),
            other => Some(other.to_string()),
        }
    }
    raw.iter()
        .filter_map(|(k, v)| text(v).map(|t| (k.clone(), t)))
        .collect()
}

/// The app's router under `/http`, with JSON errors and the platform's services: the
/// part shared by the Lambda function and the local gateway.
pub fn mount(app_router: Router, services: Arc<Services>) -> Router {
    Router::new()
        .nest(BASE_PATH, app_router)
        .fallback(not_found)
        .layer(middleware::map_response(json_errors))
        .layer(axum::Extension(HttpServices(services)))
}

/// Marks `identity` as the caller of a request: what the [`Identity`] extractor reads.
/// A transport (the Lambda role, the local gateway) sets it after authenticating;
/// an app's own layers cannot forge it, the type being private.
pub fn insert_caller(extensions: &mut http::Extensions, identity: Identity) {
    extensions.insert(Caller(identity));
}

/// Whether `path` is the HTTP API's (`/http` or under `/http/`).
pub fn is_http_path(path: &str) -> bool {
    path.strip_prefix(BASE_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Runs one request through a router.
pub async fn call(router: Router, request: Request) -> Response {
    match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn jwt_claims_become_the_websocket_identity_shape() {
        let id = identity_from_jwt_claims(&claims(&[
            ("sub", "u-1"),
            ("cognito:username", "alice"),
            ("cognito:groups", "[admin users]"),
            ("token_use", "id"),
            ("exp", "1700000000"),
            ("email", "a@example.com"),
        ]));
        assert_eq!(id.principal_id(), Some("u-1"));
        assert_eq!(id.username(), "alice");
        assert_eq!(id.claim("groups"), Some(&json!("admin,users")));
        assert_eq!(id.claim("tokenUse"), Some(&json!("id")));
        assert_eq!(id.claim("expiresAt"), Some(&json!(1_700_000_000_i64)));
        assert_eq!(id.claim("authMethod"), Some(&json!("jwt")));
        assert_eq!(id.claim("email"), Some(&json!("a@example.com")));
    }

    #[test]
    fn access_tokens_and_missing_sub() {
        let id = identity_from_jwt_claims(&claims(&[("sub", "u-2"), ("username", "bob")]));
        assert_eq!(id.username(), "bob");
        assert_eq!(id.claim("groups"), Some(&json!("")));
        assert!(id.claim("expiresAt").is_none());
        let only_sub = identity_from_jwt_claims(&claims(&[("sub", "u-3")]));
        assert_eq!(only_sub.username(), "u-3");
        assert!(!identity_from_jwt_claims(&claims(&[("username", "x")])).is_authenticated());
    }

    #[test]
    fn claim_lists() {
        assert_eq!(parse_claim_list("[a b]"), ["a", "b"]);
        assert_eq!(parse_claim_list("a,b"), ["a", "b"]);
        assert_eq!(parse_claim_list("[]"), Vec::<String>::new());
        assert_eq!(parse_claim_list("solo"), ["solo"]);
    }

    #[test]
    fn local_claims_are_rendered_like_api_gateway() {
        let raw = json!({
            "sub": "u", "exp": 17, "email_verified": true,
            "cognito:groups": ["a", "b"], "nothing": null, "obj": {"k": 1}
        });
        let Value::Object(raw) = raw else {
            panic!("not an object")
        };
        let out = claims_as_api_gateway(&raw);
        assert_eq!(out["exp"], "17");
        assert_eq!(out["email_verified"], "true");
        assert_eq!(out["cognito:groups"], "[a b]");
        assert_eq!(out["obj"], r#"{"k":1}"#);
        assert!(!out.contains_key("nothing"));
    }

    #[test]
    fn lambda_authorizer_context() {
        let mut a = ApiGatewayRequestAuthorizer::default();
        assert!(identity_from_authorizer(&a).is_none());
        a.fields.insert("username".to_owned(), json!("carol"));
        let id = identity_from_authorizer(&a).expect("an identity");
        assert_eq!(id.username(), "carol");
        assert!(id.is_authenticated());
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            status_code_name(StatusCode::METHOD_NOT_ALLOWED),
            "method_not_allowed"
        );
        assert_eq!(status_code_name(StatusCode::IM_A_TEAPOT), "http_418");
        // `HttpError` is `WsError`: the conversion HTTP code used to write still compiles.
        #[allow(clippy::useless_conversion)]
        let e = HttpError::from(WsError::new("not_in_room", "no").with_status(403));
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert_eq!(e.code(), "not_in_room");
    }
}
