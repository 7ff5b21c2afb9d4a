//! The WebSocket API: the API itself (registered early: functions need its id for the
//! management endpoint), then its REQUEST authorizer, one integration, route, route
//! response (two-way routes) and permission per route, the deployment and the stage.

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

/// The WebSocket API.
pub(super) fn api(p: &mut Plan, service: &Service, prefix: &str) -> Handle {
    p.add(
        "ws",
        ApiGatewayV2Api {
            name: format!("{prefix}-ws"),
            protocol_type: "WEBSOCKET",
            route_selection_expression: Some(service.route_selection_expression.clone()),
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
    let deployment = p.add_with(
        "ws",
        ApiGatewayV2Deployment {
            api_id: api.id(),
            description: format!("{} routes", routes.parts.len()),
            triggers: Input::object([(
                "routes",
                Some(Input::str(format!("{:08x}", fnv32(&routes.trigger)))),
            )]),
        },
        None,
        routes.parts,
    );
    Ok(stage(p, cfg, api, deployment, logs))
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

/// The stage of the deployment, throttled, with access logs.
fn stage(p: &mut Plan, cfg: &StackConfig, api: Handle, deployment: Handle, logs: &Logs) -> Handle {
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
        },
        None,
        logs.stage_deps.clone(),
    )
}
