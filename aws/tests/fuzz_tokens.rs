//! Fuzz target: token parsing and verification (`switchboard_aws::jwt`, and the `$connect`
//! authorizer that reads tokens from upgrade requests).
//!
//! Properties:
//! - arbitrary strings, and strings shaped like compact JWS (three base64url parts), are
//!   refused without a panic;
//! - real tokens from the local issuer (`local::issuer`), mutated at the byte level, are
//!   accepted only when the mutation gave back the very same token (any change to a
//!   signed part breaks the RS256 signature, and base64url with trailing bits or padding
//!   is refused), through `JwtVerifier` and through `JwtAuthorizer` wherever the token
//!   travels (`?token=`, `Sec-WebSocket-Protocol`, `Authorization: Bearer`);
//! - tokens correctly signed over arbitrary headers and claims (every JSON type in every
//!   claim) are accepted only when the claims are valid: RS256 with the issuer's `kid`,
//!   the exact `iss`, `exp` in the future, `nbf`/`iat` not in the future, `token_use`
//!   `id`, `aud` the app client.
//!
//! Long run: `SWITCHBOARD_FUZZ_CASES=100000 cargo test -p switchboard --test fuzz_tokens`.
//! Corpus: `tests/fuzz_corpus/tokens/` (one token or token-like string per file).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use switchboard_testing::fuzz as fuzz_support;
use switchboard_testing::tokens::{issuer, verifier};

use std::sync::OnceLock;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Map, Value, json};
use switchboard_aws::jwt::{JwtAuthorizer, JwtVerifier, TokenUse, looks_like_jwt};
use switchboard_core::auth::{self, Authorizer, Decision};
use switchboard_local::issuer::TokenRequest;

const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:api/ws/$connect";

struct Tokens {
    id: String,
    access: String,
    verifier: JwtVerifier,
    authorizer: JwtAuthorizer,
    key: RsaKeyPair,
}

fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let issued = issuer()
            .issue(&TokenRequest::new("alice").groups(["admins", "chat-users"]))
            .unwrap();
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testing/fixtures/jwt/rsa-a.pem"
        ))
        .unwrap();
        let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        Tokens {
            id: issued.id_token,
            access: issued.access_token,
            verifier: verifier(TokenUse::Id),
            authorizer: JwtAuthorizer::new(std::sync::Arc::new(verifier(TokenUse::Id))),
            key: RsaKeyPair::from_pkcs8(&STANDARD.decode(der).unwrap()).unwrap(),
        }
    })
}

fn verify(token: &str) -> Result<switchboard_aws::jwt::Claims, switchboard_aws::jwt::JwtError> {
    fuzz_support::runtime().block_on(tokens().verifier.verify(token))
}

/// Where an upgrade request carries the token.
#[derive(Clone, Copy, Debug)]
enum Carrier {
    Query,
    Protocol,
    Bearer,
}

fn upgrade_with(token: &str, carrier: Carrier) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut request = ApiGatewayCustomAuthorizerRequestTypeRequest::default();
    request.method_arn = Some(ARN.to_owned());
    match carrier {
        Carrier::Query => {
            request.query_string_parameters =
                std::collections::HashMap::from([("token".to_owned(), token.to_owned())]).into();
        }
        Carrier::Protocol | Carrier::Bearer => {
            let (name, value) = match carrier {
                Carrier::Protocol => ("sec-websocket-protocol", format!("chat, {token}")),
                _ => ("authorization", format!("Bearer {token}")),
            };
            // A header value that HTTP cannot carry cannot reach the authorizer.
            let Ok(value) = value.parse() else {
                return request;
            };
            request.headers.insert(name, value);
        }
    }
    request
}

/// Whether the authorizer lets the request in.
fn allowed(request: &ApiGatewayCustomAuthorizerRequestTypeRequest) -> bool {
    match fuzz_support::runtime().block_on(tokens().authorizer.authorize(request)) {
        Ok(response) => matches!(auth::evaluate(&response, ARN), Decision::Allow(_)),
        Err(_) => false,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.claims.signature`, RS256-signed with the issuer's key over exactly these bytes.
fn signed(header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let key = &tokens().key;
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", b64(&signature))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// A NumericDate as the verifier reads one: a JSON number, fractions towards the past.
fn date(claims: &Map<String, Value>, name: &str) -> Option<Result<i64, ()>> {
    claims.get(name).map(|v| match v {
        Value::Number(n) => Ok(n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().unwrap().floor() as i64)),
        _ => Err(()),
    })
}

/// Whether claims (signed correctly) satisfy the rules the verifier is configured with.
/// Necessary conditions only: an accepted token must meet all of them.
fn claims_acceptable(claims: &Map<String, Value>, at: i64) -> bool {
    let issuer = issuer();
    let leeway = 60;
    let iss_ok = claims.get("iss") == Some(&json!(issuer.issuer()));
    let exp_ok = matches!(date(claims, "exp"), Some(Ok(exp)) if at < exp.saturating_add(leeway));
    let not_future = |name| match date(claims, name) {
        None => true,
        Some(Ok(t)) => t <= at.saturating_add(leeway),
        Some(Err(())) => false,
    };
    let use_ok = claims.get("token_use") == Some(&json!("id"));
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == issuer.audience(),
        Some(Value::Array(list)) => list.iter().any(|a| a == &json!(issuer.audience())),
        _ => false,
    };
    iss_ok && exp_ok && not_future("nbf") && not_future("iat") && use_ok && aud_ok
}

/// Claims that are valid, then edited: each claim dropped or given a value of any type.
fn claims() -> impl Strategy<Value = Map<String, Value>> {
    let issuer = issuer();
    let t = now();
    let base = json!({
        "sub": "0f6b5c2e-1111-4222-8333-444455556666",
        "cognito:username": "alice",
        "cognito:groups": ["admins"],
        "token_use": "id",
        "aud": issuer.audience(),
        "iss": issuer.issuer(),
        "iat": t,
        "exp": t + 3600,
    });
    let names = vec![
        "sub",
        "cognito:username",
        "cognito:groups",
        "token_use",
        "aud",
        "iss",
        "iat",
        "exp",
        "nbf",
        "client_id",
        "username",
        "auth_time",
    ];
    let value = prop_oneof![
        3 => fuzz_support::json_value(),
        1 => (-100_000i64..100_000).prop_map(move |d| json!(t + d)),
        1 => prop::sample::select(vec![
            json!(issuer.issuer()), json!(issuer.audience()), json!("id"), json!("access"),
            json!([issuer.audience(), "other"]), json!(1e300), json!(-1e300), json!(t as f64 + 0.5),
            json!(i64::MAX), json!(i64::MIN), json!(u64::MAX), json!(format!("{}/", issuer.issuer())),
        ]),
    ];
    prop::collection::vec((prop::sample::select(names), prop::option::of(value)), 0..5).prop_map(
        move |edits| {
            let mut claims = base.as_object().unwrap().clone();
            for (name, value) in edits {
                match value {
                    Some(v) => claims.insert(name.to_owned(), v),
                    None => claims.remove(name),
                };
            }
            claims
        },
    )
}

/// Headers: Cognito's, or edited (algorithm, kid, crit, types).
fn header() -> impl Strategy<Value = Value> {
    let kid = issuer().kid().to_owned();
    let alg = prop_oneof![
        4 => Just(json!("RS256")),
        1 => prop::sample::select(vec![
            json!("none"), json!("HS256"), json!("RS384"), json!("PS256"), json!("rs256"),
            json!("RS256 "), json!(null), json!(256), json!(["RS256"]),
        ]),
    ];
    let kid_value = prop_oneof![
        4 => Just(json!(kid)),
        1 => prop::sample::select(vec![
            json!(""), json!(null), json!(1), json!(format!("{kid}x")), json!([kid.clone()]),
        ]),
    ];
    (alg, kid_value, any::<bool>(), any::<bool>()).prop_map(|(alg, kid, crit, typ)| {
        let mut h = json!({ "alg": alg, "kid": kid });
        if crit {
            h["crit"] = json!(["exp"]);
        }
        if typ {
            h["typ"] = json!("JWT");
        }
        h
    })
}

fn carrier() -> impl Strategy<Value = Carrier> {
    prop::sample::select(vec![Carrier::Query, Carrier::Protocol, Carrier::Bearer])
}

fn check_refused(token: &str) -> Result<(), TestCaseError> {
    prop_assert!(verify(token).is_err(), "accepted {:?}", token);
    for carrier in [Carrier::Query, Carrier::Protocol, Carrier::Bearer] {
        prop_assert!(
            !allowed(&upgrade_with(token, carrier)),
            "allowed {:?} by {:?}",
            token,
            carrier
        );
    }
    let _ = looks_like_jwt(token);
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_support::config(1000, "tests/fuzz_corpus/tokens.proptest-regressions"))]

    #[test]
    fn arbitrary_strings(token in "\\PC{0,300}") {
        check_refused(&token)?;
    }

    #[test]
    fn jws_shaped_strings(
        token in "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,400}\\.[A-Za-z0-9_-]{0,400}(\\.[A-Za-z0-9_-]{0,8})?",
    ) {
        check_refused(&token)?;
    }

    #[test]
    fn mutated_real_tokens(
        access in any::<bool>(),
        mutations in prop::collection::vec(fuzz_support::mutation(), 1..5),
        carrier in carrier(),
    ) {
        let t = tokens();
        let original = if access { &t.access } else { &t.id };
        let bytes = fuzz_support::mutate(original.as_bytes(), &mutations);
        let token = String::from_utf8_lossy(&bytes).into_owned();
        let same = token == *original && !access;
        prop_assert_eq!(verify(&token).is_ok(), same, "verify {:?}", token);
        prop_assert_eq!(allowed(&upgrade_with(&token, carrier)), same, "authorize {:?}", token);
    }

    #[test]
    fn signed_arbitrary_claims(header in header(), claims in claims(), carrier in carrier()) {
        let token = signed(header.to_string().as_bytes(), Value::Object(claims.clone()).to_string().as_bytes());
        let header_ok = header["alg"] == "RS256"
            && header["kid"] == issuer().kid()
            && header.get("crit").is_none();
        let at = now();
        let verified = verify(&token);
        let accepted = verified.is_ok();
        if let Ok(verified) = &verified {
            prop_assert!(header_ok, "accepted header {}", header);
            prop_assert!(claims_acceptable(&claims, at), "accepted claims {:?}", claims);
            // The user name: the first non-empty string of `cognito:username`, `username`,
            // else `sub` (a claim of another type is not a name).
            let name = ["cognito:username", "username"]
                .iter()
                .find_map(|n| claims.get(*n).and_then(Value::as_str))
                .filter(|n| !n.is_empty())
                .or(claims.get("sub").and_then(Value::as_str));
            prop_assert_eq!(Some(verified.username()), name);
        }
        // Well away from the expiry edges, the oracle is exact.
        let near_edge = ["exp", "nbf", "iat"].iter().any(|n| {
            matches!(date(&claims, n), Some(Ok(t)) if t.saturating_sub(at).saturating_abs() < 120)
        });
        if !near_edge {
            let groups_ok = match claims.get("cognito:groups") {
                None | Some(Value::Null) => true,
                Some(Value::Array(list)) => list.iter().all(Value::is_string),
                Some(_) => false,
            };
            let strings_ok = claims.get("sub").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
            // The verifier's size limit (16 KB by default) comes before everything else.
            let size_ok = token.len() <= 16 * 1024;
            let expected =
                size_ok && header_ok && claims_acceptable(&claims, at) && groups_ok && strings_ok;
            let shown: String = format!("{claims:?}").chars().take(600).collect();
            prop_assert_eq!(expected, accepted, "header {}, claims {}: {:?}", header, shown, verified.err());
        }
        if !accepted {
            prop_assert!(!allowed(&upgrade_with(&token, carrier)));
        }
    }
}

/// The issuer's own tokens: the id token is accepted from every carrier, the access token
/// nowhere (the authorizer wants id tokens); so the properties above can fail.
#[test]
fn real_tokens_are_accepted() {
    let t = tokens();
    assert_eq!(verify(&t.id).unwrap().username(), "alice");
    assert!(verify(&t.access).is_err());
    for carrier in [Carrier::Query, Carrier::Protocol, Carrier::Bearer] {
        assert!(allowed(&upgrade_with(&t.id, carrier)), "{carrier:?}");
        assert!(!allowed(&upgrade_with(&t.access, carrier)), "{carrier:?}");
    }
    // A token signed here over valid claims is accepted too (the signing helper is right).
    let claims = json!({
        "sub": "s", "token_use": "id", "aud": issuer().audience(),
        "iss": issuer().issuer(), "exp": now() + 600,
    });
    let header = json!({"alg": "RS256", "kid": issuer().kid()});
    assert!(
        verify(&signed(
            header.to_string().as_bytes(),
            claims.to_string().as_bytes()
        ))
        .is_ok()
    );
}

/// Every corpus file: refused (they are all broken or foreign tokens).
#[test]
fn corpus_replays() {
    for (name, bytes) in fuzz_support::corpus(env!("CARGO_MANIFEST_DIR"), "tokens") {
        let token = String::from_utf8_lossy(&bytes);
        let token = token.trim_end_matches('\n');
        if let Err(e) = check_refused(token) {
            panic!("corpus file {name}: {e}");
        }
    }
}
