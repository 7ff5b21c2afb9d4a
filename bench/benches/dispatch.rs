//! Warm per-event overhead of Lambda mode: parse the event JSON, dispatch, build the
//! integration response, serialise it — what one warm invocation costs besides the
//! Runtime API round trip. `cargo bench -p switchboard-bench --bench dispatch`.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use criterion::{Criterion, criterion_group, criterion_main};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use switchboard::aws::AwsSettings;
use switchboard::aws::connections::ManagementApi;

fn event(route: &str, body: &str) -> String {
    json!({
        "requestContext": {
            "routeKey": route, "eventType": "MESSAGE", "messageId": "bWVzc2FnZTAwMDA=",
            "extendedRequestId": "ZXh0ZW5kZWQwMDA=", "requestTime": "22/Nov/2026:03:41:48 +0000",
            "messageDirection": "IN", "stage": "ws", "connectedAt": 1_795_000_000_000_i64,
            "requestTimeEpoch": 1_795_000_000_100_i64, "requestId": "cmVxdWVzdDAwMDA=",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "connectionId": "N5OsJdBsIAMCJ_Q=", "apiId": "abcdef1234",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
            "authorizer": {"principalId": "alice", "username": "alice", "groups": "admins"}
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
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
    for (name, route, body) in [
        ("ping", "ping", r#"{"action":"ping"}"#),
        (
            "echo",
            "echo",
            r#"{"action":"echo","data":"0123456789abcdef0123456789abcdef"}"#,
        ),
        (
            "unknown action ($default)",
            "$default",
            r#"{"action":"nope"}"#,
        ),
    ] {
        let raw = event(route, body);
        c.bench_function(&format!("lambda event: {name}"), |b| {
            b.to_async(&runtime).iter(|| async {
                let payload: ApiGatewayWebsocketProxyRequest = match serde_json::from_str(&raw) {
                    Ok(p) => p,
                    Err(e) => panic!("event: {e}"),
                };
                let answer = switchboard::lambda::handle_route(
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
                std::hint::black_box(out)
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
