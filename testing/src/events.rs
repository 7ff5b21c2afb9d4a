//! API Gateway, SQS and Cognito events in AWS's shape: one set of builders for every test
//! (and bench) that feeds the runtime, a Lambda role or a fuzz target.
//!
//! Each builder starts from a complete, realistic event and changes only what a test
//! says; [`build`](websocket::WebSocketEvent::build) gives the JSON a Lambda function
//! receives, `typed()` the `aws_lambda_events` type the runtime parses it into.
//!
//! ```
//! use serde_json::json;
//! use switchboard_testing::events::{authorizer, cognito, http, sqs, websocket};
//!
//! let message = websocket::message("sendMessage", "N5OsJdBsIAMCJ_Q=")
//!     .body(r#"{"action":"sendMessage","text":"hi"}"#)
//!     .user("bob")
//!     .build();
//! assert_eq!(message["requestContext"]["authorizer"]["username"], "bob");
//!
//! let connect = websocket::connect("N5OsJdBsIAMCJ_Q=").header("User-Agent", "test").typed();
//! assert_eq!(connect.request_context.event_type.as_deref(), Some("CONNECT"));
//!
//! let upgrade = authorizer::request().token("eyJ...").build();
//! assert_eq!(upgrade["queryStringParameters"]["token"], "eyJ...");
//!
//! let batch = sqs::event([sqs::record("m-1", "{}").fifo("alice", "d-1")]).typed();
//! assert_eq!(batch.records.len(), 1);
//!
//! let get = http::request("GET", "/http/me").build();
//! assert_eq!(get["requestContext"]["http"]["method"], "GET");
//!
//! let sign_up = cognito::pre_signup("alice").build();
//! assert_eq!(sign_up["triggerSource"], "PreSignUp_SignUp");
//! # let _ = json!(null);
//! ```

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// The API id the builders use (`domainName` is `{API_ID}.execute-api.us-east-1.amazonaws.com`).
pub const API_ID: &str = "abcdef1234";

/// The region in every event.
pub const REGION: &str = "us-east-1";

/// The account id in ARNs.
pub const ACCOUNT_ID: &str = "123456789012";

/// The `domainName` of the WebSocket API's events.
fn domain_name() -> String {
    format!("{API_ID}.execute-api.{REGION}.amazonaws.com")
}

/// Parses a built event into its `aws_lambda_events` type.
///
/// The builders produce AWS's shape, so this fails only when a test replaced a part with
/// something of the wrong shape (an authorizer context that is not an object, say): a
/// test-support panic that names the type and the reason is the point.
fn typed<T: DeserializeOwned>(event: Value, what: &str) -> T {
    serde_json::from_value(event)
        .unwrap_or_else(|e| panic!("the built event does not parse as {what}: {e}"))
}

/// `{k: v, ...}` from name/value pairs, in order.
fn object(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// WebSocket API events (`ApiGatewayWebsocketProxyRequest`): `$connect`, messages,
/// `$disconnect`.
pub mod websocket {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;

    /// The `messageId` unless a test sets one.
    pub const MESSAGE_ID: &str = "bWVzc2FnZTAwMDA=";
    /// The `requestId` unless a test sets one.
    pub const REQUEST_ID: &str = "cmVxdWVzdDAwMDA=";
    /// `connectedAt` (epoch milliseconds) unless a test sets it.
    pub const CONNECTED_AT: i64 = 1_795_000_000_000;
    /// `requestTimeEpoch` (epoch milliseconds) unless a test sets it.
    pub const REQUEST_TIME_EPOCH: i64 = 1_795_000_000_100;
    /// The user the authorizer context names unless a test says otherwise.
    pub const USER: &str = "alice";
    /// A connection id in API Gateway's format, for events of no particular connection.
    pub const CONNECTION_ID: &str = "N5OsJdBsIAMCJ_Q=";

    /// A `$connect` event (`eventType` `CONNECT`, no body).
    pub fn connect(connection_id: &str) -> WebSocketEvent {
        WebSocketEvent::new("CONNECT", "$connect", connection_id)
    }

    /// A message to `route` (`eventType` `MESSAGE`); give it a [`body`](WebSocketEvent::body).
    pub fn message(route: &str, connection_id: &str) -> WebSocketEvent {
        WebSocketEvent::new("MESSAGE", route, connection_id)
    }

    /// A `$disconnect` event (`eventType` `DISCONNECT`, no body).
    pub fn disconnect(connection_id: &str) -> WebSocketEvent {
        WebSocketEvent::new("DISCONNECT", "$disconnect", connection_id)
    }

    /// A WebSocket event of any type and route key.
    #[derive(Clone, Debug)]
    pub struct WebSocketEvent {
        event_type: String,
        route: String,
        connection_id: String,
        body: Option<String>,
        message_id: String,
        request_id: String,
        stage: String,
        domain_name: String,
        api_id: String,
        connected_at: i64,
        request_time_epoch: i64,
        source_ip: String,
        user_agent: Option<String>,
        authorizer: Option<Value>,
        headers: Vec<(String, String)>,
        query: Vec<(String, String)>,
    }

    impl WebSocketEvent {
        /// An event of `event_type` (`CONNECT`, `MESSAGE`, `DISCONNECT`) on `route`: stage
        /// `ws`, API [`API_ID`], the authorizer context of [`USER`], from 127.0.0.1.
        pub fn new(event_type: &str, route: &str, connection_id: &str) -> Self {
            Self {
                event_type: event_type.to_owned(),
                route: route.to_owned(),
                connection_id: connection_id.to_owned(),
                body: None,
                message_id: MESSAGE_ID.to_owned(),
                request_id: REQUEST_ID.to_owned(),
                stage: "ws".to_owned(),
                domain_name: domain_name(),
                api_id: API_ID.to_owned(),
                connected_at: CONNECTED_AT,
                request_time_epoch: REQUEST_TIME_EPOCH,
                source_ip: "127.0.0.1".to_owned(),
                user_agent: Some("test".to_owned()),
                authorizer: Some(json!({"principalId": USER, "username": USER})),
                headers: Vec::new(),
                query: Vec::new(),
            }
        }

        /// The frame's text.
        pub fn body(mut self, body: impl Into<String>) -> Self {
            self.body = Some(body.into());
            self
        }

        /// A body or none (`null`).
        pub fn maybe_body(mut self, body: Option<&str>) -> Self {
            self.body = body.map(str::to_owned);
            self
        }

        /// The authorizer context of `user`: `{"principalId": user, "username": user}`.
        pub fn user(self, user: &str) -> Self {
            self.authorizer(json!({"principalId": user, "username": user}))
        }

        /// The whole `requestContext.authorizer` object (principalId and context).
        pub fn authorizer(mut self, authorizer: Value) -> Self {
            self.authorizer = Some(authorizer);
            self
        }

        /// No `requestContext.authorizer` (an API without an authorizer).
        pub fn no_authorizer(mut self) -> Self {
            self.authorizer = None;
            self
        }

        /// `requestContext.messageId` (what forwards deduplicate on).
        pub fn message_id(mut self, id: impl Into<String>) -> Self {
            self.message_id = id.into();
            self
        }

        /// `requestContext.requestId`.
        pub fn request_id(mut self, id: impl Into<String>) -> Self {
            self.request_id = id.into();
            self
        }

        /// `requestContext.stage`.
        pub fn stage(mut self, stage: impl Into<String>) -> Self {
            self.stage = stage.into();
            self
        }

        /// `requestContext.domainName`.
        pub fn domain_name(mut self, domain: impl Into<String>) -> Self {
            self.domain_name = domain.into();
            self
        }

        /// `requestContext.connectedAt`, epoch milliseconds.
        pub fn connected_at(mut self, ms: i64) -> Self {
            self.connected_at = ms;
            self
        }

        /// `requestContext.requestTimeEpoch`, epoch milliseconds.
        pub fn request_time_epoch(mut self, ms: i64) -> Self {
            self.request_time_epoch = ms;
            self
        }

        /// `requestContext.identity.sourceIp`.
        pub fn source_ip(mut self, ip: impl Into<String>) -> Self {
            self.source_ip = ip.into();
            self
        }

        /// `requestContext.identity.userAgent` (`None`: absent).
        pub fn user_agent(mut self, agent: Option<&str>) -> Self {
            self.user_agent = agent.map(str::to_owned);
            self
        }

        /// A header (API Gateway sends them on `$connect`); `headers` and
        /// `multiValueHeaders` both carry it.
        pub fn header(mut self, name: &str, value: &str) -> Self {
            self.headers.push((name.to_owned(), value.to_owned()));
            self
        }

        /// A query string parameter of the upgrade request (on `$connect`).
        pub fn query(mut self, name: &str, value: &str) -> Self {
            self.query.push((name.to_owned(), value.to_owned()));
            self
        }

        /// The event as JSON.
        pub fn build(self) -> Value {
            let mut identity = Map::new();
            identity.insert("sourceIp".to_owned(), Value::String(self.source_ip));
            if let Some(agent) = self.user_agent {
                identity.insert("userAgent".to_owned(), Value::String(agent));
            }
            let mut context = json!({
                "routeKey": self.route,
                "eventType": self.event_type,
                "messageId": self.message_id,
                "extendedRequestId": "ZXh0ZW5kZWQwMDA=",
                "requestTime": "22/Nov/2026:03:41:48 +0000",
                "messageDirection": "IN",
                "stage": self.stage,
                "connectedAt": self.connected_at,
                "requestTimeEpoch": self.request_time_epoch,
                "identity": identity,
                "requestId": self.request_id,
                "domainName": self.domain_name,
                "connectionId": self.connection_id,
                "apiId": self.api_id,
            });
            if let (Some(authorizer), Some(context)) = (self.authorizer, context.as_object_mut()) {
                context.insert("authorizer".to_owned(), authorizer);
            }
            let mut event = json!({
                "requestContext": context,
                "body": self.body,
                "isBase64Encoded": false
            });
            if let Some(event) = event.as_object_mut() {
                if !self.headers.is_empty() {
                    event.insert("headers".to_owned(), object(&self.headers));
                    event.insert("multiValueHeaders".to_owned(), multi(&self.headers));
                }
                if !self.query.is_empty() {
                    event.insert("queryStringParameters".to_owned(), object(&self.query));
                    event.insert(
                        "multiValueQueryStringParameters".to_owned(),
                        multi(&self.query),
                    );
                }
            }
            event
        }

        /// The event as the runtime parses it.
        pub fn typed(self) -> ApiGatewayWebsocketProxyRequest {
            typed(self.build(), "ApiGatewayWebsocketProxyRequest")
        }
    }

    /// `{k: [v, ...], ...}` from name/value pairs.
    fn multi(pairs: &[(String, String)]) -> Value {
        let mut out = Map::new();
        for (k, v) in pairs {
            let entry = out
                .entry(k.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(values) = entry {
                values.push(Value::String(v.clone()));
            }
        }
        Value::Object(out)
    }
}

/// The `$connect` REQUEST authorizer's event
/// (`ApiGatewayCustomAuthorizerRequestTypeRequest`).
pub mod authorizer {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;

    /// The `methodArn` of `$connect` on stage `ws` of [`API_ID`].
    pub fn connect_arn() -> String {
        format!("arn:aws:execute-api:{REGION}:000000000000:{API_ID}/ws/$connect")
    }

    /// A REQUEST authorizer event for `$connect`: no headers, no query string.
    pub fn request() -> AuthorizerRequest {
        AuthorizerRequest {
            method_arn: connect_arn(),
            headers: Vec::new(),
            query: Vec::new(),
        }
    }

    /// A REQUEST authorizer event.
    #[derive(Clone, Debug)]
    pub struct AuthorizerRequest {
        method_arn: String,
        headers: Vec<(String, String)>,
        query: Vec<(String, String)>,
    }

    impl AuthorizerRequest {
        /// `methodArn`.
        pub fn method_arn(mut self, arn: impl Into<String>) -> Self {
            self.method_arn = arn.into();
            self
        }

        /// The token as the `token` query parameter.
        pub fn token(self, token: &str) -> Self {
            self.query("token", token)
        }

        /// A query string parameter.
        pub fn query(mut self, name: &str, value: &str) -> Self {
            self.query.push((name.to_owned(), value.to_owned()));
            self
        }

        /// A header (`Sec-WebSocket-Protocol`, `Authorization`, ...).
        pub fn header(mut self, name: &str, value: &str) -> Self {
            self.headers.push((name.to_owned(), value.to_owned()));
            self
        }

        /// The event as JSON.
        pub fn build(self) -> Value {
            json!({
                "type": "REQUEST",
                "methodArn": self.method_arn,
                "headers": object(&self.headers),
                "queryStringParameters": object(&self.query),
                "requestContext": {"stage": "ws", "apiId": API_ID, "requestId": "x"}
            })
        }

        /// The event as the runtime parses it.
        pub fn typed(self) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
            typed(self.build(), "ApiGatewayCustomAuthorizerRequestTypeRequest")
        }
    }
}

/// SQS events (`SqsEvent`) as a queue consumer's function receives them.
pub mod sqs {
    use super::*;
    use aws_lambda_events::sqs::SqsEvent;
    use switchboard_core::Identity;
    use switchboard_core::queue::envelope::{ENVELOPE_VERSION, Envelope, Sender};

    /// The SQS queue name in `eventSourceARN` unless a record says otherwise.
    pub const QUEUE: &str = "chat-orders.fifo";

    /// A batch of records: `{"Records": [...]}`.
    pub fn event(records: impl IntoIterator<Item = Record>) -> Event {
        Event {
            records: records.into_iter().collect(),
        }
    }

    /// A record with this `messageId` and body: receipt handle `rh-{message_id}`,
    /// received once, from [`QUEUE`].
    pub fn record(message_id: &str, body: &str) -> Record {
        Record {
            message_id: message_id.to_owned(),
            body: body.to_owned(),
            receipt_handle: format!("rh-{message_id}"),
            queue: QUEUE.to_owned(),
            attributes: vec![
                ("ApproximateReceiveCount".to_owned(), "1".to_owned()),
                ("SentTimestamp".to_owned(), "1795000000000".to_owned()),
            ],
        }
    }

    /// A record of what a forward puts on the queue: `payload` from `route`, sent by
    /// [`USER`](super::websocket::USER) on
    /// [`CONNECTION_ID`](super::websocket::CONNECTION_ID), in its [`envelope`], grouped
    /// by the user.
    pub fn forwarded(queue: &str, route: &str, payload: Value) -> Record {
        use super::websocket::{CONNECTION_ID, USER};
        let body = envelope(queue, route, CONNECTION_ID, USER, payload);
        record("059f36b4-87a3-44ab-83d2-661975830a7d", &body).fifo(USER, "m-1")
    }

    /// The body a forward puts on the queue (the core's envelope): `payload` sent by
    /// `user` on `connection_id` through `route` to `queue`.
    pub fn envelope(
        queue: &str,
        route: &str,
        connection_id: &str,
        user: &str,
        payload: Value,
    ) -> String {
        let mut context = Map::new();
        context.insert("username".to_owned(), Value::String(user.to_owned()));
        let envelope = Envelope {
            v: ENVELOPE_VERSION,
            queue: queue.to_owned(),
            route: Some(route.to_owned()),
            request_id: Some("N5OsJHnLIAMFZ3g=".to_owned()),
            sent_at: "2026-11-22T10:15:30.123Z".to_owned(),
            sender: Sender {
                connection_id: connection_id.to_owned(),
                identity: Identity::new(user, context),
            },
            payload,
        };
        json!(envelope).to_string()
    }

    /// A batch of SQS records.
    #[derive(Clone, Debug)]
    pub struct Event {
        records: Vec<Record>,
    }

    impl Event {
        /// The event as JSON.
        pub fn build(self) -> Value {
            json!({"Records": self.records.into_iter().map(Record::build).collect::<Vec<_>>()})
        }

        /// The event as the runtime parses it.
        pub fn typed(self) -> SqsEvent {
            typed(self.build(), "SqsEvent")
        }
    }

    /// One SQS record.
    #[derive(Clone, Debug)]
    pub struct Record {
        message_id: String,
        body: String,
        receipt_handle: String,
        queue: String,
        attributes: Vec<(String, String)>,
    }

    impl Record {
        /// A FIFO queue's attributes: `MessageGroupId`, `MessageDeduplicationId` and a
        /// `SequenceNumber`.
        pub fn fifo(self, group: &str, dedup_id: &str) -> Self {
            self.attribute("MessageGroupId", group)
                .attribute("MessageDeduplicationId", dedup_id)
                .attribute("SequenceNumber", "18849496460467696128")
        }

        /// An attribute (`attributes.{name}`), replacing one of the same name.
        pub fn attribute(mut self, name: &str, value: &str) -> Self {
            self.attributes.retain(|(k, _)| k != name);
            self.attributes.push((name.to_owned(), value.to_owned()));
            self
        }

        /// `receiptHandle`.
        pub fn receipt_handle(mut self, handle: impl Into<String>) -> Self {
            self.receipt_handle = handle.into();
            self
        }

        /// The SQS queue name in `eventSourceARN`.
        pub fn queue(mut self, name: impl Into<String>) -> Self {
            self.queue = name.into();
            self
        }

        /// The record as JSON.
        pub fn build(self) -> Value {
            json!({
                "messageId": self.message_id,
                "receiptHandle": self.receipt_handle,
                "body": self.body,
                "attributes": object(&self.attributes),
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{}", self.queue),
                "awsRegion": REGION
            })
        }
    }
}

/// HTTP API events, payload format 2.0 (`ApiGatewayV2httpRequest`).
pub mod http {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    use switchboard_core::backend::{ConnectionRecord, ConnectionStore, Member, StoreError};

    /// The HTTP API's id.
    pub const HTTP_API_ID: &str = "a1b2c3d4e5";

    /// A request with the JWT claims of `alice` (an id token), `Accept: application/json`.
    pub fn request(method: &str, path: &str) -> HttpRequest {
        HttpRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: String::new(),
            headers: vec![("accept".to_owned(), "application/json".to_owned())],
            claims: Some(json!({"cognito:username": "alice", "sub": "u-alice", "token_use": "id"})),
            body: None,
        }
    }

    /// Writes the connections the HTTP API fixture events (`tests/fixtures/http/*.json`)
    /// are about: alice (`AAAAAAAAAAAAAAA=`, connected at 1000) in `lobby`, bob
    /// (`BBBBBBBBBBBBBBB=`, at 2000) in `lobby` and `dev`; records that do not expire.
    pub async fn seed_fixture_connections(store: &dyn ConnectionStore) -> Result<(), StoreError> {
        for (id, user, at, rooms) in [
            ("AAAAAAAAAAAAAAA=", "alice", 1_000_i64, &["lobby"][..]),
            ("BBBBBBBBBBBBBBB=", "bob", 2_000_i64, &["lobby", "dev"][..]),
        ] {
            store
                .put_connection(&ConnectionRecord {
                    connection_id: id.to_owned(),
                    username: user.to_owned(),
                    session_key: ConnectionRecord::session_key_for(at, id),
                    connected_at: at,
                    expires: 4_000_000_000,
                    source_ip: None,
                    user_agent: None,
                    claims: Map::new(),
                })
                .await?;
            for room in rooms {
                let member = Member {
                    connection_id: id.to_owned(),
                    username: user.to_owned(),
                };
                store.join_room(room, &member).await?;
            }
        }
        Ok(())
    }

    /// An HTTP API v2 request.
    #[derive(Clone, Debug)]
    pub struct HttpRequest {
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        claims: Option<Value>,
        body: Option<String>,
    }

    impl HttpRequest {
        /// `rawQueryString` (without `?`).
        pub fn raw_query(mut self, query: impl Into<String>) -> Self {
            self.query = query.into();
            self
        }

        /// A header (lower-case names, as API Gateway sends them).
        pub fn header(mut self, name: &str, value: &str) -> Self {
            self.headers.push((name.to_owned(), value.to_owned()));
            self
        }

        /// The JWT authorizer's claims.
        pub fn claims(mut self, claims: Value) -> Self {
            self.claims = Some(claims);
            self
        }

        /// No authorizer (a route without one).
        pub fn no_authorizer(mut self) -> Self {
            self.claims = None;
            self
        }

        /// The request body (text).
        pub fn body(mut self, body: impl Into<String>) -> Self {
            self.body = Some(body.into());
            self
        }

        /// The event as JSON.
        pub fn build(self) -> Value {
            let host = format!("{HTTP_API_ID}.execute-api.{REGION}.amazonaws.com");
            let mut headers = self.headers;
            headers.push(("host".to_owned(), host.clone()));
            let mut context = json!({
                "accountId": ACCOUNT_ID, "apiId": HTTP_API_ID,
                "domainName": host, "domainPrefix": HTTP_API_ID,
                "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1",
                         "sourceIp": "203.0.113.7", "userAgent": "bench"},
                "requestId": "BkbP1jXnDoEEMDQ=", "routeKey": "$default", "stage": "$default",
                "time": "22/Nov/2026:09:40:00 +0000", "timeEpoch": 1_795_000_000_000_i64
            });
            if let (Some(claims), Some(context)) = (self.claims, context.as_object_mut()) {
                context.insert(
                    "authorizer".to_owned(),
                    json!({"jwt": {"claims": claims, "scopes": null}}),
                );
            }
            let mut event = json!({
                "version": "2.0", "routeKey": "$default", "rawPath": self.path,
                "rawQueryString": self.query,
                "headers": object(&headers),
                "requestContext": context,
                "isBase64Encoded": false
            });
            if let (Some(body), Some(event)) = (self.body, event.as_object_mut()) {
                event.insert("body".to_owned(), Value::String(body));
            }
            event
        }

        /// The event as `aws_lambda_events` parses it.
        pub fn typed(self) -> ApiGatewayV2httpRequest {
            typed(self.build(), "ApiGatewayV2httpRequest")
        }
    }
}

/// Cognito user pool triggers.
pub mod cognito {
    use super::*;
    use aws_lambda_events::cognito::CognitoEventUserPoolsPreSignup;

    /// A `PreSignUp_SignUp` event for `user` (email `{user}@example.com`), nothing
    /// confirmed yet.
    pub fn pre_signup(user: &str) -> PreSignUp {
        PreSignUp {
            user: user.to_owned(),
            trigger_source: "PreSignUp_SignUp".to_owned(),
        }
    }

    /// A pre-sign-up trigger event.
    #[derive(Clone, Debug)]
    pub struct PreSignUp {
        user: String,
        trigger_source: String,
    }

    impl PreSignUp {
        /// `triggerSource` (`PreSignUp_SignUp`, `PreSignUp_AdminCreateUser`, ...).
        pub fn trigger_source(mut self, source: impl Into<String>) -> Self {
            self.trigger_source = source.into();
            self
        }

        /// The event as JSON.
        pub fn build(self) -> Value {
            json!({
                "version": "1", "region": REGION, "userPoolId": "us-east-1_TestPool",
                "userName": self.user,
                "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "testclient123"},
                "triggerSource": self.trigger_source,
                "request": {
                    "userAttributes": {"email": format!("{}@example.com", self.user)},
                    "validationData": null,
                    "clientMetadata": {}
                },
                "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
            })
        }

        /// The event as the runtime parses it.
        pub fn typed(self) -> CognitoEventUserPoolsPreSignup {
            typed(self.build(), "CognitoEventUserPoolsPreSignup")
        }
    }
}
