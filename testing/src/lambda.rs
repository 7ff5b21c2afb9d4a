//! A fake Lambda Runtime API, to run a service's real binary in Lambda mode on one
//! machine: it hands out queued events at `GET /2018-06-01/runtime/invocation/next` and
//! records what the function answers (`.../response`, `.../error`, `/runtime/init/error`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard::testing::lambda::FakeRuntimeApi;
//! let api = FakeRuntimeApi::start().await?;
//! let mut child = std::process::Command::new("target/debug/chat-app")
//!     .envs(api.function_env("ws:ping"))
//!     .env("AWS_REGION", "us-east-1")
//!     .spawn()?;
//! let answer = api.invoke(&serde_json::json!({"requestContext": {}})).await?;
//! child.kill()?;
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;

/// Waiting on the fake Runtime API failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TestError {
    /// Nothing arrived in time.
    #[error("nothing arrived within {0:?}")]
    Timeout(Duration),
}

/// How long [`FakeRuntimeApi::invoke`] waits for an answer by default.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(20);

/// What the function answered to one invocation.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// `POST /runtime/invocation/{id}/response` with this body.
    Response(Value),
    /// `POST /runtime/invocation/{id}/error` with this body (`errorType`, `errorMessage`).
    Error(Value),
}

impl Answer {
    /// The body, whichever kind.
    pub fn body(&self) -> &Value {
        match self {
            Self::Response(v) | Self::Error(v) => v,
        }
    }

    /// Whether the function answered with an invocation error.
    pub fn is_error(&self) -> bool {
        matches!(self, Self::Error(_))
    }
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<(String, String)>>,
    queued: Notify,
    answers: Mutex<HashMap<String, Answer>>,
    answered: Notify,
    init_error: Mutex<Option<Value>>,
    init_failed: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The fake Runtime API, serving on 127.0.0.1.
pub struct FakeRuntimeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    next_id: AtomicU64,
}

impl std::fmt::Debug for FakeRuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRuntimeApi")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeRuntimeApi {
    /// Starts serving on a free loopback port.
    pub async fn start() -> Result<Self, std::io::Error> {
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "fake Runtime API stopped");
            }
        });
        Ok(Self {
            shared,
            addr,
            next_id: AtomicU64::new(1),
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The environment Lambda gives a function with this handler string.
    pub fn function_env(&self, handler: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("_HANDLER", handler.to_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", "switchboard-test".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "test".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Starts `binary` as the function `handler` against this API: a clean environment
    /// with Lambda's variables ([`function_env`](Self::function_env)), `PATH`,
    /// `RUST_LOG=info` and `env`; output discarded; killed when the child is dropped.
    pub fn spawn_function(
        &self,
        binary: impl AsRef<std::ffi::OsStr>,
        handler: &str,
        env: &[(&str, String)],
    ) -> std::io::Result<tokio::process::Child> {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.function_env(handler))
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn()
    }

    /// Queues an event without waiting; returns its request id.
    pub fn enqueue(&self, event: &Value) -> String {
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        lock(&self.shared.queue).push_back((id.clone(), event.to_string()));
        self.shared.queued.notify_waiters();
        id
    }

    /// Waits for the answer to a queued request.
    pub async fn answer(&self, id: &str, limit: Duration) -> Result<Answer, TestError> {
        let wait = async {
            loop {
                let notified = self.shared.answered.notified();
                if let Some(a) = lock(&self.shared.answers).remove(id) {
                    return a;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| TestError::Timeout(limit))
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, event: &Value) -> Result<Answer, TestError> {
        let id = self.enqueue(event);
        self.answer(&id, INVOKE_TIMEOUT).await
    }

    /// Waits for an init error.
    pub async fn init_error(&self, limit: Duration) -> Result<Value, TestError> {
        let wait = async {
            loop {
                let notified = self.shared.init_failed.notified();
                if let Some(v) = lock(&self.shared.init_error).clone() {
                    return v;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| TestError::Timeout(limit))
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    loop {
        let notified = shared.queued.notified();
        let item = lock(&shared.queue).pop_front();
        if let Some((id, body)) = item {
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            let mut headers = HeaderMap::new();
            let mut put = |name: &'static str, value: String| {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            };
            put("lambda-runtime-aws-request-id", id);
            put("lambda-runtime-deadline-ms", deadline.to_string());
            put(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:switchboard-test".to_owned(),
            );
            put(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000".to_owned(),
            );
            return (StatusCode::OK, headers, body).into_response();
        }
        notified.await;
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    Path((id, kind)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = if kind == "response" {
        Answer::Response(value)
    } else {
        Answer::Error(value)
    };
    lock(&shared.answers).insert(id, answer);
    shared.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *lock(&shared.init_error) = Some(serde_json::from_slice(&body).unwrap_or(Value::Null));
    shared.init_failed.notify_waiters();
    StatusCode::ACCEPTED
}
