//! The `$connect` authorizer hook: API Gateway's Lambda REQUEST authorizer contract.
//!
//! The local gateway calls an [`Authorizer`] on every upgrade with the same request API
//! Gateway sends to a REQUEST authorizer, and evaluates the returned IAM policy the way
//! API Gateway does: no policy allowing `execute-api:Invoke` on the `methodArn` means 403.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
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
