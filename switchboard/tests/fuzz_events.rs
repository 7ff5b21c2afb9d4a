//! Fuzz target: the Lambda entry points' events, as `lambda_runtime` deserialises them
//! and as switchboard then handles them.
//!
//! For each event type — API Gateway WebSocket (`ws:<route>`), REQUEST authorizer
//! (`ws:authorizer`), SQS (`queue:<name>`), HTTP API v2 (`http`) and Cognito pre-sign-up
//! (`cognito:pre-signup`) — arbitrary bytes, byte-mutated fixtures and structurally
//! edited fixtures (values of every type replaced, keys removed or added) are parsed with
//! the same types the runtime uses; whatever parses is handled by the same code as in
//! Lambda. Properties: parsing errors instead of panicking; handling never panics and
//! answers within API Gateway's contract (statuses 100-599, never a server error for a
//! malformed event, an authorizer never allows what it should not, SQS failures name only
//! messages of the batch).
//!
//! Fixtures: `tests/fixtures/*.json` (WebSocket), `../tests/fixtures/http/*.json` (HTTP
//! API v2), `tests/fuzz_corpus/events/*` (the rest, and inputs kept from fuzzing; the
//! file name's prefix says the type). Long run: `SWITCHBOARD_FUZZ_CASES=100000 cargo test
//! -p switchboard --test fuzz_events`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use switchboard_testing::fuzz as fuzz_support;
use switchboard_testing::tokens::verifier;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse, ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::cognito::CognitoEventUserPoolsPreSignup;
use aws_lambda_events::encodings::Body as EventBody;
use aws_lambda_events::sqs::SqsEvent;
use axum::Router;
use axum::routing::get;
use lambda_runtime::{Context, LambdaEvent};
use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard::App;
use switchboard::auth::{self, AuthError, Authorizer, Decision, DevAuthorizer};
use switchboard::aws::http::HttpService;
use switchboard::aws::jwt::{JwtAuthorizer, TokenUse};
use switchboard::backend::{ConnectionInfo, ConnectionsClient, PostError};
use switchboard::consumer::{BoxedConsumer, erase_consumer, handle_sqs_event, records_of};
use switchboard::dispatch::Dispatcher;
use switchboard::prelude::*;

/// Echoes its payload: a route for mutated message events to reach.
#[ws_route("echo")]
async fn echo(Json(v): Json<Value>) -> Json<Value> {
    Json(v)
}

/// The event types, by fixture-name prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ws,
    Authorizer,
    Sqs,
    Http,
    Cognito,
}

const KINDS: [Kind; 5] = [
    Kind::Ws,
    Kind::Authorizer,
    Kind::Sqs,
    Kind::Http,
    Kind::Cognito,
];

fn kind_of(name: &str) -> Option<Kind> {
    [
        ("ws-", Kind::Ws),
        ("authorizer-", Kind::Authorizer),
        ("sqs-", Kind::Sqs),
        ("http-", Kind::Http),
        ("cognito-", Kind::Cognito),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| name.starts_with(prefix).then_some(kind))
}

/// Every fixture, with its type.
fn fixtures() -> &'static [(Kind, String, Vec<u8>)] {
    static FIXTURES: OnceLock<Vec<(Kind, String, Vec<u8>)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let mut out = Vec::new();
        let root = env!("CARGO_MANIFEST_DIR");
        for name in ["connect.json", "message.json", "disconnect.json"] {
            let bytes = std::fs::read(format!("{root}/tests/fixtures/{name}")).unwrap();
            out.push((Kind::Ws, name.to_owned(), bytes));
        }
        for entry in std::fs::read_dir(format!("{root}/../tests/fixtures/http")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push((Kind::Http, name, std::fs::read(&path).unwrap()));
        }
        for (name, bytes) in fuzz_support::corpus(env!("CARGO_MANIFEST_DIR"), "events") {
            if let Some(kind) = kind_of(&name) {
                out.push((kind, name, bytes));
            }
        }
        for kind in KINDS {
            assert!(
                out.iter().any(|(k, _, _)| *k == kind),
                "no fixture of {kind:?}"
            );
        }
        out
    })
}

/// A `@connections` client that accepts posts to anyone and knows no connection.
struct Sink;

#[async_trait]
impl ConnectionsClient for Sink {
    async fn post(&self, _id: &str, _frame: &Frame) -> Result<(), PostError> {
        Ok(())
    }
    async fn get(&self, id: &str) -> Result<ConnectionInfo, PostError> {
        Err(PostError::Gone(id.to_owned()))
    }
    async fn delete(&self, _id: &str) -> Result<(), PostError> {
        Ok(())
    }
}

async fn me(who: Identity) -> axum::Json<Value> {
    axum::Json(json!({ "username": who.username() }))
}

struct Subjects {
    dispatcher: Dispatcher,
    http: HttpService,
    jwt: JwtAuthorizer,
    consumer: BoxedConsumer,
}

fn subjects() -> &'static Subjects {
    static SUBJECTS: OnceLock<Subjects> = OnceLock::new();
    SUBJECTS.get_or_init(|| {
        let app = App::new().http(Router::new().route("/me", get(me)));
        let client: Arc<dyn ConnectionsClient> = Arc::new(Sink);
        Subjects {
            dispatcher: app.dispatcher(Arc::clone(&client)).unwrap(),
            http: app.http_service(client).unwrap().unwrap(),
            jwt: JwtAuthorizer::new(Arc::new(verifier(TokenUse::Id))),
            consumer: erase_consumer(|_message: Message<Value>| async {}),
        }
    })
}

/// Checks the `http` function's answer to a payload: it answers (never panics, never an
/// invocation error) within API Gateway's contract, serialisable as the Runtime API
/// needs, text unless marked base64; a payload that is no HTTP API v2 event is a 400.
async fn check_http_answer(payload: Value) -> Result<ApiGatewayV2httpResponse, TestCaseError> {
    let s = subjects();
    let is_event = serde_json::from_value::<ApiGatewayV2httpRequest>(payload.clone()).is_ok();
    let answer = s.http.handle_json(payload).await;
    let status = answer.status_code;
    prop_assert!((100..=599).contains(&status), "status {status}");
    prop_assert!(
        status < 500,
        "HTTP API answered {status} to a malformed event"
    );
    prop_assert!(is_event || status == 400, "{status} to a non-event");
    prop_assert!(serde_json::to_vec(&answer).is_ok(), "{answer:?}");
    prop_assert!(
        answer.is_base64_encoded || matches!(answer.body, Some(EventBody::Text(_))),
        "{answer:?}"
    );
    prop_assert!(!answer.headers.contains_key("set-cookie"));
    Ok(answer)
}

/// The error code of a JSON answer.
fn error_code(answer: &ApiGatewayV2httpResponse) -> Option<String> {
    let Some(EventBody::Text(text)) = &answer.body else {
        return None;
    };
    let body: Value = serde_json::from_str(text).ok()?;
    body["error"]["code"].as_str().map(str::to_owned)
}

fn fresh_dispatcher() -> Dispatcher {
    App::new().dispatcher(Arc::new(Sink)).unwrap()
}

/// Parses `bytes` as `kind` (exactly as the Lambda runtime does) and, if it parses,
/// handles it and checks the answer.
fn check(kind: Kind, bytes: &[u8]) -> Result<(), TestCaseError> {
    let s = subjects();
    fuzz_support::runtime().block_on(async {
        match kind {
            Kind::Ws => {
                let Ok(event) = serde_json::from_slice::<ApiGatewayWebsocketProxyRequest>(bytes)
                else {
                    return Ok(());
                };
                // A fresh store per event: the store refuses a second `$connect` of one
                // connection id (a conflict, 500), which API Gateway never sends.
                let outcome = fresh_dispatcher().dispatch(event).await;
                prop_assert!(
                    (100..=599).contains(&outcome.status),
                    "status {}",
                    outcome.status
                );
                prop_assert!(
                    outcome.status < 500,
                    "a malformed event is the caller's error, not ours: {:?}",
                    outcome
                );
            }
            Kind::Authorizer => {
                let Ok(request) =
                    serde_json::from_slice::<ApiGatewayCustomAuthorizerRequestTypeRequest>(bytes)
                else {
                    return Ok(());
                };
                let arn = request.method_arn.clone().unwrap_or_default();
                let user = request
                    .query_string_parameters
                    .first("user")
                    .map(str::to_owned);
                match DevAuthorizer.authorize(&request).await {
                    Ok(response) => {
                        if let Decision::Allow(identity) = auth::evaluate(&response, &arn) {
                            let user = user.unwrap_or_default();
                            prop_assert!(auth::valid_username(&user), "allowed {user:?}");
                            prop_assert_eq!(identity.username(), user.as_str());
                        }
                    }
                    Err(AuthError::Unauthorized(_)) => prop_assert!(user.is_none()),
                    Err(e @ AuthError::Failed(_)) => {
                        prop_assert!(false, "dev authorizer failed: {e}")
                    }
                }
                // No input here carries a token signed by the key: never allowed.
                match s.jwt.authorize(&request).await {
                    Ok(response) => prop_assert!(
                        !matches!(auth::evaluate(&response, &arn), Decision::Allow(_)),
                        "JWT authorizer allowed {:?}",
                        response
                    ),
                    Err(AuthError::Unauthorized(_)) => {}
                    Err(e @ AuthError::Failed(_)) => {
                        prop_assert!(false, "JWT authorizer failed: {e}")
                    }
                }
                let event = LambdaEvent::new(request, Context::default());
                let _ = switchboard::aws::lambda::handle_authorizer(&DevAuthorizer, event).await;
            }
            Kind::Sqs => {
                let Ok(event) = serde_json::from_slice::<SqsEvent>(bytes) else {
                    return Ok(());
                };
                let records = records_of(&event);
                prop_assert_eq!(records.len(), event.records.len());
                let response =
                    handle_sqs_event(&s.consumer, s.dispatcher.services(), "audit", &event).await;
                let ids: HashSet<&str> = records.iter().map(|r| r.message_id.as_str()).collect();
                let failed: HashSet<&str> = response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.as_str())
                    .collect();
                prop_assert!(
                    failed.is_subset(&ids),
                    "failures {:?} not in {:?}",
                    failed,
                    ids
                );
                for record in &records {
                    if switchboard::queue::envelope::parse(&record.body).is_err() {
                        prop_assert!(failed.contains(record.message_id.as_str()));
                    }
                }
            }
            Kind::Http => {
                // The `http` function takes the payload as JSON; the runtime refuses
                // anything else before our code.
                let Ok(payload) = serde_json::from_slice::<Value>(bytes) else {
                    return Ok(());
                };
                check_http_answer(payload).await?;
            }
            Kind::Cognito => {
                let Ok(event) = serde_json::from_slice::<CognitoEventUserPoolsPreSignup>(bytes)
                else {
                    return Ok(());
                };
                // Verified when there is an email (or when the event already said so).
                let verify_email = event.request.user_attributes.contains_key("email")
                    || event.response.auto_verify_email;
                let answered = switchboard::aws::lambda::pre_signup(true, event);
                prop_assert!(answered.response.auto_confirm_user);
                prop_assert_eq!(answered.response.auto_verify_email, verify_email);
                prop_assert!(serde_json::to_vec(&answered).is_ok());
            }
        }
        Ok(())
    })
}

/// A fixture: the type first (each equally likely), then one of its fixtures.
fn fixture() -> impl Strategy<Value = (Kind, Vec<u8>)> {
    (prop::sample::select(KINDS.to_vec()), any::<usize>()).prop_map(|(kind, i)| {
        let of_kind: Vec<&(Kind, String, Vec<u8>)> =
            fixtures().iter().filter(|(k, _, _)| *k == kind).collect();
        (kind, of_kind[i % of_kind.len()].2.clone())
    })
}

proptest! {
    #![proptest_config(fuzz_support::config(2000, "tests/fuzz_corpus/events.proptest-regressions"))]

    #[test]
    fn arbitrary_bytes(
        kind in prop::sample::select(KINDS.to_vec()),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        check(kind, &bytes)?;
    }

    #[test]
    fn byte_mutated_fixtures(
        (kind, bytes) in fixture(),
        mutations in prop::collection::vec(fuzz_support::mutation(), 1..8),
    ) {
        check(kind, &fuzz_support::mutate(&bytes, &mutations))?;
    }

    #[test]
    fn edited_fixtures(
        (kind, bytes) in fixture(),
        edits in prop::collection::vec(fuzz_support::edit(), 1..6),
    ) {
        let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
        fuzz_support::apply_edits(&mut doc, &edits);
        check(kind, &serde_json::to_vec(&doc).unwrap())?;
    }
}

/// A string that is often close to what API Gateway sends: a known prefix and/or
/// arbitrary characters.
fn near(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(known.to_vec()),
        any::<String>(),
        0..3_u8,
    )
        .prop_map(|(known, junk, how)| match how {
            0 => known.to_owned(),
            1 => format!("{known}{junk}"),
            _ => junk,
        })
}

/// The parts of an HTTP API v2 event the conversion reads, varied one by one.
#[derive(Clone, Debug)]
struct HttpParts {
    method: String,
    raw_path: Option<String>,
    context_path: Option<String>,
    stage: String,
    query: Option<String>,
    cookies: Option<Vec<String>>,
    body: Option<(Vec<u8>, String, u8)>,
    signed_in: bool,
}

fn http_parts() -> impl Strategy<Value = HttpParts> {
    (
        near(&["GET", "POST", "DELETE", "PURGE", "", "GE T", "get"]),
        prop::option::of(near(&[
            "/http/me",
            "/dev/http/me",
            "/http/",
            "/",
            "http/me",
            "",
        ])),
        prop::option::of(near(&["/http/me", "/dev/http/me"])),
        near(&["$default", "dev", "", "http"]),
        prop::option::of(near(&["", "a=1&a=2", "b=x%20y&c", "%zz"])),
        prop::option::of(prop::collection::vec(near(&["a=1", "b=2; c=3", ""]), 0..3)),
        prop::option::of((
            prop::collection::vec(any::<u8>(), 0..24),
            any::<String>(),
            0..3_u8,
        )),
        any::<bool>(),
    )
        .prop_map(
            |(method, raw_path, context_path, stage, query, cookies, body, signed_in)| HttpParts {
                method,
                raw_path,
                context_path,
                stage,
                query,
                cookies,
                body,
                signed_in,
            },
        )
}

impl HttpParts {
    /// The event, and whether it forms a request (the property's oracle, written apart
    /// from the conversion).
    fn event(&self) -> (Value, bool) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "headers": {"host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"},
            "requestContext": {
                "stage": self.stage,
                "requestId": "fuzz",
                "http": {"method": self.method, "path": self.context_path},
            },
        });
        let mut forms = self.method.is_empty() || self.method.parse::<http::Method>().is_ok();
        if let Some(raw) = &self.raw_path {
            event["rawPath"] = json!(raw);
        }
        let path = [&self.raw_path, &self.context_path]
            .into_iter()
            .flatten()
            .find(|p| !p.is_empty());
        forms &= path.is_none_or(|p| p.starts_with('/'));
        if let Some(query) = &self.query {
            event["rawQueryString"] = json!(query);
            forms &= query.is_empty()
                || format!("/?{query}")
                    .parse::<http::uri::PathAndQuery>()
                    .is_ok();
        }
        if let Some(cookies) = &self.cookies {
            event["cookies"] = json!(cookies);
            forms &= cookies
                .iter()
                .all(|c| c.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)));
        }
        if let Some((bytes, text, how)) = &self.body {
            let (body, base64) = match how {
                0 => (b64.encode(bytes), true),
                1 => (text.clone(), true),
                _ => (text.clone(), false),
            };
            forms &= !base64 || b64.decode(&body).is_ok();
            event["body"] = json!(body);
            event["isBase64Encoded"] = json!(base64);
        }
        if self.signed_in {
            event["requestContext"]["authorizer"] =
                json!({"jwt": {"claims": {"sub": "u-1", "cognito:username": "alice"}}});
        }
        (event, forms)
    }
}

proptest! {
    #![proptest_config(fuzz_support::config(2000, "tests/fuzz_corpus/events.proptest-regressions"))]

    /// The `http` conversion: every event answers; it is refused (`400 bad_request`)
    /// exactly when it forms no request; one that does reaches the router.
    #[test]
    fn http_conversion(parts in http_parts()) {
        let (event, forms) = parts.event();
        let answer = fuzz_support::runtime().block_on(check_http_answer(event))?;
        let refused = answer.status_code == 400
            && error_code(&answer).as_deref() == Some("bad_request");
        prop_assert_eq!(refused, !forms, "{:?}", answer);
        let me = parts.raw_path.as_deref().or(parts.context_path.as_deref());
        if forms && parts.method == "GET" && parts.stage == "$default" && me == Some("/http/me")
        {
            let expected = if parts.signed_in { 200 } else { 401 };
            prop_assert_eq!(answer.status_code, expected, "{:?}", answer);
        }
    }
}

/// The fixtures and corpus, replayed as they are; each fixture must parse (so the
/// mutations start from events the types accept).
#[test]
fn corpus_replays() {
    for (kind, name, bytes) in fixtures() {
        let parses = match kind {
            Kind::Ws => serde_json::from_slice::<ApiGatewayWebsocketProxyRequest>(bytes).is_ok(),
            Kind::Authorizer => {
                serde_json::from_slice::<ApiGatewayCustomAuthorizerRequestTypeRequest>(bytes)
                    .is_ok()
            }
            Kind::Sqs => serde_json::from_slice::<SqsEvent>(bytes).is_ok(),
            Kind::Http => serde_json::from_slice::<ApiGatewayV2httpRequest>(bytes).is_ok(),
            Kind::Cognito => {
                serde_json::from_slice::<CognitoEventUserPoolsPreSignup>(bytes).is_ok()
            }
        };
        let kept = name.contains("-kept-");
        assert!(parses || kept, "fixture {name} does not parse as {kind:?}");
        if let Err(e) = check(*kind, bytes) {
            panic!("fixture {name}: {e}");
        }
    }
}

/// The checks can fail: the SQS fixture's second record is malformed and is reported.
#[test]
fn checks_are_not_vacuous() {
    let (_, _, sqs) = fixtures().iter().find(|(k, _, _)| *k == Kind::Sqs).unwrap();
    let event: SqsEvent = serde_json::from_slice(sqs).unwrap();
    let s = subjects();
    let response = fuzz_support::runtime().block_on(handle_sqs_event(
        &s.consumer,
        s.dispatcher.services(),
        "audit",
        &event,
    ));
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["2e1424d4-f796-459a-8184-9c92662be6da"]);
    let (_, _, message) = fixtures()
        .iter()
        .find(|(_, n, _)| n == "message.json")
        .unwrap();
    let mut doc: Value = serde_json::from_slice(message).unwrap();
    doc["requestContext"]["routeKey"] = json!("echo");
    doc["body"] = json!("{\"action\":\"echo\",\"n\":1}");
    let outcome = fuzz_support::runtime().block_on(
        fresh_dispatcher()
            .dispatch(serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(doc).unwrap()),
    );
    assert_eq!(outcome.status, 200);
    let body: Value = serde_json::from_str(outcome.body.unwrap().as_text().unwrap()).unwrap();
    assert_eq!(body["n"], 1);
}
