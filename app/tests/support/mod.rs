//! Shared harness of `aws_calls.rs` and `faults.rs`: moto behind three recording proxies
//! (DynamoDB, SQS, and the local gateway's `@connections`), real sockets on the local
//! gateway, and the real `chat-app` binary in Lambda mode under a fake Runtime API.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::aws::AwsSettings;
use switchboard::aws::dynamodb::{DynamoStore, TableNames};
use switchboard::aws::sqs::{QueueNames, SqsQueue};
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard::queue::QueueSettings;
use switchboard::testing::lambda::{Answer, FakeRuntimeApi};
use switchboard::testing::proxy::RecordingProxy;
use tokio::net::TcpStream;
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame or an answer.
pub const WAIT: Duration = Duration::from_secs(25);

/// A client socket on the local gateway.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// moto (direct clients for checking), the proxies the functions go through, the gateway.
pub struct Aws {
    pub moto: String,
    pub ddb: RecordingProxy,
    pub sqs: RecordingProxy,
    pub mgmt: RecordingProxy,
    pub tables: TableNames,
    /// Straight to moto, not through a proxy: the test's own view of the tables.
    pub store: DynamoStore,
    /// Straight to moto: the test's own view of the queue.
    pub queue: SqsQueue,
    pub queue_url: String,
    pub gw: LocalGateway,
}

impl Aws {
    /// Fresh tables and an `orders` queue in moto, proxies in front, a dev-auth gateway.
    /// `None` when moto is skipped.
    pub async fn start(test: &str) -> Option<Self> {
        let moto = switchboard::testing::moto_endpoint(test)?;
        let suffix = switchboard::ids::new_api_id().to_lowercase();
        let settings = AwsSettings::local(&moto);
        let tables = TableNames::for_app(&format!("f{suffix}"), "test");
        let store = DynamoStore::from_settings(&settings, tables.clone());
        store.create_tables().await.unwrap();
        let queue = SqsQueue::from_settings(&settings, QueueNames::prefixed(format!("f{suffix}-")));
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
        let mgmt = RecordingProxy::start(&gw.http_url()).await.unwrap();
        Some(Self {
            ddb: RecordingProxy::start(&moto).await.unwrap(),
            sqs: RecordingProxy::start(&moto).await.unwrap(),
            mgmt,
            moto,
            tables,
            store,
            queue,
            queue_url,
            gw,
        })
    }

    /// The functions' environment: every AWS endpoint through its proxy.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let stage = self
            .gw
            .management_url()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        vec![
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "AKIDLOCAL".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "local-secret".to_owned()),
            (
                "SWITCHBOARD_CONNECTIONS_TABLE",
                self.tables.connections.clone(),
            ),
            ("SWITCHBOARD_ROOMS_TABLE", self.tables.rooms.clone()),
            ("SWITCHBOARD_DYNAMODB_ENDPOINT", self.ddb.url()),
            ("SWITCHBOARD_SQS_ENDPOINT", self.sqs.url()),
            ("SWITCHBOARD_QUEUE_URL_ORDERS", self.queue_url.clone()),
            (
                "SWITCHBOARD_MANAGEMENT_ENDPOINT",
                format!("{}/{stage}", self.mgmt.url()),
            ),
        ]
    }

    /// Starts the real binary as `role`, warm until dropped.
    pub async fn function(&self, role: &str) -> Function {
        Function::start(role, &self.env()).await
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
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("{}?user={user}", self.gw.ws_url()))
                    .await
                    .unwrap();
            ws.send(Message::text(r#"{"action":"whoami"}"#))
                .await
                .unwrap();
            let id = recv_json(&mut ws).await["connectionId"]
                .as_str()
                .unwrap()
                .to_owned();
            let client = Client { user, id, ws };
            let answer = connect
                .invoke(&client.event("CONNECT", "$connect", None))
                .await;
            assert_eq!(answer.body()["statusCode"], 200, "{answer:?}");
            clients.push(client);
        }
        clients
    }
}

/// One function process (the real binary) and its fake Runtime API.
pub struct Function {
    pub api: FakeRuntimeApi,
    pub child: Child,
}

impl Function {
    pub async fn start(role: &str, env: &[(&str, String)]) -> Self {
        let api = FakeRuntimeApi::start().await.unwrap();
        let child = api
            .spawn_function(env!("CARGO_BIN_EXE_chat-app"), role, env)
            .expect("the chat-app binary starts");
        Self { api, child }
    }

    /// One invocation (waits at most [`WAIT`]).
    pub async fn invoke(&self, event: &Value) -> Answer {
        let id = self.api.enqueue(event);
        self.api
            .answer(&id, WAIT)
            .await
            .expect("the function answered in time")
    }

    /// The route response's frame of a `ws:` invocation (panics on an invocation error).
    pub async fn reply(&self, event: &Value) -> Value {
        match self.invoke(event).await {
            Answer::Response(v) => match v["body"].as_str() {
                Some(body) => serde_json::from_str(body).unwrap(),
                None => Value::Null,
            },
            Answer::Error(v) => panic!("invocation error: {v}"),
        }
    }

    /// Whether the process is still the one started (no crash, no restart).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// A client socket and who it is.
pub struct Client {
    pub user: String,
    pub id: String,
    pub ws: Socket,
}

impl Client {
    /// An API Gateway event of this connection.
    pub fn event(&self, event_type: &str, route: &str, body: Option<&str>) -> Value {
        self.event_with_id(event_type, route, body, "bWVzc2FnZTAwMDA=")
    }

    /// An API Gateway event with a given `messageId`.
    pub fn event_with_id(
        &self,
        event_type: &str,
        route: &str,
        body: Option<&str>,
        message_id: &str,
    ) -> Value {
        json!({
            "requestContext": {
                "routeKey": route,
                "eventType": event_type,
                "messageId": message_id,
                "extendedRequestId": "ZXh0ZW5kZWQwMDA=",
                "requestTime": "22/Nov/2026:03:41:48 +0000",
                "messageDirection": "IN",
                "stage": "ws",
                "connectedAt": 1_795_000_000_000_i64,
                "requestTimeEpoch": 1_795_000_000_100_i64,
                "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"},
                "requestId": format!("req-{message_id}"),
                "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
                "connectionId": self.id,
                "apiId": "abcdef1234",
                "authorizer": {"principalId": self.user, "username": self.user}
            },
            "body": body,
            "isBase64Encoded": false
        })
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
