//! The resources of a stage, in dependency order: a pure function of the service and
//! the stack configuration, registered by [`crate::engine`].

use std::collections::BTreeMap;

use switchboard::aws::dynamodb::TableNames;
use switchboard::queue::dead_letter_queue_name;
use switchboard::queue::sqs::QueueNames;

use crate::aws::*;
use crate::config::StackConfig;
use crate::input::{Field, Input, Ref};
use crate::model::{FunctionKind, Reserved, Service, fnv32, queue_url_env_var};
use crate::{DeployError, concat_input};

/// CloudFront's managed cache policy `CachingDisabled` (for the APIs).
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
/// CloudFront's managed cache policy `CachingOptimized` (for the page).
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
/// CloudFront's managed origin request policy `AllViewerExceptHostHeader`.
pub const ALL_VIEWER_EXCEPT_HOST: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";
/// The WebSocket stage: CloudFront forwards `/ws` unchanged, so the stage is named so.
pub const WS_STAGE: &str = "ws";
/// `maxReceiveCount` of every queue's redrive policy.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// DLQ retention: 14 days, SQS's maximum.
pub const DLQ_RETENTION_SECS: u32 = 14 * 24 * 3600;
/// Queue retention: 4 days (SQS's default).
pub const QUEUE_RETENTION_SECS: u32 = 4 * 24 * 3600;
/// The Lambda runtime.
pub const LAMBDA_RUNTIME: &str = "provided.al2023";

/// One resource to register.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// The Pulumi type token.
    pub token: &'static str,
    /// The Pulumi (logical) name, unique per token.
    pub name: String,
    /// Its inputs.
    pub inputs: BTreeMap<String, Input>,
    /// The explicit provider resource (index), if not the default one.
    pub provider: Option<usize>,
    /// Resources (indices) that must exist first although no input refers to them.
    pub depends_on: Vec<usize>,
}

/// A registered resource, for references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle(pub usize);

impl Handle {
    /// The resource's id.
    pub fn id(self) -> Input {
        Input::Ref(Ref {
            resource: self.0,
            field: Field::Id,
        })
    }

    /// An output property (or a dotted path into one).
    pub fn out(self, field: &str) -> Input {
        Input::Ref(Ref {
            resource: self.0,
            field: Field::Output(field.to_owned()),
        })
    }
}

/// Every resource of a stage, in registration order, and the stack outputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The resources; a resource only refers to earlier ones.
    pub resources: Vec<Resource>,
    /// Stack outputs.
    pub outputs: BTreeMap<String, Input>,
}

impl Plan {
    /// Adds a resource.
    pub fn add<R: AwsResource>(&mut self, name: impl Into<String>, r: R) -> Handle {
        self.add_with(name, r, None, Vec::new())
    }

    /// Adds a resource with an explicit provider and creation dependencies.
    pub fn add_with<R: AwsResource>(
        &mut self,
        name: impl Into<String>,
        r: R,
        provider: Option<Handle>,
        depends_on: Vec<Handle>,
    ) -> Handle {
        self.resources.push(Resource {
            token: R::TOKEN,
            name: name.into(),
            inputs: r.inputs(),
            provider: provider.map(|h| h.0),
            depends_on: depends_on.into_iter().map(|h| h.0).collect(),
        });
        Handle(self.resources.len() - 1)
    }

    /// Checks the plan's invariants: unique names per type, references and
    /// dependencies only to earlier resources.
    pub fn validate(&self) -> Result<(), DeployError> {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.resources.iter().enumerate() {
            if !seen.insert((r.token, r.name.as_str())) {
                return Err(DeployError::Plan(format!(
                    "two {} resources named {}",
                    r.token, r.name
                )));
            }
            let mut refs = Vec::new();
            r.inputs.values().for_each(|v| v.refs(&mut refs));
            let later = refs
                .iter()
                .map(|r| r.resource)
                .chain(r.depends_on.iter().copied())
                .chain(r.provider)
                .find(|&j| j >= i);
            if let Some(j) = later {
                return Err(DeployError::Plan(format!(
                    "{} {} refers to resource #{j}, which is not registered before it",
                    r.token, r.name
                )));
            }
        }
        Ok(())
    }
}

fn statement(actions: &[&str], resources: Vec<Input>) -> Input {
    Input::object([
        ("Effect", Some(Input::str("Allow"))),
        ("Action", Some(Input::strs(actions.iter().copied()))),
        ("Resource", Some(Input::List(resources))),
    ])
}

fn policy(statements: Vec<Input>) -> Input {
    Input::Json(Box::new(Input::object([
        ("Version", Some(Input::str("2012-10-17"))),
        ("Statement", Some(Input::List(statements))),
    ])))
}

fn assume_role(service: &str) -> Input {
    policy(vec![Input::object([
        ("Effect", Some(Input::str("Allow"))),
        (
            "Principal",
            Some(Input::object([("Service", Some(Input::str(service)))])),
        ),
        ("Action", Some(Input::str("sts:AssumeRole"))),
    ])])
}

/// `{prefix}-{part}`, at most `max` characters (a hash keeps long names distinct).
pub fn physical(prefix: &str, part: &str, max: usize) -> String {
    let full = format!("{prefix}-{part}");
    if full.len() <= max {
        return full;
    }
    let hash = format!("-{:08x}", fnv32(&full));
    let keep: String = full.chars().take(max - hash.len()).collect();
    format!("{keep}{hash}")
}

/// The functions' artifact path the program defaults to for a binary.
pub fn default_artifact(bin: &str) -> String {
    format!("target/lambda/{bin}/bootstrap.zip")
}

/// Builds every resource of the stage.
pub fn plan(service: &Service, cfg: &StackConfig, web_page: &str) -> Result<Plan, DeployError> {
    let mut p = Plan::default();
    let prefix = cfg.prefix();
    let region = cfg.region.as_str();
    let tables = TableNames::for_app(&cfg.app, &cfg.stage);
    let queue_names = QueueNames::for_app(&cfg.app, &cfg.stage);

    // --- The us-east-1 provider: CloudFront's certificate and WAF live there.
    let us_east_1 = p.add(
        "us-east-1",
        Provider {
            region: "us-east-1".into(),
        },
    );

    // --- Logs.
    let fn_logs_name = format!("/aws/lambda/{prefix}");
    let fn_logs = p.add(
        "functions",
        LogGroup {
            name: fn_logs_name.clone(),
            retention_in_days: cfg.log_retention_days,
        },
    );
    let access_logs = p.add(
        "ws-access",
        LogGroup {
            name: format!("/aws/apigateway/{prefix}-ws"),
            retention_in_days: cfg.log_retention_days,
        },
    );
    let mut stage_deps = Vec::new();
    if cfg.manage_api_gateway_account {
        let role = p.add(
            "apigateway-cloudwatch",
            IamRole {
                name: physical(&prefix, "apigateway-cloudwatch", 64),
                assume_role_policy: assume_role("apigateway.amazonaws.com"),
                inline_policies: Vec::new(),
            },
        );
        let attach = p.add(
            "apigateway-cloudwatch",
            IamRolePolicyAttachment {
                role: role.id(),
                policy_arn:
                    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
            },
        );
        let account = p.add_with(
            "apigateway-account",
            ApiGatewayAccount {
                cloudwatch_role_arn: role.out("arn"),
            },
            None,
            vec![attach],
        );
        stage_deps.push(account);
    }

    // --- DynamoDB: the runtime's schema (runtime/src/aws/dynamodb.rs).
    let attr = |name: &str| {
        Input::object([
            ("name", Some(Input::str(name))),
            ("type", Some(Input::str("S"))),
        ])
    };
    let table = |p: &mut Plan,
                 logical: &str,
                 name: &str,
                 hash: &'static str,
                 range: &'static str,
                 gsi: Input| {
        let attrs =
            [hash, range, "connectionId"]
                .into_iter()
                .fold(Vec::<&str>::new(), |mut v, a| {
                    if !v.contains(&a) {
                        v.push(a);
                    }
                    v
                });
        p.add(
            logical,
            DynamoTable {
                name: name.to_owned(),
                billing_mode: "PAY_PER_REQUEST",
                hash_key: hash,
                range_key: range,
                attributes: attrs.into_iter().map(attr).collect(),
                global_secondary_indexes: vec![gsi],
                ttl: Input::object([
                    ("attributeName", Some(Input::str("expires"))),
                    ("enabled", Some(Input::Bool(true))),
                ]),
                server_side_encryption: Input::object([("enabled", Some(Input::Bool(true)))]),
                point_in_time_recovery: Input::object([("enabled", Some(Input::Bool(false)))]),
            },
        )
    };
    let connections_table = table(
        &mut p,
        "connections",
        &tables.connections,
        "username",
        "sessionKey",
        Input::object([
            ("name", Some(Input::str(tables.connections_index()))),
            ("hashKey", Some(Input::str("connectionId"))),
            ("projectionType", Some(Input::str("ALL"))),
        ]),
    );
    let rooms_table = table(
        &mut p,
        "rooms",
        &tables.rooms,
        "room",
        "connectionId",
        Input::object([
            ("name", Some(Input::str(tables.rooms_index()))),
            ("hashKey", Some(Input::str("connectionId"))),
            ("rangeKey", Some(Input::str("room"))),
            ("projectionType", Some(Input::str("ALL"))),
        ]),
    );

    // --- SQS: a FIFO queue and its FIFO dead-letter queue per queue.
    let mut queues: BTreeMap<String, Handle> = BTreeMap::new();
    for q in &service.queues {
        let name = queue_names.physical_name(&q.name).ok_or_else(|| {
            DeployError::Plan(format!("queue name `{}` is not valid in SQS", q.name))
        })?;
        let dlq_name = queue_names
            .physical_name(&dead_letter_queue_name(&q.name))
            .ok_or_else(|| DeployError::Plan(format!("queue name `{}` is too long", q.name)))?;
        let consumer_timeout = q
            .consumer
            .as_deref()
            .and_then(|role| service.function(role))
            .map_or(30, |f| f.timeout_secs);
        let dlq = p.add(
            format!("queue-{}-dlq", q.name),
            SqsQueue {
                name: dlq_name,
                fifo_queue: true,
                content_based_deduplication: false,
                visibility_timeout_seconds: 30,
                message_retention_seconds: DLQ_RETENTION_SECS,
                sqs_managed_sse_enabled: true,
                redrive_policy: None,
            },
        );
        let queue = p.add(
            format!("queue-{}", q.name),
            SqsQueue {
                name,
                fifo_queue: true,
                content_based_deduplication: false,
                // AWS: at least 6 times the consumer's timeout; 12 h at most.
                visibility_timeout_seconds: (consumer_timeout * 6).clamp(30, 43_200),
                message_retention_seconds: QUEUE_RETENTION_SECS,
                sqs_managed_sse_enabled: true,
                redrive_policy: Some(Input::Json(Box::new(Input::object([
                    ("deadLetterTargetArn", Some(dlq.out("arn"))),
                    ("maxReceiveCount", Some(Input::from(MAX_RECEIVE_COUNT))),
                ])))),
            },
        );
        queues.insert(q.name.clone(), queue);
    }

    // --- The WebSocket API (functions need its id for the management endpoint).
    let ws_api = p.add(
        "ws",
        ApiGatewayV2Api {
            name: format!("{prefix}-ws"),
            protocol_type: "WEBSOCKET",
            route_selection_expression: Some(service.route_selection_expression.clone()),
        },
    );
    let execute_api_host =
        |api: Handle| concat_input![api.id(), format!(".execute-api.{region}.amazonaws.com")];
    let management_endpoint =
        concat_input!["https://", execute_api_host(ws_api), format!("/{WS_STAGE}")];
    let http_api = service.http.then(|| {
        p.add(
            "http",
            ApiGatewayV2Api {
                name: format!("{prefix}-http"),
                protocol_type: "HTTP",
                route_selection_expression: None,
            },
        )
    });

    // --- Functions.
    let logging = Input::object([
        ("logFormat", Some(Input::str("Text"))),
        ("logGroup", Some(Input::str(fn_logs_name.clone()))),
    ]);
    let code = Input::Archive(cfg.artifact.clone());
    let lambda_role = |p: &mut Plan, f: &crate::model::Function, extra: Vec<Input>| {
        let mut statements = vec![statement(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![concat_input![fn_logs.out("arn"), ":*"]],
        )];
        statements.extend(extra);
        p.add(
            f.slug.clone(),
            IamRole {
                name: physical(&prefix, &f.slug, 64),
                assume_role_policy: assume_role("lambda.amazonaws.com"),
                inline_policies: vec![Input::object([
                    ("name", Some(Input::str("switchboard"))),
                    ("policy", Some(policy(statements))),
                ])],
            },
        )
    };
    let function =
        |p: &mut Plan, f: &crate::model::Function, role: Handle, env: Vec<(String, Input)>| {
            p.add(
                f.slug.clone(),
                LambdaFunction {
                    name: physical(&prefix, &f.slug, 64),
                    role: role.out("arn"),
                    runtime: LAMBDA_RUNTIME,
                    handler: f.role.clone(),
                    architectures: vec![Input::str("arm64")],
                    code: code.clone(),
                    memory_size: f.memory_mb,
                    timeout: f.timeout_secs,
                    environment: Input::object([(
                        "variables",
                        Some(Input::object(env.into_iter().map(|(k, v)| (k, Some(v))))),
                    )]),
                    logging_config: logging.clone(),
                },
            )
        };

    // Pre-sign-up trigger first: the user pool names it.
    let presignup = service
        .function("cognito:pre-signup")
        .ok_or_else(|| DeployError::Plan("no pre-sign-up function".into()))?;
    let presignup_role = lambda_role(&mut p, presignup, Vec::new());
    let presignup_fn = function(
        &mut p,
        presignup,
        presignup_role,
        vec![(
            "SWITCHBOARD_AUTO_CONFIRM_USERS".into(),
            Input::str(cfg.auto_confirm_users.to_string()),
        )],
    );
    let pool = p.add(
        "users",
        UserPool {
            name: format!("{prefix}-users"),
            auto_verified_attributes: vec![Input::str("email")],
            password_policy: Input::object([
                ("minimumLength", Some(Input::from(12u32))),
                ("requireLowercase", Some(Input::Bool(true))),
                ("requireUppercase", Some(Input::Bool(true))),
                ("requireNumbers", Some(Input::Bool(true))),
                ("requireSymbols", Some(Input::Bool(false))),
            ]),
            lambda_config: Input::object([("preSignUp", Some(presignup_fn.out("arn")))]),
            deletion_protection: if cfg.stage == "prod" {
                "ACTIVE"
            } else {
                "INACTIVE"
            },
        },
    );
    let client = p.add(
        "web",
        UserPoolClient {
            name: format!("{prefix}-web"),
            user_pool_id: pool.id(),
            generate_secret: false,
            explicit_auth_flows: Input::strs([
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ])
            .into_list(),
            prevent_user_existence_errors: "ENABLED",
        },
    );
    p.add(
        presignup.slug.clone(),
        LambdaPermission {
            action: "lambda:InvokeFunction",
            function: presignup_fn.out("name"),
            principal: "cognito-idp.amazonaws.com",
            source_arn: pool.out("arn"),
        },
    );
    let issuer = concat_input![
        format!("https://cognito-idp.{region}.amazonaws.com/"),
        pool.id()
    ];
    let jwt_env = [
        ("SWITCHBOARD_JWT_ISSUER".to_owned(), issuer.clone()),
        (
            "SWITCHBOARD_JWKS_URL".to_owned(),
            concat_input![issuer.clone(), "/.well-known/jwks.json"],
        ),
        ("SWITCHBOARD_JWT_AUDIENCE".to_owned(), client.id()),
    ];

    let table_arns = || {
        vec![
            connections_table.out("arn"),
            concat_input![connections_table.out("arn"), "/index/*"],
            rooms_table.out("arn"),
            concat_input![rooms_table.out("arn"), "/index/*"],
        ]
    };
    let manage = |methods: &[&str]| {
        methods
            .iter()
            .map(|m| {
                concat_input![
                    ws_api.out("executionArn"),
                    format!("/{WS_STAGE}/{m}/@connections/*")
                ]
            })
            .collect::<Vec<_>>()
    };

    let mut functions: BTreeMap<String, Handle> = BTreeMap::new();
    for f in &service.functions {
        if matches!(f.kind, FunctionKind::PreSignup) {
            continue;
        }
        let mut extra = Vec::new();
        let mut env: Vec<(String, Input)> = Vec::new();
        let serves_sockets = !matches!(f.kind, FunctionKind::Authorizer);
        if serves_sockets {
            env.push((
                "SWITCHBOARD_CONNECTIONS_TABLE".into(),
                Input::str(tables.connections.clone()),
            ));
            env.push((
                "SWITCHBOARD_ROOMS_TABLE".into(),
                Input::str(tables.rooms.clone()),
            ));
            env.push((
                "SWITCHBOARD_MANAGEMENT_ENDPOINT".into(),
                management_endpoint.clone(),
            ));
        }
        if matches!(f.kind, FunctionKind::Authorizer | FunctionKind::Http) {
            env.extend(jwt_env.iter().cloned());
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
                table_arns(),
            ));
        }
        if f.capabilities.connections {
            extra.push(statement(
                &["execute-api:ManageConnections"],
                manage(&["POST", "GET", "DELETE"]),
            ));
        } else if f.is_message_route() {
            // A message with an expired token closes its connection (DeleteConnection).
            extra.push(statement(
                &["execute-api:ManageConnections"],
                manage(&["DELETE"]),
            ));
        }
        for q in &f.sends_to {
            let queue = queues.get(q).ok_or_else(|| {
                DeployError::Plan(format!("{} sends to unknown queue {q}", f.role))
            })?;
            extra.push(statement(&["sqs:SendMessage"], vec![queue.out("arn")]));
            env.push((queue_url_env_var(q), queue.out("url")));
        }
        if let FunctionKind::Consumer { queue, .. } = &f.kind {
            let q = queues
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
        }
        let role = lambda_role(&mut p, f, extra);
        let handle = function(&mut p, f, role, env);
        functions.insert(f.role.clone(), handle);
    }
    let lambda = |role: &str| {
        functions
            .get(role)
            .copied()
            .ok_or_else(|| DeployError::Plan(format!("no function for {role}")))
    };

    // --- WebSocket API: authorizer, routes, deployment, stage.
    let authorizer_fn = lambda("ws:authorizer")?;
    let authorizer = p.add(
        "ws",
        ApiGatewayV2Authorizer {
            api_id: ws_api.id(),
            authorizer_type: "REQUEST",
            name: format!("{prefix}-authorizer"),
            authorizer_uri: Some(authorizer_fn.out("invokeArn")),
            identity_sources: None,
            jwt_configuration: None,
        },
    );
    p.add(
        "authorizer",
        LambdaPermission {
            action: "lambda:InvokeFunction",
            function: authorizer_fn.out("name"),
            principal: "apigateway.amazonaws.com",
            source_arn: concat_input![ws_api.out("executionArn"), "/authorizers/", authorizer.id()],
        },
    );
    let mut route_parts = Vec::new();
    let mut trigger = String::new();
    for f in &service.functions {
        let FunctionKind::Route { key, reserved } = &f.kind else {
            continue;
        };
        let handle = lambda(&f.role)?;
        let integration = p.add(
            f.slug.clone(),
            ApiGatewayV2Integration {
                api_id: ws_api.id(),
                integration_type: "AWS_PROXY",
                integration_uri: handle.out("invokeArn"),
                integration_method: "POST",
                payload_format_version: None,
            },
        );
        let connect = matches!(reserved, Some(Reserved::Connect));
        // Replies and error frames are route responses: every message route is two-way.
        let two_way = f.is_message_route();
        let route = p.add(
            f.slug.clone(),
            ApiGatewayV2Route {
                api_id: ws_api.id(),
                route_key: key.clone(),
                target: concat_input!["integrations/", integration.id()],
                authorization_type: if connect { "CUSTOM" } else { "NONE" },
                authorizer_id: connect.then(|| authorizer.id()),
                route_response_selection_expression: two_way.then_some("$default"),
            },
        );
        route_parts.extend([route, integration]);
        if two_way {
            let rr = p.add(
                f.slug.clone(),
                ApiGatewayV2RouteResponse {
                    api_id: ws_api.id(),
                    route_id: route.id(),
                    route_response_key: "$default",
                },
            );
            route_parts.push(rr);
        }
        p.add(
            f.slug.clone(),
            LambdaPermission {
                action: "lambda:InvokeFunction",
                function: handle.out("name"),
                principal: "apigateway.amazonaws.com",
                source_arn: concat_input![ws_api.out("executionArn"), format!("/*/{key}")],
            },
        );
        trigger.push_str(&format!("{key}|{}|{two_way}|{connect};", f.slug));
    }
    let deployment = p.add_with(
        "ws",
        ApiGatewayV2Deployment {
            api_id: ws_api.id(),
            description: format!("{} routes", route_parts.len()),
            triggers: Input::object([(
                "routes",
                Some(Input::str(format!("{:08x}", fnv32(&trigger)))),
            )]),
        },
        None,
        route_parts,
    );
    let ws_stage = p.add_with(
        "ws",
        ApiGatewayV2Stage {
            api_id: ws_api.id(),
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
                ("destinationArn", Some(access_logs.out("arn"))),
                ("format", Some(Input::str(ACCESS_LOG_FORMAT))),
            ])),
        },
        None,
        stage_deps,
    );

    // --- Queue consumers.
    for f in &service.functions {
        if let FunctionKind::Consumer { queue, batch_size } = &f.kind {
            let q = queues
                .get(queue)
                .ok_or_else(|| DeployError::Plan(format!("no queue {queue}")))?;
            p.add(
                f.slug.clone(),
                EventSourceMapping {
                    event_source_arn: q.out("arn"),
                    function_name: lambda(&f.role)?.out("arn"),
                    batch_size: *batch_size,
                    function_response_types: vec![Input::str("ReportBatchItemFailures")],
                },
            );
        }
    }

    // --- HTTP API.
    if let Some(http_api) = http_api {
        let http_fn = lambda("http")?;
        let jwt = p.add(
            "http",
            ApiGatewayV2Authorizer {
                api_id: http_api.id(),
                authorizer_type: "JWT",
                name: format!("{prefix}-jwt"),
                authorizer_uri: None,
                identity_sources: Some(vec![Input::str("$request.header.Authorization")]),
                jwt_configuration: Some(Input::object([
                    ("issuer", Some(issuer.clone())),
                    ("audiences", Some(Input::List(vec![client.id()]))),
                ])),
            },
        );
        let integration = p.add(
            "http",
            ApiGatewayV2Integration {
                api_id: http_api.id(),
                integration_type: "AWS_PROXY",
                integration_uri: http_fn.out("invokeArn"),
                integration_method: "POST",
                payload_format_version: Some("2.0"),
            },
        );
        p.add(
            "http",
            ApiGatewayV2Route {
                api_id: http_api.id(),
                route_key: "$default".into(),
                target: concat_input!["integrations/", integration.id()],
                authorization_type: "JWT",
                authorizer_id: Some(jwt.id()),
                route_response_selection_expression: None,
            },
        );
        p.add(
            "http",
            ApiGatewayV2Stage {
                api_id: http_api.id(),
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
            },
        );
        p.add(
            "http",
            LambdaPermission {
                action: "lambda:InvokeFunction",
                function: http_fn.out("name"),
                principal: "apigateway.amazonaws.com",
                source_arn: concat_input![http_api.out("executionArn"), "/*/$default"],
            },
        );
    }

    // --- The web page: a private bucket CloudFront reads with OAC.
    let bucket = p.add(
        "web",
        S3Bucket {
            force_destroy: true,
        },
    );
    p.add(
        "web",
        S3BucketPublicAccessBlock {
            bucket: bucket.id(),
            block_public_acls: true,
            block_public_policy: true,
            ignore_public_acls: true,
            restrict_public_buckets: true,
        },
    );
    p.add(
        "index",
        S3Object {
            bucket: bucket.id(),
            key: "index.html".to_owned(),
            content: web_page.to_owned(),
            content_type: "text/html; charset=utf-8".to_owned(),
            cache_control: "no-cache",
        },
    );
    // The page's static files (App::web_asset), at their paths.
    for asset in &service.web_assets {
        let key = asset.path.trim_start_matches('/');
        p.add(
            format!("asset-{key}"),
            S3Object {
                bucket: bucket.id(),
                key: key.to_owned(),
                content: asset.content.clone(),
                content_type: asset.content_type.clone(),
                cache_control: "no-cache",
            },
        );
    }
    let oac = p.add(
        "web",
        OriginAccessControl {
            name: physical(&prefix, "web", 64),
            origin_access_control_origin_type: "s3",
            signing_behavior: "always",
            signing_protocol: "sigv4",
        },
    );

    // --- WAF (us-east-1, scope CLOUDFRONT).
    let visibility = |metric: &str| {
        Input::object([
            ("cloudwatchMetricsEnabled", Some(Input::Bool(true))),
            ("metricName", Some(Input::str(metric))),
            ("sampledRequestsEnabled", Some(Input::Bool(true))),
        ])
    };
    let ip_set = |p: &mut Plan, which: &str, cidrs: &[String]| {
        p.add_with(
            which.to_owned(),
            WafIpSet {
                name: physical(&prefix, which, 128),
                scope: "CLOUDFRONT",
                ip_address_version: "IPV4",
                addresses: cidrs.iter().map(|c| Input::str(c.clone())).collect(),
            },
            Some(us_east_1),
            Vec::new(),
        )
    };
    let blocked = ip_set(&mut p, "blocked", &cfg.blocked_cidrs);
    let allowed = ip_set(&mut p, "allowed", &cfg.allowed_cidrs);
    let action = |a: &str| Input::object([(a, Some(Input::object::<&str>([])))]);
    let ip_rule = |name: &str, priority: u32, act: &str, set: Handle| {
        Input::object([
            ("name", Some(Input::str(name))),
            ("priority", Some(Input::from(priority))),
            ("action", Some(action(act))),
            (
                "statement",
                Some(Input::object([(
                    "ipSetReferenceStatement",
                    Some(Input::object([("arn", Some(set.out("arn")))])),
                )])),
            ),
            ("visibilityConfig", Some(visibility(name))),
        ])
    };
    let mut rules = vec![
        ip_rule("blocked-ips", 0, "block", blocked),
        Input::object([
            ("name", Some(Input::str("rate-limit"))),
            ("priority", Some(Input::from(1u32))),
            ("action", Some(action("block"))),
            (
                "statement",
                Some(Input::object([(
                    "rateBasedStatement",
                    Some(Input::object([
                        ("limit", Some(Input::from(cfg.rate_limit))),
                        ("aggregateKeyType", Some(Input::str("IP"))),
                    ])),
                )])),
            ),
            ("visibilityConfig", Some(visibility("rate-limit"))),
        ]),
    ];
    let allow_list = !cfg.allowed_cidrs.is_empty();
    if allow_list {
        rules.push(ip_rule("allowed-ips", 2, "allow", allowed));
    }
    let acl = p.add_with(
        "web",
        WafWebAcl {
            name: physical(&prefix, "web", 128),
            scope: "CLOUDFRONT",
            default_action: action(if allow_list { "block" } else { "allow" }),
            rules,
            visibility_config: visibility(&physical(&prefix, "web", 128)),
        },
        Some(us_east_1),
        Vec::new(),
    );

    // --- Certificate (us-east-1), validated through Route 53.
    let certificate_arn: Option<Input> =
        match (&cfg.domain, &cfg.certificate_arn, &cfg.hosted_zone_id) {
            (Some(_), Some(arn), _) => Some(Input::str(arn.clone())),
            (Some(domain), None, Some(zone)) => {
                let cert = p.add_with(
                    "site",
                    Certificate {
                        domain_name: domain.clone(),
                        validation_method: "DNS",
                    },
                    Some(us_east_1),
                    Vec::new(),
                );
                let option = |f: &str| cert.out(&format!("domainValidationOptions.0.{f}"));
                let record = p.add(
                    "site-validation",
                    DnsRecord {
                        zone_id: zone.clone(),
                        name: option("resourceRecordName"),
                        record_type: option("resourceRecordType"),
                        ttl: Some(300),
                        records: Some(vec![option("resourceRecordValue")]),
                        aliases: None,
                        allow_overwrite: Some(true),
                    },
                );
                let validation = p.add_with(
                    "site",
                    CertificateValidation {
                        certificate_arn: cert.out("arn"),
                        validation_record_fqdns: vec![record.out("fqdn")],
                    },
                    Some(us_east_1),
                    Vec::new(),
                );
                Some(validation.out("certificateArn"))
            }
            _ => None,
        };

    // --- CloudFront.
    let api_origin = |id: &str, api: Handle| {
        Input::object([
            ("originId", Some(Input::str(id))),
            ("domainName", Some(execute_api_host(api))),
            (
                "customOriginConfig",
                Some(Input::object([
                    ("httpPort", Some(Input::from(80u32))),
                    ("httpsPort", Some(Input::from(443u32))),
                    ("originProtocolPolicy", Some(Input::str("https-only"))),
                    ("originSslProtocols", Some(Input::strs(["TLSv1.2"]))),
                    ("originReadTimeout", Some(Input::from(60u32))),
                    ("originKeepaliveTimeout", Some(Input::from(60u32))),
                ])),
            ),
        ])
    };
    let mut origins = vec![
        Input::object([
            ("originId", Some(Input::str("web"))),
            ("domainName", Some(bucket.out("bucketRegionalDomainName"))),
            ("originAccessControlId", Some(oac.id())),
        ]),
        api_origin("ws", ws_api),
    ];
    let api_behavior = |pattern: &str, origin: &str| {
        Input::object([
            ("pathPattern", Some(Input::str(pattern))),
            ("targetOriginId", Some(Input::str(origin))),
            (
                "viewerProtocolPolicy",
                Some(Input::str("redirect-to-https")),
            ),
            (
                "allowedMethods",
                Some(Input::strs([
                    "GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE",
                ])),
            ),
            ("cachedMethods", Some(Input::strs(["GET", "HEAD"]))),
            ("cachePolicyId", Some(Input::str(CACHING_DISABLED))),
            (
                "originRequestPolicyId",
                Some(Input::str(ALL_VIEWER_EXCEPT_HOST)),
            ),
            ("compress", Some(Input::Bool(false))),
        ])
    };
    let mut behaviors = vec![api_behavior("/ws", "ws"), api_behavior("/ws/*", "ws")];
    if let Some(http_api) = http_api {
        origins.push(api_origin("http", http_api));
        behaviors.push(api_behavior("/http/*", "http"));
    }
    let viewer_certificate = match &certificate_arn {
        Some(arn) => Input::object([
            ("acmCertificateArn", Some(arn.clone())),
            ("sslSupportMethod", Some(Input::str("sni-only"))),
            ("minimumProtocolVersion", Some(Input::str("TLSv1.2_2021"))),
        ]),
        None => Input::object([
            ("cloudfrontDefaultCertificate", Some(Input::Bool(true))),
            ("minimumProtocolVersion", Some(Input::str("TLSv1.2_2021"))),
        ]),
    };
    let distribution = p.add(
        "site",
        Distribution {
            enabled: true,
            comment: format!("{prefix}: page, /ws, /http"),
            is_ipv6_enabled: true,
            http_version: "http2and3",
            price_class: "PriceClass_100",
            default_root_object: "index.html",
            aliases: cfg
                .domain
                .as_ref()
                .filter(|_| certificate_arn.is_some())
                .map(|d| vec![Input::str(d.clone())]),
            origins,
            default_cache_behavior: Input::object([
                ("targetOriginId", Some(Input::str("web"))),
                (
                    "viewerProtocolPolicy",
                    Some(Input::str("redirect-to-https")),
                ),
                ("allowedMethods", Some(Input::strs(["GET", "HEAD"]))),
                ("cachedMethods", Some(Input::strs(["GET", "HEAD"]))),
                ("cachePolicyId", Some(Input::str(CACHING_OPTIMIZED))),
                ("compress", Some(Input::Bool(true))),
            ]),
            ordered_cache_behaviors: behaviors,
            restrictions: Input::object([(
                "geoRestriction",
                Some(Input::object([(
                    "restrictionType",
                    Some(Input::str("none")),
                )])),
            )]),
            viewer_certificate,
            web_acl_id: acl.out("arn"),
        },
    );
    p.add(
        "web",
        S3BucketPolicy {
            bucket: bucket.id(),
            policy: Input::Json(Box::new(Input::object([
                ("Version", Some(Input::str("2012-10-17"))),
                (
                    "Statement",
                    Some(Input::List(vec![Input::object([
                        ("Effect", Some(Input::str("Allow"))),
                        (
                            "Principal",
                            Some(Input::object([(
                                "Service",
                                Some(Input::str("cloudfront.amazonaws.com")),
                            )])),
                        ),
                        ("Action", Some(Input::strs(["s3:GetObject"]))),
                        (
                            "Resource",
                            Some(Input::List(vec![concat_input![bucket.out("arn"), "/*"]])),
                        ),
                        (
                            "Condition",
                            Some(Input::object([(
                                "StringEquals",
                                Some(Input::object([(
                                    "AWS:SourceArn",
                                    Some(distribution.out("arn")),
                                )])),
                            )])),
                        ),
                    ])])),
                ),
            ]))),
        },
    );
    if let (Some(domain), Some(zone)) = (&cfg.domain, &cfg.hosted_zone_id) {
        for kind in ["A", "AAAA"] {
            p.add(
                format!("site-{kind}"),
                DnsRecord {
                    zone_id: zone.clone(),
                    name: Input::str(domain.clone()),
                    record_type: Input::str(kind),
                    ttl: None,
                    records: None,
                    aliases: Some(vec![Input::object([
                        ("name", Some(distribution.out("domainName"))),
                        ("zoneId", Some(distribution.out("hostedZoneId"))),
                        ("evaluateTargetHealth", Some(Input::Bool(false))),
                    ])]),
                    allow_overwrite: None,
                },
            );
        }
    }

    // --- Outputs.
    let host: Input = match (&cfg.domain, &certificate_arn) {
        (Some(d), Some(_)) => Input::str(d.clone()),
        _ => distribution.out("domainName"),
    };
    let o = &mut p.outputs;
    o.insert(
        "wssUrl".into(),
        concat_input!["wss://", host.clone(), "/ws"],
    );
    o.insert(
        "httpsUrl".into(),
        concat_input!["https://", host.clone(), "/"],
    );
    if service.http {
        o.insert(
            "httpApiUrl".into(),
            concat_input!["https://", host.clone(), "/http"],
        );
    }
    o.insert("managementEndpoint".into(), management_endpoint);
    o.insert(
        "websocketApiUrl".into(),
        concat_input!["wss://", execute_api_host(ws_api), format!("/{WS_STAGE}")],
    );
    o.insert("webSocketStage".into(), ws_stage.out("name"));
    o.insert("connectionsTable".into(), connections_table.out("name"));
    o.insert("roomsTable".into(), rooms_table.out("name"));
    o.insert(
        "queueNames".into(),
        Input::Object(
            queues
                .iter()
                .map(|(k, q)| (k.clone(), q.out("name")))
                .collect(),
        ),
    );
    o.insert(
        "queueUrls".into(),
        Input::Object(
            queues
                .iter()
                .map(|(k, q)| (k.clone(), q.out("url")))
                .collect(),
        ),
    );
    o.insert("userPoolId".into(), pool.id());
    o.insert("userPoolClientId".into(), client.id());
    o.insert("distributionId".into(), distribution.id());
    o.insert("webBucket".into(), bucket.id());
    p.validate()?;
    Ok(p)
}

/// The WebSocket stage's access log line (JSON).
pub const ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime","routeKey":"$context.routeKey","eventType":"$context.eventType","status":"$context.status","connectionId":"$context.connectionId","integrationLatency":"$context.integrationLatency","error":"$context.error.message","authorizerError":"$context.authorizer.error"}"#;

impl Input {
    /// The items of a list input (other inputs become a one-item list).
    pub fn into_list(self) -> Vec<Input> {
        match self {
            Input::List(items) => items,
            other => vec![other],
        }
    }
}
