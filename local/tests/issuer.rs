//! The local token issuer: key persistence, JWKS, claims, signatures checked with ring
//! (independently of the `rsa` signer), and the HTTP routes over a real socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use switchboard_local::issuer::{
    self, IssuerError, KEY_FILE, LocalIssuer, TokenRequest, TokenResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ISS: &str = "http://127.0.0.1:3000/local";
const AUD: &str = "local-client";

/// A directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "switchboard-issuer-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// The key directory the issuer creates itself (does not exist yet).
    fn key_dir(&self) -> PathBuf {
        self.0.join(".switchboard")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn new_issuer(dir: &Path) -> LocalIssuer {
    LocalIssuer::load_or_create(dir, ISS, AUD).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// Verifies an RS256 JWT against a JWKS with ring (not with the crate that signed it) and
/// returns its header and claims.
fn verify(token: &str, jwks: &Value) -> Result<(Value, Value), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(format!("{} parts", parts.len()));
    };
    let header: Value = serde_json::from_slice(&b64(header)).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .ok_or("no key with that kid")?;
    let n = b64(key["n"].as_str().unwrap());
    let e = b64(key["e"].as_str().unwrap());
    let public = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
    let signed = &token[..token.rfind('.').unwrap()];
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &b64(signature),
        )
        .map_err(|_| "bad signature".to_owned())?;
    let claims: Value = serde_json::from_slice(&b64(claims)).map_err(|e| e.to_string())?;
    Ok((header, claims))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn key_is_persisted_and_reloaded() {
    let tmp = TempDir::new();
    let dir = tmp.key_dir();
    let first = new_issuer(&dir);
    assert_eq!(first.key_path(), dir.join(KEY_FILE));
    let pem = std::fs::read_to_string(dir.join(KEY_FILE)).unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{pem:.40}"
    );
    // No temporary file left behind; the directory ignores itself in git.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".gitignore", KEY_FILE]);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    }

    let tokens = first.issue(&TokenRequest::new("alice")).unwrap();
    let second = new_issuer(&dir);
    assert_eq!(first.kid(), second.kid());
    assert_eq!(first.jwks(), second.jwks());
    assert_eq!(std::fs::read_to_string(dir.join(KEY_FILE)).unwrap(), pem);
    verify(&tokens.id_token, &second.jwks()).unwrap();
    verify(&tokens.access_token, &second.jwks()).unwrap();

    // Another directory: another key, and the first key's tokens do not verify with it.
    let other_tmp = TempDir::new();
    let other = new_issuer(&other_tmp.key_dir());
    assert_ne!(other.kid(), first.kid());
    let mut jwks = other.jwks();
    jwks["keys"][0]["kid"] = json!(first.kid());
    assert_eq!(
        verify(&tokens.id_token, &jwks).unwrap_err(),
        "bad signature"
    );
}

#[test]
fn existing_directory_is_used_as_is() {
    let tmp = TempDir::new();
    let issuer = new_issuer(&tmp.0);
    assert!(tmp.0.join(KEY_FILE).is_file());
    // It did not create the directory, so it leaves no .gitignore in it.
    assert!(!tmp.0.join(".gitignore").exists());
    assert_eq!(new_issuer(&tmp.0).kid(), issuer.kid());
}

#[test]
fn corrupt_key_file_is_an_error_naming_the_file() {
    let tmp = TempDir::new();
    let path = tmp.0.join(KEY_FILE);
    let good = {
        let dir = tmp.0.join("good");
        new_issuer(&dir);
        std::fs::read_to_string(dir.join(KEY_FILE)).unwrap()
    };
    let truncated = good[..good.len() / 2].to_owned();
    let cases: [(&str, &[u8]); 4] = [
        ("garbage", b"not a key at all"),
        ("empty", b""),
        ("binary", &[0xff, 0xfe, 0x00, 0x80]),
        ("truncated", truncated.as_bytes()),
    ];
    for (what, contents) in cases {
        std::fs::write(&path, contents).unwrap();
        let err = LocalIssuer::load_or_create(&tmp.0, ISS, AUD).unwrap_err();
        assert!(
            matches!(err, IssuerError::CorruptKey { .. }),
            "{what}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "{what}: {message}"
        );
        assert!(message.contains("delete it"), "{what}: {message}");
        // Never replaced silently.
        assert_eq!(std::fs::read(&path).unwrap(), contents, "{what}");
    }
    // Deleting it, as the message says, fixes it.
    std::fs::remove_file(&path).unwrap();
    new_issuer(&tmp.0);
}

#[test]
fn unreadable_directory_is_an_io_error() {
    let tmp = TempDir::new();
    // A file where the directory should be.
    let dir = tmp.0.join("file");
    std::fs::write(&dir, "x").unwrap();
    let err = LocalIssuer::load_or_create(&dir, ISS, AUD).unwrap_err();
    assert!(matches!(err, IssuerError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("file"), "{err}");
}

#[test]
fn jwks_shape() {
    let tmp = TempDir::new();
    let issuer = new_issuer(&tmp.key_dir());
    let jwks = issuer.jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    let mut fields: Vec<&str> = key.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["kid"], issuer.kid());
    assert_eq!(key["e"], "AQAB");
    let n = key["n"].as_str().unwrap();
    assert!(!n.contains('=') && !n.contains('+') && !n.contains('/'));
    let n = b64(n);
    assert_eq!(n.len(), 256, "2048-bit modulus");
    assert!(n[0] & 0x80 != 0, "big-endian, no leading zero");
    // kid: base64url of 16 bytes.
    assert_eq!(issuer.kid().len(), 22);
    assert_eq!(b64(issuer.kid()).len(), 16);

    let config = issuer.openid_configuration("http://localhost:3000/");
    assert_eq!(config["issuer"], ISS);
    assert_eq!(
        config["jwks_uri"],
        "http://localhost:3000/local/.well-known/jwks.json"
    );
    assert_eq!(
        config["token_endpoint"],
        "http://localhost:3000/local/token"
    );
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert!(config["response_types_supported"].is_array());
    assert_eq!(config["subject_types_supported"], json!(["public"]));
}

#[test]
fn claims_in_cognitos_shape() {
    let tmp = TempDir::new();
    let issuer = new_issuer(&tmp.key_dir());
    let jwks = issuer.jwks();
    let before = now();
    let tokens = issuer
        .issue(&TokenRequest::new("alice").groups(["admin", "editors", "admin"]))
        .unwrap();
    let after = now();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 3600);

    let (header, id) = verify(&tokens.id_token, &jwks).unwrap();
    assert_eq!(header, json!({"kid": issuer.kid(), "alg": "RS256"}));
    let sub = id["sub"].as_str().unwrap().to_owned();
    assert_eq!(id["cognito:username"], "alice");
    assert_eq!(id["cognito:groups"], json!(["admin", "editors"]));
    assert_eq!(id["token_use"], "id");
    assert_eq!(id["aud"], AUD);
    assert_eq!(id["iss"], ISS);
    assert_eq!(id["email_verified"], false);
    let iat = id["iat"].as_i64().unwrap();
    assert!((before..=after).contains(&iat));
    assert_eq!(id["auth_time"], iat);
    assert_eq!(id["exp"].as_i64().unwrap(), iat + 3600);
    assert!(id.get("username").is_none() && id.get("client_id").is_none());

    let (header, access) = verify(&tokens.access_token, &jwks).unwrap();
    assert_eq!(header["kid"], issuer.kid());
    assert_eq!(access["sub"], sub.as_str());
    assert_eq!(access["username"], "alice");
    assert_eq!(access["cognito:groups"], json!(["admin", "editors"]));
    assert_eq!(access["token_use"], "access");
    assert_eq!(access["client_id"], AUD);
    assert_eq!(access["scope"], "aws.cognito.signin.user.admin");
    assert_eq!(access["iss"], ISS);
    assert_eq!(access["iat"], iat);
    assert_eq!(access["exp"].as_i64().unwrap(), iat + 3600);
    assert!(access.get("aud").is_none() && access.get("cognito:username").is_none());
    let jti = access["jti"].as_str().unwrap();
    assert_ne!(jti, id["jti"].as_str().unwrap());
    assert!(is_uuid(jti), "{jti}");

    // sub: UUID-shaped, stable for a user (across calls, instances and keys), distinct
    // between users.
    assert!(is_uuid(&sub), "{sub}");
    let again = issuer.issue(&TokenRequest::new("alice")).unwrap();
    let (_, again) = verify(&again.id_token, &jwks).unwrap();
    assert_eq!(again["sub"], sub.as_str());
    // No groups: no cognito:groups claim at all (as Cognito).
    assert!(again.get("cognito:groups").is_none(), "{again}");
    let other_tmp = TempDir::new();
    let other_key = new_issuer(&other_tmp.key_dir());
    let (_, elsewhere) = verify(
        &other_key
            .issue(&TokenRequest::new("alice"))
            .unwrap()
            .id_token,
        &other_key.jwks(),
    )
    .unwrap();
    assert_eq!(elsewhere["sub"], sub.as_str());
    let (_, bob) = verify(
        &issuer.issue(&TokenRequest::new("bob")).unwrap().id_token,
        &jwks,
    )
    .unwrap();
    assert_ne!(bob["sub"], sub.as_str());

    // Lifetimes.
    let short = issuer
        .issue(&TokenRequest::new("alice").ttl(Duration::from_secs(90)))
        .unwrap();
    assert_eq!(short.expires_in, 90);
    let (_, claims) = verify(&short.id_token, &jwks).unwrap();
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        90
    );
    let day = Duration::from_secs(24 * 60 * 60);
    assert_eq!(
        issuer
            .issue(&TokenRequest::new("a").ttl(day))
            .unwrap()
            .expires_in,
        86_400
    );
    for ttl in [
        day + Duration::from_secs(1),
        Duration::ZERO,
        Duration::from_millis(999),
    ] {
        let err = issuer.issue(&TokenRequest::new("a").ttl(ttl)).unwrap_err();
        assert!(
            matches!(err, IssuerError::InvalidTtl(_)),
            "{ttl:?}: {err:?}"
        );
        assert!(err.is_invalid_request());
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[test]
fn tampered_tokens_do_not_verify() {
    let tmp = TempDir::new();
    let issuer = new_issuer(&tmp.key_dir());
    let jwks = issuer.jwks();
    let token = issuer.issue(&TokenRequest::new("alice")).unwrap().id_token;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64(parts[1])).unwrap();
    claims["cognito:username"] = json!("mallory");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert_eq!(verify(&forged, &jwks).unwrap_err(), "bad signature");
}

#[test]
fn invalid_usernames_and_groups_are_refused() {
    let tmp = TempDir::new();
    let issuer = new_issuer(&tmp.key_dir());
    let long = "a".repeat(65);
    for name in [
        "",
        "a b",
        "alice/bob",
        "ünïcode",
        "a\"b",
        "x\n",
        long.as_str(),
    ] {
        let err = issuer.issue(&TokenRequest::new(name)).unwrap_err();
        assert!(
            matches!(err, IssuerError::InvalidUsername(_)),
            "{name:?}: {err:?}"
        );
        assert!(err.is_invalid_request());
    }
    for ok in ["a", "A.b-c_9", &"z".repeat(64)] {
        issuer.issue(&TokenRequest::new(ok)).unwrap();
    }
    for groups in [vec!["ok", "bad group"], vec![""], vec![long.as_str()]] {
        let err = issuer
            .issue(&TokenRequest::new("alice").groups(groups.clone()))
            .unwrap_err();
        assert!(
            matches!(err, IssuerError::InvalidGroups(_)),
            "{groups:?}: {err:?}"
        );
    }
    let twenty: Vec<String> = (0..20).map(|i| format!("g{i}")).collect();
    issuer
        .issue(&TokenRequest::new("alice").groups(twenty.clone()))
        .unwrap();
    let err = issuer
        .issue(&TokenRequest::new("alice").groups(twenty).groups(["g20"]))
        .unwrap_err();
    assert!(matches!(err, IssuerError::InvalidGroups(_)), "{err:?}");
}

/// One HTTP/1.1 request over a fresh connection; returns status, headers (lower-case
/// names) and body.
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")),
        "this client reads only Content-Length bodies"
    );
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn http_routes() {
    let tmp = TempDir::new();
    let issuer = Arc::new(new_issuer(&tmp.key_dir()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, issuer::routes(Arc::clone(&issuer)))
            .await
            .unwrap();
    });
    let host = addr.to_string();

    // JWKS.
    let (status, headers, body) =
        http(addr, "GET", "/local/.well-known/jwks.json", &host, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let jwks: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");

    // Discovery: URLs from the Host header.
    let (status, _, body) = http(
        addr,
        "GET",
        "/local/.well-known/openid-configuration",
        "localhost:4321",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        config["jwks_uri"],
        "http://localhost:4321/local/.well-known/jwks.json"
    );
    assert_eq!(
        config["token_endpoint"],
        "http://localhost:4321/local/token"
    );
    assert_eq!(config["issuer"], ISS);
    let (status, _, body) = http(
        addr,
        "GET",
        "/local/.well-known/openid-configuration",
        "evil\"host",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Tokens.
    let (status, headers, body) = http(
        addr,
        "POST",
        "/local/token",
        &host,
        Some(r#"{"username":"alice","groups":["admin"]}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let raw: Value = serde_json::from_str(&body).unwrap();
    let mut fields: Vec<&str> = raw
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["accessToken", "expiresIn", "idToken", "tokenType"]);
    let tokens: TokenResponse = serde_json::from_value(raw).unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 3600);
    let (_, id) = verify(&tokens.id_token, &jwks).unwrap();
    assert_eq!(id["cognito:username"], "alice");
    assert_eq!(id["cognito:groups"], json!(["admin"]));
    let (_, access) = verify(&tokens.access_token, &jwks).unwrap();
    assert_eq!(access["username"], "alice");

    // Groups optional; expiresIn honoured.
    let (status, _, body) = http(
        addr,
        "POST",
        "/local/token",
        &host,
        Some(r#"{"username":"bob","expiresIn":60}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tokens: TokenResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(tokens.expires_in, 60);
    let (_, id) = verify(&tokens.id_token, &jwks).unwrap();
    assert!(id.get("cognito:groups").is_none());

    // Bad requests: 400 with an error object, not cached.
    for (body, mentions) in [
        ("not json", "JSON"),
        ("{}", "username"),
        (r#"{"username":"a b"}"#, "username"),
        (r#"{"username":""}"#, "username"),
        (r#"{"username":"alice","groups":["x y"]}"#, "group"),
        (r#"{"username":"alice","groups":"admin"}"#, "JSON"),
        (r#"{"username":"alice","password":"secret"}"#, "password"),
        (r#"{"username":"alice","expiresIn":86401}"#, "lifetime"),
        (r#"{"username":"alice","expiresIn":-1}"#, "JSON"),
    ] {
        let (status, headers, response) =
            http(addr, "POST", "/local/token", &host, Some(body)).await;
        assert_eq!(status, 400, "{body}: {response}");
        assert_eq!(
            header(&headers, "cache-control"),
            Some("no-store"),
            "{body}"
        );
        let error: Value = serde_json::from_str(&response).unwrap();
        assert_eq!(error["error"]["code"], "invalid_request", "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    let big = format!(r#"{{"username":"{}"}}"#, "a".repeat(20_000));
    let (status, _, response) = http(addr, "POST", "/local/token", &host, Some(&big)).await;
    assert_eq!(status, 400, "{response}");

    // Wrong method.
    let (status, _, _) = http(addr, "GET", "/local/token", &host, None).await;
    assert_eq!(status, 405);

    server.abort();
}
