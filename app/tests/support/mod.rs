//! Shared harness of the Lambda-mode tests (`lambda.rs`, `queue_lambda.rs`,
//! `http_lambda.rs`, `aws_calls.rs`, `faults.rs`): moto (directly, or behind three
//! recording proxies: DynamoDB, SQS, and the local gateway's `@connections`), real sockets
//! on the local gateway, and the real `chat-app` binary in Lambda mode under a fake
//! Runtime API.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard::aws::AwsSettings;
use switchboard::aws::dynamodb::{DynamoStore, TableNames};
use switchboard::aws::sqs::{QueueNames, SqsQueue};
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard::queue::QueueSettings;
use switchboard::testing::events::websocket::{self, WebSocketEvent};
use switchboard::testing::lambda::{FunctionEnv, LambdaFunction};
use switchboard::testing::proxy::RecordingProxy;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame or an answer.
pub const WAIT: Duration = Duration::from_secs(25);

/// A client socket on the local gateway.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One function process: the real `chat-app` binary under its own fake Runtime API.
pub type Function = LambdaFunction;

/// Starts the real binary as `role` with `env`, warm until dropped; answers are awaited
/// for the default [`INVOKE_TIMEOUT`](switchboard::testing::lambda::INVOKE_TIMEOUT).
pub async fn function(role: &str, env: &FunctionEnv) -> Function {
    LambdaFunction::start(env!("CARGO_BIN_EXE_chat-app"), role, env)
        .await
        .expect("the chat-app binary starts")
}

/// Fresh tables and an `orders` queue in moto, and a dev-auth local gateway: what the
/// functions need, with no proxy in between.
pub struct Stack {
    pub moto: String,
    pub tables: TableNames,
    /// The room history table (the chat keeps history in every room).
    pub history_table: String,
    /// The test's own view of the tables.
    pub store: DynamoStore,
    /// The test's own view of the queue.
    pub queue: SqsQueue,
    pub queue_url: String,
    pub gw: LocalGateway,
}

impl Stack {
    /// Tables and queues named `{prefix}{random}`. `None` when moto is skipped.
    pub async fn start(test: &str, prefix: &str) -> Option<Self> {
        let moto = switchboard::testing::moto_endpoint(test)?;
        let name = format!("{prefix}{}", switchboard::ids::new_api_id().to_lowercase());
        let settings = AwsSettings::local(&moto);
        let tables = TableNames::for_app(&name, "test");
        let store = DynamoStore::from_settings(&settings, tables.clone());
        store.create_tables().await.unwrap();
        let history_table = switchboard::names::table::history_table_for_app(&name, "test");
        switchboard::aws::history::DynamoHistory::from_settings(&settings, history_table.clone())
            .create_table()
            .await
            .unwrap();
        let queue = SqsQueue::from_settings(&settings, QueueNames::prefixed(format!("{name}-")));
        let queue_url = queue
            .create_queues("orders", &QueueSettings::default())
            .await
            .unwrap();
        let gw = chat_app::app()
            .dev_auth()
            .serve_local(LocalConfig {
                addr: "127.0.0.1:0".parse().unwrap(),
                ..Default::default()
            })
            .await
            .unwrap();
        Some(Self {
            moto,
            tables,
            history_table,
            store,
            queue,
            queue_url,
            gw,
        })
    }

    /// The functions' environment: moto and the gateway directly.
    pub fn env(&self) -> FunctionEnv {
        FunctionEnv::local()
            .tables(&self.tables)
            .history_table(&self.history_table)
            .dynamodb_endpoint(&self.moto)
            .sqs_endpoint(&self.moto)
            .queue_url("orders", &self.queue_url)
            .management_endpoint(self.gw.management_url())
    }

    /// A socket of `user` on the gateway and its connection id.
    pub async fn socket(&self, user: &str) -> (Socket, String) {
        socket(&self.gw, user).await
    }
}

/// A socket of `user` on `gw` (dev auth) and its connection id (asked with `whoami`).
pub async fn socket(gw: &LocalGateway, user: &str) -> (Socket, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}?user={user}", gw.ws_url()))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"action":"whoami"}"#))
        .await
        .unwrap();
    let id = recv_json(&mut ws).await["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    (ws, id)
}

/// The [`Stack`] (its fields through `Deref`: the test's own view of moto, the gateway)
/// and the proxies the functions go through.
pub struct Aws {
    pub stack: Stack,
    pub ddb: RecordingProxy,
    pub sqs: RecordingProxy,
    pub mgmt: RecordingProxy,
}

impl std::ops::Deref for Aws {
    type Target = Stack;

    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl Aws {
    /// Fresh tables and an `orders` queue in moto, proxies in front, a dev-auth gateway.
    /// `None` when moto is skipped.
    pub async fn start(test: &str) -> Option<Self> {
        let stack = Stack::start(test, "f").await?;
        Some(Self {
            ddb: RecordingProxy::start(&stack.moto).await.unwrap(),
            sqs: RecordingProxy::start(&stack.moto).await.unwrap(),
            mgmt: RecordingProxy::start(&stack.gw.http_url()).await.unwrap(),
            stack,
        })
    }

    /// The functions' environment: every AWS endpoint through its proxy.
    pub fn env(&self) -> FunctionEnv {
        let stage = self
            .gw
            .management_url()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        self.stack
            .env()
            .dynamodb_endpoint(self.ddb.url())
            .sqs_endpoint(self.sqs.url())
            .management_endpoint(format!("{}/{stage}", self.mgmt.url()))
    }

    /// Starts the real binary as `role`, warm until dropped (answers awaited [`WAIT`]).
    pub async fn function(&self, role: &str) -> Function {
        function(role, &self.env()).await.with_timeout(WAIT)
    }

    /// Forgets every proxy's records.
    pub fn reset_calls(&self) {
        self.ddb.take_calls();
        self.sqs.take_calls();
        self.mgmt.take_calls();
    }

    /// `n` sockets on the gateway (users `{prefix}0..`), each recorded in DynamoDB by the
    /// `ws:$connect` function, as API Gateway would have.
    pub async fn clients(&self, prefix: &str, n: usize, connect: &Function) -> Vec<Client> {
        let mut clients = Vec::with_capacity(n);
        for i in 0..n {
            let user = format!("{prefix}{i}");
            let (ws, id) = socket(&self.gw, &user).await;
            let connected_at = now_ms();
            let client = Client {
                user,
                id,
                ws,
                connected_at,
            };
            let answer = connect
                .invoke(&client.event("CONNECT", "$connect", None))
                .await;
            assert_eq!(answer.body()["statusCode"], 200, "{answer:?}");
            clients.push(client);
        }
        clients
    }
}

/// The current time, epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A client socket and who it is.
pub struct Client {
    pub user: String,
    pub id: String,
    pub ws: Socket,
    /// When the socket opened (epoch ms): every event of the connection says so, so its
    /// record's `expires` is live (reads skip expired records; a fixed fixture time
    /// went stale).
    pub connected_at: i64,
}

impl Client {
    /// An API Gateway event of this connection.
    pub fn event(&self, event_type: &str, route: &str, body: Option<&str>) -> Value {
        self.event_with_id(event_type, route, body, websocket::MESSAGE_ID)
    }

    /// An API Gateway event with a given `messageId` (and `requestId` `req-{messageId}`).
    pub fn event_with_id(
        &self,
        event_type: &str,
        route: &str,
        body: Option<&str>,
        message_id: &str,
    ) -> Value {
        WebSocketEvent::new(event_type, route, &self.id)
            .connected_at(self.connected_at)
            .request_time_epoch(now_ms())
            .maybe_body(body)
            .user(&self.user)
            .message_id(message_id)
            .request_id(format!("req-{message_id}"))
            .build()
    }

    /// The next JSON frame on the socket.
    pub async fn recv(&mut self) -> Value {
        recv_json(&mut self.ws).await
    }

    /// The next JSON frame, if one arrives within `limit`.
    pub async fn try_recv(&mut self, limit: Duration) -> Option<Value> {
        tokio::time::timeout(limit, recv_json(&mut self.ws))
            .await
            .ok()
    }
}

/// The next text frame as JSON (panics after [`WAIT`]).
pub async fn recv_json(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Sorted operation names, for comparing calls made concurrently.
pub fn sorted(mut ops: Vec<String>) -> Vec<String> {
    ops.sort();
    ops
}

/// `n` copies of an operation name.
pub fn times(op: &str, n: usize) -> Vec<String> {
    vec![op.to_owned(); n]
}

/// A gateway with the local token issuer (no dev auth), its state in a fresh temporary
/// directory `{prefix}-{random}` (remove it when done).
pub async fn issuer_gateway(prefix: &str) -> (LocalGateway, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", switchboard::ids::new_api_id()));
    let gw = chat_app::app()
        .serve_local(LocalConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    (gw, dir)
}

/// `POST /local/token` over a plain HTTP/1.1 exchange: an id token of the local issuer.
pub async fn local_token(addr: std::net::SocketAddr, user: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::json!({"username": user}).to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /local/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let json = response.split("\r\n\r\n").nth(1).unwrap();
    let v: Value = serde_json::from_str(json).unwrap();
    v["idToken"].as_str().unwrap().to_owned()
}

/// Spawns `cmd` (the binary as a local gateway; stdout is piped here) and reads its banner
/// up to the WebSocket line ("  WebSocket    ws://127.0.0.1:PORT/ws?user=NAME"), for at
/// most `limit`: the
/// child, that URL without `?user=NAME`, and the rest of its output (keep reading or
/// holding it: a closed pipe would fail the gateway's next write).
pub async fn spawn_local_gateway(
    cmd: &mut tokio::process::Command,
    limit: Duration,
) -> (
    tokio::process::Child,
    String,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ws_url = tokio::time::timeout(limit, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.trim().strip_prefix("WebSocket") {
                return url.trim().trim_end_matches("?user=NAME").to_owned();
            }
        }
        panic!("the gateway exited before printing its address");
    })
    .await
    .unwrap();
    (child, ws_url, lines)
}
