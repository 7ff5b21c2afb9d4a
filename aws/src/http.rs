//! The `http` Lambda role: HTTP API (payload v2) events into the app's router
//! ([`switchboard_core::http`]) and its responses back, the caller from the JWT authorizer.
//!
//! The conversion is ours (no `lambda_http`) and never panics:
//!
//! | event | request |
//! |---|---|
//! | `requestContext.http.method` | the method |
//! | `rawPath` (else `requestContext.http.path`) | the path: `.`/`..` segments resolved, characters a URI path cannot hold literally percent-encoded (HTTP APIs deliver `rawPath` decoded), a named stage's prefix dropped before `/http` |
//! | `rawQueryString` | the query, as sent |
//! | `headers`, `cookies` | the headers; the cookies joined with `; ` into one `Cookie` |
//! | `body`, `isBase64Encoded` | the body, decoded from base64 when so marked |
//! | `requestContext` | an [`ApiGatewayV2httpRequestContext`] request extension |
//!
//! An event that forms no request (a path not starting with `/`, a query that is not one,
//! a body that is not base64, a cookie that is not a header value, JSON that is not a
//! payload v2 event) is answered `400 {"error":{"code":"bad_request",..}}`.
//!
//! The response: status; headers (repeated ones joined with `, `, as API Gateway v2
//! expects; `Set-Cookie` values in `cookies`); the body as text when it is UTF-8 and has
//! no `Content-Encoding`, else base64 with `isBase64Encoded: true`.

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body as EventBody;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_ENCODING, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tower::ServiceExt;

use switchboard_core::backend::ConnectionsClient;
use switchboard_core::http::{
    HttpError, identity_from_authorizer, insert_caller, is_http_path, mount,
};
use switchboard_core::origin::OriginSecrets;
use switchboard_core::request::Services;
use switchboard_core::spec::{AppSpec, StartError};

/// The HTTP API as the `http` Lambda function runs it: HTTP API payload v2 events in,
/// payload v2 responses out, the caller from `requestContext.authorizer`.
#[derive(Clone)]
pub struct HttpService {
    router: Router,
    origin: Option<OriginSecrets>,
}

impl std::fmt::Debug for HttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpService").finish_non_exhaustive()
    }
}

impl HttpService {
    /// The app's HTTP API, sending through `client`; `None` when the app has none.
    pub fn for_app(
        app: &AppSpec,
        client: Arc<dyn ConnectionsClient>,
    ) -> Result<Option<Self>, StartError> {
        let Some(router) = &app.http else {
            return Ok(None);
        };
        Ok(Some(Self::new(router.clone(), app.services(client)?)))
    }

    /// The router under `/http` with the caller taken from each event's authorizer.
    pub fn new(app_router: Router, services: Arc<Services>) -> Self {
        Self {
            router: mount(app_router, services).layer(middleware::from_fn(lambda_identity)),
            origin: None,
        }
    }

    /// Refuses every event whose [`ORIGIN`](switchboard_core::names::headers::ORIGIN)
    /// header is not one of `secrets` with `403 {"message":"Forbidden"}`, before the
    /// event is converted or routed; `None`: no check.
    pub fn with_origin(mut self, secrets: Option<OriginSecrets>) -> Self {
        self.origin = secrets;
        self
    }

    /// Handles one event, as the `http` function does for every invocation: converts it
    /// (a `400 bad_request` when it forms no request), routes it, converts the answer;
    /// logs request id, method, path, status and duration (never bodies or tokens).
    pub async fn handle_event(&self, event: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let started = Instant::now();
        let request_id = event.request_context.request_id.clone().unwrap_or_default();
        let method = event.request_context.http.method.clone();
        if let Some(secrets) = &self.origin
            && !secrets.allows(&event.headers)
        {
            tracing::warn!(
                request_id = request_id.as_str(),
                status = 403,
                "refused: no valid origin header (a request around CloudFront)"
            );
            return forbidden();
        }
        let (path, response) = match into_request(event) {
            Ok(request) => {
                let path = request.uri().path().to_owned();
                let response = match self.router.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                (path, response)
            }
            Err(refused) => {
                tracing::warn!(
                    request_id = request_id.as_str(),
                    reason = refused.message,
                    "event forms no request"
                );
                let response = HttpError::bad_request(refused.message).into_response();
                (refused.path, response)
            }
        };
        let answer = into_answer(response).await;
        let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::info!(
            request_id = request_id.as_str(),
            method = %method,
            path,
            status = answer.status_code,
            duration_us,
            "handled"
        );
        answer
    }

    /// Handles one invocation's payload as JSON: [`handle_event`](Self::handle_event) when
    /// it is an HTTP API payload v2 event, else `400 bad_request` (an invalid method or
    /// header value in the event, not an invocation error).
    pub async fn handle_json(&self, event: serde_json::Value) -> ApiGatewayV2httpResponse {
        match serde_json::from_value::<ApiGatewayV2httpRequest>(event) {
            Ok(event) => self.handle_event(event).await,
            Err(e) => {
                // The error's text can quote a header value (a token): only its category.
                tracing::warn!(
                    category = ?e.classify(),
                    status = 400,
                    "the event is not an HTTP API payload v2 event"
                );
                into_answer(
                    HttpError::bad_request("the event is not an HTTP API payload v2 event")
                        .into_response(),
                )
                .await
            }
        }
    }
}

/// Why an event forms no request, and the path to log.
#[derive(Debug)]
struct Refused {
    path: String,
    message: &'static str,
}

/// The request an HTTP API payload v2 event describes.
/// API Gateway's own refusal, `403 {"message":"Forbidden"}`.
fn forbidden() -> ApiGatewayV2httpResponse {
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = 403;
    if let Ok(v) = HeaderValue::from_str("application/json") {
        answer.headers.insert(axum::http::header::CONTENT_TYPE, v);
    }
    answer.body = Some(EventBody::Text(r#"{"message":"Forbidden"}"#.to_owned()));
    answer.is_base64_encoded = false;
    answer
}

fn into_request(event: ApiGatewayV2httpRequest) -> Result<Request, Refused> {
    let context = event.request_context;
    let raw_path = event
        .raw_path
        .filter(|p| !p.is_empty())
        .or_else(|| context.http.path.clone().filter(|p| !p.is_empty()))
        .unwrap_or_else(|| "/".to_owned());
    let refuse = |message| Refused {
        path: raw_path.clone(),
        message,
    };
    let mut target =
        request_path(&raw_path, context.stage.as_deref()).ok_or_else(|| refuse(BAD_PATH))?;
    if let Some(query) = event.raw_query_string.filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(&query);
    }
    let uri = Uri::try_from(target).map_err(|_| refuse(BAD_URI))?;
    let body = match event.body {
        None => Body::empty(),
        Some(body) if event.is_base64_encoded => {
            Body::from(STANDARD.decode(body).map_err(|_| refuse(BAD_BASE64))?)
        }
        Some(body) => Body::from(body),
    };
    let mut headers = event.headers;
    if let Some(cookies) = event.cookies.filter(|c| !c.is_empty()) {
        let value = HeaderValue::from_str(&cookies.join("; ")).map_err(|_| refuse(BAD_COOKIE))?;
        headers.insert(COOKIE, value);
    }
    let mut request = Request::new(body);
    *request.method_mut() = context.http.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    request.extensions_mut().insert(context);
    Ok(request)
}

const BAD_PATH: &str = "the path does not start with /";
const BAD_URI: &str = "the path and query string do not form a URI";
const BAD_BASE64: &str = "the body is marked base64-encoded but is not base64";
const BAD_COOKIE: &str = "a cookie is not a valid header value";

/// The path the router sees: `.`/`..` segments resolved, every byte a URI path cannot
/// hold literally percent-encoded, and a named stage's prefix dropped when the rest is
/// under `/http` (CloudFront forwards `/http/*` to `$default`; a named stage's URL is
/// `/{stage}/http/..`). `None` when `raw` does not start with `/`.
fn request_path(raw: &str, stage: Option<&str>) -> Option<String> {
    let rest = raw.strip_prefix('/')?;
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = rest.split('/').peekable();
    while let Some(segment) = parts.next() {
        let last = parts.peek().is_none();
        if is_single_dot(segment) || is_double_dot(segment) {
            if is_double_dot(segment) {
                segments.pop();
            }
            if last {
                segments.push("");
            }
        } else {
            segments.push(segment);
        }
    }
    let mut path = String::with_capacity(raw.len() + 8);
    for segment in segments {
        path.push('/');
        percent_encode_into(&mut path, segment);
    }
    if path.is_empty() {
        path.push('/');
    }
    Some(strip_stage(path, stage))
}

fn is_single_dot(segment: &str) -> bool {
    segment == "." || segment.eq_ignore_ascii_case("%2e")
}

fn is_double_dot(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    matches!(lower.as_str(), ".." | ".%2e" | "%2e." | "%2e%2e")
}

/// Appends `segment`, percent-encoding every byte outside RFC 3986's `pchar` (a `%`
/// stays as it is: an escape the client sent is kept).
fn percent_encode_into(out: &mut String, segment: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in segment.bytes() {
        let literal = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'%'
            );
        if literal {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
    }
}

/// Drops a named stage's prefix (`/dev/http/me` → `/http/me`); the routes live under
/// `/http` whatever the stage, as CloudFront forwards them to `$default`.
fn strip_stage(path: String, stage: Option<&str>) -> String {
    let Some(stage) = stage.filter(|s| *s != "$default" && !s.is_empty()) else {
        return path;
    };
    match path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage))
        .filter(|rest| is_http_path(rest))
    {
        Some(rest) => rest.to_owned(),
        None => path,
    }
}

/// The payload v2 answer for a response.
async fn into_answer(response: Response) -> ApiGatewayV2httpResponse {
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let (fresh, body) = HttpError::internal(format!("reading the response body: {e}"))
                .into_response()
                .into_parts();
            parts = fresh;
            axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default()
        }
    };
    let mut headers = HeaderMap::with_capacity(parts.headers.keys_len());
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let values = parts.headers.get_all(name);
        if name == SET_COOKIE {
            cookies.extend(
                values
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            );
            continue;
        }
        let mut iter = values.iter();
        let (Some(first), None) = (iter.next(), iter.next()) else {
            // API Gateway v2 takes one value per name: repeated headers comma-joined.
            let joined = values
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&joined) {
                headers.insert(name.clone(), value);
            }
            continue;
        };
        match first.to_str() {
            Ok(_) => {
                headers.insert(name.clone(), first.clone());
            }
            // The answer is JSON: a value that is not UTF-8 could not be serialised.
            Err(_) => {
                if let Ok(value) = HeaderValue::from_str(&String::from_utf8_lossy(first.as_bytes()))
                {
                    headers.insert(name.clone(), value);
                }
            }
        }
    }
    let compressed = parts.headers.contains_key(CONTENT_ENCODING);
    let (body, is_base64_encoded) = match std::str::from_utf8(&bytes) {
        Ok(text) if !compressed => (EventBody::Text(text.to_owned()), false),
        _ => (EventBody::Binary(bytes.to_vec()), true),
    };
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = i64::from(parts.status.as_u16());
    answer.headers = headers;
    answer.multi_value_headers = HeaderMap::new();
    answer.body = Some(body);
    answer.is_base64_encoded = is_base64_encoded;
    answer.cookies = cookies;
    answer
}

/// In Lambda: the caller from the event's `requestContext.authorizer`.
async fn lambda_identity(mut request: Request, next: Next) -> Response {
    let identity = request
        .extensions()
        .get::<ApiGatewayV2httpRequestContext>()
        .and_then(|rc| rc.authorizer.as_ref())
        .and_then(identity_from_authorizer);
    if let Some(identity) = identity {
        insert_caller(request.extensions_mut(), identity);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::body::Bytes;
    use axum::extract::Query;
    use axum::http::{Method, StatusCode, header};
    use axum::response::AppendHeaders;
    use axum::routing::{any, get};
    use serde_json::{Value, json};
    use switchboard_core::identity::Identity;

    use crate::AwsSettings;
    use crate::connections::ManagementApi;

    async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> axum::Json<Value> {
        axum::Json(json!({
            "method": method.as_str(),
            "path": uri.path(),
            "query": uri.query(),
            "cookie": headers.get(COOKIE).and_then(|v| v.to_str().ok()),
            "host": headers.get(header::HOST).and_then(|v| v.to_str().ok()),
            "body": String::from_utf8_lossy(&body),
            "bodyLen": body.len(),
        }))
    }

    fn service() -> HttpService {
        let router = Router::new()
            .route("/echo", any(echo))
            .route("/echo/{*rest}", any(echo))
            .route(
                "/pairs",
                get(|Query(pairs): Query<Vec<(String, String)>>| async move {
                    axum::Json(json!(pairs))
                }),
            )
            .route(
                "/me",
                get(|who: Identity| async move { who.username().to_owned() }),
            )
            .route(
                "/cookies",
                get(|| async {
                    (
                        AppendHeaders([
                            (SET_COOKIE, "a=1; Path=/; HttpOnly"),
                            (SET_COOKIE, "b=2"),
                            (header::CONTENT_TYPE, "text/plain"),
                        ]),
                        "set",
                    )
                }),
            )
            .route(
                "/binary",
                get(|| async { ([(header::CONTENT_TYPE, "image/png")], vec![0xFF_u8, 0x00]) }),
            )
            .route(
                "/gzip",
                get(|| async {
                    (
                        [
                            (CONTENT_ENCODING, "gzip"),
                            (header::CONTENT_TYPE, "application/json"),
                        ],
                        "abc",
                    )
                }),
            )
            .route(
                "/multi",
                get(|| async {
                    let mut headers = HeaderMap::new();
                    headers.append(header::VARY, HeaderValue::from_static("origin"));
                    headers.append(header::VARY, HeaderValue::from_static("accept"));
                    headers.append(
                        "x-raw",
                        HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a value"),
                    );
                    (headers, "ok")
                }),
            )
            .route("/empty", get(|| async { StatusCode::NO_CONTENT }));
        let spec = AppSpec {
            defs: Some(Vec::new()),
            http: Some(router),
            ..AppSpec::default()
        };
        let api = ManagementApi::new(
            &AwsSettings::local("http://127.0.0.1:9"),
            "http://127.0.0.1:9/ws",
        );
        HttpService::for_app(&spec, Arc::new(api))
            .unwrap()
            .expect("an HTTP API")
    }

    fn event(method: &str, raw_path: &str, stage: &str) -> Value {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": "",
            "headers": {"host": "a1b2c3.execute-api.eu-west-1.amazonaws.com", "x-forwarded-proto": "https"},
            "requestContext": {
                "stage": stage,
                "requestId": "r-1",
                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1"},
            },
            "isBase64Encoded": false,
        })
    }

    async fn call(event: Value) -> ApiGatewayV2httpResponse {
        service().handle_json(event).await
    }

    fn text(answer: &ApiGatewayV2httpResponse) -> &str {
        assert!(!answer.is_base64_encoded, "{answer:?}");
        match &answer.body {
            Some(EventBody::Text(t)) => t,
            other => panic!("not a text body: {other:?}"),
        }
    }

    fn json_body(answer: &ApiGatewayV2httpResponse) -> Value {
        serde_json::from_str(text(answer)).unwrap()
    }

    /// The answer is `400 {"error":{"code":"bad_request",..}}` as JSON.
    fn assert_bad_request(answer: &ApiGatewayV2httpResponse) {
        assert_eq!(answer.status_code, 400, "{answer:?}");
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
        let body = json_body(answer);
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    #[tokio::test]
    async fn a_named_stage_is_stripped_before_http() {
        for (raw, stage, path) in [
            ("/dev/http/echo", "dev", "/echo"),
            ("/dev/http/echo/x", "dev", "/echo/x"),
            // Through CloudFront: no stage in the path.
            ("/http/echo", "dev", "/echo"),
            ("/http/echo", "$default", "/echo"),
            ("/http/echo", "", "/echo"),
        ] {
            let answer = call(event("GET", raw, stage)).await;
            assert_eq!(answer.status_code, 200, "{raw} {stage}: {answer:?}");
            assert_eq!(json_body(&answer)["path"], path, "{raw} {stage}");
        }
        // Not stripped: another stage, `$default`, a stage-like prefix, outside `/http`.
        for (raw, stage, seen) in [
            ("/dev/http/echo", "$default", "/dev/http/echo"),
            ("/dev/http/echo", "prod", "/dev/http/echo"),
            ("/devx/http/echo", "dev", "/devx/http/echo"),
            ("/dev/httpx", "dev", "/dev/httpx"),
            ("/dev/other", "dev", "/dev/other"),
        ] {
            let answer = call(event("GET", raw, stage)).await;
            assert_eq!(answer.status_code, 404, "{raw} {stage}: {answer:?}");
            let body = json_body(&answer);
            assert_eq!(body["error"]["message"], format!("no route for GET {seen}"));
        }
        assert_eq!(strip_stage("/dev/http".into(), Some("dev")), "/http");
    }

    #[tokio::test]
    async fn rawpath_falls_back_to_the_context_path() {
        let mut e = event("GET", "/http/echo/ctx", "$default");
        e["rawPath"] = Value::Null;
        let answer = call(e).await;
        assert_eq!(json_body(&answer)["path"], "/echo/ctx");
    }

    #[test]
    fn paths_are_normalised_like_a_url_parser() {
        for (raw, path) in [
            ("/", "/"),
            ("/http/me", "/http/me"),
            ("/http/a b", "/http/a%20b"),
            ("/http/é", "/http/%C3%A9"),
            ("/http/a?b#c", "/http/a%3Fb%23c"),
            ("/http/a%20b", "/http/a%20b"),
            ("/http/./me", "/http/me"),
            ("/http/x/../me", "/http/me"),
            ("/http/x/%2E%2e/me", "/http/me"),
            ("/http/me/..", "/http/"),
            ("/../..", "/"),
            ("/http//me", "/http//me"),
            ("/http/{x}|\"<>\\^`", "/http/%7Bx%7D%7C%22%3C%3E%5C%5E%60"),
        ] {
            assert_eq!(request_path(raw, None).as_deref(), Some(path), "{raw}");
        }
        // Every ASCII byte leaves a path that forms a URI.
        for byte in 0_u8..=127 {
            let raw = format!("/http/a{}b", char::from(byte));
            let path = request_path(&raw, None).unwrap();
            assert!(Uri::try_from(path.as_str()).is_ok(), "{byte}: {path}");
        }
    }

    #[tokio::test]
    async fn a_path_that_is_not_a_uri_path_is_refused() {
        for raw in ["http/echo", "echo", "*"] {
            assert_bad_request(&call(event("GET", raw, "$default")).await);
        }
        // A query string that is not one (API Gateway sends it percent-encoded).
        let mut e = event("GET", "/http/echo", "$default");
        e["rawQueryString"] = json!("a=b c");
        assert_bad_request(&call(e).await);
        // A path longer than a URI may be.
        let long = format!("/http/{}", "a".repeat(70_000));
        assert_bad_request(&call(event("GET", &long, "$default")).await);
        // Characters a path cannot hold are encoded, not refused.
        let answer = call(event("GET", "/http/echo/a b", "$default")).await;
        assert_eq!(json_body(&answer)["path"], "/echo/a%20b");
    }

    #[tokio::test]
    async fn cookies_both_ways() {
        let mut e = event("GET", "/http/echo", "$default");
        e["cookies"] = json!(["a=1", "b=2"]);
        assert_eq!(json_body(&call(e).await)["cookie"], "a=1; b=2");
        // No cookies, no Cookie header.
        let mut e = event("GET", "/http/echo", "$default");
        e["cookies"] = json!([]);
        assert_eq!(json_body(&call(e).await)["cookie"], Value::Null);

        let answer = call(event("GET", "/http/cookies", "$default")).await;
        assert_eq!(answer.cookies, ["a=1; Path=/; HttpOnly", "b=2"]);
        assert!(!answer.headers.contains_key(SET_COOKIE));
        assert_eq!(text(&answer), "set");
        let wire = serde_json::to_value(&answer).unwrap();
        assert_eq!(wire["cookies"], json!(["a=1; Path=/; HttpOnly", "b=2"]));
    }

    #[tokio::test]
    async fn a_cookie_that_is_no_header_value_is_refused() {
        let mut e = event("GET", "/http/echo", "$default");
        e["cookies"] = json!(["a=1", "b=\u{1}"]);
        assert_bad_request(&call(e).await);
        // A header value with a control character: not a payload v2 event.
        let mut e = event("GET", "/http/echo", "$default");
        e["headers"]["x-bad"] = json!("a\nb");
        assert_bad_request(&call(e).await);
    }

    #[tokio::test]
    async fn a_method_that_is_not_one_is_refused() {
        for method in ["GE T", "GET\n", "(x)"] {
            assert_bad_request(&call(event(method, "/http/echo", "$default")).await);
        }
        // An extension method is a method.
        let answer = call(event("PURGE", "/http/echo", "$default")).await;
        assert_eq!(json_body(&answer)["method"], "PURGE");
        // JSON that is no event at all.
        assert_bad_request(&call(json!({"hello": "world"})).await);
        assert_bad_request(&call(json!([1, 2])).await);
    }

    #[tokio::test]
    async fn base64_bodies_both_ways() {
        let mut e = event("POST", "/http/echo", "$default");
        e["body"] = json!("aGVsbG8gd29ybGQ=");
        e["isBase64Encoded"] = json!(true);
        let body = json_body(&call(e).await);
        assert_eq!(body["body"], "hello world");
        assert_eq!(body["bodyLen"], 11);
        // Not marked: taken as text.
        let mut e = event("POST", "/http/echo", "$default");
        e["body"] = json!("aGVsbG8gd29ybGQ=");
        assert_eq!(json_body(&call(e).await)["body"], "aGVsbG8gd29ybGQ=");
        // Marked but not base64.
        let mut e = event("POST", "/http/echo", "$default");
        e["body"] = json!("not base64!");
        e["isBase64Encoded"] = json!(true);
        assert_bad_request(&call(e).await);

        // Binary out: base64.
        let answer = call(event("GET", "/http/binary", "$default")).await;
        assert!(answer.is_base64_encoded);
        assert_eq!(answer.headers[header::CONTENT_TYPE], "image/png");
        let wire = serde_json::to_value(&answer).unwrap();
        assert_eq!(wire["body"], "/wA=");
        assert_eq!(wire["isBase64Encoded"], true);
        // Compressed out: base64 even when the bytes are UTF-8.
        let answer = call(event("GET", "/http/gzip", "$default")).await;
        assert!(answer.is_base64_encoded);
        assert_eq!(serde_json::to_value(&answer).unwrap()["body"], "YWJj");
    }

    #[tokio::test]
    async fn multi_value_query_strings_reach_the_handler_as_sent() {
        let mut e = event("GET", "/http/echo", "$default");
        e["rawQueryString"] = json!("a=1&a=2&b=x%20y");
        e["queryStringParameters"] = json!({"a": "1,2", "b": "x y"});
        assert_eq!(
            json_body(&call(e.clone()).await)["query"],
            "a=1&a=2&b=x%20y"
        );
        e["rawPath"] = json!("/http/pairs");
        assert_eq!(
            json_body(&call(e).await),
            json!([["a", "1"], ["a", "2"], ["b", "x y"]])
        );
        // An empty query string is no query.
        assert_eq!(
            json_body(&call(event("GET", "/http/echo", "$default")).await)["query"],
            Value::Null
        );
    }

    #[tokio::test]
    async fn empty_bodies_both_ways() {
        let mut e = event("POST", "/http/echo", "$default");
        e["body"] = json!("");
        let body = json_body(&call(e).await);
        assert_eq!(body["bodyLen"], 0);
        let body = json_body(&call(event("POST", "/http/echo", "$default")).await);
        assert_eq!(body["bodyLen"], 0);
        let mut e = event("POST", "/http/echo", "$default");
        e["body"] = json!("");
        e["isBase64Encoded"] = json!(true);
        assert_eq!(json_body(&call(e).await)["bodyLen"], 0);

        let answer = call(event("GET", "/http/empty", "$default")).await;
        assert_eq!(answer.status_code, 204);
        assert_eq!(text(&answer), "");
    }

    #[tokio::test]
    async fn the_answer_has_lambda_https_shape() {
        let answer = call(event("GET", "/http/echo", "$default")).await;
        let wire = serde_json::to_value(&answer).unwrap();
        let mut keys: Vec<&str> = wire
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "body",
                "cookies",
                "headers",
                "isBase64Encoded",
                "multiValueHeaders",
                "statusCode"
            ]
        );
        assert_eq!(wire["statusCode"], 200);
        // axum sets Content-Length for bodies of known size; kept, as lambda_http did.
        let length = wire["body"].as_str().unwrap().len().to_string();
        assert_eq!(
            wire["headers"],
            json!({"content-type": "application/json", "content-length": length})
        );
        assert_eq!(wire["multiValueHeaders"], json!({}));
        assert_eq!(wire["cookies"], json!([]));
        assert_eq!(wire["isBase64Encoded"], false);
        let body: Value = serde_json::from_str(wire["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["method"], "GET");
        assert_eq!(body["host"], "a1b2c3.execute-api.eu-west-1.amazonaws.com");
    }

    #[tokio::test]
    async fn repeated_headers_are_joined_and_values_kept_utf8() {
        let answer = call(event("GET", "/http/multi", "$default")).await;
        assert_eq!(answer.headers[header::VARY], "origin, accept");
        assert_eq!(answer.headers["x-raw"], "caf\u{FFFD}");
        let wire = serde_json::to_value(&answer).unwrap();
        assert_eq!(wire["headers"]["vary"], "origin, accept");
    }

    #[tokio::test]
    async fn the_caller_comes_from_the_jwt_authorizer() {
        let mut e = event("GET", "/http/me", "$default");
        let answer = call(e.clone()).await;
        assert_eq!(answer.status_code, 401);
        assert_eq!(json_body(&answer)["error"]["code"], "unauthorized");
        e["requestContext"]["authorizer"] =
            json!({"jwt": {"claims": {"sub": "u-1", "cognito:username": "alice"}, "scopes": null}});
        let answer = call(e).await;
        assert_eq!(answer.status_code, 200);
        assert_eq!(text(&answer), "alice");
    }
}
