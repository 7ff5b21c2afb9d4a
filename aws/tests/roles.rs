//! The Lambda roles of issue 16: the origin check in `ws:authorizer` and `http`, and
//! the EMF lines each role prints after an invocation (parsed and checked here).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::IamPolicyEffect;
use axum::Router;
use axum::routing::get;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use switchboard_aws::AwsSettings;
use switchboard_aws::connections::ManagementApi;
use switchboard_aws::http::HttpService;
use switchboard_aws::lambda::{AuthorizerRole, flush_metrics, handle_route};
use switchboard_core::auth::{AuthError, Authorizer, DevAuthorizer};
use switchboard_core::metrics::Metrics;
use switchboard_core::names::{headers, metrics as names};
use switchboard_core::origin::OriginSecrets;
use switchboard_core::spec::AppSpec;
use switchboard_testing::events::{authorizer, http, websocket};

/// The development authorizer, counting how often it was asked.
#[derive(Default)]
struct Counting(AtomicUsize);

#[async_trait]
impl Authorizer for Counting {
    async fn authorize(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<ApiGatewayCustomAuthorizerResponse, AuthError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        DevAuthorizer.authorize(request).await
    }
}

fn secrets() -> Option<OriginSecrets> {
    OriginSecrets::new(Some("current-secret"), Some("previous-secret"))
}

fn emf(metrics: &Metrics) -> Vec<Value> {
    let mut out = Vec::new();
    flush_metrics(metrics, &mut out);
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

fn effect(
    answer: &Result<ApiGatewayCustomAuthorizerResponse, lambda_runtime::Diagnostic>,
) -> Option<IamPolicyEffect> {
    answer
        .as_ref()
        .ok()
        .and_then(|r| r.policy_document.statement.first())
        .map(|s| s.effect.clone())
}

#[tokio::test]
async fn authorizer_denies_a_bad_origin_before_the_authorizer_runs_and_counts_it() {
    let counting = Arc::new(Counting::default());
    let role = AuthorizerRole {
        authorizer: counting.clone(),
        origin: secrets(),
        metrics: Arc::new(Metrics::new("chat-prod", [], [])),
    };
    let ask = |event: ApiGatewayCustomAuthorizerRequestTypeRequest| {
        role.handle(LambdaEvent::new(event, Context::default()))
    };
    let alice = || authorizer::request().query("user", "alice");

    let missing = ask(alice().typed()).await;
    assert_eq!(effect(&missing), Some(IamPolicyEffect::Deny));
    let wrong = ask(alice().header(headers::ORIGIN, "guess").typed()).await;
    assert_eq!(effect(&wrong), Some(IamPolicyEffect::Deny));
    assert_eq!(
        counting.0.load(Ordering::SeqCst),
        0,
        "no authorizer work for a bad origin"
    );

    let current = ask(alice().header(headers::ORIGIN, "current-secret").typed()).await;
    assert_eq!(effect(&current), Some(IamPolicyEffect::Allow));
    let previous = ask(alice().header(headers::ORIGIN, "previous-secret").typed()).await;
    assert_eq!(effect(&previous), Some(IamPolicyEffect::Allow));
    // A good origin but no identity: API Gateway's 401, counted as a deny.
    let anonymous = ask(authorizer::request()
        .header(headers::ORIGIN, "current-secret")
        .typed())
    .await;
    assert!(anonymous.is_err());
    assert_eq!(counting.0.load(Ordering::SeqCst), 3);

    let lines = emf(&role.metrics);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let doc = &lines[0];
    assert_eq!(doc["Service"], "chat-prod");
    assert_eq!(doc[names::AUTHORIZER_ALLOW], 2);
    assert_eq!(doc[names::AUTHORIZER_DENY], 3);
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], names::NAMESPACE);
    assert_eq!(directive["Dimensions"], json!([[names::dim::SERVICE]]));
    assert!(doc["_aws"]["Timestamp"].as_i64().is_some_and(|t| t > 0));
    // Flushed: the next invocation starts from zero.
    assert!(emf(&role.metrics).is_empty());
}

#[tokio::test]
async fn authorizer_without_secrets_checks_no_origin() {
    let role = AuthorizerRole {
        authorizer: Arc::new(DevAuthorizer),
        origin: None,
        metrics: Arc::new(Metrics::new("s", [], [])),
    };
    let answer = role
        .handle(LambdaEvent::new(
            authorizer::request().query("user", "bob").typed(),
            Context::default(),
        ))
        .await;
    assert_eq!(effect(&answer), Some(IamPolicyEffect::Allow));
}

fn http_service(origin: Option<OriginSecrets>) -> HttpService {
    let spec = AppSpec {
        defs: Some(Vec::new()),
        http: Some(Router::new().route("/hello", get(|| async { "hi" }))),
        ..AppSpec::default()
    };
    let api = ManagementApi::new(
        &AwsSettings::local("http://127.0.0.1:9"),
        "http://127.0.0.1:9/ws",
    );
    match HttpService::for_app(&spec, Arc::new(api)) {
        Ok(Some(service)) => service.with_origin(origin),
        other => panic!("an HTTP API: {other:?}"),
    }
}

#[tokio::test]
async fn http_role_answers_403_without_the_origin_header() {
    let service = http_service(secrets());
    let call = |event: http::HttpRequest| service.handle_event(event.typed());
    let hello = || http::request("GET", "/http/hello");
    for refused in [hello(), hello().header(headers::ORIGIN, "nope")] {
        let answer = call(refused).await;
        assert_eq!(answer.status_code, 403);
        let body = serde_json::to_value(&answer.body).unwrap_or_default();
        assert_eq!(body, json!(r#"{"message":"Forbidden"}"#));
    }
    for secret in ["current-secret", "previous-secret"] {
        let answer = call(hello().header(headers::ORIGIN, secret)).await;
        assert_eq!(answer.status_code, 200, "{secret}");
    }
    // No secrets configured: no check.
    let open = http_service(None).handle_event(hello().typed()).await;
    assert_eq!(open.status_code, 200);
}

#[tokio::test]
async fn route_role_prints_route_metrics() {
    let spec = AppSpec {
        defs: Some(Vec::new()),
        ..AppSpec::default()
    };
    let api = Arc::new(ManagementApi::new(
        &AwsSettings::local("http://127.0.0.1:9"),
        "http://127.0.0.1:9/ws",
    ));
    let dispatcher = match spec.dispatcher(api.clone()) {
        Ok(d) => d,
        Err(e) => panic!("dispatcher: {e}"),
    };
    let event = websocket::message("ping", "N5OsJdBsIAMCJ_Q=")
        .body(r#"{"action":"ping"}"#)
        .typed();
    let answer = handle_route(
        "ping",
        &dispatcher,
        &api,
        LambdaEvent::new(event, Context::default()),
    )
    .await;
    assert!(answer.is_ok());
    let unknown = websocket::message("$default", "N5OsJdBsIAMCJ_Q=")
        .body(r#"{"action":"nope"}"#)
        .typed();
    let _ = handle_route(
        "$default",
        &dispatcher,
        &api,
        LambdaEvent::new(unknown, Context::default()),
    )
    .await;
    let lines = emf(&dispatcher.services().metrics);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let by_route = |route: &str| {
        lines
            .iter()
            .find(|l| l["Route"] == route)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let ping = by_route("ping");
    assert_eq!(ping[names::ROUTE_COUNT], 1);
    assert_eq!(ping[names::ROUTE_ERRORS], 0);
    assert!(
        ping[names::ROUTE_DURATION]
            .as_f64()
            .is_some_and(|ms| ms >= 0.0)
    );
    assert_eq!(
        ping["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([[names::dim::SERVICE, names::dim::ROUTE]])
    );
    let default = by_route("$default");
    assert_eq!(default[names::ROUTE_COUNT], 1);
    assert_eq!(
        default[names::ROUTE_ERRORS],
        1,
        "the unknown-route error frame"
    );
}
