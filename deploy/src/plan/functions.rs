//! Lambda: every function of the service but the pre-sign-up trigger (see `cognito`),
//! each with its own IAM role whose inline policy grants exactly what its code uses.

use std::collections::BTreeMap;

use super::logs::Logs;
use super::queues::Queues;
use super::tables::Tables;
use super::{
    Handle, LAMBDA_RUNTIME, Plan, TableNames, WS_STAGE, assume_role, physical, policy, statement,
};
use crate::aws::{IamRole, LambdaFunction};
use crate::config::StackConfig;
use crate::input::Input;
use crate::model::{Function, FunctionKind, Service, queue_url_env_var};
use crate::{DeployError, concat_input};
use switchboard_core::names::env;

/// A function's environment variables, in order.
pub(super) type Env = Vec<(String, Input)>;

/// What every function shares: the name prefix, the log group and the artifact.
pub(super) struct Lambdas<'a> {
    prefix: &'a str,
    logs: Handle,
    code: Input,
    logging: Input,
    /// The `fanout` function's reserved concurrency.
    fanout_concurrency: u32,
    /// Each `fanout` instance's `@connections` budget (posts/s; 0: none).
    fanout_rate_each: u32,
}

impl<'a> Lambdas<'a> {
    /// The functions' shared settings.
    pub(super) fn new(cfg: &StackConfig, prefix: &'a str, logs: &Logs) -> Self {
        Self {
            prefix,
            logs: logs.functions,
            code: Input::Archive(cfg.artifact.clone()),
            logging: Input::object([
                ("logFormat", Some(Input::str("Text"))),
                ("logGroup", Some(Input::str(logs.functions_name.clone()))),
            ]),
            fanout_concurrency: cfg.fanout_concurrency.max(1),
            fanout_rate_each: cfg.fanout_rate / cfg.fanout_concurrency.max(1),
        }
    }

    /// A function's role: it may log, plus the `extra` statements.
    pub(super) fn role(&self, p: &mut Plan, f: &Function, extra: Vec<Input>) -> Handle {
        let mut statements = vec![statement(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![concat_input![self.logs.out("arn"), ":*"]],
        )];
        statements.extend(extra);
        p.add(
            f.slug.clone(),
            IamRole {
                name: physical(self.prefix, &f.slug, 64),
                assume_role_policy: assume_role("lambda.amazonaws.com"),
                inline_policies: vec![Input::object([
                    ("name", Some(Input::str("switchboard"))),
                    ("policy", Some(policy(statements))),
                ])],
            },
        )
    }

    /// A function with its role and environment.
    pub(super) fn function(
        &self,
        p: &mut Plan,
        f: &Function,
        role: Handle,
        mut env: Env,
    ) -> Handle {
        env.insert(0, (env::SERVICE.to_owned(), Input::str(self.prefix)));
        let fanout = f.role == switchboard_core::names::fanout::ROLE;
        if fanout && self.fanout_rate_each > 0 {
            env.push((
                switchboard_core::names::fanout::RATE_ENV.to_owned(),
                Input::str(self.fanout_rate_each.to_string()),
            ));
        }
        p.add(
            f.slug.clone(),
            LambdaFunction {
                name: physical(self.prefix, &f.slug, 64),
                role: role.out("arn"),
                runtime: LAMBDA_RUNTIME,
                handler: f.role.clone(),
                architectures: vec![Input::str("arm64")],
                code: self.code.clone(),
                memory_size: f.memory_mb,
                timeout: f.timeout_secs,
                environment: Input::object([(
                    "variables",
                    Some(Input::object(env.into_iter().map(|(k, v)| (k, Some(v))))),
                )]),
                logging_config: self.logging.clone(),
                reserved_concurrent_executions: fanout.then_some(self.fanout_concurrency),
            },
        )
    }
}

/// The functions, by role.
pub(super) struct Functions(BTreeMap<String, Handle>);

impl Functions {
    /// The function with this role.
    pub(super) fn get(&self, role: &str) -> Result<Handle, DeployError> {
        self.0
            .get(role)
            .copied()
            .ok_or_else(|| DeployError::Plan(format!("no function for {role}")))
    }

    /// The functions that check the origin secret (the authorizer and `http`).
    pub(super) fn origin_checkers(&self) -> Vec<Handle> {
        ["ws:authorizer", "http"]
            .iter()
            .filter_map(|r| self.0.get(*r).copied())
            .collect()
    }

    /// Every function, by role.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&String, &Handle)> {
        self.0.iter()
    }
}

/// What the functions' environments and policies refer to.
pub(super) struct Needs<'a> {
    /// The tables' names.
    pub(super) table_names: &'a TableNames,
    /// The tables.
    pub(super) tables: &'a Tables,
    /// The WebSocket API.
    pub(super) ws_api: Handle,
    /// Its management endpoint (`SWITCHBOARD_MANAGEMENT_ENDPOINT`).
    pub(super) management_endpoint: Input,
    /// The JWT settings of the authorizer and the HTTP function.
    pub(super) jwt_env: Env,
    /// The origin secret(s) of the authorizer and the HTTP function.
    pub(super) origin_env: Env,
    /// The queues.
    pub(super) queues: &'a Queues,
}

/// The origin secret variables: the current secret, and the previous one during a
/// rotation, each sent as a Pulumi secret.
pub(super) fn origin_env(cfg: &StackConfig) -> Env {
    let mut env = vec![(
        env::ORIGIN_SECRET.to_owned(),
        Input::Secret(Box::new(Input::str(cfg.origin_secret.0.clone()))),
    )];
    if let Some(previous) = &cfg.origin_secret_previous {
        env.push((
            env::ORIGIN_SECRET_PREVIOUS.to_owned(),
            Input::Secret(Box::new(Input::str(previous.0.clone()))),
        ));
    }
    env
}

/// Every function but the pre-sign-up trigger, each after its role.
pub(super) fn functions(
    p: &mut Plan,
    service: &Service,
    lambdas: &Lambdas<'_>,
    needs: &Needs<'_>,
) -> Result<Functions, DeployError> {
    let mut functions = BTreeMap::new();
    for f in &service.functions {
        if matches!(f.kind, FunctionKind::PreSignup) {
            continue;
        }
        let (env, extra) = environment_and_statements(f, needs)?;
        let role = lambdas.role(p, f, extra);
        let handle = lambdas.function(p, f, role, env);
        functions.insert(f.role.clone(), handle);
    }
    Ok(Functions(functions))
}

/// A function's environment variables and the statements of its role beyond logging.
fn environment_and_statements(
    f: &Function,
    needs: &Needs<'_>,
) -> Result<(Env, Vec<Input>), DeployError> {
    let mut extra = Vec::new();
    let mut env = Env::new();
    let serves_sockets = !matches!(f.kind, FunctionKind::Authorizer);
    if serves_sockets {
        env.push((
            env::CONNECTIONS_TABLE.into(),
            Input::str(needs.table_names.connections.clone()),
        ));
        env.push((
            env::ROOMS_TABLE.into(),
            Input::str(needs.table_names.rooms.clone()),
        ));
        env.push((
            env::MANAGEMENT_ENDPOINT.into(),
            needs.management_endpoint.clone(),
        ));
    }
    if matches!(f.kind, FunctionKind::Authorizer | FunctionKind::Http) {
        env.extend(needs.jwt_env.iter().cloned());
        env.extend(needs.origin_env.iter().cloned());
    }
    if f.capabilities.store {
        extra.push(statement(
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:BatchWriteItem",
            ],
            needs.tables.arns(),
        ));
    }
    if f.capabilities.connections {
        extra.push(statement(
            &["execute-api:ManageConnections"],
            manage(needs.ws_api, &["POST", "GET", "DELETE"]),
        ));
        // Whatever can send can send to a room with history (`resume` reads it).
        if let Some((history, name)) = &needs.tables.history {
            env.push((env::HISTORY_TABLE.into(), Input::str(name.clone())));
            extra.push(statement(
                &["dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:Query"],
                vec![history.out("arn")],
            ));
        }
    } else if f.is_message_route() {
        // A message with an expired token closes its connection (DeleteConnection).
        extra.push(statement(
            &["execute-api:ManageConnections"],
            manage(needs.ws_api, &["DELETE"]),
        ));
    }
    for q in &f.sends_to {
        let queue = needs
            .queues
            .get(q)
            .ok_or_else(|| DeployError::Plan(format!("{} sends to unknown queue {q}", f.role)))?;
        extra.push(statement(&["sqs:SendMessage"], vec![queue.out("arn")]));
        env.push((queue_url_env_var(q), queue.out("url")));
    }
    if let FunctionKind::Consumer { queue, .. } = &f.kind {
        let q = needs
            .queues
            .get(queue)
            .ok_or_else(|| DeployError::Plan(format!("no queue {queue}")))?;
        extra.push(statement(
            &[
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
            ],
            vec![q.out("arn")],
        ));
        // The fan-out consumer sends the recipients still owed to the dead-letter queue.
        let dlq_name = switchboard_core::queue::dead_letter_queue_name(queue);
        if queue == switchboard_core::names::fanout::QUEUE
            && let Some(dlq) = needs.queues.get(&dlq_name)
        {
            extra.push(statement(&["sqs:SendMessage"], vec![dlq.out("arn")]));
            env.push((queue_url_env_var(&dlq_name), dlq.out("url")));
        }
    }
    Ok((env, extra))
}

/// The ARNs of `@connections` calls with these methods on the WebSocket stage.
fn manage(ws_api: Handle, methods: &[&str]) -> Vec<Input> {
    methods
        .iter()
        .map(|m| {
            concat_input![
                ws_api.out("executionArn"),
                format!("/{WS_STAGE}/{m}/@connections/*")
            ]
        })
        .collect()
}
