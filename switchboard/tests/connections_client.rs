//! The AWS `@connections` client ([`ManagementApi`]) against the local gateway's
//! management API (real sockets, real 410s) and against a scripted HTTP stub (429s,
//! 5xx, status-only errors, request counting).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use switchboard::aws::AwsSettings;
use switchboard::aws::connections::{MAX_PAYLOAD_BYTES, ManagementApi};
use switchboard::backend::memory::MemoryStore;
use switchboard::backend::{
    ConnectionRecord, ConnectionStore, ConnectionsClient, Member, PostError, RoomSummary,
    StoreError,
};
use switchboard::ids;
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard::prelude::*;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const STEP: Duration = Duration::from_secs(10);
const USER_AGENT: &str = "switchboard-connections-test/1";

/// Every network await is bounded.
async fn step<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(STEP, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {STEP:?}: {what}"),
    }
}

// ---------------------------------------------------------------------------------------
// Test routes (only in this test binary).

/// Answers with the caller's connection id.
#[ws_route("whoami")]
async fn whoami(id: ConnectionId) -> String {
    id.0
}

/// Broadcasts `{"action":"fanned","round":N}` to every recorded connection and answers
/// with the delivery counts.
#[ws_route("fanout")]
async fn fanout(ctx: Ctx, Json(body): Json<Value>) -> Result<Json<Delivery>, WsError> {
    let delivery = ctx
        .broadcast()
        .send(&json!({"action": "fanned", "round": body["round"]}))
        .await?;
    Ok(Json(delivery))
}

// ---------------------------------------------------------------------------------------
// Helpers.

async fn gateway(app: App) -> LocalGateway {
    let config = LocalConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    step("starting the gateway", app.serve_local(config))
        .await
        .expect("gateway starts")
}

fn api_for(endpoint: &str) -> ManagementApi {
    ManagementApi::new(&AwsSettings::local(endpoint), endpoint)
}

async fn connect(gw: &LocalGateway, user: &str) -> Ws {
    let url = format!("{}?user={user}", gw.ws_url());
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("user-agent", HeaderValue::from_static(USER_AGENT));
    let (ws, _) = step(
        &format!("connecting as {user}"),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .unwrap_or_else(|e| panic!("connecting as {user} failed: {e}"));
    ws
}

/// The next data message (text or binary), skipping control frames.
async fn next_message(ws: &mut Ws) -> Message {
    loop {
        let msg = step("waiting for a message", ws.next())
            .await
            .expect("socket ended")
            .expect("socket error");
        match msg {
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            other => return other,
        }
    }
}

async fn next_text(ws: &mut Ws) -> String {
    match next_message(ws).await {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn whoami_of(ws: &mut Ws) -> String {
    step(
        "sending whoami",
        ws.send(Message::text(r#"{"action":"whoami"}"#)),
    )
    .await
    .unwrap();
    next_text(ws).await
}

/// Asserts nothing more arrives within `quiet`.
async fn assert_silent(ws: &mut Ws, quiet: Duration) {
    if let Ok(Some(msg)) = tokio::time::timeout(quiet, ws.next()).await {
        panic!("unexpected extra message: {msg:?}");
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---------------------------------------------------------------------------------------
// A scripted `@connections` stub: answers by a function of (attempt number, method),
// counts requests and keeps their raw paths.

type Script = dyn Fn(usize, &Method) -> (u16, Option<&'static str>, String) + Send + Sync;

struct StubState {
    hits: AtomicUsize,
    paths: Mutex<Vec<String>>,
    script: Box<Script>,
}

struct Stub {
    url: String,
    state: Arc<StubState>,
}

impl Stub {
    async fn start(
        script: impl Fn(usize, &Method) -> (u16, Option<&'static str>, String) + Send + Sync + 'static,
    ) -> Self {
        let state = Arc::new(StubState {
            hits: AtomicUsize::new(0),
            paths: Mutex::new(Vec::new()),
            script: Box::new(script),
        });
        let listener = step("binding the stub", TcpListener::bind("127.0.0.1:0"))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .fallback(stub_handler)
            .with_state(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url: format!("http://{addr}/ws"),
            state,
        }
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn paths(&self) -> Vec<String> {
        self.state.paths.lock().unwrap().clone()
    }
}

async fn stub_handler(
    AxumState(state): AxumState<Arc<StubState>>,
    method: Method,
    uri: Uri,
    _body: Bytes,
) -> Response {
    let n = state.hits.fetch_add(1, Ordering::SeqCst);
    state
        .paths
        .lock()
        .unwrap()
        .push(format!("{method} {}", uri.path()));
    let (status, error_type, body) = (state.script)(n, &method);
    let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(t) = error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(t));
    }
    response
}

const CONNECTED_AT: &str = "2026-01-02T03:04:05.678Z";
const LAST_ACTIVE_AT: &str = "2026-01-02T03:09:10.123Z";

/// A 2xx answer in the shape of the operation.
fn ok_answer(method: &Method) -> (u16, Option<&'static str>, String) {
    if *method == Method::GET {
        let body = json!({
            "connectedAt": CONNECTED_AT,
            "lastActiveAt": LAST_ACTIVE_AT,
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "stub-agent"},
        });
        (200, None, body.to_string())
    } else if *method == Method::DELETE {
        (204, None, String::new())
    } else {
        (200, None, String::new())
    }
}

fn throttled() -> (u16, Option<&'static str>, String) {
    (
        429,
        Some("LimitExceededException"),
        r#"{"message":"Rate exceeded"}"#.to_owned(),
    )
}

// ---------------------------------------------------------------------------------------
// A store shared by the gateway and a separate dispatcher.

#[derive(Clone, Default)]
struct Shared(Arc<MemoryStore>);

#[async_trait]
impl ConnectionStore for Shared {
    async fn put_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.0.put_connection(record).await
    }
    async fn get_connection(&self, id: &str) -> Result<Option<ConnectionRecord>, StoreError> {
        self.0.get_connection(id).await
    }
    async fn remove_connection(&self, id: &str) -> Result<Option<ConnectionRecord>, StoreError> {
        self.0.remove_connection(id).await
    }
    async fn user_connections(&self, user: &str) -> Result<Vec<ConnectionRecord>, StoreError> {
        self.0.user_connections(user).await
    }
    async fn list_connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        self.0.list_connections().await
    }
    async fn connection_ids(&self) -> Result<Vec<String>, StoreError> {
        self.0.connection_ids().await
    }
    async fn join_room(&self, room: &str, member: &Member) -> Result<bool, StoreError> {
        self.0.join_room(room, member).await
    }
    async fn leave_room(&self, room: &str, id: &str) -> Result<bool, StoreError> {
        self.0.leave_room(room, id).await
    }
    async fn room_members(&self, room: &str) -> Result<Vec<Member>, StoreError> {
        self.0.room_members(room).await
    }
    async fn rooms_of(&self, id: &str) -> Result<Vec<String>, StoreError> {
        self.0.rooms_of(id).await
    }
    async fn rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
        self.0.rooms().await
    }
}

fn message_event(
    connection_id: &str,
    route: &str,
    body: &Value,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    let rc = &mut event.request_context;
    rc.event_type = Some("MESSAGE".to_owned());
    rc.route_key = Some(route.to_owned());
    rc.connection_id = Some(connection_id.to_owned());
    rc.connected_at = now_ms() - 1_000;
    rc.request_time_epoch = now_ms();
    rc.stage = Some("ws".to_owned());
    rc.domain_name = Some("127.0.0.1".to_owned());
    rc.request_id = Some(ids::new_id());
    rc.message_id = Some(ids::new_id());
    event.body = Some(body.to_string());
    event
}

fn stale_record(connection_id: &str) -> ConnectionRecord {
    let connected_at = now_ms() - 60_000;
    ConnectionRecord {
        connection_id: connection_id.to_owned(),
        username: "ghost".to_owned(),
        session_key: ConnectionRecord::session_key_for(connected_at, connection_id),
        connected_at,
        expires: connected_at / 1000 + 3 * 3600,
        source_ip: None,
        user_agent: None,
        claims: Map::new(),
    }
}

// ---------------------------------------------------------------------------------------
// 1. Against the local gateway: real sockets.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_get_delete_round_trip_on_real_sockets() {
    let gw = gateway(App::new().dev_auth()).await;
    let api = api_for(&gw.management_url());
    assert_eq!(api.endpoint(), Some(gw.management_url().as_str()));

    // Ids are URL-safe base64 ending in `=`; open sockets until the ids seen cover `-`
    // and `_` too, so that the SDK's path encoding of each is exercised.
    let mut sockets: Vec<(String, Ws)> = Vec::new();
    let covered = |s: &[(String, Ws)], c: char| s.iter().any(|(id, _)| id.contains(c));
    let before = now_ms();
    // At least two: the first is deleted below, the last closes by itself (one id with
    // both characters would otherwise leave the deleted socket to close again).
    while sockets.len() < 2
        || (sockets.len() < 60 && !(covered(&sockets, '-') && covered(&sockets, '_')))
    {
        let mut ws = connect(&gw, "alice").await;
        let id = whoami_of(&mut ws).await;
        assert!(id.ends_with('='), "{id}");
        sockets.push((id, ws));
    }
    let after = now_ms();
    for c in ['=', '-', '_'] {
        assert!(
            covered(&sockets, c),
            "no id with {c:?} in {} ids",
            sockets.len()
        );
    }

    for (id, ws) in &mut sockets {
        // Text arrives as text, byte for byte.
        let text = format!(r#"{{"action":"hello","to":"{id}","emoji":"✓"}}"#);
        step("post", api.post(id, &Frame::text(text.clone())))
            .await
            .unwrap_or_else(|e| panic!("post to {id}: {e}"));
        assert_eq!(next_text(ws).await, text);

        // GET: epoch milliseconds from the ISO-8601 answer, identity.
        let info = step("get", api.get(id)).await.unwrap();
        assert!(
            (before - 1_000..=after + 1_000).contains(&info.connected_at),
            "connected_at {} not within [{before}, {after}]",
            info.connected_at
        );
        assert!(info.last_active_at >= info.connected_at, "{info:?}");
        assert!(info.last_active_at <= now_ms() + 1_000, "{info:?}");
        assert_eq!(info.source_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(info.user_agent.as_deref(), Some(USER_AGENT));
    }

    let (id, ws) = &mut sockets[0];

    // Binary data survives (not UTF-8, so the gateway sends a binary frame).
    let bytes = vec![0xff, 0x00, 0xfe, b'=', 0x80];
    step("post binary", api.post(id, &Frame::binary(bytes.clone())))
        .await
        .unwrap();
    match next_message(ws).await {
        Message::Binary(b) => assert_eq!(b.as_ref(), bytes.as_slice()),
        other => panic!("expected binary, got {other:?}"),
    }

    // Exactly 128 KB is allowed.
    let big = "x".repeat(MAX_PAYLOAD_BYTES);
    step("post 128 KB", api.post(id, &Frame::text(big.clone())))
        .await
        .unwrap();
    assert_eq!(next_text(ws).await.len(), MAX_PAYLOAD_BYTES);

    // DELETE closes the socket with 1000; afterwards everything is gone.
    step("delete", api.delete(id)).await.unwrap();
    let close = loop {
        match step("waiting for the close frame", ws.next()).await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Normal));
    let gone = PostError::Gone(id.clone());
    // The gateway forgets the socket as soon as its task ends; wait for it.
    let deadline = Instant::now() + STEP;
    loop {
        match step("post after delete", api.post(id, &Frame::text("late"))).await {
            Err(e) => {
                assert_eq!(e, gone);
                break;
            }
            Ok(()) => assert!(Instant::now() < deadline, "still deliverable after delete"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        step("get after delete", api.get(id)).await,
        Err(PostError::Gone(id.clone()))
    );
    assert_eq!(step("delete after delete", api.delete(id)).await, Err(gone));

    // A client that closes by itself: post -> Gone.
    let (id2, mut ws2) = sockets.pop().unwrap();
    step("client close", ws2.close(None)).await.unwrap();
    let deadline = Instant::now() + STEP;
    loop {
        match step("post after close", api.post(&id2, &Frame::text("late"))).await {
            Err(e) => {
                assert_eq!(e, PostError::Gone(id2.clone()));
                break;
            }
            Ok(()) => assert!(Instant::now() < deadline, "still deliverable after close"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // An id that never existed.
    let never = ids::new_id();
    assert_eq!(
        step("post unknown", api.post(&never, &Frame::text("?"))).await,
        Err(PostError::Gone(never.clone()))
    );

    step("shutdown", gw.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_stage_is_forbidden() {
    let gw = gateway(App::new().dev_auth()).await;
    let mut ws = connect(&gw, "bob").await;
    let id = whoami_of(&mut ws).await;
    let wrong = format!("{}/prod", gw.http_url());
    let api = api_for(&wrong);
    for result in [
        step("post", api.post(&id, &Frame::text("x"))).await,
        step("get", api.get(&id)).await.map(|_| ()),
        step("delete", api.delete(&id)).await,
    ] {
        match result {
            Err(PostError::Forbidden(m)) => {
                assert!(m.contains("ForbiddenException"), "{m}");
                assert!(m.contains("/prod"), "{m}");
            }
            other => panic!("expected Forbidden, got {other:?}"),
        }
    }
    // Nothing reached the socket.
    assert_silent(&mut ws, Duration::from_millis(100)).await;
    step("shutdown", gw.shutdown()).await;
}

#[tokio::test]
async fn oversized_frames_are_refused_without_a_request() {
    let stub = Stub::start(|_, _| {
        (
            413,
            Some("PayloadTooLargeException"),
            r#"{"message":"Payload too large"}"#.to_owned(),
        )
    })
    .await;
    let api = api_for(&stub.url);
    let id = ids::new_id();

    let size = 129 * 1024;
    let result = api.post(&id, &Frame::text("x".repeat(size))).await;
    assert_eq!(
        result,
        Err(PostError::PayloadTooLarge {
            size,
            limit: 128 * 1024
        })
    );
    assert_eq!(stub.hits(), 0, "an oversized frame must not be sent");

    // One byte over is refused too; the limit itself is sent (and here the stub's 413
    // maps to the same error, with the size of the frame).
    let over = api
        .post(&id, &Frame::text("x".repeat(MAX_PAYLOAD_BYTES + 1)))
        .await;
    assert!(
        matches!(over, Err(PostError::PayloadTooLarge { .. })),
        "{over:?}"
    );
    assert_eq!(stub.hits(), 0);
    let at_limit = step(
        "post at the limit",
        api.post(&id, &Frame::text("x".repeat(MAX_PAYLOAD_BYTES))),
    )
    .await;
    assert_eq!(
        at_limit,
        Err(PostError::PayloadTooLarge {
            size: MAX_PAYLOAD_BYTES,
            limit: MAX_PAYLOAD_BYTES
        })
    );
    assert_eq!(stub.hits(), 1);
}

// ---------------------------------------------------------------------------------------
// 2. Fan-out through a dispatcher to 500 real sockets.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fanout_to_500_connections_with_stale_cleanup() {
    const N: usize = 500;
    const STALE: usize = 50;
    let started = Instant::now();
    let store = Shared::default();
    let gw = gateway(App::new().dev_auth().store(store.clone())).await;

    let mut clients: Vec<Ws> = futures_util::stream::iter(0..N)
        .map(|i| {
            let gw = &gw;
            async move { connect(gw, &format!("user{i}")).await }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    assert_eq!(clients.len(), N);
    let live: HashSet<String> = store.connection_ids().await.unwrap().into_iter().collect();
    assert_eq!(live.len(), N, "every $connect is recorded");
    assert_eq!(gw.open_connections(), N);

    let api = api_for(&gw.management_url());
    let dispatcher = App::new()
        .store(store.clone())
        .dispatcher(Arc::new(api))
        .unwrap();
    let caller = live.iter().next().unwrap().clone();

    let broadcast = |round: u64| {
        let event = message_event(
            &caller,
            "fanout",
            &json!({"action": "fanout", "round": round}),
        );
        let dispatcher = dispatcher.clone();
        async move {
            let outcome = step("dispatching the fan-out", dispatcher.dispatch(event)).await;
            assert!(outcome.is_success(), "{outcome:?}");
            let body = outcome.body.expect("a delivery report");
            serde_json::from_str::<Value>(body.as_text().unwrap()).unwrap()
        }
    };
    let expect_round = |round: u64| json!({"action": "fanned", "round": round}).to_string();

    // Round 1: everyone, once.
    let delivery = broadcast(1).await;
    assert_eq!(delivery, json!({"delivered": N, "gone": 0, "failed": 0}));
    let got = futures_util::future::join_all(clients.iter_mut().map(next_text)).await;
    assert!(got.iter().all(|t| *t == expect_round(1)));

    // 50 stale records: ids the gateway never had.
    let stale: HashSet<String> = (0..STALE).map(|_| ids::new_id()).collect();
    for id in &stale {
        store.put_connection(&stale_record(id)).await.unwrap();
    }
    assert_eq!(store.connection_ids().await.unwrap().len(), N + STALE);

    // Round 2: the live ones get it, the stale ones are 410 and removed.
    let delivery = broadcast(2).await;
    assert_eq!(
        delivery,
        json!({"delivered": N, "gone": STALE, "failed": 0})
    );
    // The next message after round 1 is round 2: no duplicates of either.
    let got = futures_util::future::join_all(clients.iter_mut().map(next_text)).await;
    assert!(got.iter().all(|t| *t == expect_round(2)));
    futures_util::future::join_all(
        clients
            .iter_mut()
            .map(|ws| assert_silent(ws, Duration::from_millis(300))),
    )
    .await;

    let after: HashSet<String> = store.connection_ids().await.unwrap().into_iter().collect();
    assert_eq!(after, live, "exactly the stale records were removed");
    assert!(after.is_disjoint(&stale));

    for ws in &mut clients {
        let _ = ws.close(None).await;
    }
    step("shutdown", gw.shutdown()).await;
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// 3. Throttling and the other error paths, against the stub.

#[tokio::test]
async fn throttled_posts_are_retried_then_succeed() {
    let stub = Stub::start(|n, method| {
        if n < 2 {
            throttled()
        } else {
            ok_answer(method)
        }
    })
    .await;
    let api = api_for(&stub.url);
    let id = "N5OsJdBs-AMC_Q=".to_owned();
    let started = Instant::now();
    step("throttled post", api.post(&id, &Frame::text("hi")))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(stub.hits(), 3, "two 429s, then the success");
    // Two retries: at least half of 50 + 100 ms slept.
    assert!(elapsed >= Duration::from_millis(75), "{elapsed:?}");
    // The connection id reached the server percent-encoded, under the stage.
    let paths = stub.paths();
    assert_eq!(paths.len(), 3);
    assert!(
        paths
            .iter()
            .all(|p| p == "POST /ws/@connections/N5OsJdBs-AMC_Q%3D"),
        "{paths:?}"
    );
}

#[tokio::test]
async fn persistent_throttling_ends_in_throttled_within_the_budget() {
    let stub = Stub::start(|n, method| {
        if n < 100 {
            throttled()
        } else {
            ok_answer(method)
        }
    })
    .await;
    let api = api_for(&stub.url);
    let policy = api.throttle_retry();
    assert_eq!(policy.retries, 4);
    assert_eq!(policy.max_total_delay(), Duration::from_millis(750));

    let started = Instant::now();
    let result = step("throttled post", api.post("abc=", &Frame::text("hi"))).await;
    let elapsed = started.elapsed();
    assert_eq!(result, Err(PostError::Throttled));
    // 1 attempt + 4 retries, and no SDK retries on top (that would be 15 requests).
    assert_eq!(stub.hits(), 5);
    assert!(elapsed >= Duration::from_millis(375), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(750 + 1_000), "{elapsed:?}");

    // GET and DELETE follow the same policy.
    assert_eq!(
        step("get", api.get("abc=")).await,
        Err(PostError::Throttled)
    );
    assert_eq!(
        step("delete", api.delete("abc=")).await,
        Err(PostError::Throttled)
    );
    assert_eq!(stub.hits(), 15);
}

#[tokio::test]
async fn get_and_delete_answers_are_mapped() {
    let stub = Stub::start(|n, method| {
        if n == 0 {
            throttled()
        } else {
            ok_answer(method)
        }
    })
    .await;
    let api = api_for(&stub.url);
    let info = step("get", api.get("abc=")).await.unwrap();
    let ms = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(info.connected_at, ms(CONNECTED_AT));
    assert_eq!(info.last_active_at, ms(LAST_ACTIVE_AT));
    assert_eq!(info.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(info.user_agent.as_deref(), Some("stub-agent"));
    step("delete", api.delete("abc=")).await.unwrap();
    assert_eq!(
        stub.paths(),
        [
            "GET /ws/@connections/abc%3D",
            "GET /ws/@connections/abc%3D",
            "DELETE /ws/@connections/abc%3D"
        ]
    );
}

#[tokio::test]
async fn errors_map_by_code_or_by_status_and_are_not_retried() {
    // (status, x-amzn-errortype); 5xx and other 4xx map to Other, which names the code.
    let cases: [(u16, Option<&'static str>); 7] = [
        (410, None),
        (413, None),
        (403, None),
        (403, Some("AccessDeniedException")),
        (500, Some("InternalServerErrorException")),
        (503, Some("ServiceUnavailableException")),
        (400, Some("BadRequestException")),
    ];
    for (status, error_type) in cases {
        let stub = Stub::start(move |_, _| {
            (
                status,
                error_type,
                r#"{"message":"scripted failure"}"#.to_owned(),
            )
        })
        .await;
        let api = api_for(&stub.url);
        let result = step("post", api.post("id-_=", &Frame::text("hi"))).await;
        match (status, &result) {
            (410, Err(PostError::Gone(id))) => assert_eq!(id, "id-_="),
            (413, Err(PostError::PayloadTooLarge { size: 2, limit })) => {
                assert_eq!(*limit, MAX_PAYLOAD_BYTES);
            }
            (403, Err(PostError::Forbidden(m))) => {
                assert!(m.contains("scripted failure"), "{m}");
                let code = error_type.unwrap_or("HTTP 403");
                assert!(m.contains(code), "{m}");
            }
            (_, Err(PostError::Other(m))) if status >= 400 => {
                assert!(m.contains("PostToConnection"), "{m}");
                assert!(m.contains(error_type.unwrap()), "{m}");
                assert!(m.contains("scripted failure"), "{m}");
            }
            _ => panic!("{status} {error_type:?}: unexpected {result:?}"),
        }
        assert_eq!(stub.hits(), 1, "{status}: no retry");
    }

    // Nobody listening: Other, promptly.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let api = api_for(&format!("http://{closed}/ws"));
    match step(
        "post to a closed port",
        api.post("abc=", &Frame::text("hi")),
    )
    .await
    {
        Err(PostError::Other(m)) => assert!(m.contains("PostToConnection"), "{m}"),
        other => panic!("expected Other, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 4. Endpoint resolution.

#[tokio::test]
async fn endpoint_resolution() {
    let settings = AwsSettings::local("http://127.0.0.1:9/not-management").with_endpoint(None);
    let domain = "abc.execute-api.us-east-1.amazonaws.com";
    assert_eq!(
        ManagementApi::endpoint_for(domain, "ws"),
        "https://abc.execute-api.us-east-1.amazonaws.com/ws"
    );

    // Not configured: every call fails (no panic, no request) until an event names it.
    let mut lazies = vec![ManagementApi::with_endpoint(&settings, None)];
    if std::env::var(switchboard::aws::env::MANAGEMENT_ENDPOINT).is_err() {
        lazies.push(ManagementApi::from_events(&settings));
    }
    for api in lazies {
        assert_eq!(api.endpoint(), None);
        assert!(!api.is_configured());
        for result in [
            api.post("abc=", &Frame::text("x")).await,
            api.get("abc=").await.map(|_| ()),
            api.delete("abc=").await,
        ] {
            match result {
                Err(PostError::Other(m)) => {
                    assert!(m.starts_with("no @connections endpoint: "), "{m}");
                }
                other => panic!("expected Other, got {other:?}"),
            }
        }
        let clone = api.clone();
        api.use_event_endpoint(domain, "ws");
        assert_eq!(
            clone.endpoint(),
            Some("https://abc.execute-api.us-east-1.amazonaws.com/ws"),
            "clones share the endpoint"
        );
        // The first event's endpoint stays.
        api.use_event_endpoint("other.execute-api.us-east-1.amazonaws.com", "prod");
        assert_eq!(
            api.endpoint(),
            Some("https://abc.execute-api.us-east-1.amazonaws.com/ws")
        );
    }

    // A configured endpoint wins over every event.
    let explicit = ManagementApi::new(&settings, "http://127.0.0.1:1/ws");
    assert!(explicit.is_configured());
    explicit.use_event_endpoint(domain, "ws");
    assert_eq!(explicit.endpoint(), Some("http://127.0.0.1:1/ws"));
    let explicit = ManagementApi::with_endpoint(
        &settings,
        Some("https://api.example.execute-api.eu-west-1.amazonaws.com/prod/".to_owned()),
    );
    explicit.use_event_endpoint("chat.example.com", "ws");
    assert_eq!(
        explicit.endpoint(),
        Some("https://api.example.execute-api.eu-west-1.amazonaws.com/prod")
    );
}
