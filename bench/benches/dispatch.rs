//! Warm per-event overhead of Lambda mode, per role of the chat app: parse the event
//! JSON, run the role's handler, build and serialise the answer — what one warm
//! invocation costs besides the Runtime API round trip and any AWS call.
//! `cargo bench -p switchboard-bench --bench dispatch`.
//!
//! The embedded store and a `@connections` client pointing at 127.0.0.1:9 stand in for
//! DynamoDB and API Gateway; every event here is answered without the network (the
//! queue consumer's customer has no open connection, so its send reaches nobody).

use std::sync::Arc;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayV2httpRequest,
    ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::cognito::CognitoEventUserPoolsPreSignup;
use aws_lambda_events::sqs::SqsEvent;
use criterion::{Criterion, criterion_group, criterion_main};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use switchboard::aws::AwsSettings;
use switchboard::aws::connections::ManagementApi;
use switchboard::aws::jwt::{JwtAuthorizer, JwtConfig, JwtVerifier};
use switchboard::local::issuer::{LocalIssuer, TokenRequest};
use switchboard::testing::events::{authorizer, cognito, http, sqs, websocket};

fn ws_event(route: &str, body: &str) -> String {
    websocket::message(route, websocket::CONNECTION_ID)
        .body(body)
        .source_ip("203.0.113.7")
        .user_agent(Some("Mozilla/5.0"))
        .authorizer(json!({"principalId": "alice", "username": "alice", "groups": "admins"}))
        .build()
        .to_string()
}

fn authorizer_event(token: &str) -> String {
    authorizer::request()
        .header("user-agent", "Mozilla/5.0")
        .token(token)
        .build()
        .to_string()
}

fn http_event() -> String {
    http::request("GET", "/http/rooms/lobby/members")
        .build()
        .to_string()
}

/// One valid `orders` message of a customer who has no open connection.
fn sqs_event() -> String {
    sqs::event([sqs::forwarded(
        "orders",
        "placeOrder",
        json!({"action": "placeOrder", "item": "tea", "qty": 2}),
    )])
    .build()
    .to_string()
}

fn pre_signup_event() -> String {
    cognito::pre_signup("alice").build().to_string()
}

fn parse<T: serde::de::DeserializeOwned>(raw: &str) -> T {
    match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => panic!("event: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let api = Arc::new(ManagementApi::new(
        &AwsSettings::local("http://127.0.0.1:9"),
        "http://127.0.0.1:9/ws",
    ));
    let dispatcher = match chat_app::app().dispatcher(api.clone()) {
        Ok(d) => d,
        Err(e) => panic!("dispatcher: {e}"),
    };

    // ws:<route>: handle_route, as the Lambda runtime calls it.
    for (name, route, body) in [
        ("ws:ping", "ping", r#"{"action":"ping"}"#),
        (
            "ws:echo",
            "echo",
            r#"{"action":"echo","data":"0123456789abcdef0123456789abcdef"}"#,
        ),
        (
            "ws:$default (unknown action)",
            "$default",
            r#"{"action":"nope"}"#,
        ),
        (
            "ws:members (store read)",
            "members",
            r#"{"action":"members","room":"lobby"}"#,
        ),
    ] {
        let raw = ws_event(route, body);
        c.bench_function(&format!("lambda event: {name}"), |b| {
            b.to_async(&runtime).iter(|| async {
                let payload: ApiGatewayWebsocketProxyRequest = parse(&raw);
                let answer = switchboard::aws::lambda::handle_route(
                    route,
                    &dispatcher,
                    &api,
                    LambdaEvent::new(payload, Context::default()),
                )
                .await;
                let out = match answer {
                    Ok(response) => serde_json::to_vec(&response).unwrap_or_default(),
                    Err(d) => d.error_message.into_bytes(),
                };
                assert!(!out.is_empty());
                std::hint::black_box(out)
            })
        });
    }

    // Metrics (issue 16): what dispatch adds per event, and what a role's flush costs
    // after an invocation (take, render the EMF line, write it to a buffer).
    let metrics = Arc::clone(&dispatcher.services().metrics);
    c.bench_function("metrics: record one route event", |b| {
        b.iter(|| metrics.route("ping", std::time::Duration::from_micros(250), false))
    });
    c.bench_function("metrics: flush one invocation as an EMF line", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            metrics.route("ping", std::time::Duration::from_micros(250), false);
            out.clear();
            switchboard::aws::lambda::flush_metrics(&metrics, &mut out);
            assert!(!out.is_empty());
            std::hint::black_box(out.len())
        })
    });

    // ws:authorizer: the JWT authorizer with the issuer's keys already fetched (warm).
    let state_dir = std::env::temp_dir().join("switchboard-dispatch-bench");
    let issuer_url = "http://127.0.0.1:9/local";
    let issuer = match LocalIssuer::load_or_create(
        &state_dir,
        issuer_url.to_owned(),
        switchboard::local::LOCAL_AUDIENCE,
    ) {
        Ok(i) => i,
        Err(e) => panic!("issuer: {e}"),
    };
    let token = match issuer.issue(&TokenRequest::new("alice")) {
        Ok(t) => t.id_token,
        Err(e) => panic!("token: {e}"),
    };
    let verifier = match JwtVerifier::with_static_jwks(
        JwtConfig::new(issuer_url).with_audience(switchboard::local::LOCAL_AUDIENCE),
        &issuer.jwks().to_string(),
    ) {
        Ok(v) => v,
        Err(e) => panic!("verifier: {e}"),
    };
    let verifier = Arc::new(verifier);
    // The signature check alone, to separate it from the authorizer's own overhead.
    c.bench_function("jwt verify only (RS256 signature + claims)", |b| {
        b.to_async(&runtime).iter(|| async {
            match verifier.verify(&token).await {
                Ok(claims) => std::hint::black_box(claims),
                Err(e) => panic!("verify: {e}"),
            }
        })
    });
    let authorizer = JwtAuthorizer::new(Arc::clone(&verifier));
    let raw = authorizer_event(&token);
    c.bench_function("lambda event: ws:authorizer (RS256 JWT)", |b| {
        b.to_async(&runtime).iter(|| async {
            let payload: ApiGatewayCustomAuthorizerRequestTypeRequest = parse(&raw);
            let answer = switchboard::aws::lambda::handle_authorizer(
                &authorizer,
                LambdaEvent::new(payload, Context::default()),
            )
            .await;
            let out = match answer {
                Ok(response) => serde_json::to_vec(&response).unwrap_or_default(),
                Err(d) => panic!("authorizer refused: {}", d.error_message),
            };
            std::hint::black_box(out)
        })
    });

    // http: the HTTP API service (event parsing and both conversions included).
    let http = match chat_app::app().http_service(api.clone()) {
        Ok(Some(s)) => s,
        Ok(None) => panic!("the chat app has no HTTP API"),
        Err(e) => panic!("http service: {e}"),
    };
    let raw = http_event();
    c.bench_function("lambda event: http (GET /http/rooms/lobby/members)", |b| {
        b.to_async(&runtime).iter(|| async {
            let event: ApiGatewayV2httpRequest = parse(&raw);
            let response = http.handle_event(event).await;
            assert_eq!(response.status_code, 200);
            std::hint::black_box(serde_json::to_vec(&response).unwrap_or_default())
        })
    });

    // queue:orders: the consumer, one valid order (its customer has no connection).
    let services = Arc::clone(dispatcher.services());
    let consumer = match services.registry.consumer("orders") {
        Some(c) => Arc::clone(&c.consumer),
        None => panic!("no orders consumer"),
    };
    let raw = sqs_event();
    c.bench_function("lambda event: queue:orders (1 message)", |b| {
        b.to_async(&runtime).iter(|| async {
            let event: SqsEvent = parse(&raw);
            let response =
                switchboard::consumer::handle_sqs_event(&consumer, &services, "orders", &event)
                    .await;
            assert!(response.batch_item_failures.is_empty());
            std::hint::black_box(serde_json::to_vec(&response).unwrap_or_default())
        })
    });

    // cognito:pre-signup.
    let raw = pre_signup_event();
    c.bench_function("lambda event: cognito:pre-signup", |b| {
        b.iter(|| {
            let event: CognitoEventUserPoolsPreSignup = parse(&raw);
            let out = switchboard::aws::lambda::pre_signup(true, event);
            assert!(out.response.auto_confirm_user);
            std::hint::black_box(serde_json::to_vec(&out).unwrap_or_default())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
