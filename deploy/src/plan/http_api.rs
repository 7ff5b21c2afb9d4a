//! The HTTP API (apps that have one): the API, then its JWT authorizer (Cognito), the
//! `$default` route to the HTTP function, the auto-deployed stage and the permission.

use super::cognito::Cognito;
use super::functions::Functions;
use super::{Handle, Plan};
use crate::aws::{
    ApiGatewayV2Api, ApiGatewayV2Authorizer, ApiGatewayV2Integration, ApiGatewayV2Route,
    ApiGatewayV2Stage, LambdaPermission,
};
use crate::config::StackConfig;
use crate::input::Input;
use crate::model::Service;
use crate::{DeployError, concat_input};

/// The HTTP API, if the service has one.
pub(super) fn api(p: &mut Plan, service: &Service, prefix: &str) -> Option<Handle> {
    service.http.then(|| {
        p.add(
            "http",
            ApiGatewayV2Api {
                name: format!("{prefix}-http"),
                protocol_type: "HTTP",
                route_selection_expression: None,
                api_key_selection_expression: None,
            },
        )
    })
}

/// The authorizer, integration, route, stage and permission of the HTTP API.
pub(super) fn routes(
    p: &mut Plan,
    cfg: &StackConfig,
    prefix: &str,
    api: Handle,
    functions: &Functions,
    cognito: &Cognito,
) -> Result<(), DeployError> {
    let http_fn = functions.get("http")?;
    let jwt = p.add(
        "http",
        ApiGatewayV2Authorizer {
            api_id: api.id(),
            authorizer_type: "JWT",
            name: format!("{prefix}-jwt"),
            authorizer_uri: None,
            identity_sources: Some(vec![Input::str("$request.header.Authorization")]),
            jwt_configuration: Some(Input::object([
                ("issuer", Some(cognito.issuer.clone())),
                ("audiences", Some(Input::List(vec![cognito.client.id()]))),
            ])),
        },
    );
    let integration = p.add(
        "http",
        ApiGatewayV2Integration {
            api_id: api.id(),
            integration_type: "AWS_PROXY",
            integration_uri: http_fn.out("invokeArn"),
            integration_method: "POST",
            payload_format_version: Some("2.0"),
        },
    );
    p.add(
        "http",
        ApiGatewayV2Route {
            api_id: api.id(),
            route_key: "$default".into(),
            target: concat_input!["integrations/", integration.id()],
            authorization_type: "JWT",
            authorizer_id: Some(jwt.id()),
            route_response_selection_expression: None,
            api_key_required: None,
        },
    );
    stage(p, cfg, api);
    p.add(
        "http",
        LambdaPermission {
            action: "lambda:InvokeFunction",
            function: http_fn.out("name"),
            principal: "apigateway.amazonaws.com",
            source_arn: concat_input![api.out("executionArn"), "/*/$default"],
        },
    );
    Ok(())
}

/// The auto-deployed `$default` stage, throttled.
fn stage(p: &mut Plan, cfg: &StackConfig, api: Handle) -> Handle {
    p.add(
        "http",
        ApiGatewayV2Stage {
            api_id: api.id(),
            name: "$default",
            deployment_id: None,
            auto_deploy: Some(true),
            default_route_settings: Input::object([
                (
                    "throttlingRateLimit",
                    Some(Input::from(cfg.throttling_rate_limit)),
                ),
                (
                    "throttlingBurstLimit",
                    Some(Input::from(cfg.throttling_burst_limit)),
                ),
            ]),
            access_log_settings: None,
            route_settings: None,
        },
    )
}
