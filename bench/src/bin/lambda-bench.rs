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
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::names::table::TableNames;
use switchboard::testing::events::{authorizer, cognito, http, sqs, websocket};
use switchboard::testing::lambda::{FakeRuntimeApi, FunctionEnv};

const RUNS: usize = 20;

/// AWS endpoints nothing listens on: a cold start must not call them.
const NOWHERE: &str = "http://127.0.0.1:9";

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
    websocket::message(route, websocket::CONNECTION_ID)
        .body(body)
        .build()
}

/// An `orders` message whose order the consumer refuses (`qty` 0) before sending.
fn sqs_event() -> Value {
    sqs::event([sqs::forwarded(
        "orders",
        "placeOrder",
        json!({"action": "placeOrder", "item": "tea", "qty": 0}),
    )])
    .build()
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
    let env = FunctionEnv::local()
        .tables(&TableNames::new("bench-connections", "bench-rooms"))
        .management_endpoint(NOWHERE)
        .dynamodb_endpoint(NOWHERE)
        .sqs_endpoint(NOWHERE)
        .queue_url("orders", format!("{NOWHERE}/000000000000/chat-orders.fifo"))
        .auto_confirm_users(true)
        .jwt_issuer(issuer)
        .jwt_audience(switchboard::local::LOCAL_AUDIENCE);
    let mut child = api
        .command(binary, role, &env)
        .env("RUST_LOG", "warn")
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
        ("ws:authorizer", authorizer::request().token(&token).build()),
        // `GET /http/rooms/no%20spaces/members`: 400 before the store.
        (
            "http",
            http::request("GET", "/http/rooms/no%20spaces/members").build(),
        ),
        ("queue:orders", sqs_event()),
        ("cognito:pre-signup", cognito::pre_signup("alice").build()),
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
