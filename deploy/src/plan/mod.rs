//! The resources of a stage, in dependency order: a pure function of the service and
//! the stack configuration, registered by [`crate::engine`].
//!
//! This module has the plan's types and builder; [`plan`] calls one function per
//! concern, each in its own submodule, in registration order: the us-east-1 provider
//! (`edge`), logs (`logs`), DynamoDB (`tables`), SQS (`queues`), the APIs (`ws_api`,
//! `http_api`), Cognito and its pre-sign-up trigger (`cognito`), the other functions
//! and their roles (`functions`), the WebSocket API's routes and stage (`ws_api`),
//! queue consumers (`queues`), the HTTP API's route (`http_api`), the page's bucket
//! (`web`), WAF and the certificate (`edge`), CloudFront (`cloudfront`), the bucket
//! policy (`web`), DNS (`edge`) and the stack outputs (`outputs`).

use std::collections::BTreeMap;

use switchboard_core::names::queue::{dead_letter_queue_name, stage_prefix};
use switchboard_core::names::table::TableNames;

use crate::aws::AwsResource;
use crate::config::StackConfig;
use crate::input::{Field, Input, Ref};
use crate::model::{Service, fnv32};
use crate::{DeployError, concat_input};

mod alarms;
mod api_keys;
mod cloudfront;
mod cognito;
mod edge;
mod functions;
mod http_api;
mod logs;
mod outputs;
mod queues;
mod tables;
mod web;
mod ws_api;

pub use alarms::{ALARM_PERIOD_SECS, DENY_RATIO_MIN_UPGRADES};
pub use cognito::{REFRESH_TOKEN_DAYS, TEMPORARY_PASSWORD_DAYS};
pub use ws_api::api_logical_name;

/// CloudFront's managed cache policy `CachingDisabled` (for the APIs).
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
/// CloudFront's managed cache policy `CachingOptimized` (for the page).
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
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

    /// A digest (SHA-256, hex) of these resources: each one's type, name and inputs,
    /// with every reference replaced by the digest of the resource it refers to, so a
    /// change anywhere upstream (a function's name or code path, a role, the API)
    /// changes the digest of everything that refers to it. The WebSocket deployment's
    /// trigger is the digest of what its snapshot depends on.
    pub fn digest(&self, handles: &[Handle]) -> String {
        use sha2::Digest;
        let mut memo: Vec<Option<String>> = vec![None; self.resources.len()];
        let mut text = String::new();
        for h in handles {
            text.push_str(&self.resource_digest(h.0, &mut memo));
            text.push(';');
        }
        hex(&sha2::Sha256::digest(text.as_bytes()))
    }

    fn resource_digest(&self, i: usize, memo: &mut Vec<Option<String>>) -> String {
        use sha2::Digest;
        if let Some(Some(d)) = memo.get(i) {
            return d.clone();
        }
        let Some(r) = self.resources.get(i) else {
            return String::new();
        };
        let mut text = format!("{}|{}|", r.token, r.name);
        for (k, v) in &r.inputs {
            text.push_str(k);
            text.push('=');
            self.canonical(v, memo, &mut text);
            text.push(';');
        }
        let d = hex(&sha2::Sha256::digest(text.as_bytes()));
        memo[i] = Some(d.clone());
        d
    }

    fn canonical(&self, input: &Input, memo: &mut Vec<Option<String>>, out: &mut String) {
        match input {
            Input::Ref(r) => {
                let d = self.resource_digest(r.resource, memo);
                out.push_str(&format!("<{d}:{:?}>", r.field));
            }
            Input::Concat(items) | Input::List(items) => {
                out.push('[');
                for item in items {
                    self.canonical(item, memo, out);
                    out.push(',');
                }
                out.push(']');
            }
            Input::Object(map) => {
                out.push('{');
                for (k, v) in map {
                    out.push_str(&format!("{k:?}:"));
                    self.canonical(v, memo, out);
                    out.push(',');
                }
                out.push('}');
            }
            Input::Json(inner) | Input::Secret(inner) => self.canonical(inner, memo, out),
            other => out.push_str(&format!("{other:?}")),
        }
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

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// `{api id}.execute-api.{region}.amazonaws.com`, an API's own host name.
fn execute_api_host(api: Handle, region: &str) -> Input {
    concat_input![api.id(), format!(".execute-api.{region}.amazonaws.com")]
}

/// Builds every resource of the stage, one concern after the other in dependency
/// order; each step gets what it refers to from the earlier ones.
pub fn plan(service: &Service, cfg: &StackConfig, web_page: &str) -> Result<Plan, DeployError> {
    let mut p = Plan::default();
    let prefix = cfg.prefix();
    let region = cfg.region.as_str();
    let table_names = TableNames::for_app(&cfg.app, &cfg.stage);
    let queue_prefix = stage_prefix(&cfg.app, &cfg.stage);

    let us_east_1 = edge::us_east_1_provider(&mut p, cfg);
    let logs = logs::logs(&mut p, cfg, &prefix);
    let history_table = service
        .history
        .then(|| switchboard_core::names::table::history_table_for_app(&cfg.app, &cfg.stage));
    let tables = tables::tables(&mut p, &table_names, history_table);
    let queues = queues::queues(&mut p, service, &queue_prefix)?;
    let ws_api = ws_api::api(&mut p, service, &prefix);
    let http_api = http_api::api(&mut p, service, &prefix);
    let lambdas = functions::Lambdas::new(cfg, &prefix, &logs);
    let cognito = cognito::cognito(&mut p, service, cfg, &prefix, &lambdas)?;
    let functions = functions::functions(
        &mut p,
        service,
        &lambdas,
        &functions::Needs {
            table_names: &table_names,
            tables: &tables,
            ws_api,
            management_endpoint: ws_api::management_endpoint(ws_api, region),
            jwt_env: cognito.jwt_env(),
            origin_env: functions::origin_env(cfg),
            queues: &queues,
        },
    )?;
    let ws_stage =
        ws_api::routes_and_stage(&mut p, service, cfg, &prefix, ws_api, &functions, &logs)?;
    let keys = api_keys::usage_plan(&mut p, service, cfg, &prefix, ws_api, ws_stage);
    queues::event_sources(&mut p, service, &queues, &functions)?;
    if let Some(http_api) = http_api {
        http_api::routes(&mut p, cfg, &prefix, http_api, &functions, &cognito)?;
    }
    let web = web::web(&mut p, service, &prefix, web_page);
    let edge = edge::edge(&mut p, cfg, &prefix, us_east_1);
    let distribution = cloudfront::distribution(
        &mut p,
        cfg,
        &prefix,
        &cloudfront::Origins {
            web: &web,
            ws_api,
            http_api,
            checkers: functions.origin_checkers(),
        },
        &edge,
    );
    web::bucket_policy(&mut p, &web, distribution);
    edge::dns_records(&mut p, cfg, distribution);
    let watch = alarms::alarms(
        &mut p,
        service,
        cfg,
        &prefix,
        &alarms::Watched {
            functions: &functions,
            ws_api,
            http_api,
        },
    )?;
    p.outputs = outputs::outputs(
        cfg,
        service,
        &outputs::Stage {
            ws_api,
            ws_stage,
            tables: &tables,
            queues: &queues,
            cognito: &cognito,
            web: &web,
            distribution,
            certificate_arn: edge.certificate_arn.as_ref(),
            keys: keys.as_ref(),
            watch: &watch,
        },
    );
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
