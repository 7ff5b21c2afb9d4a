//! The `@connections` management API, the web page and the local info endpoints.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};

use super::session::Gateway;
use switchboard_core::backend::{ConnectionsClient, PostError};
use switchboard_core::response::Frame;

fn aws_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    response
}

fn iso8601(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `POST|GET|DELETE /{stage}/@connections/{id}` (and without the stage).
pub(crate) async fn connection_op(
    State(gateway): State<Arc<Gateway>>,
    id: Result<Path<String>, PathRejection>,
    method: Method,
    // The request target as received: the routes are not nested, so nothing is stripped.
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // A body over the route's limit (1 MB) or a broken one gets API Gateway's error shape,
    // not axum's plain-text rejection.
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return aws_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLargeException",
                "Request body too large",
            );
        }
        Err(_) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                "Could not read the request body",
            );
        }
    };
    // As on AWS, nothing happens for a request that is not signed with the key (unless
    // the gateway runs with `--no-sigv4`, on loopback only).
    let refused = gateway.config.sigv4.as_ref().and_then(|verifier| {
        verifier
            .verify(&method, &uri, &headers, &body, chrono::Utc::now())
            .err()
    });
    if let Some(e) = refused {
        tracing::debug!(error = %e, "@connections request refused");
        return e.to_response().map(axum::body::Body::from);
    }
    // An id that does not percent-decode to UTF-8 names no connection.
    let Ok(Path(id)) = id else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "Invalid connection id",
        );
    };
    let hub = &gateway.hub;
    let result = match method {
        Method::POST => hub
            .post(&id, &Frame::from_bytes(body))
            .await
            .map(|()| StatusCode::OK.into_response()),
        Method::GET => hub.get(&id).await.map(|info| {
            axum::Json(serde_json::json!({
                "connectedAt": iso8601(info.connected_at),
                "lastActiveAt": iso8601(info.last_active_at),
                "identity": {
                    "sourceIp": info.source_ip,
                    "userAgent": info.user_agent,
                },
            }))
            .into_response()
        }),
        Method::DELETE => hub
            .delete(&id)
            .await
            .map(|()| StatusCode::NO_CONTENT.into_response()),
        _ => {
            return aws_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowedException",
                "use POST, GET or DELETE",
            );
        }
    };
    match result {
        Ok(response) => response,
        Err(PostError::Gone(_)) => aws_error(StatusCode::GONE, "GoneException", "Gone"),
        Err(PostError::PayloadTooLarge { size, limit }) => aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            &format!("Payload of {size} bytes exceeds the {limit}-byte limit"),
        ),
        Err(PostError::Throttled) => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "Rate exceeded",
        ),
        Err(PostError::Forbidden(m)) => aws_error(StatusCode::FORBIDDEN, "ForbiddenException", &m),
        Err(PostError::Other(m)) => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            &m,
        ),
        Err(e) => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            &e.to_string(),
        ),
    }
}

/// `@connections` under a stage this API does not have: API Gateway answers 403.
pub(crate) async fn wrong_stage() -> Response {
    aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden")
}

/// `GET /`: the app's web page, or a page listing the routes.
pub(crate) async fn index(State(gateway): State<Arc<Gateway>>) -> Response {
    match gateway.web_page {
        Some(page) => Html(page).into_response(),
        None => {
            let routes: Vec<String> = gateway
                .dispatcher
                .services()
                .registry
                .custom_keys()
                .map(|k| format!("<li><code>{k}</code></li>"))
                .collect();
            Html(format!(
                "<!doctype html><meta charset=utf-8><title>Switchboard</title>\
                 <h1>Switchboard local gateway</h1><p>WebSocket API at <code>/ws</code>. Routes:</p><ul>{}</ul>",
                routes.join("")
            ))
            .into_response()
        }
    }
}

/// `GET /local/manifest`: the registry as JSON.
pub(crate) async fn manifest(State(gateway): State<Arc<Gateway>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        gateway.manifest.clone(),
    )
        .into_response()
}

/// `GET /local/connections`: who is connected, from the connection store.
pub(crate) async fn connections(State(gateway): State<Arc<Gateway>>) -> Response {
    match gateway.dispatcher.services().store.list_connections().await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            &e.to_string(),
        ),
    }
}
