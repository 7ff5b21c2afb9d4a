//! The HTTP API as the local gateway serves it: `/http/*` authenticated the way API
//! Gateway's JWT authorizer on the `$default` route would, then the app's router.

use std::sync::Arc;

use aws_lambda_events::query_map::QueryMap;
use axum::Router;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use switchboard_aws::jwt::JwtVerifier;
use switchboard_core::auth::{self, Authorizer, AuthorizerApi, AuthorizerInput, Refused};
use switchboard_core::http::{
    claims_as_api_gateway, identity_from_jwt_claims, insert_caller, mount,
};
use switchboard_core::identity::Identity;
use switchboard_core::request::Services;

/// How the local gateway checks `/http/*` requests before the app sees them.
#[derive(Clone)]
pub(crate) enum LocalHttpAuth {
    /// As API Gateway's JWT authorizer on the `$default` route: `Authorization` must hold
    /// a valid token (with or without `Bearer `), else 401.
    Jwt(Arc<JwtVerifier>),
    /// The app's own or the development `$connect` authorizer, asked with the same
    /// REQUEST-authorizer request (headers, query string) for `{METHOD}/{path}`.
    Authorizer(Arc<dyn Authorizer>),
}

struct LocalAuth {
    mode: LocalHttpAuth,
    api_id: String,
}

/// The HTTP API as the local gateway serves it: authenticated like AWS's, then the same
/// router as in Lambda.
pub(crate) fn local_service(
    app_router: Router,
    services: Arc<Services>,
    mode: LocalHttpAuth,
    api_id: String,
) -> Router {
    let auth = Arc::new(LocalAuth { mode, api_id });
    mount(app_router, services).layer(middleware::from_fn_with_state(auth, local_identity))
}

async fn local_identity(
    axum::extract::State(auth): axum::extract::State<Arc<LocalAuth>>,
    request: Request,
    next: Next,
) -> Response {
    // The body is not `Sync`: only the head is borrowed across the check.
    let (mut parts, body) = request.into_parts();
    match auth.authenticate(&parts).await {
        Ok(identity) => {
            insert_caller(&mut parts.extensions, identity);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refusal) => refusal,
    }
}

/// API Gateway's own error answer: `{"message": ..}`.
fn gateway_error(status: StatusCode, message: &str, bearer_error: Option<&str>) -> Response {
    let mut response =
        (status, axum::Json(serde_json::json!({"message": message}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = match bearer_error {
            Some(e) => format!("Bearer error=\"{e}\""),
            None => "Bearer".to_owned(),
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

/// The token of the `Authorization` header, with or without `Bearer `.
fn authorization_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        None if value.eq_ignore_ascii_case("bearer") => "",
        _ => value,
    };
    (!token.is_empty()).then_some(token)
}

impl LocalAuth {
    async fn authenticate(&self, request: &Parts) -> Result<Identity, Response> {
        match &self.mode {
            LocalHttpAuth::Jwt(verifier) => {
                let Some(token) = authorization_token(&request.headers) else {
                    return Err(gateway_error(
                        StatusCode::UNAUTHORIZED,
                        "Unauthorized",
                        None,
                    ));
                };
                match verifier.verify(token).await {
                    Ok(claims) => Ok(identity_from_jwt_claims(&claims_as_api_gateway(
                        claims.raw(),
                    ))),
                    Err(e) if e.is_unavailable() => {
                        tracing::error!(error = %e, "cannot verify tokens of HTTP requests");
                        Err(gateway_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "Internal Server Error",
                            None,
                        ))
                    }
                    Err(e) => {
                        tracing::info!(reason = %e, "HTTP request token rejected");
                        Err(gateway_error(
                            StatusCode::UNAUTHORIZED,
                            "Unauthorized",
                            Some("invalid_token"),
                        ))
                    }
                }
            }
            LocalHttpAuth::Authorizer(authorizer) => self.ask(authorizer.as_ref(), request).await,
        }
    }

    async fn ask(
        &self,
        authorizer: &dyn Authorizer,
        request: &Parts,
    ) -> Result<Identity, Response> {
        let path = request.uri.path();
        let mut query = auth::single_values(request.uri.query().unwrap_or_default());
        // API Gateway takes HTTP API tokens from the Authorization header only.
        query.remove("token");
        let areq = AuthorizerInput {
            api: AuthorizerApi::Http {
                method: request.method.clone(),
            },
            method_arn: auth::http_method_arn(
                "local",
                "000000000000",
                &self.api_id,
                "$default",
                &request.method,
                path,
            ),
            api_id: self.api_id.clone(),
            stage: "$default".to_owned(),
            path: path.to_owned(),
            headers: request.headers.clone(),
            query: QueryMap::from(query),
        }
        .into_request();
        auth::authorize(authorizer, &areq)
            .await
            .map_err(|refused| match refused {
                Refused::Unauthorized => {
                    gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized", None)
                }
                Refused::Forbidden => gateway_error(StatusCode::FORBIDDEN, "Forbidden", None),
                Refused::Failed => gateway_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    None,
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(authorization_token(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer a.b.c"),
        );
        assert_eq!(authorization_token(&h), Some("a.b.c"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  x.y.z "),
        );
        assert_eq!(authorization_token(&h), Some("x.y.z"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("raw.token.here"),
        );
        assert_eq!(authorization_token(&h), Some("raw.token.here"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(authorization_token(&h), None);
    }
}
