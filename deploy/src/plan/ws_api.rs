//! The WebSocket API: the API itself (registered early: functions need its id for the
//! management endpoint), then its REQUEST authorizer, one integration, route, route
//! response (two-way routes) and permission per route, the deployment and the stage.
//!
//! # Safe updates: what the stage serves after `pulumi up`
//!
//! A stage serves a *deployment*, a snapshot API Gateway takes of the API's routes,
//! integrations, route responses and authorizer when the deployment is created. Two
//! facts of Pulumi's engine decide what that snapshot holds:
//!
//! 1. Creates and updates run as the program registers resources (a registration
//!    returns once its step is done), and the program registers the deployment only
//!    after every route, integration and route response (`depends_on`), so a *new*
//!    deployment sees every created or updated route and integration.
//! 2. Deletes run last: the engine learns that a resource left the program only once
//!    the program has exited, so it deletes removed resources (and the old halves of
//!    create-before-delete replacements) after every create and update. Gestalt 0.0.12
//!    sends no `deleteBeforeReplace` and no dependency lists, and even
//!    `deleteBeforeReplace` on the deployment would not move a *removed route's* delete
//!    earlier.
//!
//! Hence:
//!
//! * **A changed input** (an integration's function, a route response, the authorizer,
//!   a function replaced or its code changed): the deployment's `triggers` hold a
//!   digest of every resource the snapshot depends on, references followed into the
//!   functions, roles and the API ([`Plan::digest`]), and the artifact's SHA-256.
//!   Triggers force a replacement, so a new deployment is created after the changes
//!   and the stage moves to it; the old deployment and any replaced function are
//!   deleted at the end, when nothing live points at them.
//! * **A removed route** would still be in a deployment created in the same run (fact
//!   2). So the API itself is keyed by its route set: its logical name is
//!   `ws-{digest of the route keys}`. A different route set is a *new API*, created
//!   with exactly the current routes, its own deployment and stage; CloudFront's `ws`
//!   origin, the functions' management endpoint, the usage plan and the alarms move
//!   to it (updates, done before any delete), and the old API, with the removed route
//!   in it, is deleted at the end. No stage that serves the removed route is reachable
//!   when `pulumi up` returns. The price: a change of the route set closes the open
//!   WebSocket connections (the old API goes away; clients reconnect, and `resume`
//!   replays what they missed). Same route set, same API: connections survive.

use super::functions::Functions;
use super::logs::Logs;
use super::{ACCESS_LOG_FORMAT, Handle, Plan, WS_STAGE, execute_api_host};
use crate::aws::{
    ApiGatewayV2Api, ApiGatewayV2Authorizer, ApiGatewayV2Deployment, ApiGatewayV2Integration,
    ApiGatewayV2Route, ApiGatewayV2RouteResponse, ApiGatewayV2Stage, LambdaPermission,
};
use crate::config::StackConfig;
use crate::input::Input;
use crate::model::{Function, FunctionKind, Reserved, Service, fnv32};
use crate::{DeployError, concat_input};
use switchboard_core::names::headers::API_KEY_SELECTION_EXPRESSION;

/// The WebSocket API's logical name: `ws-{8 hex digits of the route keys}`, so that a
/// different route set is a new API (see the module's docs).
pub fn api_logical_name(service: &Service) -> String {
    let mut keys: Vec<&str> = service
        .functions
        .iter()
        .filter_map(Function::route_key)
        .collect();
    keys.sort_unstable();
    format!("ws-{:08x}", fnv32(&keys.join("\n")))
}

/// The WebSocket API.
pub(super) fn api(p: &mut Plan, service: &Service, prefix: &str) -> Handle {
    p.add(
        api_logical_name(service),
        ApiGatewayV2Api {
            name: format!("{prefix}-ws"),
            protocol_type: "WEBSOCKET",
            route_selection_expression: Some(service.route_selection_expression.clone()),
            api_key_selection_expression: Some(API_KEY_SELECTION_EXPRESSION),
        },
    )
}

/// The API's management endpoint (`https://{host}/{stage}`), for `@connections` calls.
pub(super) fn management_endpoint(api: Handle, region: &str) -> Input {
    concat_input![
        "https://",
        execute_api_host(api, region),
        format!("/{WS_STAGE}")
    ]
}

/// The authorizer, every route, the deployment and the stage; returns the stage.
pub(super) fn routes_and_stage(
    p: &mut Plan,
    service: &Service,
    cfg: &StackConfig,
    prefix: &str,
    api: Handle,
    functions: &Functions,
    logs: &Logs,
) -> Result<Handle, DeployError> {
    let authorizer = authorizer(p, prefix, api, functions.get("ws:authorizer")?);
    let mut routes = Routes {
        api,
        authorizer,
        api_key: service.api_key_required(),
        parts: Vec::new(),
        trigger: String::new(),
    };
    for f in &service.functions {
        let FunctionKind::Route { key, reserved } = &f.kind else {
            continue;
        };
        let connect = matches!(reserved, Some(Reserved::Connect));
        routes.add(p, f, key, connect, functions.get(&f.role)?);
    }
    let mut snapshot = vec![authorizer];
    snapshot.extend(&routes.parts);
    let mut triggers = vec![
        (
            "routes",
            Some(Input::str(format!("{:08x}", fnv32(&routes.trigger)))),
        ),
        ("snapshot", Some(Input::str(p.digest(&snapshot)))),
    ];
    if !cfg.artifact_sha256.is_empty() {
        triggers.push(("artifact", Some(Input::str(cfg.artifact_sha256.clone()))));
    }
    let deployment = p.add_with(
        "ws",
        ApiGatewayV2Deployment {
            api_id: api.id(),
            description: format!("{} routes", routes.parts.len()),
            triggers: Input::object(triggers),
        },
        None,
        routes.parts,
    );
    Ok(stage(p, service, cfg, api, deployment, logs))
}

/// The `$connect` REQUEST authorizer and its permission.
fn authorizer(p: &mut Plan, prefix: &str, api: Handle, lambda: Handle) -> Handle {
    let authorizer = p.add(
        "ws",
        ApiGatewayV2Authorizer {
            api_id: api.id(),
            authorizer_type: "REQUEST",
            name: format!("{prefix}-authorizer"),
            authorizer_uri: Some(lambda.out("invokeArn")),
            identity_sources: None,
            jwt_configuration: None,
        },
    );
    p.add(
        "authorizer",
        LambdaPermission {
            action: "lambda:InvokeFunction",
            function: lambda.out("name"),
            principal: "apigateway.amazonaws.com",
            source_arn: concat_input![api.out("executionArn"), "/authorizers/", authorizer.id()],
        },
    );
    authorizer
}

/// The routes registered so far: what the deployment waits for, and the digest of
/// the routes that redeploys the API when one changes.
struct Routes {
    api: Handle,
    authorizer: Handle,
    /// Whether `$connect` needs an API key.
    api_key: bool,
    parts: Vec<Handle>,
    trigger: String,
}

impl Routes {
    /// A route's integration, route, route response (two-way routes) and permission.
    fn add(&mut self, p: &mut Plan, f: &Function, key: &str, connect: bool, lambda: Handle) {
        let api = self.api;
        let integration = p.add(
            f.slug.clone(),
            ApiGatewayV2Integration {
                api_id: api.id(),
                integration_type: "AWS_PROXY",
                integration_uri: lambda.out("invokeArn"),
                integration_method: "POST",
                payload_format_version: None,
            },
        );
        // Replies and error frames are route responses: every message route is two-way.
        let two_way = f.is_message_route();
        let route = p.add(
            f.slug.clone(),
            ApiGatewayV2Route {
                api_id: api.id(),
                route_key: key.to_owned(),
                target: concat_input!["integrations/", integration.id()],
                authorization_type: if connect { "CUSTOM" } else { "NONE" },
                authorizer_id: connect.then(|| self.authorizer.id()),
                route_response_selection_expression: two_way.then_some("$default"),
                // API Gateway checks a WebSocket API's keys on `$connect` only.
                api_key_required: (connect && self.api_key).then_some(true),
            },
        );
        self.parts.extend([route, integration]);
        if two_way {
            let rr = p.add(
                f.slug.clone(),
                ApiGatewayV2RouteResponse {
                    api_id: api.id(),
                    route_id: route.id(),
                    route_response_key: "$default",
                },
            );
            self.parts.push(rr);
        }
        p.add(
            f.slug.clone(),
            LambdaPermission {
                action: "lambda:InvokeFunction",
                function: lambda.out("name"),
                principal: "apigateway.amazonaws.com",
                source_arn: concat_input![api.out("executionArn"), format!("/*/{key}")],
            },
        );
        self.trigger
            .push_str(&format!("{key}|{}|{two_way}|{connect};", f.slug));
    }
}

/// Each throttled route's `routeSettings` entry.
fn route_settings(service: &Service) -> Vec<Input> {
    service
        .functions
        .iter()
        .filter_map(|f| Some((f.route_key()?, f.throttle?)))
        .map(|(key, (rate, burst))| {
            Input::object([
                ("routeKey", Some(Input::str(key))),
                ("throttlingRateLimit", rate.map(Input::from)),
                ("throttlingBurstLimit", burst.map(Input::from)),
            ])
        })
        .collect()
}

/// The stage of the deployment, throttled (per route too), with access logs.
fn stage(
    p: &mut Plan,
    service: &Service,
    cfg: &StackConfig,
    api: Handle,
    deployment: Handle,
    logs: &Logs,
) -> Handle {
    let per_route = route_settings(service);
    p.add_with(
        "ws",
        ApiGatewayV2Stage {
            api_id: api.id(),
            name: WS_STAGE,
            deployment_id: Some(deployment.id()),
            auto_deploy: None,
            default_route_settings: Input::object([
                (
                    "throttlingRateLimit",
                    Some(Input::from(cfg.throttling_rate_limit)),
                ),
                (
                    "throttlingBurstLimit",
                    Some(Input::from(cfg.throttling_burst_limit)),
                ),
                ("dataTraceEnabled", Some(Input::Bool(false))),
            ]),
            access_log_settings: Some(Input::object([
                ("destinationArn", Some(logs.ws_access.out("arn"))),
                ("format", Some(Input::str(ACCESS_LOG_FORMAT))),
            ])),
            route_settings: (!per_route.is_empty()).then_some(per_route),
        },
        None,
        logs.stage_deps.clone(),
    )
}
