//! `switchboard_aws::jwt` against Cognito tokens issued by moto: a user pool, an app client
//! without a secret (`ALLOW_USER_PASSWORD_AUTH`), a user with a permanent password in a
//! group, `InitiateAuth` with `USER_PASSWORD_AUTH`, then the IdToken and the AccessToken
//! verified with the keys from moto's JWKS endpoint, directly and through `JwtAuthorizer`.
//!
//! What moto 5.2.5 issues (`moto/cognitoidp/models.py`, `create_jwt`):
//! * header `{"alg": "RS256", "kid": "dummy", "typ": "JWT"}`; one 2048-bit RSA key (`kid` `dummy`,
//!   `alg` RS256, `use` sig) shared by every pool, served at
//!   `{endpoint}/{userPoolId}/.well-known/jwks.json`;
//! * `iss` = `https://cognito-idp.{region}.amazonaws.com/{userPoolId}`, the real AWS
//!   issuer, not the moto endpoint: the JWKS URL must be configured separately;
//! * claims `sub`, `iss`, `token_use`, `iat`, `auth_time`, `exp` (+1 h), `jti`,
//!   `origin_jti`, and `cognito:groups` when the user is in groups; id tokens add `aud`
//!   (the client id), `cognito:username` and the user's attributes that the app client
//!   may read (`ReadAttributes`; here `email`); access tokens add `client_id`,
//!   `username` and `scope`.
//!
//! Since every moto pool signs with the same key, only `iss` tells pools apart: a token
//! of another pool must fail with `WrongIssuer`.
//!
//! The endpoint comes from `SWITCHBOARD_TEST_MOTO`; start a server with
//! `eval "$(bash scripts/moto.sh start)"`. With `SWITCHBOARD_SKIP_MOTO=1` and no endpoint
//! the test returns early.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::query_map::QueryMap;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Region};
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, ExplicitAuthFlowsType, MessageActionType,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use switchboard_aws::jwt::{JwtAuthorizer, JwtConfig, JwtError, JwtVerifier, TokenUse};
use switchboard_aws::{AwsSettings, http_client};
use switchboard_core::auth::{self, Authorizer, Decision};

const REGION: &str = "us-east-1";
const PASSWORD: &str = "Correct-Horse-9-Battery!";
const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:api/ws/$connect";

use switchboard_testing::moto_endpoint;

/// A Cognito client for moto, built like `switchboard_aws::dynamodb_client`.
fn cognito_client(endpoint: &str) -> Client {
    let settings = AwsSettings::local(endpoint);
    let config = aws_sdk_cognitoidentityprovider::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(settings.credentials.clone())
        .http_client(http_client())
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

struct Pool {
    id: String,
    client_id: String,
    sub: String,
    id_token: String,
    access_token: String,
}

/// A pool with an app client, user `alice` (permanent password, group `players`),
/// signed in with `USER_PASSWORD_AUTH`.
async fn pool_with_signed_in_user(cognito: &Client, name: &str) -> Pool {
    let id = cognito
        .create_user_pool()
        .pool_name(name)
        .send()
        .await
        .unwrap()
        .user_pool
        .and_then(|p| p.id)
        .unwrap();
    let client_id = cognito
        .create_user_pool_client()
        .user_pool_id(&id)
        .client_name("web")
        .generate_secret(false)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .read_attributes("email")
        .send()
        .await
        .unwrap()
        .user_pool_client
        .and_then(|c| c.client_id)
        .unwrap();
    cognito
        .create_group()
        .user_pool_id(&id)
        .group_name("players")
        .send()
        .await
        .unwrap();
    let user = cognito
        .admin_create_user()
        .user_pool_id(&id)
        .username("alice")
        .message_action(MessageActionType::Suppress)
        .user_attributes(
            AttributeType::builder()
                .name("email")
                .value("alice@example.com")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .user
        .unwrap();
    let sub = user
        .attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .unwrap()
        .to_owned();
    cognito
        .admin_set_user_password()
        .user_pool_id(&id)
        .username("alice")
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await
        .unwrap();
    cognito
        .admin_add_user_to_group()
        .user_pool_id(&id)
        .username("alice")
        .group_name("players")
        .send()
        .await
        .unwrap();
    let auth = cognito
        .initiate_auth()
        .client_id(&client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "alice")
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await
        .unwrap()
        .authentication_result
        .unwrap();
    Pool {
        id,
        client_id,
        sub,
        id_token: auth.id_token.unwrap(),
        access_token: auth.access_token.unwrap(),
    }
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn config_for(endpoint: &str, pool: &Pool, token_use: TokenUse) -> JwtConfig {
    JwtConfig::cognito(REGION, &pool.id)
        .with_jwks_url(format!("{endpoint}/{}/.well-known/jwks.json", pool.id))
        .with_audience(&pool.client_id)
        .with_token_use(token_use)
}

fn request(token: &str) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut request = ApiGatewayCustomAuthorizerRequestTypeRequest::default();
    request.method_arn = Some(ARN.to_owned());
    request.query_string_parameters =
        QueryMap::from(HashMap::from([("token".to_owned(), token.to_owned())]));
    request
}

#[tokio::test]
async fn moto_cognito_tokens_verify_through_the_jwks_endpoint() {
    let Some(endpoint) = moto_endpoint("moto_cognito_tokens_verify_through_the_jwks_endpoint")
    else {
        return;
    };
    let cognito = cognito_client(&endpoint);
    let suffix = format!("{:08x}", rand::random::<u32>());
    let pool = pool_with_signed_in_user(&cognito, &format!("switchboard-jwt-{suffix}")).await;

    // What moto issues.
    let header = decode_part(&pool.id_token, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "dummy");
    let id_payload = decode_part(&pool.id_token, 1);
    let access_payload = decode_part(&pool.access_token, 1);
    eprintln!("moto id token: header {header} payload {id_payload}");
    eprintln!("moto access token: payload {access_payload}");
    let issuer = format!("https://cognito-idp.{REGION}.amazonaws.com/{}", pool.id);
    assert_eq!(id_payload["iss"], issuer.as_str());
    assert_eq!(access_payload["iss"], issuer.as_str());

    // The id token.
    let id_verifier = Arc::new(JwtVerifier::new(
        config_for(&endpoint, &pool, TokenUse::Id).with_required_groups(["players"]),
    ));
    let claims = id_verifier.verify(&pool.id_token).await.unwrap();
    assert_eq!(claims.sub(), pool.sub);
    assert_eq!(claims.username(), "alice");
    assert_eq!(claims.groups(), ["players"]);
    assert_eq!(claims.token_use(), Some("id"));
    assert_eq!(
        claims.get("aud"),
        Some(&Value::from(pool.client_id.clone()))
    );
    assert_eq!(claims.get("email"), Some(&Value::from("alice@example.com")));
    assert_eq!(id_verifier.jwks_fetches(), 1);

    // The access token.
    let access_verifier = Arc::new(JwtVerifier::new(config_for(
        &endpoint,
        &pool,
        TokenUse::Access,
    )));
    let claims = access_verifier.verify(&pool.access_token).await.unwrap();
    assert_eq!(claims.sub(), pool.sub);
    assert_eq!(claims.username(), "alice");
    assert_eq!(claims.groups(), ["players"]);
    assert_eq!(claims.token_use(), Some("access"));
    assert_eq!(
        claims.get("client_id"),
        Some(&Value::from(pool.client_id.clone()))
    );

    // Through the authorizer, as API Gateway would call it.
    for (verifier, token, token_use) in [
        (&id_verifier, &pool.id_token, "id"),
        (&access_verifier, &pool.access_token, "access"),
    ] {
        let authorizer = JwtAuthorizer::new(Arc::clone(verifier));
        let result = authorizer.authorize(&request(token)).await.unwrap();
        let Decision::Allow(identity) = auth::evaluate(&result, ARN) else {
            panic!("{token_use} token not allowed: {result:?}");
        };
        assert_eq!(identity.principal_id(), Some(pool.sub.as_str()));
        assert_eq!(identity.username(), "alice");
        assert_eq!(result.context["groups"], "players");
        assert_eq!(result.context["tokenUse"], token_use);
        assert!(result.context["expiresAt"].is_i64());
    }

    // Refusals: the other kind of token, a group the user is not in, another app
    // client, another pool (same moto key, other issuer).
    assert!(matches!(
        access_verifier.verify(&pool.id_token).await,
        Err(JwtError::WrongTokenUse { .. })
    ));
    assert!(matches!(
        id_verifier.verify(&pool.access_token).await,
        Err(JwtError::WrongTokenUse { .. })
    ));
    let admins = JwtVerifier::new(
        config_for(&endpoint, &pool, TokenUse::Id).with_required_groups(["admins"]),
    );
    assert!(matches!(
        admins.verify(&pool.id_token).await,
        Err(JwtError::MissingGroup(g)) if g == "admins"
    ));
    let other_client = JwtVerifier::new(
        config_for(&endpoint, &pool, TokenUse::Any).with_audience("some-other-client"),
    );
    assert!(matches!(
        other_client.verify(&pool.id_token).await,
        Err(JwtError::WrongAudience(_))
    ));
    assert!(matches!(
        other_client.verify(&pool.access_token).await,
        Err(JwtError::WrongAudience(_))
    ));
    let other =
        pool_with_signed_in_user(&cognito, &format!("switchboard-jwt-other-{suffix}")).await;
    let other_verifier = JwtVerifier::new(config_for(&endpoint, &other, TokenUse::Id));
    assert!(other_verifier.verify(&other.id_token).await.is_ok());
    assert!(matches!(
        other_verifier.verify(&pool.id_token).await,
        Err(JwtError::WrongIssuer(_))
    ));
    // Each verifier fetched moto's JWKS once.
    assert_eq!(id_verifier.jwks_fetches(), 1);
    assert_eq!(access_verifier.jwks_fetches(), 1);
    assert_eq!(other_verifier.jwks_fetches(), 1);
}
