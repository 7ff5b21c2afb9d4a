//! A tiny app of its own: what reaches `$connect` and later events, `$connect` refusals
//! turned into upgrade statuses, and `$disconnect`'s status code for each way a
//! connection ends, graceful shutdown included.
//!
//! Its handlers are registered by hand through `App::with_routes`, not with the
//! attribute macros: the test binaries link the chat app, whose `#[ws_disconnect]` is in
//! the global registry, and a second `$disconnect` there is a duplicate key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::handler::{BoxedHandler, erase};
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard::prelude::*;
use switchboard::registry::SourceLocation;
use switchboard::{RouteDef, RouteKind, RouteOptions};
use switchboard_tests::*;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMsg;

/// What the handlers saw, in order.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Value>>>);

impl Recorder {
    fn push(&self, v: Value) {
        self.0.lock().unwrap().push(v);
    }

    fn events(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// Waits until `n` `$disconnect`s were recorded, within [`STEP`].
    async fn disconnects(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + STEP;
        loop {
            let seen = self.of_kind("disconnect");
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{n} disconnects expected, saw {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `$connect`: `?mode=forbid` refuses with 403, `?mode=throttle` with 429;
/// `?mode=selfpost` sends to its own connection first; then records the headers and query
/// string it sees.
async fn on_connect(ctx: Ctx, State(rec): State<Recorder>) -> Result<(), WsError> {
    let event = ctx.event();
    match event.query_string_parameters.first("mode") {
        Some("forbid") => return Err(WsError::forbidden("not you")),
        Some("throttle") => return Err(WsError::new("x", "y").with_status(429)),
        Some("slow") => tokio::time::sleep(Duration::from_millis(500)).await,
        Some("selfpost") => {
            let d = ctx
                .connection(ctx.connection_id().to_owned())
                .send(&json!({"action": "too early"}))
                .await?;
            rec.push(json!({
                "event": "selfpost",
                "delivered": d.delivered,
                "gone": d.gone,
                "failed": d.failed,
            }));
        }
        _ => {}
    }
    let header = |name: &str| {
        event
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    rec.push(json!({
        "event": "connect",
        "connectionId": ctx.connection_id(),
        "route": ctx.route(),
        "eventType": event.request_context.event_type,
        "xTest": header("x-test"),
        "userAgent": header("user-agent"),
        "user": event.query_string_parameters.first("user"),
        "extra": event.query_string_parameters.first("extra"),
        "sourceIp": event.request_context.identity.source_ip,
        "username": ctx.identity().username(),
        "authorizer": event.request_context.authorizer.fields,
        "rc": serde_json::to_value(&event.request_context).unwrap(),
    }));
    Ok(())
}

/// Answers with what a message event carries.
async fn inspect(ctx: Ctx) -> Value {
    let event = ctx.event();
    json!({
        "action": "inspected",
        "route": ctx.route(),
        "eventType": event.request_context.event_type,
        "headers": event.headers.len(),
        "multiValueHeaders": event.multi_value_headers.len(),
        "query": event.query_string_parameters.iter().count(),
        "multiValueQuery": event.multi_value_query_string_parameters.iter().count(),
        "username": ctx.identity().username(),
        "sourceIp": event.request_context.identity.source_ip,
        "userAgent": event.request_context.identity.user_agent,
        "authorizer": event.request_context.authorizer.fields,
        "rc": serde_json::to_value(&event.request_context).unwrap(),
    })
}

/// Takes longer than the test's integration timeout.
async fn slow() -> Value {
    tokio::time::sleep(Duration::from_millis(500)).await;
    json!({"action": "slow"})
}

/// Sends `{"action":"fanned"}` to every recorded connection.
async fn fanout(ctx: Ctx) -> Result<Value, WsError> {
    let d = ctx.broadcast().send(&json!({"action": "fanned"})).await?;
    Ok(json!({"action": "fanout", "delivered": d.delivered, "gone": d.gone}))
}

/// Records the close status and reason.
async fn on_disconnect(ctx: Ctx, State(rec): State<Recorder>) {
    let rc = &ctx.event().request_context;
    rec.push(json!({
        "event": "disconnect",
        "connectionId": ctx.connection_id(),
        "eventType": rc.event_type,
        "code": rc.disconnect_status_code,
        "reason": rc.disconnect_reason,
        "headers": ctx.event().headers.len(),
        "authorizer": rc.authorizer.fields,
        "rc": serde_json::to_value(rc).unwrap(),
    }));
}

fn def(
    key: &'static str,
    kind: RouteKind,
    function: &'static str,
    handler: fn() -> BoxedHandler,
) -> RouteDef {
    RouteDef {
        key,
        kind,
        function,
        module: module_path!(),
        location: SourceLocation {
            file: file!(),
            line: line!(),
        },
        options: RouteOptions::default(),
        doc: "",
        handler,
    }
}

/// This file's routes, and nothing from the global registry.
fn app(rec: &Recorder) -> App {
    App::new()
        .dev_auth()
        .with_routes([
            def("$connect", RouteKind::Connect, "on_connect", || {
                erase(on_connect)
            }),
            def(
                "$disconnect",
                RouteKind::Disconnect,
                "on_disconnect",
                || erase(on_disconnect),
            ),
            def("inspect", RouteKind::Custom, "inspect", || erase(inspect)),
            def("slow", RouteKind::Custom, "slow", || erase(slow)),
            def("fanout", RouteKind::Custom, "fanout", || erase(fanout)),
        ])
        .state(rec.clone())
}

async fn start_app(rec: &Recorder, config: LocalConfig) -> LocalGateway {
    step("start", app(rec).serve_local(config))
        .await
        .expect("start")
}

#[tokio::test]
async fn headers_and_query_reach_connect_only() {
    let rec = Recorder::default();
    let gw = start_app(&rec, config()).await;
    let url = format!("{}?user=alice&extra=1", gw.ws_url());
    let (mut ws, _) = try_connect_url(&url, &[("x-test", "hello")])
        .await
        .expect("upgrade");

    let connects = rec.of_kind("connect");
    assert_eq!(connects.len(), 1, "{connects:?}");
    let c = &connects[0];
    assert_eq!(c["route"], "$connect");
    assert_eq!(c["eventType"], "CONNECT");
    assert_eq!(c["xTest"], "hello");
    assert_eq!(c["userAgent"], USER_AGENT);
    assert_eq!(c["user"], "alice");
    assert_eq!(c["extra"], "1");
    assert_eq!(c["sourceIp"], "127.0.0.1");
    assert_eq!(c["username"], "alice");
    let authorizer = json!({"principalId": "alice", "username": "alice", "authMethod": "dev"});
    assert_eq!(c["authorizer"], authorizer);

    let reply = request(&mut ws, json!({"action": "inspect"}), "inspected").await;
    assert_eq!(reply["route"], "inspect");
    assert_eq!(reply["eventType"], "MESSAGE");
    assert_eq!(reply["headers"], 0, "{reply}");
    assert_eq!(reply["multiValueHeaders"], 0, "{reply}");
    assert_eq!(reply["query"], 0, "{reply}");
    assert_eq!(reply["multiValueQuery"], 0, "{reply}");
    // The identity and requestContext.identity stay on every event.
    assert_eq!(reply["username"], "alice");
    assert_eq!(reply["sourceIp"], "127.0.0.1");
    assert_eq!(reply["userAgent"], USER_AGENT);
    assert_eq!(reply["authorizer"], authorizer);

    close(&mut ws).await;
    let d = rec.disconnects(1).await;
    assert_eq!(d[0]["connectionId"], c["connectionId"]);
    assert_eq!(d[0]["eventType"], "DISCONNECT");
    assert_eq!(d[0]["headers"], 0);
    assert_eq!(d[0]["authorizer"], authorizer);
    shutdown(gw).await;
}

#[tokio::test]
async fn request_context_of_each_event() {
    let rec = Recorder::default();
    let gw = start_app(&rec, config()).await;
    let url = format!("{}?user=alice", gw.ws_url());
    let (mut ws, _) = try_connect_url(&url, &[]).await.expect("upgrade");
    let reply = request(&mut ws, json!({"action": "inspect"}), "inspected").await;
    close(&mut ws).await;
    let d = rec.disconnects(1).await;
    let connect = rec.of_kind("connect")[0]["rc"].clone();
    let message = reply["rc"].clone();
    let disconnect = d[0]["rc"].clone();
    let id = connect["connectionId"].as_str().unwrap();
    assert!(is_aws_connection_id(id), "{id}");
    let authorizer = json!({"principalId": "alice", "username": "alice", "authMethod": "dev"});
    for (rc, route, kind) in [
        (&connect, "$connect", "CONNECT"),
        (&message, "inspect", "MESSAGE"),
        (&disconnect, "$disconnect", "DISCONNECT"),
    ] {
        assert_eq!(rc["routeKey"], route, "{rc:#}");
        assert_eq!(rc["eventType"], kind, "{rc:#}");
        assert_eq!(rc["connectionId"], id, "{rc:#}");
        // Always present, and the same on every event of the connection.
        assert_eq!(rc["connectedAt"], connect["connectedAt"], "{rc:#}");
        assert!(rc["connectedAt"].as_i64().unwrap() > 0, "{rc:#}");
        assert!(
            rc["requestTimeEpoch"].as_i64().unwrap() >= rc["connectedAt"].as_i64().unwrap(),
            "{rc:#}"
        );
        assert!(rc["requestTime"].is_string(), "{rc:#}");
        assert_eq!(rc["stage"], "ws", "{rc:#}");
        assert_eq!(rc["apiId"], connect["apiId"], "{rc:#}");
        assert_eq!(rc["apiId"].as_str().unwrap().len(), 10, "{rc:#}");
        assert_eq!(rc["domainName"], gw.local_addr().to_string(), "{rc:#}");
        assert_eq!(rc["messageDirection"], "IN", "{rc:#}");
        assert!(
            is_aws_connection_id(rc["requestId"].as_str().unwrap()),
            "{rc:#}"
        );
        assert!(rc["extendedRequestId"].is_string(), "{rc:#}");
        assert_eq!(rc["identity"]["sourceIp"], "127.0.0.1", "{rc:#}");
        assert_eq!(rc["identity"]["userAgent"], USER_AGENT, "{rc:#}");
        assert_eq!(rc["authorizer"], authorizer, "{rc:#}");
        // messageId on messages only.
        assert_eq!(rc["messageId"].is_string(), kind == "MESSAGE", "{rc:#}");
    }
    assert_ne!(connect["requestId"], message["requestId"]);
    assert_ne!(message["requestId"], disconnect["requestId"]);
    assert_eq!(disconnect["disconnectStatusCode"], 1000, "{disconnect:#}");
    assert_eq!(disconnect["disconnectReason"], "bye", "{disconnect:#}");
    assert!(connect["disconnectStatusCode"].is_null(), "{connect:#}");
    shutdown(gw).await;
}

#[tokio::test]
async fn connect_errors_set_the_upgrade_status() {
    let rec = Recorder::default();
    let gw = start_app(&rec, config()).await;
    let forbid = format!("{}?user=alice&mode=forbid", gw.ws_url());
    assert_eq!(refused_status(&forbid, &[]).await, 403);
    let throttle = format!("{}?user=alice&mode=throttle", gw.ws_url());
    assert_eq!(refused_status(&throttle, &[]).await, 429);
    // The authorizer runs first: no user is 401 before `$connect` is asked.
    assert_eq!(refused_status(&gw.ws_url(), &[]).await, 401);

    // A refused upgrade leaves no connection, no record, and no `$disconnect`.
    assert_eq!(gw.open_connections(), 0);
    assert!(store_ids(&gw).await.is_empty());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rec.of_kind("disconnect").is_empty(), "{:?}", rec.events());

    // A regular upgrade still works.
    let url = format!("{}?user=alice", gw.ws_url());
    let (mut ws, _) = try_connect_url(&url, &[]).await.expect("upgrade");
    close(&mut ws).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn a_send_to_itself_during_connect_is_gone_and_keeps_the_record() {
    let rec = Recorder::default();
    let gw = start_app(&rec, config()).await;
    let url = format!("{}?user=alice&mode=selfpost", gw.ws_url());
    let (mut ws, _) = try_connect_url(&url, &[]).await.expect("upgrade");
    let selfpost = rec.of_kind("selfpost");
    assert_eq!(
        selfpost,
        [json!({"event": "selfpost", "delivered": 0, "gone": 1, "failed": 0})]
    );
    // The socket was not open yet: nothing arrives later either.
    expect_silence(&mut ws, Duration::from_millis(100)).await;
    // ... and the gone answer did not remove the connection's own record.
    let id = rec.of_kind("connect")[0]["connectionId"].clone();
    let ids = store_ids(&gw).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0], id.as_str().unwrap());
    close(&mut ws).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn integration_timeout() {
    let rec = Recorder::default();
    let gw = start_app(
        &rec,
        LocalConfig {
            integration_timeout: Duration::from_millis(100),
            ..config()
        },
    )
    .await;
    // A slow `$connect`: the upgrade fails with 504.
    let slow = format!("{}?user=alice&mode=slow", gw.ws_url());
    assert_eq!(refused_status(&slow, &[]).await, 504);
    assert_eq!(gw.open_connections(), 0);

    // A slow route: API Gateway's timeout frame, and the connection stays open.
    let url = format!("{}?user=alice", gw.ws_url());
    let (mut ws, _) = try_connect_url(&url, &[]).await.expect("upgrade");
    send_json(&mut ws, &json!({"action": "slow"})).await;
    let frame = recv_json(&mut ws).await;
    assert_eq!(frame["message"], "Endpoint request timed out", "{frame}");
    let id = rec.of_kind("connect").last().unwrap()["connectionId"].clone();
    assert_eq!(frame["connectionId"], id, "{frame}");
    assert!(frame["requestId"].is_string(), "{frame}");
    let pong = request(&mut ws, json!({"action": "ping"}), "pong").await;
    assert_eq!(pong["action"], "pong");
    // The late answer is dropped.
    expect_silence(&mut ws, Duration::from_millis(600)).await;

    // Whatever the timed-out `$connect` left in the store (on AWS its Lambda runs on and
    // records the connection), the first send to it answers 410 and removes the record.
    send_json(&mut ws, &json!({"action": "fanout"})).await;
    let frames = recv_n(&mut ws, 2).await;
    assert!(frames.iter().any(|f| f["action"] == "fanned"), "{frames:?}");
    let fanout = frames.iter().find(|f| f["action"] == "fanout").unwrap();
    assert_eq!(fanout["delivered"], 1, "{fanout}");
    assert_eq!(store_ids(&gw).await, [id.as_str().unwrap()]);
    close(&mut ws).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn disconnect_status_codes() {
    let rec = Recorder::default();
    // The `DELETE @connections` below is plain unsigned HTTP: SigV4 off (loopback only).
    let gw = start_app(
        &rec,
        LocalConfig {
            sigv4: None,
            ..config()
        },
    )
    .await;
    let url = format!("{}?user=alice", gw.ws_url());

    // A client close with 1000 and a reason.
    let (mut ws, _) = try_connect_url(&url, &[]).await.unwrap();
    close(&mut ws).await;
    let d = rec.disconnects(1).await;
    assert_eq!(d[0]["code"], 1000, "{d:?}");
    assert_eq!(d[0]["reason"], "bye", "{d:?}");

    // A client close frame without a status: 1005 (RFC 6455 7.1.5).
    let (mut ws, _) = try_connect_url(&url, &[]).await.unwrap();
    close_with(&mut ws, None).await;
    let d = rec.disconnects(2).await;
    assert_eq!(d[1]["code"], 1005, "{d:?}");

    // A dropped socket: 1006.
    let (ws, _) = try_connect_url(&url, &[]).await.unwrap();
    drop(ws);
    let d = rec.disconnects(3).await;
    assert_eq!(d[2]["code"], 1006, "{d:?}");

    // A binary frame: 1003.
    let (mut ws, _) = try_connect_url(&url, &[]).await.unwrap();
    futures_util::SinkExt::send(&mut ws, WsMsg::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    expect_close(&mut ws, 1003).await;
    let d = rec.disconnects(4).await;
    assert_eq!(d[3]["code"], 1003, "{d:?}");

    // A `DELETE @connections`: 1000.
    let (mut ws, _) = try_connect_url(&url, &[]).await.unwrap();
    let id = rec.of_kind("connect").last().unwrap()["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http(
        gw.local_addr(),
        "DELETE",
        &format!("/ws/@connections/{}", encode_segment(&id)),
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    expect_close(&mut ws, 1000).await;
    let d = rec.disconnects(5).await;
    assert_eq!(d[4]["code"], 1000, "{d:?}");
    assert_eq!(d[4]["connectionId"], id.as_str(), "{d:?}");
    shutdown(gw).await;
}

#[tokio::test]
async fn shutdown_closes_with_1001_and_runs_every_disconnect() {
    let rec = Recorder::default();
    let gw = start_app(&rec, config()).await;
    let url = format!("{}?user=alice", gw.ws_url());
    let (mut a, _) = try_connect_url(&url, &[]).await.unwrap();
    let (mut b, _) = try_connect_url(&url, &[]).await.unwrap();
    assert_eq!(gw.open_connections(), 2);

    // Clients that answer the close frame promptly, as browsers do.
    let (_, ra, rb) = tokio::join!(
        step("shutdown", gw.shutdown()),
        expect_close(&mut a, 1001),
        expect_close(&mut b, 1001),
    );
    assert!(ra.contains("Going away") && rb.contains("Going away"));
    let d = rec.disconnects(2).await;
    assert!(d.iter().all(|e| e["code"] == 1001), "{d:?}");
}

#[tokio::test]
async fn shutdown_waits_for_disconnect_of_slow_clients() {
    let rec = Recorder::default();
    let gw = start_app(&rec, config()).await;
    let url = format!("{}?user=alice", gw.ws_url());
    // Clients that do not read: they answer the close frame late (the gateway waits up
    // to its close grace period for them).
    let (_a, _) = try_connect_url(&url, &[]).await.unwrap();
    let (_b, _) = try_connect_url(&url, &[]).await.unwrap();
    assert_eq!(gw.open_connections(), 2);

    step("shutdown", gw.shutdown()).await;
    // "closes every socket with 1001 (firing each `$disconnect`), and waits up to
    // `grace` for them to finish": once it returns, a process exits and any
    // `$disconnect` not yet run is lost.
    let d = rec.of_kind("disconnect");
    assert_eq!(d.len(), 2, "disconnects when shutdown() returned: {d:?}");
}

#[tokio::test]
async fn idle_timeout_disconnect_carries_1001() {
    let rec = Recorder::default();
    let gw = start_app(
        &rec,
        LocalConfig {
            idle_timeout: Duration::from_millis(300),
            ..config()
        },
    )
    .await;
    let url = format!("{}?user=alice", gw.ws_url());
    let (mut ws, _) = try_connect_url(&url, &[]).await.unwrap();
    let reason = expect_close(&mut ws, 1001).await;
    let d = rec.disconnects(1).await;
    assert_eq!(d[0]["code"], 1001, "{d:?}");
    assert_eq!(d[0]["reason"], reason.as_str());
    shutdown(gw).await;
}
