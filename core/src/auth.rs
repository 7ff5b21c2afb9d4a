//! The `$connect` authorizer hook: API Gateway's Lambda REQUEST authorizer contract.
//!
//! The local gateway calls an [`Authorizer`] on every upgrade (and, when it stands in for
//! the HTTP API's authorizer, on every `/http/*` request) with the same request API
//! Gateway sends to a REQUEST authorizer, and evaluates the returned IAM policy the way
//! API Gateway does: no policy allowing `execute-api:Invoke` on the `methodArn` means 403.
//! Both paths go through one request builder ([`AuthorizerInput`]) and one decision
//! ([`authorize`]).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerRequestTypeRequestContext,
    ApiGatewayCustomAuthorizerRequestTypeRequestIdentity, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use aws_lambda_events::query_map::QueryMap;
use http::{HeaderMap, Method};
use serde_json::{Map, Value};

use crate::identity::Identity;

/// API Gateway's limit on the size of an authorizer's result.
pub const MAX_AUTHORIZER_RESULT_BYTES: usize = 8 * 1024;

/// Why an authorizer refused to produce a policy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No identity source (e.g. no token): API Gateway answers 401.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The authorizer failed: API Gateway answers 500.
    #[error("authorizer failed: {0}")]
    Failed(String),
}

/// A Lambda REQUEST authorizer for `$connect`.
#[async_trait]
pub trait Authorizer: Send + Sync + 'static {
    /// Decides on one upgrade request.
    async fn authorize(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<ApiGatewayCustomAuthorizerResponse, AuthError>;

    /// Whether this authorizer is for development only (it proves no identity). Lambda
    /// mode refuses to run such an authorizer unless told to.
    fn is_development(&self) -> bool {
        false
    }
}

/// The development authorizer: the identity is the `user` query parameter.
///
/// Missing `user`: 401. A user name that is not 1-64 characters of letters, digits,
/// `-`, `_`, `.`: denied (403). It proves nothing and exists for local development.
#[derive(Clone, Copy, Debug, Default)]
pub struct DevAuthorizer;

/// Whether `name` is a valid user name for the development authorizer.
pub fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[async_trait]
impl Authorizer for DevAuthorizer {
    async fn authorize(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<ApiGatewayCustomAuthorizerResponse, AuthError> {
        let method_arn = request.method_arn.as_deref().unwrap_or_default();
        let Some(user) = request.query_string_parameters.first("user") else {
            return Err(AuthError::Unauthorized(
                "no identity: connect with ?user=NAME".to_owned(),
            ));
        };
        if !valid_username(user) {
            return Ok(policy(user, IamPolicyEffect::Deny, method_arn, Map::new()));
        }
        let mut context = Map::new();
        context.insert("username".to_owned(), Value::String(user.to_owned()));
        context.insert("authMethod".to_owned(), Value::String("dev".to_owned()));
        Ok(policy(user, IamPolicyEffect::Allow, method_arn, context))
    }

    fn is_development(&self) -> bool {
        true
    }
}

/// Builds an authorizer result in the format API Gateway requires.
pub fn policy(
    principal_id: &str,
    effect: IamPolicyEffect,
    method_arn: &str,
    context: Map<String, Value>,
) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = effect;
    statement.resource = vec![method_arn.to_owned()];
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some("2012-10-17".to_owned());
    document.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(principal_id.to_owned());
    response.policy_document = document;
    response.context = Value::Object(context);
    response
}

/// What API Gateway makes of an authorizer's result.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Connect, with this identity on every event of the connection.
    Allow(Identity),
    /// Refuse with 403.
    Deny,
    /// The result is malformed or too large: refuse with 500.
    Invalid(String),
}

/// Evaluates an authorizer result against the `methodArn`, as API Gateway does: allowed
/// when a statement allows `execute-api:Invoke` on a matching resource and none denies it.
pub fn evaluate(response: &ApiGatewayCustomAuthorizerResponse, method_arn: &str) -> Decision {
    let size = serde_json::to_vec(response)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_AUTHORIZER_RESULT_BYTES {
        return Decision::Invalid(format!(
            "authorizer result is {size} bytes, over the {MAX_AUTHORIZER_RESULT_BYTES}-byte limit"
        ));
    }
    let Some(principal) = response.principal_id.as_deref() else {
        return Decision::Invalid("authorizer result has no principalId".to_owned());
    };
    let matches = |s: &&IamPolicyStatement| {
        s.action
            .iter()
            .any(|a| glob(a, "execute-api:Invoke") || a == "*")
            && s.resource.iter().any(|r| glob(r, method_arn))
    };
    let statements = &response.policy_document.statement;
    let denied = statements
        .iter()
        .filter(matches)
        .any(|s| s.effect == IamPolicyEffect::Deny);
    let allowed = statements
        .iter()
        .filter(matches)
        .any(|s| s.effect == IamPolicyEffect::Allow);
    if denied || !allowed {
        return Decision::Deny;
    }
    let context = match &response.context {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Decision::Invalid("authorizer context must be an object".to_owned()),
    };
    if context
        .values()
        .any(|v| !(v.is_string() || v.is_number() || v.is_boolean()))
    {
        return Decision::Invalid(
            "authorizer context values must be strings, numbers or booleans".to_owned(),
        );
    }
    Decision::Allow(Identity::new(principal, context))
}

/// Which API asks the authorizer, with what only that API puts in the request.
#[derive(Clone, Debug)]
pub enum AuthorizerApi {
    /// A WebSocket API's `$connect` upgrade: `requestContext` carries a request id and
    /// the caller's source IP.
    WebSocket {
        /// `requestContext.requestId`.
        request_id: String,
        /// `requestContext.identity.sourceIp`.
        source_ip: Option<String>,
    },
    /// An HTTP API request: its method, and its path at the top level of the request.
    Http {
        /// `httpMethod`.
        method: Method,
    },
}

/// A request as a REQUEST authorizer is asked about it: what the WebSocket upgrade and
/// the HTTP API share, plus the [`AuthorizerApi`]'s own part.
#[derive(Clone, Debug)]
pub struct AuthorizerInput {
    /// Which API asks.
    pub api: AuthorizerApi,
    /// The `methodArn` the policy must allow ([`method_arn`], [`http_method_arn`]).
    pub method_arn: String,
    /// `requestContext.apiId`.
    pub api_id: String,
    /// `requestContext.stage`.
    pub stage: String,
    /// The request path (`requestContext.path`).
    pub path: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The query string, one value per name ([`single_values`]).
    pub query: QueryMap,
}

impl AuthorizerInput {
    /// The request API Gateway sends a REQUEST authorizer for this input.
    pub fn into_request(self) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        let mut request = ApiGatewayCustomAuthorizerRequestTypeRequest::default();
        request.type_ = Some("REQUEST".to_owned());
        request.method_arn = Some(self.method_arn);
        request.headers = self.headers;
        request.query_string_parameters = self.query;
        let mut context = ApiGatewayCustomAuthorizerRequestTypeRequestContext::default();
        context.stage = Some(self.stage);
        context.apiid = Some(self.api_id);
        context.path = Some(self.path.clone());
        match self.api {
            AuthorizerApi::WebSocket {
                request_id,
                source_ip,
            } => {
                context.request_id = Some(request_id);
                let mut identity = ApiGatewayCustomAuthorizerRequestTypeRequestIdentity::default();
                identity.source_ip = source_ip;
                context.identity = Some(identity);
            }
            AuthorizerApi::Http { method } => {
                request.http_method = Some(method);
                request.path = Some(self.path);
            }
        }
        request.request_context = context;
        request
    }
}

/// Why API Gateway refuses a request after asking its authorizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No identity source (the authorizer said [`AuthError::Unauthorized`]): 401.
    Unauthorized,
    /// The policy does not allow the request: 403.
    Forbidden,
    /// The authorizer failed or returned an invalid result (logged): 500.
    Failed,
}

impl Refused {
    /// The HTTP status API Gateway answers.
    pub fn status(self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::Failed => 500,
        }
    }
}

/// Asks `authorizer` about `request` and decides as API Gateway does: the identity when
/// the result's policy allows the request's `methodArn` ([`evaluate`]), else why not.
/// Failures and invalid results are logged as errors, a missing identity at debug level.
pub async fn authorize(
    authorizer: &dyn Authorizer,
    request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<Identity, Refused> {
    let method_arn = request.method_arn.as_deref().unwrap_or_default();
    match authorizer.authorize(request).await {
        Ok(result) => match evaluate(&result, method_arn) {
            Decision::Allow(identity) => Ok(identity),
            Decision::Deny => Err(Refused::Forbidden),
            Decision::Invalid(why) => {
                tracing::error!(reason = %why, "authorizer returned an invalid result");
                Err(Refused::Failed)
            }
        },
        Err(AuthError::Unauthorized(why)) => {
            tracing::debug!(reason = %why, "request unauthorized");
            Err(Refused::Unauthorized)
        }
        Err(AuthError::Failed(why)) => {
            tracing::error!(reason = %why, "authorizer failed");
            Err(Refused::Failed)
        }
    }
}

/// IAM-style wildcard match: `*` any run, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect`.
pub fn method_arn(region: &str, account: &str, api_id: &str, stage: &str) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/$connect")
}

/// `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}{path}`: the
/// `methodArn` of an HTTP API request.
pub fn http_method_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    method: &Method,
    path: &str,
) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{method}{path}")
}

/// Flattens a query string into API Gateway's single-value map (last value wins).
pub fn single_values(query: &str) -> HashMap<String, String> {
    form_pairs(query).collect()
}

/// The `key=value` pairs of a query string or form body, percent-decoded.
pub fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match decoded {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `s` looks like a compact JWS: three dot-separated base64url parts, the first
/// two non-empty.
pub fn looks_like_jwt(s: &str) -> bool {
    let b64 = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3 && !parts[0].is_empty() && !parts[1].is_empty() && parts.iter().all(|p| b64(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc/ws/$connect";

    #[test]
    fn glob_matches_like_iam() {
        assert!(glob("*", ARN));
        assert!(glob("arn:aws:execute-api:*:*:abc/*", ARN));
        assert!(glob(ARN, ARN));
        assert!(!glob("arn:aws:execute-api:*:*:xyz/*", ARN));
        assert!(glob("a?c", "abc"));
    }

    #[test]
    fn allow_deny_and_invalid() {
        let allow = policy("alice", IamPolicyEffect::Allow, ARN, Map::new());
        assert!(
            matches!(evaluate(&allow, ARN), Decision::Allow(i) if i.principal_id() == Some("alice"))
        );
        let deny = policy("alice", IamPolicyEffect::Deny, ARN, Map::new());
        assert_eq!(evaluate(&deny, ARN), Decision::Deny);
        let other = policy(
            "alice",
            IamPolicyEffect::Allow,
            "arn:aws:execute-api:x:y:z/ws/$connect",
            Map::new(),
        );
        assert_eq!(evaluate(&other, ARN), Decision::Deny);
        let mut big = Map::new();
        big.insert("blob".into(), Value::String("x".repeat(9000)));
        assert!(matches!(
            evaluate(&policy("a", IamPolicyEffect::Allow, ARN, big), ARN),
            Decision::Invalid(_)
        ));
        let mut nested = Map::new();
        nested.insert("n".into(), serde_json::json!({"a": 1}));
        assert!(matches!(
            evaluate(&policy("a", IamPolicyEffect::Allow, ARN, nested), ARN),
            Decision::Invalid(_)
        ));
    }

    /// Allows `user`, refuses anyone else with a policy, fails on `boom`.
    struct Fixed;

    #[async_trait]
    impl Authorizer for Fixed {
        async fn authorize(
            &self,
            request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
        ) -> Result<ApiGatewayCustomAuthorizerResponse, AuthError> {
            let arn = request.method_arn.as_deref().unwrap_or_default();
            match request.query_string_parameters.first("user") {
                None => Err(AuthError::Unauthorized("no user".to_owned())),
                Some("boom") => Err(AuthError::Failed("boom".to_owned())),
                Some("alice") => Ok(policy("alice", IamPolicyEffect::Allow, arn, Map::new())),
                Some(other) => Ok(policy(other, IamPolicyEffect::Deny, arn, Map::new())),
            }
        }
    }

    fn input(api: AuthorizerApi, user: Option<&str>) -> AuthorizerInput {
        AuthorizerInput {
            api,
            method_arn: ARN.to_owned(),
            api_id: "abc".to_owned(),
            stage: "ws".to_owned(),
            path: "/".to_owned(),
            headers: HeaderMap::new(),
            query: QueryMap::from(single_values(
                &user.map(|u| format!("user={u}")).unwrap_or_default(),
            )),
        }
    }

    #[test]
    fn authorizer_requests_of_each_api() {
        let ws = input(
            AuthorizerApi::WebSocket {
                request_id: "r-1".to_owned(),
                source_ip: Some("127.0.0.1".to_owned()),
            },
            Some("alice"),
        )
        .into_request();
        assert_eq!(ws.type_.as_deref(), Some("REQUEST"));
        assert_eq!(ws.method_arn.as_deref(), Some(ARN));
        assert_eq!(ws.http_method, None);
        assert_eq!(ws.path, None);
        assert_eq!(ws.request_context.request_id.as_deref(), Some("r-1"));
        assert_eq!(
            ws.request_context
                .identity
                .as_ref()
                .and_then(|i| i.source_ip.as_deref()),
            Some("127.0.0.1")
        );
        let http = input(
            AuthorizerApi::Http {
                method: Method::POST,
            },
            None,
        )
        .into_request();
        assert_eq!(http.http_method, Some(Method::POST));
        assert_eq!(http.path.as_deref(), Some("/"));
        assert_eq!(http.request_context.path.as_deref(), Some("/"));
        assert_eq!(http.request_context.stage.as_deref(), Some("ws"));
        assert_eq!(http.request_context.apiid.as_deref(), Some("abc"));
        assert!(http.request_context.identity.is_none());
        assert!(http.request_context.request_id.is_none());
        assert_eq!(
            http_method_arn("local", "0", "abc", "$default", &Method::GET, "/http/me"),
            "arn:aws:execute-api:local:0:abc/$default/GET/http/me"
        );
    }

    #[tokio::test]
    async fn one_decision_for_every_api() {
        let ask = |user: Option<&'static str>| async move {
            let api = AuthorizerApi::Http {
                method: Method::GET,
            };
            authorize(&Fixed, &input(api, user).into_request()).await
        };
        assert!(matches!(ask(Some("alice")).await, Ok(i) if i.principal_id() == Some("alice")));
        assert_eq!(ask(Some("mallory")).await, Err(Refused::Forbidden));
        assert_eq!(ask(None).await, Err(Refused::Unauthorized));
        assert_eq!(ask(Some("boom")).await, Err(Refused::Failed));
        assert_eq!(
            [Refused::Unauthorized, Refused::Forbidden, Refused::Failed].map(Refused::status),
            [401, 403, 500]
        );
    }

    #[test]
    fn query_decoding() {
        let q = single_values("user=al%20ice&x=1&x=2&empty=&plus=a+b&bad=%zz&end=%4");
        assert_eq!(q["user"], "al ice");
        assert_eq!(q["x"], "2");
        assert_eq!(q["empty"], "");
        assert_eq!(q["plus"], "a b");
        assert_eq!(q["bad"], "%zz");
        assert_eq!(q["end"], "%4");
    }
}
