//! Alarms and the dashboard: an SNS topic (an email subscription when `alarmEmail` is
//! set); per function an errors and a throttles alarm; per dead-letter queue a depth
//! alarm (any message); the WebSocket API's integration and execution errors and p99
//! integration latency; the HTTP API's 5xx and p99 integration latency; the share of
//! `$connect` upgrades the authorizer denied, from the runtime's Embedded Metric Format
//! counters ([`metrics`]); and one dashboard with the same metrics.
//!
//! Every alarm notifies the topic when it fires and when it recovers, evaluates one
//! 5-minute period, and treats missing data as not breaching (an idle stage is fine).

use switchboard_core::names::metrics;
use switchboard_core::names::queue::{dead_letter_queue_name, sqs_name, stage_prefix};

use super::functions::Functions;
use super::{Handle, Plan, WS_STAGE, physical};
use crate::DeployError;
use crate::aws::{Dashboard, MetricAlarm, SnsTopic, SnsTopicSubscription};
use crate::config::StackConfig;
use crate::input::Input;
use crate::model::Service;

/// The period every alarm evaluates (s).
pub const ALARM_PERIOD_SECS: u32 = 300;
/// Upgrades per period below which the deny ratio is not judged (a handful of bad
/// tokens is not an incident).
pub const DENY_RATIO_MIN_UPGRADES: u32 = 20;

/// What is watched.
pub(super) struct Watched<'a> {
    /// Every function, by role.
    pub(super) functions: &'a Functions,
    /// The WebSocket API.
    pub(super) ws_api: Handle,
    /// The HTTP API, if any.
    pub(super) http_api: Option<Handle>,
}

/// The alarm topic and the dashboard.
pub(super) struct Watch {
    /// The SNS topic every alarm notifies.
    pub(super) topic: Handle,
    /// The dashboard.
    pub(super) dashboard: Handle,
}

/// One alarm's metric and rule.
struct Rule {
    name: String,
    what: String,
    operator: &'static str,
    threshold: u32,
    metric: Option<(&'static str, String, Input)>,
    statistic: &'static str,
    queries: Option<Vec<Input>>,
}

/// The topic, the alarms and the dashboard.
pub(super) fn alarms(
    p: &mut Plan,
    service: &Service,
    cfg: &StackConfig,
    prefix: &str,
    w: &Watched<'_>,
) -> Result<Watch, DeployError> {
    let topic = p.add(
        "alarms",
        SnsTopic {
            name: physical(prefix, "alarms", 256),
        },
    );
    if let Some(email) = &cfg.alarm_email {
        p.add(
            "alarms-email",
            SnsTopicSubscription {
                topic: topic.out("arn"),
                protocol: "email",
                endpoint: email.clone(),
            },
        );
    }
    let mut rules = function_rules(service, w)?;
    rules.extend(dlq_rules(service, cfg));
    rules.extend(api_rules(cfg, w));
    rules.push(deny_ratio_rule(prefix, cfg));
    for rule in rules {
        alarm(p, prefix, topic, rule);
    }
    let dashboard = p.add(
        "service",
        Dashboard {
            dashboard_name: physical(prefix, "service", 255),
            dashboard_body: dashboard_body(service, cfg, prefix, w),
        },
    );
    Ok(Watch { topic, dashboard })
}

fn dims(pairs: &[(&str, Input)]) -> Input {
    Input::object(pairs.iter().map(|(k, v)| (*k, Some(v.clone()))))
}

/// Errors and throttles of every function.
fn function_rules(service: &Service, w: &Watched<'_>) -> Result<Vec<Rule>, DeployError> {
    let mut rules = Vec::new();
    for (role, f) in w.functions.iter() {
        let slug = &service
            .function(role)
            .ok_or_else(|| DeployError::Plan(format!("no function {role}")))?
            .slug;
        for metric in ["Errors", "Throttles"] {
            rules.push(Rule {
                name: format!("{slug}-{}", metric.to_lowercase()),
                what: format!("{metric} of the {role} function"),
                operator: "GreaterThanOrEqualToThreshold",
                threshold: 1,
                metric: Some((
                    "AWS/Lambda",
                    metric.to_owned(),
                    dims(&[("FunctionName", f.out("name"))]),
                )),
                statistic: "Sum",
                queries: None,
            });
        }
    }
    Ok(rules)
}

/// The SQS names of every dead-letter queue, by logical queue name.
fn dlq_names(service: &Service, cfg: &StackConfig) -> Vec<(String, String)> {
    let prefix = stage_prefix(&cfg.app, &cfg.stage);
    service
        .queues
        .iter()
        .filter_map(|q| {
            Some((
                q.name.clone(),
                sqs_name(&prefix, &dead_letter_queue_name(&q.name))?,
            ))
        })
        .collect()
}

/// A message in any dead-letter queue.
fn dlq_rules(service: &Service, cfg: &StackConfig) -> Vec<Rule> {
    dlq_names(service, cfg)
        .into_iter()
        .map(|(queue, dlq)| Rule {
            name: format!("queue-{queue}-dlq-depth"),
            what: format!(
                "messages in {dlq} (failed {MAX} times)",
                MAX = super::MAX_RECEIVE_COUNT
            ),
            operator: "GreaterThanThreshold",
            threshold: 0,
            metric: Some((
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible".to_owned(),
                dims(&[("QueueName", Input::str(dlq))]),
            )),
            statistic: "Maximum",
            queries: None,
        })
        .collect()
}

/// The APIs' errors and latency.
fn api_rules(cfg: &StackConfig, w: &Watched<'_>) -> Vec<Rule> {
    let mut apis = vec![(
        "ws",
        w.ws_api,
        WS_STAGE,
        vec!["IntegrationError", "ExecutionError"],
    )];
    if let Some(http) = w.http_api {
        apis.push(("http", http, "$default", vec!["5xx"]));
    }
    let mut rules = Vec::new();
    for (name, api, stage, errors) in apis {
        let d = dims(&[("ApiId", api.id()), ("Stage", Input::str(stage))]);
        for metric in errors {
            rules.push(Rule {
                name: format!("{name}-{}", metric.to_lowercase()),
                what: format!("{metric} on the {name} API"),
                operator: "GreaterThanOrEqualToThreshold",
                threshold: 1,
                metric: Some(("AWS/ApiGateway", metric.to_owned(), d.clone())),
                statistic: "Sum",
                queries: None,
            });
        }
        rules.push(Rule {
            name: format!("{name}-integration-latency"),
            what: format!(
                "p99 integration latency of the {name} API over {} ms",
                cfg.latency_alarm_ms
            ),
            operator: "GreaterThanThreshold",
            threshold: cfg.latency_alarm_ms,
            metric: Some(("AWS/ApiGateway", "IntegrationLatency".to_owned(), d)),
            statistic: "p99",
            queries: None,
        });
    }
    rules
}

/// The share of denied upgrades, from the runtime's EMF counters.
fn deny_ratio_rule(prefix: &str, cfg: &StackConfig) -> Rule {
    let query = |id: &str, metric: &str| {
        Input::object([
            ("id", Some(Input::str(id))),
            ("returnData", Some(Input::Bool(false))),
            (
                "metric",
                Some(Input::object([
                    ("namespace", Some(Input::str(metrics::NAMESPACE))),
                    ("metricName", Some(Input::str(metric))),
                    ("period", Some(Input::from(ALARM_PERIOD_SECS))),
                    ("stat", Some(Input::str("Sum"))),
                    (
                        "dimensions",
                        Some(dims(&[(metrics::dim::SERVICE, Input::str(prefix))])),
                    ),
                ])),
            ),
        ])
    };
    let ratio = Input::object([
        ("id", Some(Input::str("deny_percent"))),
        (
            "expression",
            Some(Input::str(format!(
                "IF((allow + deny) >= {DENY_RATIO_MIN_UPGRADES}, 100 * deny / (allow + deny), 0)"
            ))),
        ),
        ("label", Some(Input::str("denied upgrades (%)"))),
        ("returnData", Some(Input::Bool(true))),
    ]);
    Rule {
        name: "authorizer-deny-ratio".to_owned(),
        what: format!(
            "over {}% of $connect upgrades denied (at least {DENY_RATIO_MIN_UPGRADES} upgrades)",
            cfg.deny_alarm_percent
        ),
        operator: "GreaterThanThreshold",
        threshold: cfg.deny_alarm_percent,
        metric: None,
        statistic: "Sum",
        queries: Some(vec![
            query("allow", metrics::AUTHORIZER_ALLOW),
            query("deny", metrics::AUTHORIZER_DENY),
            ratio,
        ]),
    }
}

fn alarm(p: &mut Plan, prefix: &str, topic: Handle, rule: Rule) -> Handle {
    let extended = rule.statistic.starts_with('p');
    let single = rule.metric.is_some();
    let (namespace, metric_name, dimensions) = match rule.metric {
        Some((ns, name, d)) => (Some(ns.to_owned()), Some(name), Some(d)),
        None => (None, None, None),
    };
    p.add(
        rule.name.clone(),
        MetricAlarm {
            name: physical(prefix, &rule.name, 255),
            alarm_description: format!("{prefix}: {}", rule.what),
            comparison_operator: rule.operator,
            evaluation_periods: 1,
            threshold: rule.threshold,
            treat_missing_data: "notBreaching",
            metric_name,
            namespace,
            period: single.then_some(ALARM_PERIOD_SECS),
            statistic: (single && !extended).then_some(rule.statistic),
            extended_statistic: (single && extended).then_some(rule.statistic),
            dimensions,
            metric_queries: rule.queries,
            alarm_actions: vec![topic.out("arn")],
            ok_actions: vec![topic.out("arn")],
        },
    )
}

/// A metric widget.
fn widget(title: &str, metrics: Vec<Input>, y: u32, stat: &str, cfg_region: &str) -> Input {
    Input::object([
        ("type", Some(Input::str("metric"))),
        ("x", Some(Input::from(0u32))),
        ("y", Some(Input::from(y))),
        ("width", Some(Input::from(24u32))),
        ("height", Some(Input::from(6u32))),
        (
            "properties",
            Some(Input::object([
                ("title", Some(Input::str(title))),
                ("metrics", Some(Input::List(metrics))),
                ("stat", Some(Input::str(stat))),
                ("period", Some(Input::from(ALARM_PERIOD_SECS))),
                ("region", Some(Input::str(cfg_region))),
            ])),
        ),
    ])
}

/// The dashboard: functions, APIs, queues and the runtime's own metrics.
fn dashboard_body(service: &Service, cfg: &StackConfig, prefix: &str, w: &Watched<'_>) -> Input {
    let line = |parts: Vec<Input>| Input::List(parts);
    let s = |v: &str| Input::str(v);
    let lambda: Vec<Input> = w
        .functions
        .iter()
        .flat_map(|(_, f)| {
            ["Errors", "Throttles"].map(|m| {
                line(vec![
                    s("AWS/Lambda"),
                    s(m),
                    s("FunctionName"),
                    f.out("name"),
                ])
            })
        })
        .collect();
    let mut api = Vec::new();
    for m in [
        "ConnectCount",
        "MessageCount",
        "IntegrationError",
        "ExecutionError",
    ] {
        api.push(line(vec![
            s("AWS/ApiGateway"),
            s(m),
            s("ApiId"),
            w.ws_api.id(),
            s("Stage"),
            s(WS_STAGE),
        ]));
    }
    if let Some(http) = w.http_api {
        for m in ["Count", "4xx", "5xx"] {
            api.push(line(vec![
                s("AWS/ApiGateway"),
                s(m),
                s("ApiId"),
                http.id(),
                s("Stage"),
                s("$default"),
            ]));
        }
    }
    let dlqs = dlq_names(service, cfg)
        .into_iter()
        .map(|(_, dlq)| {
            line(vec![
                s("AWS/SQS"),
                s("ApproximateNumberOfMessagesVisible"),
                s("QueueName"),
                s(&dlq),
            ])
        })
        .collect();
    let runtime = [
        metrics::AUTHORIZER_ALLOW,
        metrics::AUTHORIZER_DENY,
        metrics::FANOUT_RECIPIENTS,
        metrics::FANOUT_GONE,
    ]
    .map(|m| {
        line(vec![
            s(metrics::NAMESPACE),
            s(m),
            s(metrics::dim::SERVICE),
            s(prefix),
        ])
    })
    .to_vec();
    let routes = service
        .functions
        .iter()
        .filter_map(|f| f.route_key())
        .flat_map(|key| {
            [metrics::ROUTE_COUNT, metrics::ROUTE_ERRORS].map(|m| {
                line(vec![
                    s(metrics::NAMESPACE),
                    s(m),
                    s(metrics::dim::SERVICE),
                    s(prefix),
                    s(metrics::dim::ROUTE),
                    s(key),
                ])
            })
        })
        .collect();
    Input::Json(Box::new(Input::object([(
        "widgets",
        Some(Input::List(vec![
            widget("Lambda errors and throttles", lambda, 0, "Sum", &cfg.region),
            widget("API Gateway", api, 6, "Sum", &cfg.region),
            widget("Routes (runtime metrics)", routes, 12, "Sum", &cfg.region),
            widget(
                "Authorizer and fan-out (runtime metrics)",
                runtime,
                18,
                "Sum",
                &cfg.region,
            ),
            widget("Dead-letter queues", dlqs, 24, "Maximum", &cfg.region),
        ])),
    )])))
}
