#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use tower::ServiceExt;

use super::*;
use crate::LocalConfig;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn bearer(secret: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {secret}")).unwrap(),
    );
    h
}

#[test]
fn loopback_callers_are_allowed_others_need_the_admin_secret() {
    let none = HeaderMap::new();
    let lan = addr("0.0.0.0:3000");
    let local = addr("127.0.0.1:3000");
    for peer in ["127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.1]:5000"] {
        assert!(allowed(addr(peer), local, &none, None), "{peer}");
        assert!(allowed(addr(peer), lan, &none, None), "{peer}");
    }
    let far = addr("192.0.2.7:5000");
    assert!(!allowed(far, lan, &none, None), "no secret: refused");
    assert!(
        !allowed(far, lan, &none, Some("s3cret")),
        "no token: refused"
    );
    assert!(!allowed(far, lan, &bearer("wrong"), Some("s3cret")));
    assert!(!allowed(far, lan, &bearer("s3cret"), None), "no secret set");
    assert!(
        !allowed(far, lan, &bearer(""), Some("")),
        "an empty secret opens nothing"
    );
    assert!(allowed(far, lan, &bearer("s3cret"), Some("s3cret")));
    assert!(allowed(
        addr("[2001:db8::1]:1"),
        addr("[::]:3000"),
        &bearer("x"),
        Some("x")
    ));
    assert!(
        !allowed(far, local, &bearer("s3cret"), Some("s3cret")),
        "loopback bind: loopback only"
    );
}

fn gateway(admin_secret: Option<&str>) -> Arc<Gateway> {
    let app = AppSpec {
        auth: switchboard_core::spec::AuthMode::Dev,
        ..AppSpec::default()
    };
    let config = LocalConfig {
        addr: addr("0.0.0.0:3000"),
        admin_secret: admin_secret.map(|s| crate::exposure::AdminSecret::from(s.to_owned())),
        ..LocalConfig::default()
    };
    let authorizer = app.auth.explicit().unwrap();
    crate::start::gateway(&app, config, authorizer).unwrap()
}

async fn status(gw: &Arc<Gateway>, peer: &str, request: Request<Body>) -> StatusCode {
    let app = router(Arc::clone(gw)).layer(MockConnectInfo(addr(peer)));
    app.oneshot(request).await.unwrap().status()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_caller_off_loopback_without_the_token_is_refused() {
    let gw = gateway(Some("s3cret"));
    let far = "192.0.2.7:40000";
    for path in [
        "/local/",
        "/local/api/overview",
        "/local/stream",
        "/local/console.js",
    ] {
        assert_eq!(
            status(&gw, far, get(path)).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let with_token = Request::get("/local/api/overview")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(&gw, far, with_token).await, StatusCode::OK);
    assert_eq!(
        status(&gw, "127.0.0.1:40000", get("/local/")).await,
        StatusCode::OK
    );
    assert_eq!(
        gw.console.subscribers(),
        0,
        "a refused stream never subscribed"
    );
}

#[tokio::test]
async fn actions_need_the_console_header() {
    let gw = gateway(None);
    let local = "127.0.0.1:40000";
    let bare = Request::post("/local/api/connections/nope/close")
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(&gw, local, bare).await, StatusCode::FORBIDDEN);
    let marked = Request::post("/local/api/connections/nope/close")
        .header(ACTION_HEADER, "1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(&gw, local, marked).await, StatusCode::GONE);
}

#[tokio::test]
async fn the_page_and_its_api_answer_on_loopback() {
    let gw = gateway(None);
    let local = "127.0.0.1:40000";
    for path in [
        "/local/",
        "/local/console.js",
        "/local/console.css",
        "/local/api/overview",
        "/local/api/samples",
        "/local/api/connections",
        "/local/api/rooms",
    ] {
        assert_eq!(
            status(&gw, local, get(path)).await,
            StatusCode::OK,
            "{path}"
        );
    }
    assert_eq!(
        status(&gw, local, get("/local/api/queues/nope/messages")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(&gw, local, get("/local")).await,
        StatusCode::PERMANENT_REDIRECT
    );
}
