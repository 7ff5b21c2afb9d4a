//! Dispatch of API Gateway events in AWS's shape: fixtures parsed by `aws_lambda_events`,
//! dispatched to registered handlers, and round-tripped.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{Value, json};
use switchboard::backend::{
    ConnectionInfo, ConnectionRecord, ConnectionsClient, Member, PostError,
};
use switchboard::dispatch::{Dispatcher, MAX_CONNECTION_AGE_SECS, RECORD_TTL_MARGIN_SECS};
use switchboard::handler::{BoxedHandler, erase};
use switchboard::prelude::*;
use switchboard::registry::{Registry, RegistryError, RouteKind, RouteOptions, SourceLocation};

const CONNECT: &str = include_str!("fixtures/connect.json");
const MESSAGE: &str = include_str!("fixtures/message.json");
const DISCONNECT: &str = include_str!("fixtures/disconnect.json");

#[derive(Deserialize)]
struct Greet {
    name: String,
}

/// Greets by name, saying who asked.
#[ws_route("greet")]
async fn greet(ctx: Ctx, id: ConnectionId, who: Identity, Json(g): Json<Greet>) -> Json<Value> {
    Json(json!({
        "hello": g.name,
        "from": who.username(),
        "connectionId": id.0,
        "route": ctx.route(),
        "groups": who.claim("groups"),
    }))
}

#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

#[ws_route("count")]
async fn count(State(counter): State<Counter>) -> String {
    let n = counter.0.fetch_add(1, Ordering::SeqCst) + 1;
    n.to_string()
}

#[ws_route("explode")]
async fn explode() -> Result<(), WsError> {
    panic!("boom")
}

#[ws_route("replyLater")]
async fn reply_later(ctx: Ctx) -> Result<(), WsError> {
    ctx.reply(&json!({"action": "later"}))?;
    Ok(())
}

#[derive(Deserialize)]
struct Room {
    room: String,
}

#[ws_route("shout")]
async fn shout(ctx: Ctx, Json(r): Json<Room>) -> Result<Json<Delivery>, WsError> {
    let delivery = ctx.room(&r.room).send(&json!({"action": "shout"})).await?;
    Ok(Json(delivery))
}

static CONNECT_SEEN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

#[ws_connect]
async fn on_connect(ctx: Ctx) -> Result<(), WsError> {
    let event = ctx.event();
    let room = event
        .query_string_parameters
        .first("room")
        .unwrap_or_default()
        .to_owned();
    let host = event
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if room == "forbidden" {
        return Err(WsError::forbidden("not this room"));
    }
    CONNECT_SEEN.lock().unwrap().push((room, host));
    Ok(())
}

/// Records posts; ids in `gone` answer 410.
#[derive(Default)]
struct Recorder {
    posts: Mutex<Vec<(String, String)>>,
    gone: Mutex<HashSet<String>>,
    deleted: Mutex<Vec<String>>,
}

#[async_trait]
impl ConnectionsClient for Recorder {
    async fn post(&self, id: &str, frame: &Frame) -> Result<(), PostError> {
        if self.gone.lock().unwrap().contains(id) {
            return Err(PostError::Gone(id.to_owned()));
        }
        let text = frame.as_text().unwrap_or_default().to_owned();
        self.posts.lock().unwrap().push((id.to_owned(), text));
        Ok(())
    }
    async fn get(&self, id: &str) -> Result<ConnectionInfo, PostError> {
        Err(PostError::Gone(id.to_owned()))
    }
    async fn delete(&self, id: &str) -> Result<(), PostError> {
        self.deleted.lock().unwrap().push(id.to_owned());
        Ok(())
    }
}

fn setup() -> (Dispatcher, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let app = App::new().state(Counter::default());
    (app.dispatcher(recorder.clone()).unwrap(), recorder)
}

fn event(json: &str) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_str(json).unwrap()
}

fn message(route: &str, body: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut e = event(MESSAGE);
    e.request_context.route_key = Some(route.to_owned());
    e.body = Some(body.to_owned());
    e
}

fn body_json(outcome: &switchboard::dispatch::Outcome) -> Value {
    serde_json::from_str(outcome.body.as_ref().unwrap().as_text().unwrap()).unwrap()
}

#[test]
fn fixtures_round_trip() {
    for fixture in [CONNECT, MESSAGE, DISCONNECT] {
        let parsed = event(fixture);
        let again: ApiGatewayWebsocketProxyRequest =
            serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(parsed, again);
    }
    let d = event(DISCONNECT);
    assert_eq!(d.request_context.disconnect_status_code, Some(1001));
    assert_eq!(d.request_context.event_type.as_deref(), Some("DISCONNECT"));
}

#[tokio::test]
async fn connect_message_disconnect() {
    let (dispatcher, _) = setup();
    let store = dispatcher.services().store.clone();

    let outcome = dispatcher.dispatch(event(CONNECT)).await;
    assert_eq!(outcome.status, 200, "{outcome:?}");
    let record = store
        .get_connection("N5OsJdBsIAMCJ_Q=")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.username, "alice");
    assert_eq!(record.claims["groups"], "admins");
    assert!(record.claims.get("integrationLatency").is_none());
    assert_eq!(record.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        record.expires,
        1_793_433_956_345 / 1000 + MAX_CONNECTION_AGE_SECS + RECORD_TTL_MARGIN_SECS
    );
    assert_eq!(record.session_key, "1793433956345#N5OsJdBsIAMCJ_Q=");
    assert!(CONNECT_SEEN.lock().unwrap().contains(&(
        "lobby".to_owned(),
        "abcdef1234.execute-api.us-east-1.amazonaws.com".to_owned()
    )));

    let outcome = dispatcher.dispatch(event(MESSAGE)).await;
    assert_eq!(outcome.status, 200);
    let reply = body_json(&outcome);
    assert_eq!(reply["hello"], "Bob");
    assert_eq!(reply["from"], "alice");
    assert_eq!(reply["connectionId"], "N5OsJdBsIAMCJ_Q=");
    assert_eq!(reply["route"], "greet");
    assert_eq!(reply["groups"], "admins");

    let outcome = dispatcher.dispatch(event(DISCONNECT)).await;
    assert_eq!(outcome.status, 200);
    assert!(
        store
            .get_connection("N5OsJdBsIAMCJ_Q=")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn connect_refused_by_override_leaves_no_record() {
    let (dispatcher, _) = setup();
    let mut e = event(CONNECT);
    e.query_string_parameters = serde_json::from_value(json!({"room": "forbidden"})).unwrap();
    let outcome = dispatcher.dispatch(e).await;
    assert_eq!(outcome.status, 403);
    assert!(
        dispatcher
            .services()
            .store
            .get_connection("N5OsJdBsIAMCJ_Q=")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn connect_echoes_first_subprotocol() {
    let (dispatcher, _) = setup();
    let mut e = event(CONNECT);
    e.headers.insert(
        "sec-websocket-protocol",
        "chat.v2, token.abc".parse().unwrap(),
    );
    let outcome = dispatcher.dispatch(e).await;
    assert_eq!(
        outcome.headers,
        vec![("Sec-WebSocket-Protocol", "chat.v2".to_owned())]
    );
}

#[tokio::test]
async fn bad_payload_is_an_error_frame() {
    let (dispatcher, _) = setup();
    for body in [
        r#"{"action":"greet"}"#,
        r#"{"action":"greet","name":5}"#,
        "not json",
    ] {
        let outcome = dispatcher.dispatch(message("greet", body)).await;
        let frame = body_json(&outcome);
        assert_eq!(frame["error"]["code"], "bad_payload", "{body}");
        assert_eq!(frame["error"]["route"], "greet");
        assert!(
            frame["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid payload")
        );
    }
}

#[tokio::test]
async fn default_route_names_unknown_and_known_actions() {
    let (dispatcher, _) = setup();
    assert_eq!(dispatcher.route_for(r#"{"action":"zzz"}"#), "$default");
    assert_eq!(dispatcher.route_for(r#"{"action":"greet"}"#), "greet");
    assert_eq!(dispatcher.route_for(r#"{"action":"$connect"}"#), "$default");
    let outcome = dispatcher
        .dispatch(message("$default", r#"{"action":"zzz"}"#))
        .await;
    let frame = body_json(&outcome);
    assert_eq!(frame["error"]["code"], "unknown_route");
    let text = frame["error"]["message"].as_str().unwrap();
    assert!(text.contains("`zzz`"), "{text}");
    assert!(text.contains("greet") && text.contains("ping"), "{text}");

    let outcome = dispatcher.dispatch(message("$default", "hello")).await;
    let text = body_json(&outcome)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("JSON"), "{text}");

    let outcome = dispatcher.dispatch(message("nope", "{}")).await;
    assert_eq!(body_json(&outcome)["error"]["code"], "unknown_route");
}

#[tokio::test]
async fn builtin_ping() {
    let (dispatcher, _) = setup();
    let outcome = dispatcher
        .dispatch(message("ping", r#"{"action":"ping"}"#))
        .await;
    assert_eq!(body_json(&outcome), json!({"action": "pong"}));
}

#[tokio::test]
async fn panics_become_internal_errors() {
    let (dispatcher, _) = setup();
    let outcome = dispatcher.dispatch(message("explode", "{}")).await;
    let frame = body_json(&outcome);
    assert_eq!(frame["error"]["code"], "internal");
    assert_eq!(frame["error"]["message"], "internal error");
    assert_eq!(outcome.status, 500);
}

#[tokio::test]
async fn state_and_ctx_reply() {
    let (dispatcher, _) = setup();
    for expected in ["1", "2"] {
        let outcome = dispatcher.dispatch(message("count", "{}")).await;
        assert_eq!(outcome.body.unwrap().as_text(), Some(expected));
    }
    let outcome = dispatcher.dispatch(message("replyLater", "{}")).await;
    assert_eq!(body_json(&outcome), json!({"action": "later"}));
}

#[test]
fn missing_state_is_a_start_error() {
    let err = App::new()
        .dispatcher(Arc::new(Recorder::default()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("count") && err.contains("Counter"), "{err}");
}

#[tokio::test]
async fn unknown_event_type() {
    let (dispatcher, _) = setup();
    let mut e = event(MESSAGE);
    e.request_context.event_type = Some("SOMETHING".to_owned());
    let outcome = dispatcher.dispatch(e).await;
    assert_eq!(body_json(&outcome)["error"]["code"], "bad_event");
}

#[tokio::test]
async fn gone_recipients_are_removed_not_the_sender() {
    let (dispatcher, recorder) = setup();
    let store = dispatcher.services().store.clone();
    for (id, user) in [("N5OsJdBsIAMCJ_Q=", "alice"), ("Zm9vYmFyYmF6cXV4=", "bob")] {
        store
            .put_connection(&ConnectionRecord {
                connection_id: id.to_owned(),
                username: user.to_owned(),
                session_key: ConnectionRecord::session_key_for(1, id),
                connected_at: 1,
                expires: 2,
                source_ip: None,
                user_agent: None,
                claims: Default::default(),
            })
            .await
            .unwrap();
        store
            .join_room(
                "r",
                &Member {
                    connection_id: id.to_owned(),
                    username: user.to_owned(),
                },
            )
            .await
            .unwrap();
    }
    recorder
        .gone
        .lock()
        .unwrap()
        .insert("Zm9vYmFyYmF6cXV4=".to_owned());
    let outcome = dispatcher
        .dispatch(message("shout", r#"{"action":"shout","room":"r"}"#))
        .await;
    assert_eq!(
        body_json(&outcome),
        json!({"delivered": 1, "gone": 1, "failed": 0})
    );
    assert!(
        store
            .get_connection("Zm9vYmFyYmF6cXV4=")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_connection("N5OsJdBsIAMCJ_Q=")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.room_members("r").await.unwrap().len(), 1);
    assert_eq!(recorder.posts.lock().unwrap().len(), 1);
}

fn handler() -> BoxedHandler {
    erase(count)
}

fn def(key: &'static str, file: &'static str, line: u32) -> switchboard::RouteDef {
    switchboard::RouteDef {
        key,
        kind: RouteKind::Custom,
        function: "count",
        module: "tests",
        location: SourceLocation { file, line },
        options: RouteOptions::default(),
        doc: "",
        handler,
    }
}

#[test]
fn registry_rejects_duplicates_naming_both_places() {
    let err =
        Registry::from_defs([def("a", "src/x.rs", 10), def("a", "src/y.rs", 20)]).unwrap_err();
    assert!(matches!(err, RegistryError::DuplicateKey { .. }));
    let text = err.to_string();
    assert!(
        text.contains("src/x.rs:10") && text.contains("src/y.rs:20"),
        "{text}"
    );
    assert!(Registry::from_defs([def("$x", "f", 1)]).is_err());
    assert!(Registry::from_defs([def("", "f", 1)]).is_err());
}

#[test]
fn registry_order_is_stable_and_includes_builtins() {
    let reg = Registry::from_defs([def("b", "f", 1), def("a", "f", 2)]).unwrap();
    let keys: Vec<&str> = reg.routes().iter().map(|r| r.def.key).collect();
    assert_eq!(
        keys,
        ["$connect", "$disconnect", "$default", "a", "b", "ping"]
    );
    assert!(reg.get("ping").unwrap().builtin);
    assert!(!reg.get("a").unwrap().builtin);
    // The linked registry of this test binary.
    let linked = switchboard::routes().unwrap();
    assert!(!linked.get("$connect").unwrap().builtin);
    assert!(linked.get("$disconnect").unwrap().builtin);
    assert_eq!(
        linked.get("greet").unwrap().def.location.file,
        "switchboard/tests/dispatch.rs"
    );
}

#[test]
fn manifest_lists_routes_with_capabilities() {
    let manifest = App::new().name("t").manifest().unwrap();
    let json = serde_json::to_value(&manifest).unwrap();
    assert_eq!(json["app"], "t");
    assert_eq!(json["routeSelectionExpression"], "$request.body.action");
    let greet = json["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "greet")
        .unwrap();
    assert_eq!(greet["fn"], "greet");
    assert_eq!(greet["returnsValue"], true);
    assert_eq!(greet["capabilities"]["connections"], true);
    assert_eq!(greet["doc"], "Greets by name, saying who asked.");
    let count = json["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "count")
        .unwrap();
    assert_eq!(count["capabilities"]["connections"], false);
    assert!(
        count["capabilities"]["state"][0]
            .as_str()
            .unwrap()
            .ends_with("Counter")
    );
}

#[tokio::test]
async fn expired_tokens_close_the_connection() {
    let (dispatcher, recorder) = setup();
    let mut e = message("ping", r#"{"action":"ping"}"#);
    let now = e.request_context.request_time_epoch / 1000;
    e.request_context
        .authorizer
        .fields
        .insert("expiresAt".to_owned(), json!(now - 1));
    let outcome = dispatcher.dispatch(e).await;
    assert_eq!(body_json(&outcome)["error"]["code"], "token_expired");
    assert_eq!(
        *recorder.deleted.lock().unwrap(),
        vec!["N5OsJdBsIAMCJ_Q=".to_owned()]
    );

    let mut e = message("ping", r#"{"action":"ping"}"#);
    e.request_context
        .authorizer
        .fields
        .insert("expiresAt".to_owned(), json!(now + 60));
    let outcome = dispatcher.dispatch(e).await;
    assert_eq!(body_json(&outcome), json!({"action": "pong"}));
}

#[tokio::test]
async fn a_token_offered_as_subprotocol_is_not_echoed() {
    let (dispatcher, _) = setup();
    let mut e = event(CONNECT);
    e.headers.insert(
        "sec-websocket-protocol",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln, switchboard"
            .parse()
            .unwrap(),
    );
    let outcome = dispatcher.dispatch(e).await;
    assert_eq!(
        outcome.headers,
        vec![("Sec-WebSocket-Protocol", "switchboard".to_owned())]
    );
}
