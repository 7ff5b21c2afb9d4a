//! A fake Lambda Runtime API, to run a service's real binary in Lambda mode on one
//! machine: it hands out queued events at `GET /2018-06-01/runtime/invocation/next` and
//! records what the function answers (`.../response`, `.../error`, `/runtime/init/error`).
//!
//! [`LambdaFunction`] is the usual way in: one function process, its own Runtime API, and
//! the environment the deploy program would give it ([`FunctionEnv`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard_testing::events::websocket;
//! use switchboard_testing::lambda::{FunctionEnv, LambdaFunction};
//! let env = FunctionEnv::local().dynamodb_endpoint("http://127.0.0.1:5000");
//! let ping = LambdaFunction::start("target/debug/chat-app", "ws:ping", &env).await?;
//! let frame = ping
//!     .reply(&websocket::message("ping", "N5OsJdBsIAMCJ_Q=").body("{}").build())
//!     .await;
//! assert_eq!(frame["action"], "pong");
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
use switchboard_core::names::env;
use switchboard_core::names::table::TableNames;
use tokio::process::{Child, Command};
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

    /// `"response"` or `"error"`, for assertions and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Response(_) => "response",
            Self::Error(_) => "error",
        }
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
            (env::LAMBDA_RUNTIME_API, self.addr.to_string()),
            (env::HANDLER, handler.to_owned()),
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

    /// The command that starts `binary` as the function `handler` against this API: a
    /// clean environment with Lambda's variables ([`function_env`](Self::function_env)),
    /// `PATH`, `RUST_LOG=info` and `env`; output discarded; killed when the child is
    /// dropped. Add to it before spawning (a later `.env` wins).
    pub fn command(
        &self,
        binary: impl AsRef<std::ffi::OsStr>,
        handler: &str,
        env: &FunctionEnv,
    ) -> Command {
        let mut cmd = self.bare_command(binary, handler);
        cmd.envs(env.vars().iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Starts `binary` as the function `handler` against this API with `env` (see
    /// [`command`](Self::command)).
    pub fn spawn_function(
        &self,
        binary: impl AsRef<std::ffi::OsStr>,
        handler: &str,
        env: &[(&str, String)],
    ) -> std::io::Result<Child> {
        let mut cmd = self.bare_command(binary, handler);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.spawn()
    }

    fn bare_command(&self, binary: impl AsRef<std::ffi::OsStr>, handler: &str) -> Command {
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.function_env(handler))
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
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

/// The region, access key and secret [`FunctionEnv::local`] sets (what moto accepts).
pub const LOCAL_REGION: &str = "us-east-1";
/// See [`LOCAL_REGION`].
pub const LOCAL_ACCESS_KEY_ID: &str = "AKIDLOCAL";
/// See [`LOCAL_REGION`].
pub const LOCAL_SECRET_ACCESS_KEY: &str = "local-secret";

/// A function's environment as the deploy program would set it, named by
/// [`switchboard_core::names::env`]: tables, endpoints, queue URLs, authorizer settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionEnv {
    vars: Vec<(String, String)>,
}

impl FunctionEnv {
    /// No variables at all (Lambda's own come from [`FakeRuntimeApi::function_env`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A region and static credentials: [`LOCAL_REGION`], [`LOCAL_ACCESS_KEY_ID`],
    /// [`LOCAL_SECRET_ACCESS_KEY`].
    pub fn local() -> Self {
        Self::new()
            .set(env::REGION, LOCAL_REGION)
            .set(env::ACCESS_KEY_ID, LOCAL_ACCESS_KEY_ID)
            .set(env::SECRET_ACCESS_KEY, LOCAL_SECRET_ACCESS_KEY)
    }

    /// A variable, replacing an earlier value of the same name.
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        match self.vars.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.vars.push((name.to_owned(), value)),
        }
        self
    }

    /// The connections and rooms tables.
    pub fn tables(self, tables: &TableNames) -> Self {
        self.set(env::CONNECTIONS_TABLE, tables.connections.as_str())
            .set(env::ROOMS_TABLE, tables.rooms.as_str())
    }

    /// The room history table.
    pub fn history_table(self, table: impl Into<String>) -> Self {
        self.set(env::HISTORY_TABLE, table)
    }

    /// The DynamoDB endpoint (moto, or a proxy in front of it).
    pub fn dynamodb_endpoint(self, url: impl Into<String>) -> Self {
        self.set(env::DYNAMODB_ENDPOINT, url)
    }

    /// The SQS endpoint.
    pub fn sqs_endpoint(self, url: impl Into<String>) -> Self {
        self.set(env::SQS_ENDPOINT, url)
    }

    /// The `@connections` endpoint (`{url}/{stage}`).
    pub fn management_endpoint(self, url: impl Into<String>) -> Self {
        self.set(env::MANAGEMENT_ENDPOINT, url)
    }

    /// The URL of the logical queue `queue` ([`env::queue_url`]).
    pub fn queue_url(self, queue: &str, url: impl Into<String>) -> Self {
        self.set(&env::queue_url(queue), url)
    }

    /// The JWT authorizer's issuer.
    pub fn jwt_issuer(self, issuer: impl Into<String>) -> Self {
        self.set(env::JWT_ISSUER, issuer)
    }

    /// The JWT authorizer's audience (app client ids, comma-separated).
    pub fn jwt_audience(self, audience: impl Into<String>) -> Self {
        self.set(env::JWT_AUDIENCE, audience)
    }

    /// The JWT authorizer's JWKS URL.
    pub fn jwks_url(self, url: impl Into<String>) -> Self {
        self.set(env::JWKS_URL, url)
    }

    /// Whether the pre-sign-up function confirms new users.
    pub fn auto_confirm_users(self, on: bool) -> Self {
        self.set(env::AUTO_CONFIRM_USERS, on.to_string())
    }

    /// The variables, in the order set.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One function process (a service's real binary in Lambda mode) with its own fake
/// Runtime API: started with [`LambdaFunction::start`], warm until dropped or
/// [killed](LambdaFunction::kill).
///
/// The invoking methods are test support: they panic, naming the handler, when no answer
/// comes in time or the answer is not the kind they expect.
#[derive(Debug)]
pub struct LambdaFunction {
    api: FakeRuntimeApi,
    child: Child,
    handler: String,
    timeout: Duration,
    /// What the process printed on stdout (its JSON logs and EMF metric lines), a line
    /// an entry.
    stdout: Arc<Mutex<Vec<String>>>,
}

impl LambdaFunction {
    /// Starts `binary` as the function `handler` with `env` (see
    /// [`FakeRuntimeApi::command`]); answers are awaited for [`INVOKE_TIMEOUT`].
    pub async fn start(
        binary: impl AsRef<std::ffi::OsStr>,
        handler: &str,
        env: &FunctionEnv,
    ) -> std::io::Result<Self> {
        let api = FakeRuntimeApi::start().await?;
        let mut child = api
            .command(binary, handler, env)
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            let lines = Arc::clone(&stdout);
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut reader = tokio::io::BufReader::new(out).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lock(&lines).push(line);
                }
            });
        }
        Ok(Self {
            api,
            child,
            handler: handler.to_owned(),
            timeout: INVOKE_TIMEOUT,
            stdout,
        })
    }

    /// The lines the process printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        lock(&self.stdout).clone()
    }

    /// The CloudWatch EMF documents the process printed (stdout lines that are JSON
    /// objects with an `_aws` member), once at least `n` arrived or the timeout passed
    /// (the process writes them before answering, but the pipe may lag).
    pub async fn emf_documents(&self, n: usize) -> Vec<Value> {
        let parse = |lines: Vec<String>| -> Vec<Value> {
            lines
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v.get("_aws").is_some())
                .collect()
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let docs = parse(self.stdout_lines());
            if docs.len() >= n || tokio::time::Instant::now() >= deadline {
                return docs;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// How long the invoking methods and [`init_error`](Self::init_error) wait.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The fake Runtime API the process talks to.
    pub fn api(&self) -> &FakeRuntimeApi {
        &self.api
    }

    /// One invocation: the function's answer, whichever kind.
    ///
    /// # Panics
    ///
    /// When no answer comes within the timeout.
    #[allow(
        clippy::panic,
        reason = "test support: a missing answer fails the test, naming the function"
    )]
    pub async fn invoke(&self, event: &Value) -> Answer {
        let id = self.api.enqueue(event);
        match self.api.answer(&id, self.timeout).await {
            Ok(answer) => answer,
            Err(e) => panic!("{}: no answer to {event}: {e}", self.handler),
        }
    }

    /// One invocation that must succeed: the response body.
    ///
    /// # Panics
    ///
    /// On an invocation error, or when no answer comes in time.
    #[allow(
        clippy::panic,
        reason = "test support: an invocation error fails the test, naming the function"
    )]
    pub async fn response(&self, event: &Value) -> Value {
        match self.invoke(event).await {
            Answer::Response(v) => v,
            Answer::Error(v) => panic!("{}: invocation error: {v}", self.handler),
        }
    }

    /// The route response's frame of a `ws:` invocation: the response's `body` parsed as
    /// JSON, `null` when the route replies nothing.
    ///
    /// # Panics
    ///
    /// On an invocation error, a body that is not JSON, or when no answer comes in time.
    #[allow(
        clippy::panic,
        reason = "test support: a malformed route response fails the test"
    )]
    pub async fn reply(&self, event: &Value) -> Value {
        let response = self.response(event).await;
        match response["body"].as_str() {
            Some(body) => serde_json::from_str(body).unwrap_or_else(|e| {
                panic!(
                    "{}: the route response is not JSON ({e}): {body}",
                    self.handler
                )
            }),
            None => Value::Null,
        }
    }

    /// The init error the process reported (`errorType`, `errorMessage`).
    ///
    /// # Panics
    ///
    /// When none is reported within the timeout.
    #[allow(
        clippy::panic,
        reason = "test support: a missing init error fails the test, naming the function"
    )]
    pub async fn init_error(&self) -> Value {
        match self.api.init_error(self.timeout).await {
            Ok(error) => error,
            Err(e) => panic!("{}: no init error reported: {e}", self.handler),
        }
    }

    /// Waits for the process to exit (after an init error, say).
    ///
    /// # Panics
    ///
    /// When it is still running after the timeout, or cannot be waited for.
    #[allow(
        clippy::panic,
        reason = "test support: a process that does not exit fails the test"
    )]
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        match tokio::time::timeout(self.timeout, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("{}: waiting for the process: {e}", self.handler),
            Err(_) => panic!("{}: still running after {:?}", self.handler, self.timeout),
        }
    }

    /// Whether the process is still the one started (no exit, no crash).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process and waits for it.
    pub async fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill().await
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
