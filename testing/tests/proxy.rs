//! `testing::proxy::RecordingProxy`: recording by operation, cut, refusing, stall and
//! restore, against a plain upstream server (no moto needed).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use switchboard_testing::proxy::{Outcome, RecordingProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// Answers 200 with the path, except `/teapot` (418).
async fn upstream() -> SocketAddr {
    let router = Router::new().fallback(|uri: axum::http::Uri| async move {
        if uri.path() == "/teapot" {
            (StatusCode::IM_A_TEAPOT, "short and stout".to_owned())
        } else {
            (StatusCode::OK, format!("upstream saw {}", uri.path()))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: example\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

/// One exchange; the whole response (empty when the connection was closed unanswered).
async fn exchange(addr: SocketAddr, raw: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(raw.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("the proxy answered or closed in time")?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test]
async fn records_operations_and_forwards_answers() {
    let proxy = RecordingProxy::start(&format!("http://{}", upstream().await))
        .await
        .unwrap();
    let addr = proxy.addr();
    let ddb = request(
        "POST",
        "/",
        &[("X-Amz-Target", "DynamoDB_20120810.PutItem")],
        "{}",
    );
    let answer = exchange(addr, &ddb).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("upstream saw /"), "{answer}");
    let query = request(
        "POST",
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "Version=2012-11-05&Action=SendMessage&QueueUrl=x",
    );
    exchange(addr, &query).await.unwrap();
    exchange(
        addr,
        &request("POST", "/ws/@connections/YWJj%3D", &[], "hi"),
    )
    .await
    .unwrap();
    exchange(addr, &request("DELETE", "/@connections/YWJj%3D", &[], ""))
        .await
        .unwrap();
    let teapot = exchange(addr, &request("GET", "/teapot", &[], ""))
        .await
        .unwrap();
    assert!(teapot.starts_with("HTTP/1.1 418"), "{teapot}");
    assert_eq!(
        proxy.operations(),
        [
            "PutItem",
            "SendMessage",
            "PostToConnection",
            "DeleteConnection",
            "GET /teapot"
        ]
    );
    let calls = proxy.take_calls();
    assert_eq!(calls[2].method, "POST");
    assert_eq!(calls[2].path, "/ws/@connections/YWJj%3D");
    assert_eq!(calls[0].outcome, Outcome::Answered(200));
    assert_eq!(calls[4].outcome, Outcome::Answered(418));
    assert!(proxy.calls().is_empty());
}

#[tokio::test]
async fn cut_refusing_stall_and_restore() {
    let proxy = RecordingProxy::start(&format!("http://{}", upstream().await))
        .await
        .unwrap();
    let addr = proxy.addr();
    let get = request(
        "GET",
        "/a",
        &[("X-Amz-Target", "AmazonSQS.SendMessage")],
        "",
    );

    // Cut: the connection is closed without an answer, and the attempt is recorded.
    proxy.cut();
    assert!(!proxy.is_open());
    for _ in 0..2 {
        let answer = exchange(addr, &get).await;
        assert!(
            answer.as_ref().map_or(true, String::is_empty),
            "no answer while cut: {answer:?}"
        );
    }
    assert_eq!(proxy.count("SendMessage"), 2);
    assert!(proxy.calls().iter().all(|c| c.outcome == Outcome::Cut));

    // Refusing: a stopped server; nothing recorded.
    proxy.take_calls();
    proxy.cut_refusing();
    let refused = async {
        for _ in 0..100 {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return true,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        false
    };
    assert!(refused.await, "connections are refused");
    assert!(proxy.calls().is_empty());

    // Back on the same address.
    proxy.restore();
    let answer = async {
        for _ in 0..100 {
            if let Ok(a) = exchange(addr, &get).await
                && !a.is_empty()
            {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the proxy did not come back")
    }
    .await;
    assert!(answer.ends_with("upstream saw /a"), "{answer}");
    assert!(proxy.is_open());

    // Stall: the request is taken and never answered; a cut then drops the open
    // connection.
    proxy.stall();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(get.as_bytes()).await.unwrap();
    let mut buf = [0_u8; 64];
    let pending = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
    assert!(pending.is_err(), "no answer while stalled");
    proxy.cut();
    let closed = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("the cut closes open connections");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    proxy.restore();
    let answer = exchange(addr, &get).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn bad_upstreams_are_refused() {
    for bad in [
        "127.0.0.1:80",
        "https://127.0.0.1:1",
        "http://no-such-host:1",
    ] {
        assert!(RecordingProxy::start(bad).await.is_err(), "{bad}");
    }
}
