//! Lambda mode: the same executable runs as every function of the service.
//!
//! When `AWS_LAMBDA_RUNTIME_API` is set, `switchboard::App::main` runs
//! `lambda_runtime` as the function named by the handler string (`_HANDLER`), so one
//! artifact serves every function:
//!
//! | `_HANDLER` | event | does |
//! |---|---|---|
//! | `ws:$connect`, `ws:$disconnect`, `ws:$default`, `ws:<route>` | `ApiGatewayWebsocketProxyRequest` | dispatch, DynamoDB bookkeeping, `@connections` sends |
//! | `ws:authorizer` | `ApiGatewayCustomAuthorizerRequestTypeRequest` | the app's `$connect` authorizer |
//! | `cognito:pre-signup` | `CognitoEventUserPoolsPreSignup` | auto-confirms new users when `SWITCHBOARD_AUTO_CONFIRM_USERS=true` |
//! | `queue:<name>` | `SqsEvent` | the queue's `#[queue_consumer]`, answering with `batchItemFailures` (`ReportBatchItemFailures`) |
//! | `http` | HTTP API payload v2 (`ApiGatewayV2httpRequest`, from the payload as JSON; not one → 400) | the app's HTTP API (`switchboard::App::http`); the caller from the JWT authorizer's claims |
//!
//! Configuration comes from environment variables the deploy program sets; everything
//! missing is reported at once, at cold start, as a Lambda init error.
//!
//! `ws:authorizer` and `http` first check CloudFront's origin header against
//! `SWITCHBOARD_ORIGIN_SECRET[_PREVIOUS]` ([`OriginSecrets`]; a warning at start when
//! neither is set). After every invocation a role prints what it recorded as CloudWatch
//! EMF lines on stdout ([`flush_metrics`]; the metrics are listed in
//! [`switchboard_core::metrics`]).

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::cognito::CognitoEventUserPoolsPreSignup;
use aws_lambda_events::encodings::Body;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connections::ManagementApi;
use crate::dynamodb::{DynamoStore, TableNames};
use crate::history::{DynamoHistory, Unconfigured};
use crate::http::HttpService;
use crate::jwt::JwtAuthorizer;
use crate::{AwsSettings, ConfigError, env, required};
use aws_lambda_events::iam::IamPolicyEffect;
use switchboard_core::auth::{AuthError, Authorizer, Decision};
use switchboard_core::dispatch::Dispatcher;
use switchboard_core::metrics::Metrics;
use switchboard_core::origin::OriginSecrets;
use switchboard_core::registry::Registry;
use switchboard_core::spec::{AppSpec, StartError};

/// Variables `lambda_runtime` itself needs (it panics without them; we check first).
const RUNTIME_VARS: [&str; 4] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_RUNTIME_API",
];

/// What a function is deployed as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A WebSocket route (`ws:<route key>`).
    Route(&'static str),
    /// The `$connect` REQUEST authorizer (`ws:authorizer`).
    Authorizer,
    /// Cognito's pre-sign-up trigger (`cognito:pre-signup`).
    PreSignup,
    /// The HTTP API (`http`), when the app has one.
    Http,
    /// The consumer of a queue (`queue:<name>`).
    Queue(&'static str),
    /// The consumer of the sharded fan-out queue (`fanout`).
    Fanout,
}

/// Why Lambda mode cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// `_HANDLER` names no known role.
    #[error("unknown function role `{given}`; known roles: {}", .known.join(", "))]
    UnknownRole {
        /// What `_HANDLER` said.
        given: String,
        /// The roles this binary can serve.
        known: Vec<String>,
    },
    /// Configuration is missing.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The app is invalid.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The development authorizer would run in Lambda.
    #[error(
        "the development authorizer (identity from ?user=) must not run in AWS: configure App::authorizer, or set {}=true for a throwaway stage",
        env::ALLOW_DEV_AUTH
    )]
    DevAuthorizer,
    /// The Lambda runtime stopped.
    #[error("lambda runtime: {0}")]
    Runtime(String),
}

/// Every role this registry can serve (`http` when the app has an HTTP API).
pub fn known_roles(registry: &Registry, http: bool) -> Vec<String> {
    let mut roles: Vec<String> = registry
        .routes()
        .iter()
        .map(|r| format!("ws:{}", r.def.key))
        .collect();
    roles.push("ws:authorizer".to_owned());
    roles.push("cognito:pre-signup".to_owned());
    roles.push(switchboard_core::names::fanout::ROLE.to_owned());
    roles.extend(
        registry
            .consumers()
            .iter()
            .map(|c| format!("queue:{}", c.def.queue)),
    );
    if http {
        roles.push(switchboard_core::http::ROLE.to_owned());
    }
    roles
}

/// Parses a handler string against the registry; `http` names a role only when the app
/// has an HTTP API.
pub fn parse_role(handler: &str, registry: &Registry, http: bool) -> Result<Role, LambdaError> {
    match handler {
        "ws:authorizer" => return Ok(Role::Authorizer),
        "cognito:pre-signup" => return Ok(Role::PreSignup),
        switchboard_core::names::fanout::ROLE => return Ok(Role::Fanout),
        switchboard_core::http::ROLE if http => return Ok(Role::Http),
        _ => {}
    }
    if let Some(route) = handler
        .strip_prefix("ws:")
        .and_then(|key| registry.get(key))
    {
        return Ok(Role::Route(route.def.key));
    }
    if let Some(consumer) = handler
        .strip_prefix("queue:")
        .and_then(|queue| registry.consumer(queue))
    {
        return Ok(Role::Queue(consumer.def.queue));
    }
    Err(LambdaError::UnknownRole {
        given: handler.to_owned(),
        known: known_roles(registry, http),
    })
}

/// What the WebSocket roles read from the environment.
#[derive(Clone, Debug)]
pub struct RouteConfig {
    /// Region and credentials.
    pub aws: AwsSettings,
    /// Table names.
    pub tables: TableNames,
    /// A DynamoDB endpoint override.
    pub dynamodb_endpoint: Option<String>,
    /// The `@connections` endpoint, when the event's domain is not the execute-api one.
    pub management_endpoint: Option<String>,
    /// The room history table, on the functions the deploy program granted it to.
    pub history_table: Option<String>,
}

impl RouteConfig {
    /// Reads and validates the environment, listing every problem at once.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let aws = AwsSettings::from_env(&mut problems);
        let connections = required(env::CONNECTIONS_TABLE, &mut problems);
        let rooms = required(env::ROOMS_TABLE, &mut problems);
        let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (aws, connections, rooms) {
            (Some(aws), Some(connections), Some(rooms)) if problems.is_empty() => Ok(Self {
                aws,
                tables: TableNames { connections, rooms },
                dynamodb_endpoint: optional(env::DYNAMODB_ENDPOINT),
                management_endpoint: optional(env::MANAGEMENT_ENDPOINT),
                history_table: optional(env::HISTORY_TABLE),
            }),
            _ => Err(ConfigError { problems }),
        }
    }
}

impl RouteConfig {
    /// Points `app`'s room history (if it keeps any) at the history table, or, on a
    /// function the deploy program gave no table, at a store that refuses with the
    /// reason: never at an in-memory history, which each Lambda instance would number
    /// on its own.
    pub fn wire_history(&self, app: &mut AppSpec) {
        if app.history.is_empty() {
            return;
        }
        let settings = self
            .aws
            .clone()
            .with_endpoint(self.dynamodb_endpoint.clone());
        app.history_store = Some(match &self.history_table {
            Some(table) => Arc::new(DynamoHistory::from_settings(&settings, table.clone())),
            None => Arc::new(Unconfigured),
        });
    }

    /// The DynamoDB connection store this configuration names.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::from_settings(
            &self
                .aws
                .clone()
                .with_endpoint(self.dynamodb_endpoint.clone()),
            self.tables.clone(),
        )
    }
}

/// Runs the function named by `_HANDLER` until the Lambda runtime stops it.
pub async fn run(app: &AppSpec) -> Result<(), LambdaError> {
    let result = start(app).await;
    if let Err(e) = &result {
        tracing::error!(error = %e, "cold start failed");
        report_init_error(&e.to_string()).await;
    }
    result
}

async fn start(app: &AppSpec) -> Result<(), LambdaError> {
    let mut problems: Vec<String> = RUNTIME_VARS
        .iter()
        .filter(|v| std::env::var(v).map(|s| s.is_empty()).unwrap_or(true))
        .map(|v| format!("{v} is not set"))
        .collect();
    let handler = std::env::var(env::HANDLER).unwrap_or_default();
    if handler.is_empty() {
        problems.push(format!(
            "{} is not set (the function's handler string, e.g. ws:$connect)",
            env::HANDLER
        ));
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems }.into());
    }
    let registry = app.registry()?;
    let has_http = app.http.is_some();
    match parse_role(&handler, &registry, has_http)? {
        Role::Authorizer => {
            let role = AuthorizerRole {
                authorizer: authorizer_from_env(app)?,
                origin: origin_from_env(),
                metrics: Arc::new(app.metrics_for(&registry)),
            };
            serve_authorizer(role).await
        }
        Role::PreSignup => serve_pre_signup().await,
        Role::Route(key) => start_route(app, &registry, key).await,
        Role::Queue(queue) => start_queue(app, queue).await,
        Role::Fanout => start_fanout(app).await,
        Role::Http => start_http(app).await,
    }
}

/// The origin secrets of the `ws:authorizer` and `http` roles; without them the check
/// is off, which in Lambda means the API is reachable around CloudFront: warned once.
fn origin_from_env() -> Option<OriginSecrets> {
    let secrets = OriginSecrets::from_env();
    if secrets.is_none() {
        tracing::warn!(
            "{} is not set: requests are not checked for CloudFront's {} header, so the API is reachable around CloudFront and its WAF",
            env::ORIGIN_SECRET,
            switchboard_core::names::headers::ORIGIN
        );
    }
    secrets
}

/// Writes what `metrics` recorded since the last flush as CloudWatch EMF lines (one
/// JSON document per line) to `out`; nothing when nothing was recorded. The roles call
/// it with stdout after every invocation (Lambda's stdout is the function's log stream,
/// where CloudWatch picks EMF lines up).
pub fn flush_metrics(metrics: &Metrics, out: &mut dyn std::io::Write) {
    let now = chrono::Utc::now().timestamp_millis();
    for line in metrics.take().emf_lines(now) {
        if let Err(e) = writeln!(out, "{line}") {
            tracing::warn!(error = %e, "could not write a metrics line");
        }
    }
    let _ = out.flush();
}

fn flush_to_stdout(metrics: &Metrics) {
    flush_metrics(metrics, &mut std::io::stdout().lock());
}

/// The `$connect` authorizer: Cognito (or any OIDC issuer) when configured, else the
/// app's own; built once, so the JWKS cache lives as long as the container.
fn authorizer_from_env(app: &AppSpec) -> Result<Arc<dyn Authorizer>, LambdaError> {
    let authorizer: Arc<dyn Authorizer> = if std::env::var_os(env::JWT_ISSUER).is_some() {
        Arc::new(JwtAuthorizer::from_env()?)
    } else {
        match app.auth.explicit() {
            Some(a) => a,
            None => {
                return Err(ConfigError {
                    problems: vec![format!(
                        "{} is not set (the user pool's issuer, https://cognito-idp.{{region}}.amazonaws.com/{{poolId}})",
                        env::JWT_ISSUER
                    )],
                }
                .into());
            }
        }
    };
    let allowed = std::env::var(env::ALLOW_DEV_AUTH).is_ok_and(|v| v == "true");
    if authorizer.is_development() && !allowed {
        return Err(LambdaError::DevAuthorizer);
    }
    Ok(authorizer)
}

async fn serve_pre_signup() -> Result<(), LambdaError> {
    let auto_confirm = std::env::var(env::AUTO_CONFIRM_USERS).is_ok_and(|v| v == "true");
    tracing::info!(auto_confirm, "serving the Cognito pre-sign-up trigger");
    let handler = service_fn(
        move |event: LambdaEvent<CognitoEventUserPoolsPreSignup>| async move {
            Ok::<_, Diagnostic>(pre_signup(auto_confirm, event.payload))
        },
    );
    lambda_runtime::run(handler)
        .await
        .map_err(|e| LambdaError::Runtime(e.to_string()))
}

async fn start_route(
    app: &AppSpec,
    registry: &Registry,
    key: &'static str,
) -> Result<(), LambdaError> {
    let config = RouteConfig::from_env()?;
    let api = Arc::new(match &config.management_endpoint {
        Some(endpoint) => ManagementApi::new(&config.aws, endpoint),
        None => ManagementApi::from_events(&config.aws),
    });
    let mut app = app.clone();
    app.store = Some(Arc::new(config.store()));
    config.wire_history(&mut app);
    app.send.sharding = crate::fanout::sharding_from_env(&config.aws)?;
    let queues = registry
        .get(key)
        .map(|r| r.def.options.send_queues())
        .unwrap_or_default();
    if let Some(queue) = sqs_from_env(&config.aws, &queues)? {
        app.queue = Some(Arc::new(queue));
    }
    let dispatcher = app.dispatcher(api.clone())?;
    serve_route(key, dispatcher, api).await
}

async fn start_queue(app: &AppSpec, queue: &'static str) -> Result<(), LambdaError> {
    let config = RouteConfig::from_env()?;
    let Some(endpoint) = config.management_endpoint.clone() else {
        return Err(ConfigError {
            problems: vec![format!(
                "{} is not set (consumers send through @connections and get no API Gateway event to read it from)",
                env::MANAGEMENT_ENDPOINT
            )],
        }
        .into());
    };
    let api = Arc::new(ManagementApi::new(&config.aws, endpoint));
    let mut app = app.clone();
    app.store = Some(Arc::new(config.store()));
    config.wire_history(&mut app);
    app.send.sharding = crate::fanout::sharding_from_env(&config.aws)?;
    let services = app.services(api)?;
    let Some(consumer) = services
        .registry
        .consumer(queue)
        .map(|c| Arc::clone(&c.consumer))
    else {
        return Err(LambdaError::UnknownRole {
            given: format!("queue:{queue}"),
            known: known_roles(&services.registry, app.http.is_some()),
        });
    };
    serve_queue(queue, consumer, services).await
}

async fn start_fanout(app: &AppSpec) -> Result<(), LambdaError> {
    let config = RouteConfig::from_env()?;
    let Some(endpoint) = config.management_endpoint.clone() else {
        return Err(ConfigError {
            problems: vec![format!(
                "{} is not set (the fan-out posts through @connections and gets no API Gateway event to read it from)",
                env::MANAGEMENT_ENDPOINT
            )],
        }
        .into());
    };
    let api = Arc::new(ManagementApi::new(&config.aws, endpoint));
    let mut app = app.clone();
    app.store = Some(Arc::new(config.store()));
    app.send.sharding = crate::fanout::sharding_from_env(&config.aws)?;
    if app.send.sharding.is_none() {
        return Err(ConfigError {
            problems: vec![format!(
                "{} is not set (the fan-out queue's URL)",
                env::queue_url(switchboard_core::fanout::QUEUE)
            )],
        }
        .into());
    }
    crate::fanout::serve(app.services(api)?).await
}

async fn start_http(app: &AppSpec) -> Result<(), LambdaError> {
    let config = RouteConfig::from_env()?;
    // HTTP events carry no WebSocket domain: sends need the configured endpoint.
    let api = Arc::new(ManagementApi::with_endpoint(
        &config.aws,
        config.management_endpoint.clone(),
    ));
    if !api.is_configured() {
        tracing::warn!(
            "{} is not set: HTTP handlers can read the store but sends through @connections will fail",
            env::MANAGEMENT_ENDPOINT
        );
    }
    let mut app = app.clone();
    app.store = Some(Arc::new(config.store()));
    config.wire_history(&mut app);
    app.send.sharding = crate::fanout::sharding_from_env(&config.aws)?;
    match HttpService::for_app(&app, api)? {
        Some(service) => serve_http(service.with_origin(origin_from_env())).await,
        None => Err(LambdaError::UnknownRole {
            given: switchboard_core::http::ROLE.to_owned(),
            known: known_roles(&app.registry()?, false),
        }),
    }
}

/// The SQS queues a function sends to, from `SWITCHBOARD_QUEUE_URL_<NAME>` (every one
/// of `queues` is required), with `SWITCHBOARD_SQS_ENDPOINT` as an endpoint override.
fn sqs_from_env(
    aws: &AwsSettings,
    queues: &[&str],
) -> Result<Option<crate::sqs::SqsQueue>, ConfigError> {
    if queues.is_empty() {
        return Ok(None);
    }
    let mut problems = Vec::new();
    let mut urls = Vec::new();
    for queue in queues {
        let var = switchboard_core::queue::queue_url_env_var(queue);
        match std::env::var(&var) {
            Ok(url) if !url.trim().is_empty() => urls.push((queue.to_string(), url)),
            _ => problems.push(format!("{var} is not set (the URL of queue `{queue}`)")),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let endpoint = std::env::var(env::SQS_ENDPOINT)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let settings = aws.clone().with_endpoint(endpoint);
    Ok(Some(crate::sqs::SqsQueue::from_settings(
        &settings,
        crate::sqs::QueueNames::from_urls(urls),
    )))
}

async fn serve_queue(
    queue: &'static str,
    consumer: switchboard_core::consumer::BoxedConsumer,
    services: Arc<switchboard_core::request::Services>,
) -> Result<(), LambdaError> {
    tracing::info!(queue, "serving queue consumer");
    let handler = service_fn(
        move |event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| {
            let consumer = Arc::clone(&consumer);
            let services = Arc::clone(&services);
            async move {
                let started = Instant::now();
                let size = event.payload.records.len();
                let response = switchboard_core::consumer::handle_sqs_event(
                    &consumer,
                    &services,
                    queue,
                    &event.payload,
                )
                .await;
                tracing::info!(
                    queue,
                    request_id = %event.context.request_id,
                    messages = size,
                    failed = response.batch_item_failures.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "batch"
                );
                flush_to_stdout(&services.metrics);
                Ok::<_, Diagnostic>(response)
            }
        },
    );
    lambda_runtime::run(handler)
        .await
        .map_err(|e| LambdaError::Runtime(e.to_string()))
}

async fn serve_http(service: HttpService) -> Result<(), LambdaError> {
    tracing::info!("serving the HTTP API");
    // The payload as JSON, not `ApiGatewayV2httpRequest`: an event the type refuses (a
    // method or header value that is not one) is answered 400, not an invocation error.
    let handler = service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let service = service.clone();
        async move { Ok::<_, Diagnostic>(service.handle_json(event.payload).await) }
    });
    lambda_runtime::run(handler)
        .await
        .map_err(|e| LambdaError::Runtime(e.to_string()))
}

async fn serve_route(
    role: &'static str,
    dispatcher: Dispatcher,
    api: Arc<ManagementApi>,
) -> Result<(), LambdaError> {
    tracing::info!(role, "serving WebSocket route");
    let handler = service_fn(move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let dispatcher = dispatcher.clone();
        let api = Arc::clone(&api);
        async move {
            let answer = handle_route(role, &dispatcher, &api, event).await;
            flush_to_stdout(&dispatcher.services().metrics);
            answer
        }
    });
    lambda_runtime::run(handler)
        .await
        .map_err(|e| LambdaError::Runtime(e.to_string()))
}

/// One WebSocket event: dispatch, log, and answer API Gateway.
pub async fn handle_route(
    role: &str,
    dispatcher: &Dispatcher,
    api: &ManagementApi,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Diagnostic> {
    let started = Instant::now();
    let rc = &event.payload.request_context;
    let connection_id = rc.connection_id.clone().unwrap_or_default();
    let route = rc.route_key.clone().unwrap_or_default();
    let request_id = event.context.request_id.clone();
    if let (Some(domain), Some(stage)) = (rc.domain_name.as_deref(), rc.stage.as_deref()) {
        api.use_event_endpoint(domain, stage);
    }
    if route != role {
        tracing::warn!(
            role,
            route,
            "event for another route than this function's role"
        );
    }
    let outcome = dispatcher.dispatch(event.payload).await;
    let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(
        connection_id,
        route,
        request_id,
        status = outcome.status,
        duration_us,
        "handled"
    );
    // A failure on our side is an invocation error (Lambda counts it; API Gateway tells
    // the caller "Internal server error"); 503 (`store_unavailable`, `queue_unavailable`,
    // `connections_unavailable`: try again) is an error frame the caller can act on.
    if let Some(err) = outcome
        .error
        .as_ref()
        .filter(|e| e.status() >= 500 && e.status() != 503)
    {
        return Err(Diagnostic {
            error_type: "Switchboard.InternalError".to_owned(),
            error_message: format!("{}: {}", err.code(), err.message()),
        });
    }
    let mut response = ApiGatewayProxyResponse::default();
    // Only $connect's status matters to API Gateway; error frames of other routes are
    // route responses and go out with 200.
    response.status_code = if route == "$connect" {
        i64::from(outcome.status)
    } else {
        200
    };
    for (name, value) in outcome.headers {
        if let Ok(v) = value.parse() {
            response.headers.insert(name, v);
        }
    }
    response.body = outcome
        .body
        .and_then(|f| f.as_text().map(|t| Body::Text(t.to_owned())));
    response.is_base64_encoded = false;
    Ok(response)
}

async fn serve_authorizer(role: AuthorizerRole) -> Result<(), LambdaError> {
    tracing::info!("serving the $connect authorizer");
    let role = Arc::new(role);
    let handler = service_fn(
        move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| {
            let role = Arc::clone(&role);
            async move {
                let answer = role.handle(event).await;
                flush_to_stdout(&role.metrics);
                answer
            }
        },
    );
    lambda_runtime::run(handler)
        .await
        .map_err(|e| LambdaError::Runtime(e.to_string()))
}

/// The `ws:authorizer` role: the origin check, then the app's authorizer, each decision
/// counted in `AuthorizerAllow` / `AuthorizerDeny`.
pub struct AuthorizerRole {
    /// The app's authorizer.
    pub authorizer: Arc<dyn Authorizer>,
    /// The accepted origin secrets; `None`: no check.
    pub origin: Option<OriginSecrets>,
    /// Where decisions are counted.
    pub metrics: Arc<Metrics>,
}

impl AuthorizerRole {
    /// One invocation. A request without an accepted origin header is denied (API
    /// Gateway answers 403) before the authorizer (and any JWT work) runs. Counted: an
    /// Allow policy as `AuthorizerAllow`; a Deny policy, a bad origin and a missing
    /// identity (401) as `AuthorizerDeny`; a failed authorizer as neither.
    pub async fn handle(
        &self,
        event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
    ) -> Result<ApiGatewayCustomAuthorizerResponse, Diagnostic> {
        let method_arn = event.payload.method_arn.clone().unwrap_or_default();
        if let Some(secrets) = &self.origin
            && !secrets.allows(&event.payload.headers)
        {
            tracing::warn!(
                request_id = event.context.request_id.as_str(),
                "denied: no valid origin header (a connection around CloudFront)"
            );
            self.metrics.authorizer(false);
            return Ok(switchboard_core::auth::policy(
                "anonymous",
                IamPolicyEffect::Deny,
                &method_arn,
                serde_json::Map::new(),
            ));
        }
        let answer = handle_authorizer(self.authorizer.as_ref(), event).await;
        match &answer {
            Ok(response) => match switchboard_core::auth::evaluate(response, &method_arn) {
                Decision::Allow(_) => self.metrics.authorizer(true),
                Decision::Deny => self.metrics.authorizer(false),
                Decision::Invalid(_) => {}
            },
            Err(d) if d.error_type == "Unauthorized" => self.metrics.authorizer(false),
            Err(_) => {}
        }
        answer
    }
}

/// One authorizer invocation. A missing identity answers with the error message
/// `Unauthorized`, which API Gateway turns into 401.
pub async fn handle_authorizer(
    authorizer: &dyn Authorizer,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
) -> Result<ApiGatewayCustomAuthorizerResponse, Diagnostic> {
    let started = Instant::now();
    let result = authorizer.authorize(&event.payload).await;
    let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let request_id = event.context.request_id.as_str();
    match result {
        Ok(response) => {
            tracing::info!(
                request_id,
                principal = response.principal_id.as_deref().unwrap_or_default(),
                duration_us,
                "authorized"
            );
            Ok(response)
        }
        Err(AuthError::Unauthorized(why)) => {
            tracing::info!(request_id, reason = %why, duration_us, "unauthorized");
            Err(Diagnostic {
                error_type: "Unauthorized".to_owned(),
                error_message: "Unauthorized".to_owned(),
            })
        }
        Err(AuthError::Failed(why)) => {
            tracing::error!(request_id, reason = %why, duration_us, "authorizer failed");
            Err(Diagnostic {
                error_type: "Switchboard.AuthorizerFailed".to_owned(),
                error_message: why,
            })
        }
    }
}

/// Cognito's pre-sign-up trigger: with `auto_confirm`, the user is confirmed without a
/// code and a given email counts as verified; without it the event passes unchanged.
pub fn pre_signup(
    auto_confirm: bool,
    mut event: CognitoEventUserPoolsPreSignup,
) -> CognitoEventUserPoolsPreSignup {
    if auto_confirm {
        event.response.auto_confirm_user = true;
        if event.request.user_attributes.contains_key("email") {
            event.response.auto_verify_email = true;
        }
        if event.request.user_attributes.contains_key("phone_number") {
            event.response.auto_verify_phone = true;
        }
    }
    event
}

/// Posts an init error to the Runtime API (`lambda_runtime` offers no public call for
/// it), so the failed cold start shows in the function's logs and metrics.
async fn report_init_error(message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = serde_json::json!({
        "errorType": "Runtime.InitError",
        "errorMessage": message,
    })
    .to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nLambda-Runtime-Function-Error-Type: Runtime.InitError\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let send = async {
        let mut stream = tokio::net::TcpStream::connect(api.as_str()).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut sink = Vec::new();
        stream.read_to_end(&mut sink).await?;
        Ok::<_, std::io::Error>(())
    };
    if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(2), send)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("timed out")))
    {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
}
