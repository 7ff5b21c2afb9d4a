//! The `http` Lambda role: HTTP API (payload v2) events through `lambda_http` into the
//! app's router ([`switchboard_core::http`]), the caller from the JWT authorizer.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use lambda_http::request::RequestContext;
use tower::ServiceExt;

use switchboard_core::backend::ConnectionsClient;
use switchboard_core::http::{BASE_PATH, identity_from_authorizer, insert_caller, mount};
use switchboard_core::request::Services;
use switchboard_core::spec::{AppSpec, StartError};

/// The HTTP API as the `http` Lambda function runs it: `lambda_http` requests (HTTP API
/// payload v2) in, responses out, the caller from `requestContext.authorizer`.
#[derive(Clone)]
pub struct HttpService {
    router: Router,
}

impl std::fmt::Debug for HttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpService").finish_non_exhaustive()
    }
}

impl HttpService {
    /// The app's HTTP API, sending through `client`; `None` when the app has none.
    pub fn for_app(
        app: &AppSpec,
        client: Arc<dyn ConnectionsClient>,
    ) -> Result<Option<Self>, StartError> {
        let Some(router) = &app.http else {
            return Ok(None);
        };
        Ok(Some(Self::new(router.clone(), app.services(client)?)))
    }

    /// The router under `/http` with the caller taken from each event's authorizer.
    pub fn new(app_router: Router, services: Arc<Services>) -> Self {
        Self {
            router: mount(app_router, services).layer(middleware::from_fn(lambda_identity)),
        }
    }

    /// Handles one request, as the `http` function does for every event: routes it,
    /// logs method, path, status and duration (never bodies or tokens).
    pub async fn handle(&self, mut request: lambda_http::Request) -> Response {
        let started = Instant::now();
        let (request_id, stage) = match request.extensions().get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(rc)) => (rc.request_id.clone(), rc.stage.clone()),
            _ => (None, None),
        };
        strip_stage(&mut request, stage.as_deref());
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::info!(
            request_id = request_id.as_deref().unwrap_or_default(),
            method = %method,
            path,
            status = response.status().as_u16(),
            duration_us,
            "handled"
        );
        response
    }
}

/// `lambda_http` prefixes the path with a named stage (`/dev/http/me`); the routes live
/// under `/http` whatever the stage, as CloudFront forwards them to `$default`.
fn strip_stage(request: &mut lambda_http::Request, stage: Option<&str>) {
    let Some(stage) = stage.filter(|s| *s != "$default" && !s.is_empty()) else {
        return;
    };
    let prefix = format!("/{stage}");
    let uri = request.uri();
    let Some(rest) = uri.path().strip_prefix(&prefix) else {
        return;
    };
    if !(rest == BASE_PATH || rest.starts_with(&format!("{BASE_PATH}/"))) {
        return;
    }
    let path_and_query = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    if let Ok(new) = axum::http::Uri::builder()
        .path_and_query(path_and_query)
        .build()
    {
        *request.uri_mut() = new;
    }
}

/// In Lambda: the caller from the event's `requestContext.authorizer`.
async fn lambda_identity(mut request: Request, next: Next) -> Response {
    let identity = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(rc)) => {
            rc.authorizer.as_ref().and_then(identity_from_authorizer)
        }
        _ => None,
    };
    if let Some(identity) = identity {
        insert_caller(request.extensions_mut(), identity);
    }
    next.run(request).await
}
