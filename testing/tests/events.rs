//! `testing::events`: every builder's event parses as the `aws_lambda_events` type the
//! runtime uses, and what a test sets is what the event says; `testing::lambda::FunctionEnv`
//! names its variables as the runtime reads them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use serde_json::json;
use switchboard_core::names::env;
use switchboard_core::names::table::TableNames;
use switchboard_testing::events::{API_ID, authorizer, cognito, http, sqs, websocket};
use switchboard_testing::lambda::FunctionEnv;

#[test]
fn websocket_events_have_aws_shape_and_defaults() {
    let connect = websocket::connect("Y29ubg==").typed();
    let rc = &connect.request_context;
    assert_eq!(rc.event_type.as_deref(), Some("CONNECT"));
    assert_eq!(rc.route_key.as_deref(), Some("$connect"));
    assert_eq!(rc.connection_id.as_deref(), Some("Y29ubg=="));
    assert_eq!(rc.message_id.as_deref(), Some(websocket::MESSAGE_ID));
    assert_eq!(rc.request_id.as_deref(), Some(websocket::REQUEST_ID));
    assert_eq!(rc.apiid.as_deref(), Some(API_ID));
    assert_eq!(rc.stage.as_deref(), Some("ws"));
    assert_eq!(rc.connected_at, websocket::CONNECTED_AT);
    assert_eq!(rc.request_time_epoch, websocket::REQUEST_TIME_EPOCH);
    assert_eq!(rc.authorizer.fields["username"], websocket::USER);
    assert_eq!(connect.body, None);

    let disconnect = websocket::disconnect("Y29ubg==").build();
    assert_eq!(disconnect["requestContext"]["eventType"], "DISCONNECT");
    assert_eq!(disconnect["requestContext"]["routeKey"], "$disconnect");
    assert_eq!(disconnect["body"], serde_json::Value::Null);
}

#[test]
fn websocket_setters_reach_the_event() {
    let event = websocket::message("sendMessage", "bWVzcw==")
        .body(r#"{"action":"sendMessage"}"#)
        .user("bob")
        .message_id("m-1")
        .request_id("req-m-1")
        .stage("prod")
        .domain_name("127.0.0.1")
        .connected_at(1)
        .request_time_epoch(2)
        .source_ip("203.0.113.7")
        .user_agent(None)
        .header("Sec-WebSocket-Protocol", "chat")
        .query("token", "t")
        .build();
    let rc = &event["requestContext"];
    assert_eq!(rc["eventType"], "MESSAGE");
    assert_eq!(rc["routeKey"], "sendMessage");
    assert_eq!(
        rc["authorizer"],
        json!({"principalId": "bob", "username": "bob"})
    );
    assert_eq!(rc["messageId"], "m-1");
    assert_eq!(rc["requestId"], "req-m-1");
    assert_eq!(rc["stage"], "prod");
    assert_eq!(rc["domainName"], "127.0.0.1");
    assert_eq!(rc["connectedAt"], 1);
    assert_eq!(rc["requestTimeEpoch"], 2);
    assert_eq!(rc["identity"], json!({"sourceIp": "203.0.113.7"}));
    assert_eq!(event["body"], r#"{"action":"sendMessage"}"#);
    assert_eq!(event["headers"]["Sec-WebSocket-Protocol"], "chat");
    assert_eq!(
        event["multiValueHeaders"]["Sec-WebSocket-Protocol"],
        json!(["chat"])
    );
    assert_eq!(event["queryStringParameters"]["token"], "t");

    let typed = websocket::message("echo", "bWVzcw==")
        .maybe_body(Some("{}"))
        .header("User-Agent", "test")
        .typed();
    assert_eq!(typed.body.as_deref(), Some("{}"));
    assert_eq!(typed.headers["user-agent"], "test");

    let anonymous = websocket::message("echo", "bWVzcw==")
        .no_authorizer()
        .build();
    assert!(anonymous["requestContext"].get("authorizer").is_none());
    let custom = websocket::message("echo", "bWVzcw==")
        .authorizer(json!({"principalId": "svc", "groups": "admins"}))
        .typed();
    assert_eq!(custom.request_context.authorizer.fields["groups"], "admins");
}

#[test]
fn authorizer_requests_carry_token_headers_and_arn() {
    let request = authorizer::request()
        .token("t0k")
        .header("Sec-WebSocket-Protocol", "switchboard, t0k")
        .typed();
    assert_eq!(request.type_.as_deref(), Some("REQUEST"));
    assert_eq!(
        request.method_arn.as_deref(),
        Some(authorizer::connect_arn().as_str())
    );
    assert_eq!(request.query_string_parameters.first("token"), Some("t0k"));
    assert_eq!(
        request.headers["sec-websocket-protocol"],
        "switchboard, t0k"
    );
    let bare = authorizer::request().method_arn("arn:x").build();
    assert_eq!(bare["methodArn"], "arn:x");
    assert_eq!(bare["headers"], json!({}));
    assert_eq!(bare["queryStringParameters"], json!({}));
}

#[test]
fn sqs_records_have_fifo_attributes() {
    let event = sqs::event([
        sqs::record("m-1", "{}").fifo("alice", "d-1"),
        sqs::record("m-2", "x")
            .queue("other.fifo")
            .receipt_handle("rh")
            .attribute("ApproximateReceiveCount", "3"),
    ])
    .typed();
    assert_eq!(event.records.len(), 2);
    let first = &event.records[0];
    assert_eq!(first.message_id.as_deref(), Some("m-1"));
    assert_eq!(first.receipt_handle.as_deref(), Some("rh-m-1"));
    assert_eq!(first.attributes["MessageGroupId"], "alice");
    assert_eq!(first.attributes["MessageDeduplicationId"], "d-1");
    assert_eq!(first.attributes["ApproximateReceiveCount"], "1");
    assert!(first.attributes.contains_key("SequenceNumber"));
    assert_eq!(
        first.event_source_arn.as_deref(),
        Some("arn:aws:sqs:us-east-1:123456789012:chat-orders.fifo")
    );
    let second = &event.records[1];
    assert_eq!(second.receipt_handle.as_deref(), Some("rh"));
    assert_eq!(second.attributes["ApproximateReceiveCount"], "3");
    assert!(
        second
            .event_source_arn
            .as_deref()
            .unwrap()
            .ends_with(":other.fifo")
    );
    assert_eq!(sqs::event([]).build(), json!({"Records": []}));
}

#[test]
fn sqs_envelope_is_the_core_envelope() {
    let body = sqs::envelope(
        "orders",
        "placeOrder",
        "Y29ubg==",
        "alice",
        json!({"item": "tea"}),
    );
    let envelope = switchboard_core::queue::envelope::parse(&body).unwrap();
    assert_eq!(envelope.queue, "orders");
    assert_eq!(envelope.route.as_deref(), Some("placeOrder"));
    assert_eq!(envelope.sender.connection_id, "Y29ubg==");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["sender"]["identity"]["principalId"], "alice");
    assert_eq!(v["sender"]["identity"]["context"]["username"], "alice");
    assert_eq!(v["payload"]["item"], "tea");
}

#[test]
fn http_requests_are_payload_v2() {
    let request = http::request("POST", "/http/rooms")
        .raw_query("a=1")
        .header("content-type", "application/json")
        .body("{}")
        .typed();
    assert_eq!(request.version.as_deref(), Some("2.0"));
    assert_eq!(request.raw_path.as_deref(), Some("/http/rooms"));
    assert_eq!(request.raw_query_string.as_deref(), Some("a=1"));
    assert_eq!(request.request_context.http.method, http_method("POST"));
    assert_eq!(request.body.as_deref(), Some("{}"));
    let claims = &request
        .request_context
        .authorizer
        .as_ref()
        .and_then(|a| a.jwt.as_ref())
        .unwrap()
        .claims;
    assert_eq!(claims["cognito:username"], "alice");

    let anonymous = http::request("GET", "/http/me").no_authorizer().build();
    assert!(anonymous["requestContext"].get("authorizer").is_none());
    let bob = http::request("GET", "/http/me")
        .claims(json!({"cognito:username": "bob"}))
        .build();
    assert_eq!(
        bob["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:username"],
        "bob"
    );
}

fn http_method(m: &str) -> ::http::Method {
    m.parse().unwrap()
}

#[test]
fn pre_signup_events_parse() {
    let event = cognito::pre_signup("carol")
        .trigger_source("PreSignUp_AdminCreateUser")
        .typed();
    assert_eq!(
        event.cognito_event_user_pools_header.user_name.as_deref(),
        Some("carol")
    );
    assert_eq!(event.request.user_attributes["email"], "carol@example.com");
    assert!(!event.response.auto_confirm_user);
}

#[test]
fn function_env_uses_the_runtime_names() {
    let vars = FunctionEnv::local()
        .tables(&TableNames::new("c", "r"))
        .dynamodb_endpoint("http://ddb")
        .sqs_endpoint("http://sqs")
        .management_endpoint("http://mgmt/ws")
        .queue_url("order-events", "http://q")
        .jwt_issuer("http://iss")
        .jwt_audience("aud")
        .jwks_url("http://jwks")
        .auto_confirm_users(true)
        .set(env::REGION, "eu-west-1");
    for (name, value) in [
        (env::REGION, "eu-west-1"),
        (env::ACCESS_KEY_ID, "AKIDLOCAL"),
        (env::CONNECTIONS_TABLE, "c"),
        (env::ROOMS_TABLE, "r"),
        (env::DYNAMODB_ENDPOINT, "http://ddb"),
        (env::SQS_ENDPOINT, "http://sqs"),
        (env::MANAGEMENT_ENDPOINT, "http://mgmt/ws"),
        (env::queue_url("order-events").as_str(), "http://q"),
        (env::JWT_ISSUER, "http://iss"),
        (env::JWT_AUDIENCE, "aud"),
        (env::JWKS_URL, "http://jwks"),
        (env::AUTO_CONFIRM_USERS, "true"),
    ] {
        assert_eq!(vars.get(name), Some(value), "{name}");
    }
    // `set` replaces: one region, not two.
    let regions = vars.vars().iter().filter(|(k, _)| k == env::REGION).count();
    assert_eq!(regions, 1);
    assert!(FunctionEnv::new().vars().is_empty());
}
