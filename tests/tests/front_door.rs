//! Issue 16 in the local gateway, over real sockets: CloudFront's origin secret, API
//! keys and the usage plan (rate, burst, quota), per-route throttling, and the runtime's
//! metrics at `/local/stats`. Throttles read a manual clock: nothing here waits for time
//! to pass.
//!
//! The custom app's handlers are registered by hand (`App::with_routes`), as in
//! `custom_app.rs`, so the chat app's global registry does not add its routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchboard::handler::{BoxedHandler, erase};
use switchboard::local::limits::{Clock, ManualClock, QuotaPeriod, UsagePlan};
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard::names::headers;
use switchboard::origin::OriginSecrets;
use switchboard::prelude::*;
use switchboard::registry::SourceLocation;
use switchboard::{RouteDef, RouteKind, RouteOptions};
use switchboard_tests::*;
use tokio_tungstenite::tungstenite;

/// The status and body of a refused upgrade.
async fn refused(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    match try_connect_url(url, headers).await {
        Ok(_) => panic!("upgrade to {url} unexpectedly succeeded"),
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (response.status().as_u16(), body)
        }
        Err(e) => panic!("upgrade to {url} failed without an HTTP status: {e}"),
    }
}

async fn opens(url: &str, headers: &[(&str, &str)]) -> Ws {
    match try_connect_url(url, headers).await {
        Ok((ws, _)) => ws,
        Err(e) => panic!("upgrade to {url} with {headers:?} failed: {e}"),
    }
}

async fn stats(gw: &LocalGateway) -> Value {
    let response = http(gw.local_addr(), "GET", "/local/stats", b"").await;
    assert_eq!(response.status, 200);
    response.json()
}

#[tokio::test]
async fn origin_secret_guards_upgrades_and_the_http_api() {
    let config = LocalConfig {
        origin_secrets: OriginSecrets::new(Some("s3cret-now"), Some("s3cret-before")),
        ..config()
    };
    let gw = start_with(config).await;
    let url = format!("{}?user=alice", gw.ws_url());
    let forbidden = json!({"message": "Forbidden"});
    assert_eq!(refused(&url, &[]).await, (403, forbidden.clone()));
    let wrong = [(headers::ORIGIN, "s3cret-no")];
    assert_eq!(refused(&url, &wrong).await, (403, forbidden.clone()));
    // CloudFront's `/ws/*` behaviour is checked the same way.
    let nested = format!("ws://{}/ws/chat?user=alice", gw.local_addr());
    assert_eq!(refused(&nested, &[]).await, (403, forbidden.clone()));
    for secret in ["s3cret-now", "s3cret-before"] {
        let mut ws = opens(&url, &[(headers::ORIGIN, secret)]).await;
        let pong = request(&mut ws, json!({"action": "ping"}), "pong").await;
        assert_eq!(pong["action"], "pong");
        close(&mut ws).await;
    }

    let addr = gw.local_addr();
    let me = "/http/me?user=alice";
    let direct = http(addr, "GET", me, b"").await;
    assert_eq!((direct.status, direct.json()), (403, forbidden.clone()));
    let guessed = http_with(addr, "GET", me, &[(headers::ORIGIN, "x")], b"").await;
    assert_eq!((guessed.status, guessed.json()), (403, forbidden));
    for secret in ["s3cret-now", "s3cret-before"] {
        let through = http_with(addr, "GET", me, &[(headers::ORIGIN, secret)], b"").await;
        assert_eq!(
            through.status,
            200,
            "{secret}: {:?}",
            String::from_utf8_lossy(&through.body)
        );
    }
    let s = stats(&gw).await;
    assert_eq!(s["limits"]["originRefused"], 5, "{s}");
    // Refused before the authorizer: only the two good upgrades were decided.
    assert_eq!(s["metrics"]["authorizerAllow"], 2, "{s}");
    assert_eq!(s["metrics"]["authorizerDeny"], 0, "{s}");
    shutdown(gw).await;
}

#[tokio::test]
async fn without_a_secret_there_is_no_origin_check() {
    let gw = start().await;
    let mut ws = connect(&gw, "bob").await;
    assert_eq!(
        request(&mut ws, json!({"action": "ping"}), "pong").await["action"],
        "pong"
    );
    close(&mut ws).await;
    shutdown(gw).await;
}

async fn echo() -> Value {
    json!({"action": "echo"})
}

async fn free() -> Value {
    json!({"action": "free"})
}

async fn fanout(ctx: Ctx) -> Result<Value, WsError> {
    let d = ctx.broadcast().send(&json!({"action": "fanned"})).await?;
    Ok(json!({"action": "fanout", "delivered": d.delivered}))
}

fn def(key: &'static str, handler: fn() -> BoxedHandler, options: RouteOptions) -> RouteDef {
    RouteDef {
        key,
        kind: RouteKind::Custom,
        function: key,
        module: module_path!(),
        location: SourceLocation {
            file: file!(),
            line: line!(),
        },
        options,
        doc: "",
        handler,
    }
}

/// `echo` throttled at 1/s with a burst of 2, `free` not throttled, `fanout` a
/// broadcast; with `keyed`, a route that needs an API key.
fn app(keyed: bool) -> App {
    let mut routes = vec![
        def(
            "echo",
            || erase(echo),
            RouteOptions {
                throttle_rate: Some(1),
                throttle_burst: Some(2),
                ..RouteOptions::default()
            },
        ),
        def("free", || erase(free), RouteOptions::default()),
        def("fanout", || erase(fanout), RouteOptions::default()),
    ];
    if keyed {
        let options = RouteOptions {
            api_key: true,
            ..RouteOptions::default()
        };
        routes.push(def("keyed", || erase(free), options));
    }
    App::new().dev_auth().with_routes(routes)
}

async fn start_app(keyed: bool, config: LocalConfig) -> LocalGateway {
    step("start", app(keyed).serve_local(config))
        .await
        .expect("start")
}

fn manual_config() -> (LocalConfig, ManualClock) {
    // 2026-12-07T10:00:00Z, a Monday.
    let (clock, handle) = Clock::manual(1_796_637_600_000);
    let config = LocalConfig { clock, ..config() };
    (config, handle)
}

#[tokio::test]
async fn route_throttle_answers_429_frames_and_keeps_the_connection() {
    let (config, clock) = manual_config();
    let gw = start_app(false, config).await;
    let mut a = connect(&gw, "alice").await;
    let mut b = connect(&gw, "bob").await;
    let echo = json!({"action": "echo"});
    for _ in 0..2 {
        assert_eq!(
            request(&mut a, echo.clone(), "echo").await["action"],
            "echo"
        );
    }
    send_json(&mut a, &echo).await;
    let throttled = recv_json(&mut a).await;
    assert_eq!(throttled["message"], "Too Many Requests", "{throttled}");
    assert!(
        throttled["connectionId"]
            .as_str()
            .is_some_and(is_aws_connection_id)
    );
    assert!(
        throttled["requestId"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    // One bucket per route, for every client; other routes are not throttled.
    send_json(&mut b, &echo).await;
    assert_eq!(recv_json(&mut b).await["message"], "Too Many Requests");
    assert_eq!(
        request(&mut a, json!({"action": "free"}), "free").await["action"],
        "free"
    );
    // The connection stayed: a second later, a token.
    clock.advance_ms(1_000);
    assert_eq!(
        request(&mut a, echo.clone(), "echo").await["action"],
        "echo"
    );
    send_json(&mut b, &echo).await;
    assert_eq!(recv_json(&mut b).await["message"], "Too Many Requests");

    // The fan-out and the counters at /local/stats.
    let fanned = request(&mut a, json!({"action": "fanout"}), "fanout").await;
    assert_eq!(fanned["delivered"], 2);
    let s = stats(&gw).await;
    let m = &s["metrics"];
    assert_eq!(
        m["routes"]["echo"]["count"], 3,
        "throttled messages reach no handler: {s}"
    );
    assert_eq!(m["routes"]["free"]["count"], 1);
    assert_eq!(m["routes"]["$connect"]["count"], 2);
    assert_eq!(m["fanoutRecipients"], 2);
    assert_eq!(m["fanoutGone"], 0);
    assert_eq!(m["authorizerAllow"], 2);
    assert_eq!(s["limits"]["throttled"], 3);
    // The gateway's own fields are still there.
    assert_eq!(s["openConnections"], 2);
    assert!(s["framesIn"].as_u64().is_some_and(|n| n >= 7));
    close(&mut a).await;
    close(&mut b).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn api_keys_and_the_usage_plan() {
    let (mut config, clock) = manual_config();
    config.api_keys = vec!["key-one".to_owned(), "key-two".to_owned()];
    config.usage_plan = UsagePlan {
        rate: Some(1.0),
        burst: Some(2),
        quota: Some((4, QuotaPeriod::Day)),
    };
    let gw = start_app(true, config).await;
    let url = format!("{}?user=alice", gw.ws_url());
    let forbidden = json!({"message": "Forbidden"});
    assert_eq!(refused(&url, &[]).await, (403, forbidden.clone()));
    let wrong = [(headers::API_KEY, "key-three")];
    assert_eq!(refused(&url, &wrong).await, (403, forbidden));

    // key-one: the upgrade and one message use the burst of 2...
    let one = [(headers::API_KEY, "key-one")];
    let mut ws = opens(&url, &one).await;
    let free = json!({"action": "free"});
    assert_eq!(
        request(&mut ws, free.clone(), "free").await["action"],
        "free"
    );
    send_json(&mut ws, &free).await;
    assert_eq!(recv_json(&mut ws).await["message"], "Too Many Requests");
    // ...a second refills one token (quota: 3 of 4 used), another the last of the quota.
    clock.advance_ms(1_000);
    assert_eq!(
        request(&mut ws, free.clone(), "free").await["action"],
        "free"
    );
    clock.advance_ms(1_000);
    assert_eq!(
        request(&mut ws, free.clone(), "free").await["action"],
        "free"
    );
    clock.advance_ms(1_000);
    send_json(&mut ws, &free).await;
    let limit = recv_json(&mut ws).await;
    assert_eq!(limit["message"], "Limit Exceeded", "{limit}");
    assert!(limit["connectionId"].is_string());
    clock.advance_ms(1_000);
    assert_eq!(
        refused(&url, &one).await,
        (429, json!({"message": "Limit Exceeded"}))
    );

    // key-two has its own bucket: two upgrades, then over its rate.
    let two = [(headers::API_KEY, "key-two")];
    let mut second = opens(&url, &two).await;
    let third = opens(&url, &two).await;
    assert_eq!(
        refused(&url, &two).await,
        (429, json!({"message": "Too Many Requests"}))
    );
    drop(third);
    clock.advance_ms(1_000);
    assert_eq!(
        request(&mut second, json!({"action": "keyed"}), "free").await["action"],
        "free"
    );

    // The next day, key-one's quota starts again.
    clock.advance_ms(86_400_000);
    let mut again = opens(&url, &one).await;
    assert_eq!(request(&mut again, free, "free").await["action"], "free");
    let s = stats(&gw).await;
    assert_eq!(s["limits"]["apiKeyRefused"], 2, "{s}");
    assert_eq!(s["limits"]["quotaExceeded"], 2, "{s}");
    assert_eq!(s["limits"]["throttled"], 2, "{s}");
    close(&mut ws).await;
    close(&mut second).await;
    close(&mut again).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn authorizer_denials_are_counted() {
    let gw = start_app(false, config()).await;
    let bad = format!("{}?user=not%20valid!", gw.ws_url());
    assert_eq!(refused_status(&bad, &[]).await, 403);
    let none = gw.ws_url();
    assert_eq!(refused_status(&none, &[]).await, 401);
    let mut ws = connect(&gw, "carol").await;
    let s = stats(&gw).await;
    assert_eq!(s["metrics"]["authorizerDeny"], 2, "{s}");
    assert_eq!(s["metrics"]["authorizerAllow"], 1, "{s}");
    close(&mut ws).await;
    shutdown(gw).await;
}

#[tokio::test]
async fn a_fanout_to_a_gone_connection_counts_in_fanout_gone() {
    use switchboard::backend::memory::MemoryStore;
    use switchboard::backend::{ConnectionRecord, ConnectionStore};
    // A record whose connection is long gone (its `$disconnect` never ran).
    let store = MemoryStore::new();
    let stale = "R0oXAdfD0kwCH6w=";
    store
        .put_connection(&ConnectionRecord {
            connection_id: stale.to_owned(),
            username: "ghost".to_owned(),
            session_key: ConnectionRecord::session_key_for(1_000, stale),
            connected_at: 1_000,
            expires: 4_000_000_000,
            source_ip: None,
            user_agent: None,
            claims: serde_json::Map::new(),
        })
        .await
        .unwrap();
    let gw = step("start", app(false).store(store).serve_local(config()))
        .await
        .expect("start");
    let mut ws = connect(&gw, "dave").await;
    let fanned = request(&mut ws, json!({"action": "fanout"}), "fanout").await;
    assert_eq!(fanned["delivered"], 1);
    let s = stats(&gw).await;
    assert_eq!(s["metrics"]["fanoutRecipients"], 2, "{s}");
    assert_eq!(s["metrics"]["fanoutGone"], 1, "{s}");
    // The stale record was removed: a second fan-out reaches only the caller.
    let again = request(&mut ws, json!({"action": "fanout"}), "fanout").await;
    assert_eq!(again["delivered"], 1);
    let s = stats(&gw).await;
    assert_eq!(s["metrics"]["fanoutRecipients"], 3, "{s}");
    assert_eq!(s["metrics"]["fanoutGone"], 1, "{s}");
    close(&mut ws).await;
    shutdown(gw).await;
}
