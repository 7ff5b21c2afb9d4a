//! API Gateway events in AWS's shape, as JSON: one set of builders for every test that
//! feeds the runtime, a Lambda role or a fuzz target.

use serde_json::{Value, json};

/// The API id the builders use (`domainName` is `{API_ID}.execute-api.us-east-1.amazonaws.com`).
pub const API_ID: &str = "abcdef1234";

/// A WebSocket proxy event (`ApiGatewayWebsocketProxyRequest`): `event_type` is
/// `CONNECT`, `MESSAGE` or `DISCONNECT`, `route` the route key, `body` the frame.
/// The authorizer context says `alice`.
pub fn websocket(event_type: &str, route: &str, connection_id: &str, body: Option<&str>) -> Value {
    json!({
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "messageId": "bWVzc2FnZTAwMDA=",
            "extendedRequestId": "ZXh0ZW5kZWQwMDA=",
            "requestTime": "22/Nov/2026:03:41:48 +0000",
            "messageDirection": "IN",
            "stage": "ws",
            "connectedAt": 1_795_000_000_000_i64,
            "requestTimeEpoch": 1_795_000_000_100_i64,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "cmVxdWVzdDAwMDA=",
            "domainName": format!("{API_ID}.execute-api.us-east-1.amazonaws.com"),
            "connectionId": connection_id,
            "apiId": API_ID,
            "authorizer": {"principalId": "alice", "username": "alice"}
        },
        "body": body,
        "isBase64Encoded": false
    })
}
