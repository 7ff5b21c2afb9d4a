//! `switchboard_aws::jwt`: the bad-token corpus (each with its error and, through
//! `JwtAuthorizer`, its status), good id and access tokens, token sources, JWKS fetching
//! from a local HTTP server (rotation, refresh interval, flood of unknown kids, fetch
//! failures).
//!
//! Keys: `testing/fixtures/jwt/rsa-{a,b,c}.pem` are 2048-bit test-only PKCS#8 keys
//! (`openssl genpkey -algorithm RSA`), `rsa-a.pub.pem` is key A's public key. Tokens are
//! signed here with ring. No network but 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::query_map::QueryMap;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};
use switchboard_aws::jwt::{JwtAuthorizer, JwtConfig, JwtError, JwtVerifier, TokenUse};
use switchboard_core::auth::{self, AuthError, Authorizer, Decision};

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool";
const CLIENT: &str = "testclient123";
const KID_A: &str = "key-a";
const KID_C: &str = "key-c";
const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:api/ws/$connect";
const SUB: &str = "0f6b5c2e-1111-4222-8333-444455556666";

fn key(name: &str) -> RsaKeyPair {
    let path = format!(
        "{}/../testing/fixtures/jwt/rsa-{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let pem = std::fs::read_to_string(path).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    RsaKeyPair::from_pkcs8(&STANDARD.decode(b64).unwrap()).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwk(pair: &RsaKeyPair, kid: &str) -> Value {
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
           "n": b64(&public.n), "e": b64(&public.e)})
}

fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

fn sign_rs256(pair: &RsaKeyPair, message: &[u8]) -> Vec<u8> {
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
        .unwrap();
    sig
}

/// `header.payload.signature`, signed with `pair` (RS256).
fn token_with(pair: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = sign_rs256(pair, signed.as_bytes());
    format!("{signed}.{}", b64(&sig))
}

fn rs256(kid: &str) -> Value {
    json!({"alg": "RS256", "kid": kid, "typ": "JWT"})
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims of a Cognito id token.
fn id_claims() -> Value {
    let now = now();
    json!({
        "sub": SUB, "iss": ISSUER, "aud": CLIENT, "token_use": "id",
        "cognito:username": "alice", "cognito:groups": ["admins", "staff"],
        "email": "alice@example.com", "auth_time": now, "iat": now, "exp": now + 3600,
        "jti": "4b1c1f2a-0000-4000-8000-000000000001"
    })
}

/// Claims of a Cognito access token.
fn access_claims() -> Value {
    let now = now();
    json!({
        "sub": SUB, "iss": ISSUER, "client_id": CLIENT, "token_use": "access",
        "username": "alice", "scope": "aws.cognito.signin.user.admin",
        "auth_time": now, "iat": now, "exp": now + 3600,
        "jti": "4b1c1f2a-0000-4000-8000-000000000002"
    })
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn config(token_use: TokenUse) -> JwtConfig {
    JwtConfig::new(ISSUER)
        .with_audience(CLIENT)
        .with_token_use(token_use)
}

fn static_verifier(config: JwtConfig) -> Arc<JwtVerifier> {
    let a = key("a");
    Arc::new(JwtVerifier::with_static_jwks(config, &jwks(&[jwk(&a, KID_A)])).unwrap())
}

fn request(
    query: &[(&str, &str)],
    headers: &[(&'static str, &str)],
) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut request = ApiGatewayCustomAuthorizerRequestTypeRequest::default();
    request.type_ = Some("REQUEST".to_owned());
    request.method_arn = Some(ARN.to_owned());
    let query: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    request.query_string_parameters = QueryMap::from(query);
    for (name, value) in headers {
        request
            .headers
            .append(*name, http::HeaderValue::from_str(value).unwrap());
    }
    request
}

/// What the gateway answers for this request: 200 (with the identity), 401, 403 or 500.
async fn gateway_status(
    authorizer: &JwtAuthorizer,
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> (u16, Option<switchboard_core::Identity>) {
    match authorizer.authorize(request).await {
        Ok(result) => match auth::evaluate(&result, ARN) {
            Decision::Allow(identity) => (200, Some(identity)),
            Decision::Deny => (403, None),
            Decision::Invalid(why) => panic!("invalid authorizer result: {why}"),
        },
        Err(AuthError::Unauthorized(_)) => (401, None),
        Err(AuthError::Failed(_)) => (500, None),
    }
}

async fn query_status(authorizer: &JwtAuthorizer, token: &str) -> u16 {
    gateway_status(authorizer, &request(&[("token", token)], &[]))
        .await
        .0
}

type Check = fn(&JwtError) -> bool;

#[tokio::test]
async fn bad_token_corpus_is_rejected_with_the_right_error_and_status() {
    let a = key("a");
    let b = key("b");
    let now = now();
    let id = static_verifier(config(TokenUse::Id));
    let access = static_verifier(config(TokenUse::Access));
    let groups = static_verifier(config(TokenUse::Id).with_required_groups(["admins", "ops"]));
    let public_pem = std::fs::read(format!(
        "{}/../testing/fixtures/jwt/rsa-a.pub.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();

    let good = token_with(&a, &rs256(KID_A), &id_claims());
    let unsigned = |header: Value| {
        format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(id_claims().to_string().as_bytes())
        )
    };
    let hs256 = |secret: &[u8]| {
        let signed = format!(
            "{}.{}",
            b64(json!({"alg": "HS256", "kid": KID_A, "typ": "JWT"})
                .to_string()
                .as_bytes()),
            b64(id_claims().to_string().as_bytes())
        );
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            signed.as_bytes(),
        );
        format!("{signed}.{}", b64(tag.as_ref()))
    };
    let jwk_n = URL_SAFE_NO_PAD
        .decode(jwk(&a, KID_A)["n"].as_str().unwrap())
        .unwrap();
    let huge = token_with(
        &a,
        &rs256(KID_A),
        &with(id_claims(), json!({"padding": "x".repeat(17 * 1024)})),
    );
    let (h, p, s) = {
        let mut parts = good.split('.');
        (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        )
    };

    let cases: Vec<(&str, &Arc<JwtVerifier>, String, Check, u16)> = vec![
        (
            "forged signature (other key, same kid)",
            &id,
            token_with(&b, &rs256(KID_A), &id_claims()),
            |e| matches!(e, JwtError::BadSignature),
            403,
        ),
        (
            "payload swapped under a valid signature",
            &id,
            format!(
                "{h}.{}.{s}",
                b64(with(id_claims(), json!({"cognito:username": "root"}))
                    .to_string()
                    .as_bytes())
            ),
            |e| matches!(e, JwtError::BadSignature),
            403,
        ),
        (
            "expired (beyond the 60 s leeway)",
            &id,
            token_with(
                &a,
                &rs256(KID_A),
                &with(id_claims(), json!({"iat": now - 7200, "exp": now - 61})),
            ),
            |e| matches!(e, JwtError::Expired { .. }),
            403,
        ),
        (
            "nbf in the future",
            &id,
            token_with(
                &a,
                &rs256(KID_A),
                &with(id_claims(), json!({"nbf": now + 600})),
            ),
            |e| matches!(e, JwtError::NotYetValid { claim: "nbf", .. }),
            403,
        ),
        (
            "iat in the future",
            &id,
            token_with(
                &a,
                &rs256(KID_A),
                &with(id_claims(), json!({"iat": now + 600})),
            ),
            |e| matches!(e, JwtError::NotYetValid { claim: "iat", .. }),
            403,
        ),
        (
            "wrong iss",
            &id,
            token_with(
                &a,
                &rs256(KID_A),
                &with(
                    id_claims(),
                    json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"}),
                ),
            ),
            |e| matches!(e, JwtError::WrongIssuer(_)),
            403,
        ),
        (
            "iss with a trailing slash",
            &id,
            token_with(
                &a,
                &rs256(KID_A),
                &with(id_claims(), json!({"iss": format!("{ISSUER}/")})),
            ),
            |e| matches!(e, JwtError::WrongIssuer(_)),
            403,
        ),
        (
            "no iss",
            &id,
            token_with(&a, &rs256(KID_A), &with(id_claims(), json!({"iss": null}))),
            |e| matches!(e, JwtError::WrongIssuer(_)),
            403,
        ),
        (
            "wrong aud (id token)",
            &id,
            token_with(
                &a,
                &rs256(KID_A),
                &with(id_claims(), json!({"aud": "otherclient"})),
            ),
            |e| matches!(e, JwtError::WrongAudience(_)),
            403,
        ),
        (
            "wrong client_id (access token)",
            &access,
            token_with(
                &a,
                &rs256(KID_A),
                &with(access_claims(), json!({"client_id": "otherclient"})),
            ),
            |e| matches!(e, JwtError::WrongAudience(_)),
            403,
        ),
        (
            "access token with aud but no client_id",
            &access,
            token_with(
                &a,
                &rs256(KID_A),
                &with(access_claims(), json!({"client_id": null, "aud": CLIENT})),
            ),
            |e| matches!(e, JwtError::WrongAudience(_)),
            403,
        ),
        (
            "wrong token_use (access token where id tokens are expected)",
            &id,
            token_with(&a, &rs256(KID_A), &access_claims()),
            |e| matches!(e, JwtError::WrongTokenUse { expected: TokenUse::Id, found: Some(f) } if f == "access"),
            403,
        ),
        (
            "wrong token_use (id token where access tokens are expected)",
            &access,
            good.clone(),
            |e| matches!(e, JwtError::WrongTokenUse { .. }),
            403,
        ),
        (
            "no token_use",
            &id,
            token_with(
                &a,
                &rs256(KID_A),
                &with(id_claims(), json!({"token_use": null})),
            ),
            |e| matches!(e, JwtError::WrongTokenUse { found: None, .. }),
            403,
        ),
        (
            "alg none",
            &id,
            unsigned(json!({"alg": "none", "kid": KID_A})),
            |e| matches!(e, JwtError::UnsupportedAlgorithm(_)),
            403,
        ),
        (
            "alg None, valid RS256 signature kept",
            &id,
            format!(
                "{}.{p}.{s}",
                b64(json!({"alg": "None", "kid": KID_A}).to_string().as_bytes())
            ),
            |e| matches!(e, JwtError::UnsupportedAlgorithm(_)),
            403,
        ),
        (
            "HS256 signed with the public key PEM (key confusion)",
            &id,
            hs256(&public_pem),
            |e| matches!(e, JwtError::UnsupportedAlgorithm(_)),
            403,
        ),
        (
            "HS256 signed with the JWK modulus",
            &id,
            hs256(&jwk_n),
            |e| matches!(e, JwtError::UnsupportedAlgorithm(_)),
            403,
        ),
        (
            "ES256",
            &id,
            format!(
                "{}.{p}.{}",
                b64(json!({"alg": "ES256", "kid": KID_A}).to_string().as_bytes()),
                b64(&[7; 64])
            ),
            |e| matches!(e, JwtError::UnsupportedAlgorithm(_)),
            403,
        ),
        (
            "PS256",
            &id,
            format!(
                "{}.{p}.{s}",
                b64(json!({"alg": "PS256", "kid": KID_A}).to_string().as_bytes())
            ),
            |e| matches!(e, JwtError::UnsupportedAlgorithm(_)),
            403,
        ),
        (
            "unknown kid",
            &id,
            token_with(&a, &rs256("no-such-key"), &id_claims()),
            |e| matches!(e, JwtError::UnknownKey(k) if k == "no-such-key"),
            403,
        ),
        (
            "no kid",
            &id,
            token_with(&a, &json!({"alg": "RS256"}), &id_claims()),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "critical header extension",
            &id,
            token_with(
                &a,
                &json!({"alg": "RS256", "kid": KID_A, "crit": ["exp"], "exp": 1}),
                &id_claims(),
            ),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "truncated (two parts)",
            &id,
            format!("{h}.{p}"),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "truncated signature",
            &id,
            good[..good.len() - 4].to_owned(),
            |e| matches!(e, JwtError::BadSignature | JwtError::Malformed(_)),
            403,
        ),
        (
            "truncated mid-payload",
            &id,
            good[..h.len() + 20].to_owned(),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "non-base64 header",
            &id,
            format!("eyJ!*.{p}.{s}"),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "non-base64 signature",
            &id,
            format!("{h}.{p}.{}*", &s[..s.len() - 1]),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "padded base64",
            &id,
            format!("{h}.{p}.{s}=="),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "header not JSON",
            &id,
            format!("{}.{p}.{s}", b64(b"not json")),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "payload not JSON (validly signed)",
            &id,
            {
                let signed = format!("{h}.{}", b64(b"[1,2,3]"));
                format!("{signed}.{}", b64(&sign_rs256(&a, signed.as_bytes())))
            },
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "exp not a number",
            &id,
            token_with(
                &a,
                &rs256(KID_A),
                &with(id_claims(), json!({"exp": "tomorrow"})),
            ),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "no exp",
            &id,
            token_with(&a, &rs256(KID_A), &with(id_claims(), json!({"exp": null}))),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "JWE (five parts)",
            &id,
            format!("{h}.{p}.{s}.{p}.{s}"),
            |e| matches!(e, JwtError::Malformed(_)),
            403,
        ),
        (
            "huge (> 16 KB)",
            &id,
            huge.clone(),
            |e| matches!(e, JwtError::TooLarge { limit: 16384, .. }),
            403,
        ),
        (
            "empty",
            &id,
            String::new(),
            |e| matches!(e, JwtError::Malformed(_)),
            401, // an empty `token=` is no token, as API Gateway's identity sources treat it
        ),
        (
            "missing a required group",
            &groups,
            good.clone(),
            |e| matches!(e, JwtError::MissingGroup(g) if g == "ops"),
            403,
        ),
        (
            "no groups at all when some are required",
            &groups,
            token_with(
                &a,
                &rs256(KID_A),
                &with(id_claims(), json!({"cognito:groups": null})),
            ),
            |e| matches!(e, JwtError::MissingGroup(g) if g == "admins"),
            403,
        ),
    ];

    let mut failures = Vec::new();
    for (name, verifier, token, check, status) in &cases {
        match verifier.verify(token).await {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) if !check(&e) => failures.push(format!("{name}: wrong error {e:?}")),
            Err(e) => {
                let message = e.to_string();
                assert!(message.len() < 300, "{name}: long message {message}");
                assert!(
                    token.len() < 20 || !message.contains(token.as_str()),
                    "{name}: the message quotes the token"
                );
            }
        }
        let got = query_status(&JwtAuthorizer::new(Arc::clone(verifier)), token).await;
        if got != *status {
            failures.push(format!("{name}: status {got}, expected {status}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The huge token is refused before parsing, and every prefix of a good token is
    // refused without a panic.
    assert!(huge.len() > 16 * 1024);
    for cut in (0..good.len()).step_by(13) {
        assert!(id.verify(&good[..cut]).await.is_err(), "prefix {cut}");
    }
}

#[tokio::test]
async fn a_key_that_does_not_declare_rs256_is_refused() {
    let a = key("a");
    let mut es = jwk(&a, "es-key");
    es["alg"] = json!("ES256");
    let mut enc = jwk(&a, "enc-key");
    enc["use"] = json!("enc");
    let mut ec = json!({"kty": "EC", "crv": "P-256", "kid": "ec-key", "x": "AA", "y": "AA"});
    ec["alg"] = json!("ES256");
    let document = jwks(&[jwk(&a, KID_A), es, enc, ec]);
    let verifier = JwtVerifier::with_static_jwks(config(TokenUse::Id), &document).unwrap();
    for kid in ["es-key", "enc-key", "ec-key"] {
        let token = token_with(&a, &rs256(kid), &id_claims());
        let err = verifier.verify(&token).await.unwrap_err();
        assert!(
            matches!(err, JwtError::UnsupportedAlgorithm(_)),
            "{kid}: {err:?}"
        );
    }
    // A JWKS with no usable key at all is refused up front.
    let err = JwtVerifier::with_static_jwks(config(TokenUse::Id), &jwks(&[])).unwrap_err();
    assert!(matches!(err, JwtError::Jwks { .. }), "{err:?}");
}

#[tokio::test]
async fn garbage_never_panics() {
    let verifier = static_verifier(config(TokenUse::Any));
    let authorizer = JwtAuthorizer::new(Arc::clone(&verifier));
    let mut inputs: Vec<String> = vec![
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b.c".into(),
        "\u{0}.\u{0}.\u{0}".into(),
        "é.é.é".into(),
        format!("{}.e30.", b64(b"{\"alg\":\"RS256\",\"kid\":7}")),
        format!("{}.e30.AA", b64(b"{\"alg\":\"RS256\",\"kid\":\"key-a\"}")),
        format!("{}.e30.AA", b64(b"{\"alg\":[1],\"kid\":\"key-a\"}")),
        format!("{}.e30.AA", b64(b"{\"alg\":\"RS256\",\"alg\":\"none\"}")),
        format!(
            "{}.{}.AA",
            b64(b"{\"alg\":\"RS256\",\"kid\":\"key-a\"}"),
            b64(&[0xff; 40])
        ),
        "x".repeat(16 * 1024 + 1),
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let parts: Vec<String> = (0..(next() % 5))
            .map(|_| {
                let len = (next() % 64) as usize;
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                if next() % 2 == 0 {
                    b64(&bytes)
                } else {
                    String::from_utf8_lossy(&bytes).into_owned()
                }
            })
            .collect();
        inputs.push(parts.join("."));
    }
    for input in &inputs {
        assert!(verifier.verify(input).await.is_err());
        let request = request(&[("token", input)], &[]);
        let (status, _) = gateway_status(&authorizer, &request).await;
        assert!(status == 403 || status == 401, "{status}");
    }
}

#[tokio::test]
async fn good_id_and_access_tokens_are_accepted() {
    let a = key("a");
    let id_token = token_with(&a, &rs256(KID_A), &id_claims());
    let access_token = token_with(&a, &rs256(KID_A), &access_claims());

    let claims = static_verifier(config(TokenUse::Id))
        .verify(&id_token)
        .await
        .unwrap();
    assert_eq!(claims.sub(), SUB);
    assert_eq!(claims.username(), "alice");
    assert_eq!(claims.groups(), ["admins", "staff"]);
    assert_eq!(claims.token_use(), Some("id"));
    assert_eq!(claims.get("email"), Some(&json!("alice@example.com")));
    assert_eq!(claims.raw()["aud"], CLIENT);
    assert!(claims.exp() > now());

    let claims = static_verifier(config(TokenUse::Access))
        .verify(&access_token)
        .await
        .unwrap();
    assert_eq!(claims.username(), "alice");
    assert_eq!(claims.token_use(), Some("access"));
    assert!(claims.groups().is_empty());

    // `any` takes both, each with its own audience claim.
    let any = static_verifier(config(TokenUse::Any));
    assert!(any.verify(&id_token).await.is_ok());
    assert!(any.verify(&access_token).await.is_ok());
    // Required groups the caller has; no audience configured; `aud` as a list.
    let groups = static_verifier(config(TokenUse::Id).with_required_groups(["staff"]));
    assert!(groups.verify(&id_token).await.is_ok());
    let mut open = config(TokenUse::Id);
    open.audience = None;
    let listed = token_with(
        &a,
        &rs256(KID_A),
        &with(id_claims(), json!({"aud": ["x", CLIENT]})),
    );
    assert!(static_verifier(open).verify(&listed).await.is_ok());
    assert!(
        static_verifier(config(TokenUse::Id))
            .verify(&listed)
            .await
            .is_ok()
    );
    // Within the leeway: expired 30 s ago, issued 30 s ahead; a fractional exp.
    let now = now();
    let skewed = token_with(
        &a,
        &rs256(KID_A),
        &with(
            id_claims(),
            json!({"exp": now - 30, "iat": now + 30, "nbf": now + 30}),
        ),
    );
    assert!(
        static_verifier(config(TokenUse::Id))
            .verify(&skewed)
            .await
            .is_ok()
    );
    let fractional = token_with(
        &a,
        &rs256(KID_A),
        &with(id_claims(), json!({"exp": (now + 100) as f64 + 0.5})),
    );
    let claims = static_verifier(config(TokenUse::Id))
        .verify(&fractional)
        .await
        .unwrap();
    assert_eq!(claims.exp(), now + 100);
    // No username claims: the username is the sub.
    let bare = token_with(
        &a,
        &rs256(KID_A),
        &with(id_claims(), json!({"cognito:username": null})),
    );
    let claims = static_verifier(config(TokenUse::Id))
        .verify(&bare)
        .await
        .unwrap();
    assert_eq!(claims.username(), SUB);
}

#[tokio::test]
async fn the_authorizer_allows_with_the_identity_in_the_context() {
    let a = key("a");
    let id_token = token_with(&a, &rs256(KID_A), &id_claims());
    let authorizer = JwtAuthorizer::new(static_verifier(config(TokenUse::Id)));

    let result = authorizer
        .authorize(&request(&[("token", &id_token)], &[]))
        .await
        .unwrap();
    assert_eq!(result.principal_id.as_deref(), Some(SUB));
    let context = result.context.as_object().unwrap();
    assert_eq!(context["username"], "alice");
    assert_eq!(context["sub"], SUB);
    assert_eq!(context["groups"], "admins,staff");
    assert_eq!(context["tokenUse"], "id");
    assert!(context["expiresAt"].as_i64().unwrap() > now());
    assert!(serde_json::to_vec(&result).unwrap().len() < 1024);
    let Decision::Allow(identity) = auth::evaluate(&result, ARN) else {
        panic!("not allowed");
    };
    assert_eq!(identity.username(), "alice");
    assert_eq!(identity.principal_id(), Some(SUB));
    // The Allow is for this methodArn only.
    assert_eq!(
        auth::evaluate(
            &result,
            "arn:aws:execute-api:us-east-1:123456789012:other/ws/$connect"
        ),
        Decision::Deny
    );

    // Many long groups: the context stays well under 8 KB.
    let groups: Vec<String> = (0..40)
        .map(|i| format!("{i:03}-{}", "g".repeat(120)))
        .collect();
    let token = token_with(
        &a,
        &rs256(KID_A),
        &with(id_claims(), json!({"cognito:groups": groups})),
    );
    let result = authorizer
        .authorize(&request(&[("token", &token)], &[]))
        .await
        .unwrap();
    assert!(serde_json::to_vec(&result).unwrap().len() < 4 * 1024);
    assert_eq!(result.context["groupsTruncated"], true);
    assert!(matches!(auth::evaluate(&result, ARN), Decision::Allow(_)));
}

#[tokio::test]
async fn token_sources_query_protocol_and_bearer() {
    let a = key("a");
    let token = token_with(&a, &rs256(KID_A), &id_claims());
    let forged = token_with(&key("b"), &rs256(KID_A), &id_claims());
    let authorizer = JwtAuthorizer::new(static_verifier(config(TokenUse::Id)));
    let status = |query: Vec<(&'static str, String)>, headers: Vec<(&'static str, String)>| {
        let authorizer = authorizer.clone();
        async move {
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let headers: Vec<(&'static str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, identity) = gateway_status(&authorizer, &request(&query, &headers)).await;
            (status, identity.map(|i| i.username().to_owned()))
        }
    };
    let alice = Some("alice".to_owned());

    // Sec-WebSocket-Protocol: the offered protocol that looks like a JWT, in any position.
    assert_eq!(
        status(
            vec![],
            vec![("sec-websocket-protocol", format!("chat, {token}"))]
        )
        .await,
        (200, alice.clone())
    );
    assert_eq!(
        status(
            vec![],
            vec![("Sec-WebSocket-Protocol", format!("{token},chat.v2"))]
        )
        .await,
        (200, alice.clone())
    );
    assert_eq!(
        status(
            vec![],
            vec![
                ("sec-websocket-protocol", "chat".to_owned()),
                ("sec-websocket-protocol", token.clone())
            ]
        )
        .await,
        (200, alice.clone())
    );
    assert_eq!(
        status(
            vec![],
            vec![("sec-websocket-protocol", format!("chat, {forged}"))]
        )
        .await,
        (403, None)
    );
    // Authorization: Bearer (non-browser clients).
    assert_eq!(
        status(vec![], vec![("authorization", format!("Bearer {token}"))]).await,
        (200, alice.clone())
    );
    // The query parameter wins over the protocol.
    assert_eq!(
        status(
            vec![("token", forged.clone())],
            vec![("sec-websocket-protocol", token.clone())]
        )
        .await,
        (403, None)
    );
    assert_eq!(
        status(vec![("token", token.clone())], vec![]).await,
        (200, alice)
    );
    // Missing: no token anywhere, protocols that are not JWTs, another query parameter,
    // an empty token, another authorization scheme.
    assert_eq!(status(vec![], vec![]).await, (401, None));
    assert_eq!(
        status(
            vec![],
            vec![("sec-websocket-protocol", "chat, json.v1".to_owned())]
        )
        .await,
        (401, None)
    );
    assert_eq!(
        status(vec![("user", "alice".to_owned())], vec![]).await,
        (401, None)
    );
    assert_eq!(
        status(vec![("token", String::new())], vec![]).await,
        (401, None)
    );
    assert_eq!(
        status(vec![], vec![("authorization", format!("Basic {token}"))]).await,
        (401, None)
    );
}

/// A JWKS endpoint on 127.0.0.1: the document it serves (`None`: 500), a delay, and a
/// count of requests.
#[derive(Clone, Default)]
struct JwksServer {
    body: Arc<Mutex<Option<String>>>,
    delay_ms: Arc<AtomicU64>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(body: Option<String>) -> (Self, String) {
        let server = JwksServer::default();
        server.serve(body);
        let app = axum::Router::new()
            .route(
                "/pool/.well-known/jwks.json",
                get(|State(s): State<JwksServer>| async move {
                    s.hits.fetch_add(1, Ordering::SeqCst);
                    let delay = s.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    let body = s.body.lock().unwrap().clone();
                    match body {
                        Some(body) => (StatusCode::OK, body),
                        None => (StatusCode::INTERNAL_SERVER_ERROR, "down".to_owned()),
                    }
                }),
            )
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/pool/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, url)
    }

    fn serve(&self, body: Option<String>) {
        *self.body.lock().unwrap() = body;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn http_verifier(url: &str, interval: Duration) -> Arc<JwtVerifier> {
    let mut config = config(TokenUse::Id).with_jwks_url(url);
    config.jwks_refresh_interval = interval;
    config.jwks_timeout = Duration::from_secs(2);
    Arc::new(JwtVerifier::new(config))
}

#[tokio::test]
async fn jwks_rotation_is_picked_up_after_the_refresh_interval() {
    let (a, c) = (key("a"), key("c"));
    let (server, url) = JwksServer::start(Some(jwks(&[jwk(&a, KID_A)]))).await;
    let interval = Duration::from_millis(500);
    let verifier = http_verifier(&url, interval);
    let old = token_with(&a, &rs256(KID_A), &id_claims());
    let new = token_with(&c, &rs256(KID_C), &id_claims());

    assert!(verifier.verify(&old).await.is_ok());
    assert_eq!(verifier.jwks_fetches(), 1);
    // The new key is not published yet: unknown, and no refetch within the interval.
    assert!(matches!(
        verifier.verify(&new).await,
        Err(JwtError::UnknownKey(_))
    ));
    assert_eq!(verifier.jwks_fetches(), 1);

    server.serve(Some(jwks(&[jwk(&a, KID_A), jwk(&c, KID_C)])));
    assert!(matches!(
        verifier.verify(&new).await,
        Err(JwtError::UnknownKey(_))
    ));
    assert_eq!(verifier.jwks_fetches(), 1, "refetched within the interval");

    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    let claims = verifier.verify(&new).await.unwrap();
    assert_eq!(claims.username(), "alice");
    assert_eq!(verifier.jwks_fetches(), 2);
    // Known keys never cause fetches.
    for _ in 0..10 {
        assert!(verifier.verify(&old).await.is_ok());
        assert!(verifier.verify(&new).await.is_ok());
    }
    assert_eq!(verifier.jwks_fetches(), 2);
    assert_eq!(server.hits(), 2);

    // Through the authorizer.
    let authorizer = JwtAuthorizer::new(Arc::clone(&verifier));
    assert_eq!(query_status(&authorizer, &new).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
    let a = key("a");
    let (server, url) = JwksServer::start(Some(jwks(&[jwk(&a, KID_A)]))).await;
    server.delay_ms.store(50, Ordering::SeqCst);
    let interval = Duration::from_millis(1500);
    let verifier = http_verifier(&url, interval);
    let authorizer = JwtAuthorizer::new(Arc::clone(&verifier));
    let garbage: Vec<String> = (0..200)
        .map(|_| {
            let kid = format!("kid-{:016x}", rand::random::<u64>());
            token_with(&a, &rs256(&kid), &id_claims())
        })
        .collect();
    let flood = |tokens: Vec<String>| {
        let authorizer = authorizer.clone();
        async move {
            let tasks: Vec<_> = tokens
                .into_iter()
                .map(|token| {
                    let authorizer = authorizer.clone();
                    tokio::spawn(async move {
                        let verdict = authorizer.verifier().verify(&token).await;
                        assert!(
                            matches!(verdict, Err(JwtError::UnknownKey(_))),
                            "{verdict:?}"
                        );
                        query_status(&authorizer, &token).await
                    })
                })
                .collect();
            for task in tasks {
                assert_eq!(task.await.unwrap(), 403);
            }
        }
    };

    // A cold verifier: the flood shares the first fetch.
    flood(garbage.clone()).await;
    assert_eq!(verifier.jwks_fetches(), 1);
    // Within the interval: nothing.
    flood(garbage.clone()).await;
    assert_eq!(verifier.jwks_fetches(), 1);
    // After the interval: exactly one more, however many callers.
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    flood(garbage.clone()).await;
    assert_eq!(verifier.jwks_fetches(), 2);
    assert_eq!(server.hits(), 2);
    // Good tokens are still served from the cache meanwhile.
    let good = token_with(&a, &rs256(KID_A), &id_claims());
    assert_eq!(query_status(&authorizer, &good).await, 200);
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn jwks_failures_are_500_when_nothing_is_cached_and_keep_the_cache_otherwise() {
    let (a, c) = (key("a"), key("c"));
    let good = token_with(&a, &rs256(KID_A), &id_claims());
    let rotated = token_with(&c, &rs256(KID_C), &id_claims());
    let (server, url) = JwksServer::start(None).await;
    let interval = Duration::from_millis(200);
    let verifier = http_verifier(&url, interval);
    let authorizer = JwtAuthorizer::new(Arc::clone(&verifier));

    // Down from the start: the verifier is at fault, not the token (500).
    let err = verifier.verify(&good).await.unwrap_err();
    assert!(
        matches!(&err, JwtError::Jwks { reason, .. } if reason.contains("500")),
        "{err}"
    );
    assert_eq!(query_status(&authorizer, &good).await, 500);
    // Failed fetches are rate-limited too.
    assert_eq!(verifier.jwks_fetches(), 1);

    // Back up: after the retry gap, the keys load.
    server.serve(Some(jwks(&[jwk(&a, KID_A)])));
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    assert_eq!(query_status(&authorizer, &good).await, 200);
    assert_eq!(verifier.jwks_fetches(), 2);

    // Down again: an unknown kid's refetch fails, the cached keys go on serving.
    server.serve(None);
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    assert!(matches!(
        verifier.verify(&rotated).await,
        Err(JwtError::UnknownKey(_))
    ));
    assert_eq!(verifier.jwks_fetches(), 3);
    assert_eq!(query_status(&authorizer, &rotated).await, 403);
    assert_eq!(query_status(&authorizer, &good).await, 200);
    assert_eq!(verifier.jwks_fetches(), 3);

    // A document that is not a JWKS, or is too large, is a failed fetch.
    server.serve(Some("<html>not json</html>".to_owned()));
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    assert!(matches!(
        verifier.verify(&rotated).await,
        Err(JwtError::UnknownKey(_))
    ));
    assert_eq!(query_status(&authorizer, &good).await, 200);
    let fresh = http_verifier(&url, interval);
    server.serve(Some(format!(
        "{{\"keys\":[], \"pad\": \"{}\"}}",
        "x".repeat(300 * 1024)
    )));
    let err = fresh.verify(&good).await.unwrap_err();
    assert!(
        matches!(&err, JwtError::Jwks { reason, .. } if reason.contains("bytes")),
        "{err}"
    );
}

#[tokio::test]
async fn jwks_timeouts_and_refused_connections_are_500() {
    let a = key("a");
    let good = token_with(&a, &rs256(KID_A), &id_claims());
    let (server, url) = JwksServer::start(Some(jwks(&[jwk(&a, KID_A)]))).await;
    server.delay_ms.store(2_000, Ordering::SeqCst);
    let mut config = config(TokenUse::Id).with_jwks_url(&url);
    config.jwks_timeout = Duration::from_millis(200);
    let verifier = Arc::new(JwtVerifier::new(config));
    let started = std::time::Instant::now();
    let err = verifier.verify(&good).await.unwrap_err();
    assert!(
        matches!(&err, JwtError::Jwks { reason, .. } if reason.contains("timed out")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let verifier = http_verifier(
        &format!("http://{closed}/pool/.well-known/jwks.json"),
        Duration::from_secs(60),
    );
    let authorizer = JwtAuthorizer::new(Arc::clone(&verifier));
    assert_eq!(query_status(&authorizer, &good).await, 500);
    // A garbage token never reaches the network.
    assert_eq!(query_status(&authorizer, "a.b.c").await, 403);
    assert_eq!(verifier.jwks_fetches(), 1);
}

#[tokio::test]
async fn from_env_reports_missing_issuer() {
    // The process environment of the test runner has no SWITCHBOARD_JWT_ISSUER.
    if std::env::var(switchboard_core::names::env::JWT_ISSUER).is_err() {
        let err = JwtAuthorizer::from_env().unwrap_err();
        assert!(
            err.to_string()
                .contains(switchboard_core::names::env::JWT_ISSUER),
            "{err}"
        );
    }
}

#[tokio::test]
async fn known_keys_are_refreshed_on_a_schedule_and_revoked_keys_dropped() {
    use switchboard_core::clock::Clock;
    let (a, c) = (key("a"), key("c"));
    let (server, url) = JwksServer::start(Some(jwks(&[jwk(&a, KID_A)]))).await;
    let (clock, time) = Clock::manual(1_000_000);
    let mut config = config(TokenUse::Id)
        .with_jwks_url(&url)
        .with_jwks_max_age(Duration::from_secs(600));
    config.jwks_refresh_interval = Duration::from_secs(60);
    config.jwks_timeout = Duration::from_secs(2);
    let verifier = JwtVerifier::new(config).with_clock(clock);
    let old = token_with(&a, &rs256(KID_A), &id_claims());
    let new = token_with(&c, &rs256(KID_C), &id_claims());

    assert!(verifier.verify(&old).await.is_ok());
    assert_eq!(verifier.jwks_fetches(), 1);
    // The issuer rotates: C in, A revoked. Until the key set is 10 minutes old, A stays.
    server.serve(Some(jwks(&[jwk(&c, KID_C)])));
    time.advance_ms(599_999);
    assert!(verifier.verify(&old).await.is_ok());
    assert_eq!(verifier.jwks_fetches(), 1);
    // Then the scheduled refresh: A is gone, C is known without an unknown-kid fetch.
    time.advance_ms(1);
    assert!(matches!(
        verifier.verify(&old).await,
        Err(JwtError::UnknownKey(_))
    ));
    assert_eq!(verifier.jwks_fetches(), 2);
    assert!(verifier.verify(&new).await.is_ok());
    assert_eq!(verifier.jwks_fetches(), 2);
    assert_eq!(server.hits(), 2);

    // The issuer is down at the next refresh: the old keys go on serving, and the
    // refresh is retried after the refresh interval, not on every call.
    server.serve(None);
    time.advance_ms(600_000);
    assert!(verifier.verify(&new).await.is_ok());
    assert!(verifier.verify(&new).await.is_ok());
    assert_eq!(verifier.jwks_fetches(), 3);
    time.advance_ms(60_000);
    assert!(verifier.verify(&new).await.is_ok());
    assert_eq!(verifier.jwks_fetches(), 4);
    // Back up: the retry loads the new set (A published again).
    server.serve(Some(jwks(&[jwk(&a, KID_A), jwk(&c, KID_C)])));
    time.advance_ms(60_000);
    assert!(verifier.verify(&old).await.is_ok());
    assert_eq!(verifier.jwks_fetches(), 5);
    assert_eq!(server.hits(), 5);
}

#[test]
fn jwks_max_age_from_the_environment() {
    use switchboard_core::names::env;
    let lookup = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let default = JwtConfig::from_lookup(lookup(&[(env::JWT_ISSUER, ISSUER)])).unwrap();
    assert_eq!(default.jwks_max_age, Duration::from_secs(600));
    let set = JwtConfig::from_lookup(lookup(&[
        (env::JWT_ISSUER, ISSUER),
        (env::JWKS_MAX_AGE_SECS, "120"),
    ]))
    .unwrap();
    assert_eq!(set.jwks_max_age, Duration::from_secs(120));
    let bad = JwtConfig::from_lookup(lookup(&[
        (env::JWT_ISSUER, ISSUER),
        (env::JWKS_MAX_AGE_SECS, "soon"),
    ]));
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains(env::JWKS_MAX_AGE_SECS)
    );
}
