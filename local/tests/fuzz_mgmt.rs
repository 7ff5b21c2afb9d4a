//! Fuzz target: the local gateway's management API (`@connections`) and the other plain
//! HTTP paths, over a real socket.
//!
//! Each case writes one hand-made HTTP/1.1 request — methods valid and not, paths with
//! percent escapes, dots, long and non-UTF-8 ids, other stages, bodies of any bytes and of
//! 128 KB / 1 MB and more — to a local gateway (`switchboard_local::serve`, development
//! authorizer, SigV4 off) that has one live WebSocket connection, and reads the answer.
//!
//! Properties: every answer is a well-formed HTTP/1.1 response whose status is in the
//! documented set (200 204 400 403 404 405 410 413 414 426 431) — never a 5xx, never a
//! dropped connection; for well-formed `@connections` requests the status is exactly the
//! documented one (POST 200 / 413, GET 200, DELETE 204 on the live id, however it is
//! percent-encoded; 410 for unknown ids; 403 for another stage; 405 for other methods);
//! and the gateway still serves its live connection afterwards.
//!
//! Long run: `SWITCHBOARD_FUZZ_CASES=20000 cargo test -p switchboard --test fuzz_mgmt`.
//! Corpus: `tests/fuzz_corpus/mgmt/*` — one raw request per file (`{ADDR}` stands for the
//! gateway's address), each answered with a status from the documented set.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use switchboard_testing::fuzz as fuzz_support;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use proptest::prelude::*;
use switchboard_core::spec::{AppSpec, AuthMode};
use switchboard_local::{LocalConfig, LocalGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(10);
const ALLOWED: &[u16] = &[200, 204, 400, 403, 404, 405, 410, 413, 414, 426, 431];

struct Fixture {
    gateway: LocalGateway,
    /// The live connection's id; a DELETE that closes it opens another.
    live: Mutex<String>,
    opened: std::sync::atomic::AtomicUsize,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        fuzz_support::runtime().block_on(async {
            let state_dir =
                std::env::temp_dir().join(format!("switchboard-fuzz-mgmt-{}", std::process::id()));
            // The fuzzed requests are unsigned: SigV4 off (allowed on loopback), so they
            // reach the routing and parsing under test. Signed requests: tests/sigv4.rs.
            let config = LocalConfig {
                addr: "127.0.0.1:0".parse().unwrap(),
                state_dir,
                sigv4: None,
                ..LocalConfig::default()
            };
            let gateway = timeout(
                STEP,
                switchboard_local::serve(
                    AppSpec {
                        auth: AuthMode::Dev,
                        ..AppSpec::default()
                    },
                    config,
                ),
            )
            .await
            .unwrap()
            .unwrap();
            let fixture = Fixture {
                gateway,
                live: Mutex::new(String::new()),
                opened: std::sync::atomic::AtomicUsize::new(0),
            };
            let id = open_live(&fixture).await;
            *fixture.live.lock().await = id;
            fixture
        })
    })
}

/// Opens a WebSocket as a new user, drains it in the background, returns its id.
async fn open_live(fixture: &Fixture) -> String {
    let n = fixture
        .opened
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let user = format!("fuzz{n}");
    let url = format!("{}?user={user}", fixture.gateway.ws_url());
    let (ws, _) = timeout(STEP, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    // Read everything the fuzzer posts, so the outbound queue never fills.
    tokio::spawn(async move {
        let mut ws = ws;
        while let Some(Ok(_)) = ws.next().await {}
    });
    let response = raw(
        fixture.gateway.local_addr(),
        b"GET /local/connections HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 200);
    let records: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["username"] == user.as_str())
        .and_then(|r| r["connectionId"].as_str())
        .unwrap()
        .to_owned()
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

/// Writes `request` on a new connection and reads the whole answer (`Connection: close`).
async fn raw(addr: SocketAddr, request: &[u8]) -> Answer {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // The server may answer (413, 400) and close before reading everything.
        let _ = stream.write_all(request).await;
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        out
    };
    let out = timeout(STEP, exchange)
        .await
        .expect("the gateway did not answer in time");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status_line = head.lines().next().unwrap_or_default().to_owned();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    Answer {
        status,
        headers: head.to_ascii_lowercase(),
        body: out[split + 4..].to_vec(),
    }
}

/// What identifies the connection in the path.
#[derive(Clone, Debug)]
enum Id {
    /// The live connection's id as it is.
    Live,
    /// The live id with every byte percent-encoded.
    LiveEncoded,
    /// An id in AWS's shape that is not connected.
    Unknown,
    /// Anything (escapes, dots, slashes, non-UTF-8 bytes, very long).
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Request {
    method: Vec<u8>,
    prefix: &'static str,
    id: Id,
    suffix: &'static str,
    body: Vec<u8>,
}

fn request() -> impl Strategy<Value = Request> {
    let method = prop_oneof![
        6 => prop::sample::select(vec!["POST", "GET", "DELETE"]).prop_map(|m| m.as_bytes().to_vec()),
        2 => prop::sample::select(vec!["PUT", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "post", "FOO"])
            .prop_map(|m| m.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ];
    let prefix = prop::sample::select(vec![
        "/ws/@connections/",
        "/ws/@connections/",
        "/ws/@connections/",
        "/ws/@connections/",
        "/ws/@connections/",
        "/@connections/",
        "/@connections/",
        "/other/@connections/",
        "/other/@connections/",
        "/ws/@connections",
        "/WS/@connections/",
        "//ws/@connections/",
        "/ws/%40connections/",
        "/ws/@connections/x/",
        "/local/",
        "/local/connections",
        "/local/manifest",
        "/",
        "/ws/",
        "/http/",
        "/..",
        "",
    ]);
    let raw_id = prop_oneof![
        prop::sample::select(vec![
            "",
            ".",
            "..",
            "%2e%2e",
            "%2E",
            "a%2Fb",
            "%ff",
            "%fe%ff",
            "%00",
            "%",
            "%4",
            "%zz",
            "a b",
            "%20",
            "\u{e9}",
            "%C3%A9",
            "=",
            "AAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAA%3D",
            "../local/connections",
            "..%2Flocal%2Fconnections",
            "?",
            "#",
            "*",
            "@connections",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
        "[A-Za-z0-9_=%.-]{0,64}".prop_map(String::into_bytes),
        (1usize..20_000).prop_map(|n| vec![b'A'; n]),
    ];
    let id = prop_oneof![
        3 => Just(Id::Live),
        2 => Just(Id::LiveEncoded),
        2 => Just(Id::Unknown),
        4 => raw_id.prop_map(Id::Raw),
    ];
    let suffix = prop::sample::select(vec!["", "", "", "/", "?x=1", "?", "/extra", "#frag", "%2F"]);
    let body = prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..512),
        2 => prop::sample::select(vec![b"{\"action\":\"x\"}".to_vec(), b"\xff\xfe\x00".to_vec(), Vec::new()]),
        1 => prop::sample::select(vec![128 * 1024, 128 * 1024 + 1, 1024 * 1024 + 1, 3 * 1024 * 1024])
            .prop_map(|n| vec![b'x'; n]),
    ];
    (method, prefix, id, suffix, body).prop_map(|(method, prefix, id, suffix, body)| Request {
        method,
        prefix,
        id,
        suffix,
        body,
    })
}

fn percent_encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The documented answer to a well-formed `@connections` request, if this is one.
fn expected(r: &Request) -> Option<Vec<u16>> {
    let mgmt = matches!(
        r.prefix,
        "/ws/@connections/" | "/@connections/" | "/other/@connections/"
    );
    if !mgmt || !matches!(r.suffix, "" | "?x=1" | "?") {
        return None;
    }
    let id_ok = matches!(r.id, Id::Live | Id::LiveEncoded | Id::Unknown);
    if !id_ok {
        return None;
    }
    let method = std::str::from_utf8(&r.method).ok()?;
    if !matches!(
        method,
        "POST" | "GET" | "DELETE" | "PUT" | "PATCH" | "OPTIONS" | "FOO" | "post"
    ) {
        return None;
    }
    if r.prefix == "/other/@connections/" {
        return Some(vec![403]);
    }
    let live = matches!(r.id, Id::Live | Id::LiveEncoded);
    let over_body_limit = r.body.len() > 1024 * 1024;
    Some(match method {
        // axum's body limit (1 MB) refuses before the handler runs, for any id and method.
        _ if over_body_limit => vec![413],
        "POST" if live && r.body.len() > 128 * 1024 => vec![413],
        "POST" if live => vec![200],
        // An unknown id with an oversized payload: either check may come first.
        "POST" if r.body.len() > 128 * 1024 => vec![410, 413],
        "POST" => vec![410],
        "GET" if live => vec![200],
        "DELETE" if live => vec![204],
        "GET" | "DELETE" => vec![410],
        _ => vec![405],
    })
}

async fn send(f: &'static Fixture, r: &Request) -> Result<(), TestCaseError> {
    let addr = f.gateway.local_addr();
    let mut live = f.live.lock().await;
    let mut target = r.prefix.as_bytes().to_vec();
    match &r.id {
        Id::Live => target.extend_from_slice(live.as_bytes()),
        Id::LiveEncoded => target.extend_from_slice(percent_encode_all(&live).as_bytes()),
        Id::Unknown => target.extend_from_slice(b"Zm9vYmFyYmF6cXU="),
        Id::Raw(bytes) => target.extend_from_slice(bytes),
    }
    target.extend_from_slice(r.suffix.as_bytes());
    let mut request = Vec::with_capacity(r.body.len() + 256);
    request.extend_from_slice(&r.method);
    request.push(b' ');
    request.extend_from_slice(&target);
    request.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            r.body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(&r.body);
    let answer = raw(addr, &request).await;
    let shown = String::from_utf8_lossy(&target[..target.len().min(200)]).into_owned();
    prop_assert!(
        ALLOWED.contains(&answer.status),
        "{} {} ({} bytes) answered {}: {}",
        String::from_utf8_lossy(&r.method),
        shown,
        r.body.len(),
        answer.status,
        String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
    );
    if let Some(want) = expected(r) {
        prop_assert!(
            want.contains(&answer.status),
            "{} {} ({} bytes): wanted {:?}, got {} {}",
            String::from_utf8_lossy(&r.method),
            shown,
            r.body.len(),
            want,
            answer.status,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
        );
        // API Gateway's error shape on the management API, whatever the size.
        if matches!(answer.status, 403 | 410 | 413) {
            prop_assert!(
                answer.headers.contains("x-amzn-errortype: "),
                "{}",
                answer.headers
            );
        }
    }
    if answer.status == 204 && matches!(r.id, Id::Live | Id::LiveEncoded) {
        // The live connection was deleted: wait for it to go, then open another.
        let old = live.clone();
        for _ in 0..200 {
            let a = raw(
                addr,
                b"GET /local/connections HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await;
            if !String::from_utf8_lossy(&a.body).contains(old.as_str()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        *live = open_live(f).await;
    }
    Ok(())
}

/// The reference reading of an upgrade's query string, as API Gateway fills
/// `queryStringParameters` (form decoding: `+` is a space, `%XX` a byte, a bad escape
/// stays as it is, the text decoded as UTF-8 with replacement; the last value wins).
fn reference_user(query: &str) -> Option<String> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .rfind(|(k, _)| decode(k) == "user")
        .map(|(_, v)| decode(v))
}

fn valid_user(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Query strings of URI-legal characters, rich in `user`, escapes and separators.
fn query() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => Just("user=".to_owned()),
        2 => "&user=[A-Za-z0-9._-]{1,10}&",
        1 => prop::sample::select(vec![
            "u%73er=", "user", "USER=", "user%3D", "&", "&&", "=", "+", "%20", "%2B", "%26",
            "%3D", "%00", "%ff", "%fe%ff", "%C3%A9", "%", "%4", "%zz", ".", "-", "_", "~",
            "alice", "a.b-c_d", "token=x.y.z", "user=alice&user=", "%75ser=bob", ";", ",",
        ])
        .prop_map(str::to_owned),
        2 => "[A-Za-z0-9._~-]{0,12}",
        1 => "[A-Za-z0-9]{60,70}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

async fn upgrade(f: &'static Fixture, query: &str) -> Result<(), TestCaseError> {
    let addr = f.gateway.local_addr();
    let request = format!(
        "GET /ws?{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let mut chunk = [0u8; 1024];
        while !out.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        // Dropping the stream closes an accepted connection (its `$disconnect` runs).
        out
    };
    let out = timeout(STEP, exchange)
        .await
        .expect("no answer to the upgrade");
    let head = String::from_utf8_lossy(&out);
    let status: u16 = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad answer {head:?}"));
    let want = match reference_user(query) {
        None => 401,
        Some(user) if valid_user(&user) => 101,
        Some(_) => 403,
    };
    prop_assert_eq!(
        status,
        want,
        "query {:?} (user {:?})",
        query,
        reference_user(query)
    );
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_support::config(2000, "tests/fuzz_corpus/mgmt.proptest-regressions"))]

    #[test]
    fn management_requests(r in request()) {
        let f = fixture();
        fuzz_support::runtime().block_on(send(f, &r))?;
    }

    /// `$connect` query strings through the local gateway and the development
    /// authorizer: 101 exactly for a valid user name, 401 without one, else 403.
    #[test]
    fn upgrade_queries(q in query()) {
        let f = fixture();
        fuzz_support::runtime().block_on(upgrade(f, &q))?;
    }
}

fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// Every corpus request (`{ADDR}` replaced), then the live connection still works.
#[test]
fn corpus_replays_and_gateway_stays_up() {
    let f = fixture();
    fuzz_support::runtime().block_on(async {
        let addr = f.gateway.local_addr();
        for (name, bytes) in fuzz_support::corpus(env!("CARGO_MANIFEST_DIR"), "mgmt") {
            let request = replace_bytes(&bytes, b"{ADDR}", addr.to_string().as_bytes());
            let answer = raw(addr, &request).await;
            assert!(
                ALLOWED.contains(&answer.status),
                "corpus {name}: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        let live = f.live.lock().await.clone();
        let request = format!(
            "POST /ws/@connections/{live} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"
        );
        assert_eq!(raw(addr, request.as_bytes()).await.status, 200);
        assert!(f.gateway.open_connections() >= 1);
    });
}
