//! CloudWatch logs: the functions' log group, the WebSocket stage's access log group
//! and, if the stack manages it, the account's API Gateway CloudWatch role.

use super::{Handle, Plan, assume_role, physical};
use crate::aws::{ApiGatewayAccount, IamRole, IamRolePolicyAttachment, LogGroup};
use crate::config::StackConfig;

/// The log groups, and what the WebSocket stage must wait for.
pub(super) struct Logs {
    /// The functions' log group.
    pub(super) functions: Handle,
    /// Its name (every function logs there).
    pub(super) functions_name: String,
    /// The WebSocket stage's access log group.
    pub(super) ws_access: Handle,
    /// What the stage depends on: the API Gateway account, if the stack manages it.
    pub(super) stage_deps: Vec<Handle>,
}

/// The log groups and the API Gateway account.
pub(super) fn logs(p: &mut Plan, cfg: &StackConfig, prefix: &str) -> Logs {
    let functions_name = format!("/aws/lambda/{prefix}");
    let functions = p.add(
        "functions",
        LogGroup {
            name: functions_name.clone(),
            retention_in_days: cfg.log_retention_days,
        },
    );
    let ws_access = p.add(
        "ws-access",
        LogGroup {
            name: format!("/aws/apigateway/{prefix}-ws"),
            retention_in_days: cfg.log_retention_days,
        },
    );
    let mut stage_deps = Vec::new();
    if cfg.manage_api_gateway_account {
        stage_deps.push(api_gateway_account(p, prefix));
    }
    Logs {
        functions,
        functions_name,
        ws_access,
        stage_deps,
    }
}

/// The account's CloudWatch role for API Gateway (access logs need it).
fn api_gateway_account(p: &mut Plan, prefix: &str) -> Handle {
    let role = p.add(
        "apigateway-cloudwatch",
        IamRole {
            name: physical(prefix, "apigateway-cloudwatch", 64),
            assume_role_policy: assume_role("apigateway.amazonaws.com"),
            inline_policies: Vec::new(),
        },
    );
    let attach = p.add(
        "apigateway-cloudwatch",
        IamRolePolicyAttachment {
            role: role.id(),
            policy_arn: "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
        },
    );
    p.add_with(
        "apigateway-account",
        ApiGatewayAccount {
            cloudwatch_role_arn: role.out("arn"),
        },
        None,
        vec![attach],
    )
}
