//! The stack outputs: the site's URLs and the names and ids a client or an operator
//! needs.

use std::collections::BTreeMap;

use super::alarms::Watch;
use super::api_keys::Keys;
use super::cognito::Cognito;
use super::queues::Queues;
use super::tables::Tables;
use super::web::Web;
use super::{Handle, ws_api};
use crate::concat_input;
use crate::config::StackConfig;
use crate::input::Input;
use crate::model::Service;

/// What the outputs are read from.
pub(super) struct Stage<'a> {
    /// The WebSocket API.
    pub(super) ws_api: Handle,
    /// Its stage.
    pub(super) ws_stage: Handle,
    /// The tables.
    pub(super) tables: &'a Tables,
    /// The queues.
    pub(super) queues: &'a Queues,
    /// Cognito.
    pub(super) cognito: &'a Cognito,
    /// The page's bucket.
    pub(super) web: &'a Web,
    /// The distribution.
    pub(super) distribution: Handle,
    /// The site's certificate, if any.
    pub(super) certificate_arn: Option<&'a Input>,
    /// The usage plan and its keys, if routes need keys.
    pub(super) keys: Option<&'a Keys>,
    /// The alarm topic and the dashboard.
    pub(super) watch: &'a Watch,
}

/// The stack outputs. The APIs' own `execute-api` URLs are not among them: only
/// CloudFront's (`wssUrl`, `httpApiUrl`) reach the APIs; `managementEndpoint` is the
/// IAM-signed `@connections` API, for operators.
pub(super) fn outputs(
    cfg: &StackConfig,
    service: &Service,
    s: &Stage<'_>,
) -> BTreeMap<String, Input> {
    let region = cfg.region.as_str();
    let host: Input = match (&cfg.domain, s.certificate_arn) {
        (Some(d), Some(_)) => Input::str(d.clone()),
        _ => s.distribution.out("domainName"),
    };
    let mut o = BTreeMap::new();
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
    o.insert(
        "managementEndpoint".into(),
        ws_api::management_endpoint(s.ws_api, region),
    );
    o.insert("webSocketStage".into(), s.ws_stage.out("name"));
    o.insert("connectionsTable".into(), s.tables.connections.out("name"));
    o.insert("roomsTable".into(), s.tables.rooms.out("name"));
    if let Some((history, _)) = &s.tables.history {
        o.insert("historyTable".into(), history.out("name"));
    }
    o.insert("queueNames".into(), queue_outputs(s.queues, "name"));
    o.insert("queueUrls".into(), queue_outputs(s.queues, "url"));
    o.insert("userPoolId".into(), s.cognito.pool.id());
    o.insert("userPoolClientId".into(), s.cognito.client.id());
    o.insert("distributionId".into(), s.distribution.id());
    o.insert("webBucket".into(), s.web.bucket.id());
    o.insert("alarmTopicArn".into(), s.watch.topic.out("arn"));
    o.insert(
        "dashboardName".into(),
        s.watch.dashboard.out("dashboardName"),
    );
    if let Some(keys) = s.keys {
        o.insert("usagePlanId".into(), keys.plan.id());
        o.insert(
            "apiKeyIds".into(),
            Input::Object(keys.keys.iter().map(|(k, h)| (k.clone(), h.id())).collect()),
        );
    }
    o
}

/// An output of every queue, by queue name.
fn queue_outputs(queues: &Queues, field: &str) -> Input {
    Input::Object(
        queues
            .iter()
            .map(|(k, q)| (k.clone(), q.out(field)))
            .collect(),
    )
}
