//! Lambda-mode figures: cold start of the release binary under a fake Runtime API
//! (process start to first response), per role, and the binary's size.
//!
//! Every role of the chat app: `ws:ping`, `ws:$default`, `ws:join` (a store-using
//! route), `ws:authorizer`, `http`, `queue:orders`, `cognito:pre-signup`. AWS
//! endpoints (DynamoDB, SQS, `@connections`) are dummy `127.0.0.1:9` addresses: a cold
//! start must not call them, and each role gets an event it answers without the
//! network (a route's validation error before the store, a 400 of the HTTP API, an
//! order the consumer refuses before sending); each answer is checked to be the real
//! one for that event, so a role that failed or answered early would show.
//!
//! ```sh
//! cargo build --release -p chat-app && cargo run --release -p switchboard-bench --bin lambda-bench
//! # the deployed artifact's profile (size-optimised):
//! cargo build --profile lambda -p chat-app --no-default-features --features aws && cargo run --release -p switchboard-bench --bin lambda-bench -- target/lambda/chat-app
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::testing::lambda::FakeRuntimeApi;
use tokio::process::Command;

const RUNS: usize = 20;

fn chat_app() -> Result<PathBuf, String> {
    if let Some(path) = std::env::args().nth(1) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().ok_or("no parent directory")?;
    let path = dir.join("chat-app");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it first with `cargo build --release -p chat-app`",
            path.display()
        ))
    }
}

fn ws_event(route: &str, body: &str) -> Value {
    json!({
        "requestContext": {
            "routeKey": route, "eventType": "MESSAGE", "messageId": "bWVzc2FnZTAwMDA=",
            "stage": "ws", "connectedAt": 1_795_000_000_000_i64,
            "requestTimeEpoch": 1_795_000_000_100_i64, "requestId": "cmVxdWVzdDAwMDA=",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "connectionId": "N5OsJdBsIAMCJ_Q=", "apiId": "abcdef1234",
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": {"principalId": "alice", "username": "alice"}
        },
        "body": body,
        "isBase64Encoded": false
    })
}

fn authorizer_event(token: &str) -> Value {
    json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:000000000000:abcdef1234/ws/$connect",
        "headers": {}, "queryStringParameters": {"token": token},
        "requestContext": {"stage": "ws", "apiId": "abcdef1234", "requestId": "x"}
    })
}

fn pre_signup_event() -> Value {
    json!({
        "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_TestPool",
        "userName": "alice",
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "testclient123"},
        "triggerSource": "PreSignUp_SignUp",
        "request": {"userAttributes": {"email": "alice@example.com"}, "validationData": null, "clientMetadata": {}},
        "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
    })
}

/// An `orders` message whose order the consumer refuses (`qty` 0) before sending.
fn sqs_event() -> Value {
    let envelope = json!({
        "v": 1, "queue": "orders", "route": "placeOrder", "requestId": "N5OsJHnLIAMFZ3g=",
        "sentAt": "2026-11-22T10:15:30.123Z",
        "sender": {"connectionId": "N5OsJdBsIAMCJ_Q=", "identity": {"principalId": "alice", "context": {"username": "alice"}}},
        "payload": {"action": "placeOrder", "item": "tea", "qty": 0}
    });
    json!({"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": envelope.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "alice", "MessageDeduplicationId": "m-1"},
        "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:chat-orders.fifo", "awsRegion": "us-east-1"
    }]})
}

/// An HTTP API v2 event for `GET /http/rooms/no%20spaces/members`: 400 before the store.
fn http_event() -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/http/rooms/no%20spaces/members",
        "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "a1b2c3d4e5",
            "authorizer": {"jwt": {"claims": {"cognito:username": "alice", "sub": "u-alice", "token_use": "id"}, "scopes": null}},
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "domainPrefix": "a1b2c3d4e5",
            "http": {"method": "GET", "path": "/http/rooms/no%20spaces/members", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "bench"},
            "requestId": "BkbP1jXnDoEEMDQ=", "routeKey": "$default", "stage": "$default",
            "time": "22/Nov/2026:09:40:00 +0000", "timeEpoch": 1_795_000_000_000_i64
        },
        "isBase64Encoded": false
    })
}

/// Whether `answer` is the real answer of `role` to its bench event.
fn check_answer(role: &str, answer: &Value) -> Result<(), String> {
    let body_text = answer
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ok = match role {
        "ws:ping" => body_text.contains("pong"),
        "ws:$default" | "ws:join" => body_text.contains("\"error\""),
        "ws:authorizer" => {
            answer.pointer("/context/username").and_then(Value::as_str) == Some("alice")
                && answer
                    .pointer("/policyDocument/Statement/0/Effect")
                    .and_then(Value::as_str)
                    == Some("Allow")
        }
        "http" => answer.get("statusCode").and_then(Value::as_i64) == Some(400),
        "queue:orders" => answer.get("batchItemFailures").is_some_and(Value::is_array),
        "cognito:pre-signup" => {
            answer
                .pointer("/response/autoConfirmUser")
                .and_then(Value::as_bool)
                == Some(true)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{role}: unexpected answer {answer}"))
    }
}

async fn cold_start(
    binary: &PathBuf,
    role: &str,
    event: &Value,
    issuer: &str,
) -> Result<Duration, String> {
    let api = FakeRuntimeApi::start().await.map_err(|e| e.to_string())?;
    // Queue first, so the measurement is process start -> first answer.
    let id = api.enqueue(event);
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(api.function_env(role))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
        .env("AWS_SECRET_ACCESS_KEY", "local-secret")
        .env("SWITCHBOARD_CONNECTIONS_TABLE", "bench-connections")
        .env("SWITCHBOARD_ROOMS_TABLE", "bench-rooms")
        .env("SWITCHBOARD_MANAGEMENT_ENDPOINT", "http://127.0.0.1:9")
        .env("SWITCHBOARD_DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
        .env("SWITCHBOARD_SQS_ENDPOINT", "http://127.0.0.1:9")
        .env(
            "SWITCHBOARD_QUEUE_URL_ORDERS",
            "http://127.0.0.1:9/000000000000/chat-orders.fifo",
        )
        .env("SWITCHBOARD_AUTO_CONFIRM_USERS", "true")
        .env("SWITCHBOARD_JWT_ISSUER", issuer)
        .env(
            "SWITCHBOARD_JWT_AUDIENCE",
            switchboard::local::LOCAL_AUDIENCE,
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    let answer = api
        .answer(&id, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let _ = child.kill().await;
    if answer.is_error() {
        return Err(format!("{role} answered with an error: {}", answer.body()));
    }
    check_answer(role, answer.body())?;
    Ok(elapsed)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let binary = match chat_app() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    println!(
        "binary {}: {:.1} MiB ({size} bytes, stripped by the release profile)",
        binary.display(),
        size as f64 / 1_048_576.0,
    );
    println!("cold start, process start -> first response, {RUNS} runs each:");
    println!(
        "{:<20} {:>10} {:>10} {:>10}",
        "role", "min ms", "p50 ms", "max ms"
    );
    // A local gateway's token issuer stands in for Cognito: the authorizer's cold start
    // includes fetching its JWKS over loopback.
    let state_dir = std::env::temp_dir().join("switchboard-lambda-bench");
    let gw = match chat_app::app()
        .serve_local(switchboard::local::LocalConfig {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: state_dir.clone(),
            ..Default::default()
        })
        .await
    {
        Ok(gw) => gw,
        Err(e) => {
            eprintln!("error: local gateway: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let issuer_url = format!("{}/local", gw.http_url());
    let token = match switchboard::local::issuer::LocalIssuer::load_or_create(
        &state_dir,
        issuer_url.clone(),
        switchboard::local::LOCAL_AUDIENCE,
    )
    .and_then(|i| i.issue(&switchboard::local::issuer::TokenRequest::new("alice")))
    {
        Ok(t) => t.id_token,
        Err(e) => {
            eprintln!("error: token: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let roles: [(&str, Value); 7] = [
        ("ws:ping", ws_event("ping", r#"{"action":"ping"}"#)),
        (
            "ws:$default",
            ws_event("$default", r#"{"action":"nothing-here"}"#),
        ),
        (
            "ws:join",
            ws_event("join", r#"{"action":"join","room":"no spaces"}"#),
        ),
        ("ws:authorizer", authorizer_event(&token)),
        ("http", http_event()),
        ("queue:orders", sqs_event()),
        ("cognito:pre-signup", pre_signup_event()),
    ];
    for (role, event) in &roles {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            match cold_start(&binary, role, event, &issuer_url).await {
                Ok(t) => times.push(t),
                Err(e) => {
                    eprintln!("error: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
        times.sort();
        let (Some(min), Some(max)) = (times.first(), times.last()) else {
            continue;
        };
        let p50 = times[times.len() / 2];
        println!(
            "{:<20} {:>10.2} {:>10.2} {:>10.2}",
            role,
            ms(*min),
            ms(p50),
            ms(*max)
        );
    }
    std::process::ExitCode::SUCCESS
}
