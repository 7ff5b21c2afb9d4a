//! `@connections` over real sockets checks SigV4 as API Gateway does: the real
//! `aws-sdk-apigatewaymanagement` client with the gateway's key works; unsigned requests,
//! and requests signed with the wrong key, secret or region, a date more than 15 minutes
//! off, or a body changed after signing get 403 in API Gateway's shape and do nothing.
//! Also: what the settings refuse at start (`--no-sigv4` and `--dev-auth` off loopback).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Region};
use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use futures_util::StreamExt;
use switchboard_core::names::local_credentials as key;
use switchboard_core::spec::{AppSpec, AuthMode};
use switchboard_local::exposure::{AdminSecret, ExposureError};
use switchboard_local::{LocalConfig, LocalError, LocalGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const STEP: Duration = Duration::from_secs(10);

fn dev_app() -> AppSpec {
    AppSpec {
        auth: AuthMode::Dev,
        ..AppSpec::default()
    }
}

fn config(name: &str) -> LocalConfig {
    LocalConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        state_dir: std::env::temp_dir()
            .join(format!("switchboard-sigv4-{name}-{}", std::process::id())),
        ..LocalConfig::default()
    }
}

async fn start(config: LocalConfig) -> LocalGateway {
    timeout(STEP, switchboard_local::serve(dev_app(), config))
        .await
        .unwrap()
        .unwrap()
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn message(&self) -> String {
        let json: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        json["message"].as_str().unwrap().to_owned()
    }
}

/// One HTTP/1.1 exchange on a fresh socket.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = timeout(STEP, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    timeout(STEP, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// How a request is signed (the AWS SDK's own signer, `aws-sigv4`).
struct Signer<'a> {
    akid: &'a str,
    secret: &'a str,
    region: &'a str,
    time: SystemTime,
}

impl Default for Signer<'_> {
    fn default() -> Self {
        Self {
            akid: key::ACCESS_KEY_ID,
            secret: key::SECRET_ACCESS_KEY,
            region: key::REGION,
            time: SystemTime::now(),
        }
    }
}

/// A raw HTTP/1.1 request, signed by `signer` when given; `sent_body` goes on the wire
/// (a different one than was signed makes a tampered request).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    signed_body: &[u8],
    sent_body: &[u8],
    signer: Option<Signer<'_>>,
) -> Vec<u8> {
    let host = addr.to_string();
    let mut headers: Vec<(String, String)> = vec![("host".into(), host.clone())];
    if let Some(s) = signer {
        let identity = Credentials::new(s.akid, s.secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(s.region)
            .name("execute-api")
            .time(s.time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let uri = format!("http://{host}{path}");
        let signable = SignableRequest::new(
            method,
            uri,
            [("host", host.as_str())].into_iter(),
            SignableBody::Bytes(signed_body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        for (name, value) in instructions.headers() {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        sent_body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(sent_body);
    bytes
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Connects as `user` and finds the connection's id in `/local/connections`.
async fn connect(gw: &LocalGateway, user: &str) -> (Ws, String) {
    let url = format!("{}?user={user}", gw.ws_url());
    let (ws, _) = timeout(STEP, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    let list = exchange(
        gw.local_addr(),
        b"GET /local/connections HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let records: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    let id = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["username"] == user)
        .and_then(|r| r["connectionId"].as_str())
        .unwrap()
        .to_owned();
    (ws, id)
}

async fn next_text(ws: &mut Ws) -> String {
    match timeout(STEP, ws.next()).await.unwrap().unwrap().unwrap() {
        Message::Text(t) => t.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn expect_nothing(ws: &mut Ws) {
    if let Ok(frame) = timeout(Duration::from_millis(150), ws.next()).await {
        panic!("expected nothing, got {frame:?}");
    }
}

fn sdk(gw: &LocalGateway, akid: &str, secret: &str, region: &str) -> Client {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(gw.management_url())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(akid, secret, None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

/// Percent-encodes a connection id for a path segment (real ids end in `=`).
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn the_real_sdk_signs_and_is_accepted() {
    let gw = start(config("sdk")).await;
    let (mut ws, id) = connect(&gw, "alice").await;
    assert!(id.ends_with('='), "{id}");
    let client = sdk(&gw, key::ACCESS_KEY_ID, key::SECRET_ACCESS_KEY, key::REGION);
    timeout(
        STEP,
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new("signed hello"))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(next_text(&mut ws).await, "signed hello");
    let info = timeout(STEP, client.get_connection().connection_id(&id).send())
        .await
        .unwrap()
        .unwrap();
    assert!(info.connected_at().is_some());
    timeout(STEP, client.delete_connection().connection_id(&id).send())
        .await
        .unwrap()
        .unwrap();
    gw.shutdown().await;
}

#[tokio::test]
async fn the_real_sdk_with_a_wrong_key_secret_or_region_gets_403() {
    let gw = start(config("sdk-wrong")).await;
    let (mut ws, id) = connect(&gw, "bob").await;
    for (akid, secret, region, code) in [
        (
            "AKIDSOMEONEELSE",
            key::SECRET_ACCESS_KEY,
            key::REGION,
            "AccessDeniedException",
        ),
        (
            key::ACCESS_KEY_ID,
            "not-the-secret",
            key::REGION,
            "InvalidSignatureException",
        ),
        (
            key::ACCESS_KEY_ID,
            key::SECRET_ACCESS_KEY,
            "eu-west-1",
            "InvalidSignatureException",
        ),
    ] {
        let client = sdk(&gw, akid, secret, region);
        let err = timeout(
            STEP,
            client
                .post_to_connection()
                .connection_id(&id)
                .data(Blob::new("must not arrive"))
                .send(),
        )
        .await
        .unwrap()
        .unwrap_err();
        let raw = err.raw_response().unwrap();
        assert_eq!(raw.status().as_u16(), 403, "{akid} {region}");
        assert_eq!(err.code(), Some(code), "{akid} {region}: {err:?}");
        assert!(err.message().is_some_and(|m| !m.is_empty()));
    }
    expect_nothing(&mut ws).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn unsigned_stale_and_tampered_requests_get_403_in_api_gateways_shape() {
    let gw = start(config("raw")).await;
    let addr = gw.local_addr();
    let (mut ws, id) = connect(&gw, "carol").await;
    let path = format!("/ws/@connections/{}", encode(&id));
    let body = b"{\"n\":1}";

    // Unsigned, as `curl -XPOST` sends it.
    let a = exchange(addr, &request(addr, "POST", &path, body, body, None)).await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.header("x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.body, r#"{"message":"Missing Authentication Token"}"#);

    // Signed 16 minutes ago, and 16 minutes ahead.
    for (offset, starts) in [
        (-16i64, "Signature expired: "),
        (16, "Signature not yet current: "),
    ] {
        let time = if offset < 0 {
            SystemTime::now() - Duration::from_secs(16 * 60)
        } else {
            SystemTime::now() + Duration::from_secs(16 * 60)
        };
        let signer = Signer {
            time,
            ..Signer::default()
        };
        let a = exchange(
            addr,
            &request(addr, "POST", &path, body, body, Some(signer)),
        )
        .await;
        assert_eq!(a.status, 403, "{offset}");
        assert_eq!(
            a.header("x-amzn-errortype"),
            Some("InvalidSignatureException")
        );
        assert!(a.message().starts_with(starts), "{}", a.message());
        assert!(a.message().ends_with(" 15 min.)"), "{}", a.message());
    }

    // A body changed after signing.
    let a = exchange(
        addr,
        &request(
            addr,
            "POST",
            &path,
            body,
            b"{\"n\":2}",
            Some(Signer::default()),
        ),
    )
    .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.header("x-amzn-errortype"),
        Some("InvalidSignatureException")
    );
    assert!(
        a.message()
            .starts_with("The request signature we calculated does not match"),
        "{}",
        a.message()
    );

    // The wrong region, by hand.
    let signer = Signer {
        region: "ap-south-1",
        ..Signer::default()
    };
    let a = exchange(
        addr,
        &request(addr, "DELETE", &path, b"", b"", Some(signer)),
    )
    .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.message(),
        "Credential should be scoped to a valid region, not 'ap-south-1'. "
    );
    expect_nothing(&mut ws).await;

    // And the same request signed properly goes through, with and without the stage.
    let a = exchange(
        addr,
        &request(addr, "POST", &path, body, body, Some(Signer::default())),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(next_text(&mut ws).await, "{\"n\":1}");
    let stageless = format!("/@connections/{}", encode(&id));
    let a = exchange(
        addr,
        &request(
            addr,
            "DELETE",
            &stageless,
            b"",
            b"",
            Some(Signer::default()),
        ),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.body);
    gw.shutdown().await;
}

#[tokio::test]
async fn no_sigv4_accepts_unsigned_requests_on_loopback() {
    let gw = start(LocalConfig {
        sigv4: None,
        ..config("nosig")
    })
    .await;
    let addr = gw.local_addr();
    let (mut ws, id) = connect(&gw, "dave").await;
    let path = format!("/ws/@connections/{}", encode(&id));
    let a = exchange(addr, &request(addr, "POST", &path, b"hi", b"hi", None)).await;
    assert_eq!(a.status, 200);
    assert_eq!(next_text(&mut ws).await, "hi");
    assert!(
        gw.exposure_lines()
            .iter()
            .any(|l| l.contains("unsigned requests accepted")),
        "{:?}",
        gw.exposure_lines()
    );
    gw.shutdown().await;
}

fn refused(result: Result<LocalGateway, LocalError>) -> Vec<ExposureError> {
    match result {
        Err(LocalError::Exposure(refused)) => refused.problems,
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("started"),
    }
}

#[tokio::test]
async fn off_loopback_no_sigv4_and_dev_auth_are_refused_unless_forced() {
    let everywhere = |name: &str| LocalConfig {
        addr: "0.0.0.0:0".parse().unwrap(),
        ..config(name)
    };
    // Dev auth on 0.0.0.0: refused; with --no-sigv4 too, both reasons at once.
    let problems = refused(switchboard_local::serve(dev_app(), everywhere("dev")).await);
    assert!(
        matches!(
            problems.as_slice(),
            [ExposureError::DevAuthOffLoopback { .. }]
        ),
        "{problems:?}"
    );
    let problems = refused(
        switchboard_local::serve(
            dev_app(),
            LocalConfig {
                sigv4: None,
                ..everywhere("dev-nosig")
            },
        )
        .await,
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    // --no-sigv4 off loopback with the JWT authorizer: refused.
    let problems = refused(
        switchboard_local::serve(
            AppSpec::default(),
            LocalConfig {
                sigv4: None,
                ..everywhere("jwt-nosig")
            },
        )
        .await,
    );
    assert!(
        matches!(
            problems.as_slice(),
            [ExposureError::NoSigV4OffLoopback { .. }]
        ),
        "{problems:?}"
    );
    // Forced: it starts, and the banner warns.
    let gw = switchboard_local::serve(
        dev_app(),
        LocalConfig {
            force_dev_auth: true,
            admin_secret: Some(AdminSecret::generate().unwrap()),
            ..everywhere("forced")
        },
    )
    .await
    .unwrap();
    let lines = gw.exposure_lines().join("\n");
    assert!(lines.contains("warning: --force-dev-auth"), "{lines}");
    assert!(lines.contains("every interface"), "{lines}");
    assert!(lines.contains("admin secret "), "{lines}");
    assert!(
        lines.contains(&format!("access key id {}", key::ACCESS_KEY_ID)),
        "{lines}"
    );
    assert!(!lines.contains(key::SECRET_ACCESS_KEY), "{lines}");
    gw.shutdown().await;
}
