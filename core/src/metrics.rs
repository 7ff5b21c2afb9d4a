//! The runtime's metrics: counters the hot paths bump, and the CloudWatch Embedded
//! Metric Format (EMF) lines the Lambda roles print (one JSON log line per flush,
//! no SDK call; CloudWatch Logs turns them into metrics).
//!
//! | metric | unit | dimensions | recorded by |
//! |---|---|---|---|
//! | `RouteCount` | Count | Service, Route | [`Dispatcher::dispatch`](crate::dispatch::Dispatcher::dispatch), every event |
//! | `RouteErrors` | Count | Service, Route | the same, when the outcome carries an error |
//! | `RouteDuration` | Milliseconds | Service, Route | the same: dispatch's wall time |
//! | `FanoutRecipients` | Count | Service | every send through a [`Target`](crate::Target) |
//! | `FanoutGone` | Count | Service | the same: recipients `@connections` called gone (410) |
//! | `AuthorizerAllow` / `AuthorizerDeny` | Count | Service | the `$connect` authorizer (Lambda role, local gateway) |
//! | `QueueBatchFailures` | Count | Service, Queue | [`process_batch`](crate::consumer::process_batch) |
//!
//! Names are in [`names::metrics`](crate::names::metrics). The counters are relaxed
//! atomics in maps built once from the registry (no lock on the record path). A route
//! key or queue the registry does not know is not counted.
//!
//! EMF has no statistic set, only values: a route's durations are kept as a sum and a
//! count, and a flush renders the single value when one event was handled (a Lambda
//! invocation) or the mean repeated once per event (at most 100 values) otherwise, so
//! CloudWatch's sum, count and average stay exact.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::names::metrics as m;

/// EMF's limit on the values of one metric in one document.
const MAX_EMF_VALUES: u64 = 100;

#[derive(Debug, Default)]
struct RouteCounters {
    count: AtomicU64,
    errors: AtomicU64,
    duration_us: AtomicU64,
}

/// The counters of one service. Cheap to share (`Arc`); every record is a few relaxed
/// atomic adds.
#[derive(Debug)]
pub struct Metrics {
    service: String,
    routes: HashMap<String, RouteCounters>,
    queues: HashMap<String, (AtomicU64, AtomicU64)>,
    fanout_recipients: AtomicU64,
    fanout_gone: AtomicU64,
    authorizer_allow: AtomicU64,
    authorizer_deny: AtomicU64,
}

impl Metrics {
    /// Counters for `service` (the `Service` dimension), its route keys and queues.
    pub fn new<'a>(
        service: impl Into<String>,
        routes: impl IntoIterator<Item = &'a str>,
        queues: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self {
            service: service.into(),
            routes: routes
                .into_iter()
                .map(|r| (r.to_owned(), RouteCounters::default()))
                .collect(),
            queues: queues
                .into_iter()
                .map(|q| (q.to_owned(), (AtomicU64::new(0), AtomicU64::new(0))))
                .collect(),
            fanout_recipients: AtomicU64::new(0),
            fanout_gone: AtomicU64::new(0),
            authorizer_allow: AtomicU64::new(0),
            authorizer_deny: AtomicU64::new(0),
        }
    }

    /// The `Service` dimension's value.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// One event a route handled, how long it took and whether it failed.
    pub fn route(&self, route: &str, took: Duration, failed: bool) {
        if let Some(c) = self.routes.get(route) {
            c.count.fetch_add(1, Ordering::Relaxed);
            if failed {
                c.errors.fetch_add(1, Ordering::Relaxed);
            }
            let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            c.duration_us.fetch_add(us, Ordering::Relaxed);
        }
    }

    /// One fan-out: connections posted to, and how many of them were gone (410).
    pub fn fanout(&self, recipients: usize, gone: usize) {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        self.fanout_recipients
            .fetch_add(n(recipients), Ordering::Relaxed);
        self.fanout_gone.fetch_add(n(gone), Ordering::Relaxed);
    }

    /// One `$connect` authorizer decision.
    pub fn authorizer(&self, allowed: bool) {
        let counter = if allowed {
            &self.authorizer_allow
        } else {
            &self.authorizer_deny
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// One consumed batch of `queue`, with the records reported as failed.
    pub fn queue_batch(&self, queue: &str, failures: usize) {
        if let Some((batches, failed)) = self.queues.get(queue) {
            batches.fetch_add(1, Ordering::Relaxed);
            failed.fetch_add(
                u64::try_from(failures).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
    }

    /// The counters since the start (or the last [`take`](Self::take)), every route and
    /// queue included.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.read(|a| a.load(Ordering::Relaxed), true)
    }

    /// The counters since the last take, reset to zero: what one Lambda invocation
    /// recorded. Routes and queues that recorded nothing are left out (a flush visits
    /// them but copies nothing).
    pub fn take(&self) -> MetricsSnapshot {
        self.read(|a| a.swap(0, Ordering::Relaxed), false)
    }

    fn read(&self, get: impl Fn(&AtomicU64) -> u64, idle_too: bool) -> MetricsSnapshot {
        let routes = self
            .routes
            .iter()
            .filter(|(_, c)| idle_too || c.count.load(Ordering::Relaxed) > 0)
            .map(|(route, c)| {
                let snapshot = RouteSnapshot {
                    count: get(&c.count),
                    errors: get(&c.errors),
                    duration_ms: get(&c.duration_us) as f64 / 1000.0,
                };
                (route.clone(), snapshot)
            })
            .collect();
        let queues = self
            .queues
            .iter()
            .filter(|(_, (batches, _))| idle_too || batches.load(Ordering::Relaxed) > 0)
            .map(|(queue, (batches, failures))| {
                let snapshot = QueueSnapshot {
                    batches: get(batches),
                    failures: get(failures),
                };
                (queue.clone(), snapshot)
            })
            .collect();
        MetricsSnapshot {
            service: self.service.clone(),
            routes,
            queues,
            fanout_recipients: get(&self.fanout_recipients),
            fanout_gone: get(&self.fanout_gone),
            authorizer_allow: get(&self.authorizer_allow),
            authorizer_deny: get(&self.authorizer_deny),
        }
    }
}

/// A route's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSnapshot {
    /// Events handled (`RouteCount`).
    pub count: u64,
    /// Of those, failed (`RouteErrors`).
    pub errors: u64,
    /// Their total duration in milliseconds (`RouteDuration`'s sum).
    pub duration_ms: f64,
}

/// A queue's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueSnapshot {
    /// Batches consumed.
    pub batches: u64,
    /// Records reported as failed (`QueueBatchFailures`).
    pub failures: u64,
}

/// Every counter at one moment (what `/local/stats` shows under `metrics`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    /// The `Service` dimension.
    pub service: String,
    /// Per route key, in key order.
    pub routes: BTreeMap<String, RouteSnapshot>,
    /// Per queue, in name order.
    pub queues: BTreeMap<String, QueueSnapshot>,
    /// `FanoutRecipients`.
    pub fanout_recipients: u64,
    /// `FanoutGone`.
    pub fanout_gone: u64,
    /// `AuthorizerAllow`.
    pub authorizer_allow: u64,
    /// `AuthorizerDeny`.
    pub authorizer_deny: u64,
}

impl MetricsSnapshot {
    /// The EMF documents of this snapshot, one JSON object per line, stamped
    /// `timestamp_ms` (epoch milliseconds). Only what was recorded is rendered: a route
    /// that handled no event, a queue that consumed no batch, no fan-out, no authorizer
    /// decision leave nothing. The service-wide metrics, the first route and the first
    /// queue share the first line (a Lambda invocation's usual case: one line); further
    /// routes and queues get a line each.
    pub fn emf_lines(&self, timestamp_ms: i64) -> Vec<String> {
        let mut service_metrics: Vec<(&str, &str, Value)> = Vec::new();
        if self.fanout_recipients > 0 || self.fanout_gone > 0 {
            service_metrics.push((m::FANOUT_RECIPIENTS, "Count", self.fanout_recipients.into()));
            service_metrics.push((m::FANOUT_GONE, "Count", self.fanout_gone.into()));
        }
        if self.authorizer_allow > 0 || self.authorizer_deny > 0 {
            service_metrics.push((m::AUTHORIZER_ALLOW, "Count", self.authorizer_allow.into()));
            service_metrics.push((m::AUTHORIZER_DENY, "Count", self.authorizer_deny.into()));
        }
        let mut routes = self.routes.iter().filter(|(_, r)| r.count > 0);
        let mut queues = self.queues.iter().filter(|(_, q)| q.batches > 0);
        let mut lines = Vec::new();
        loop {
            let route = routes.next();
            let queue = queues.next();
            let service = std::mem::take(&mut service_metrics);
            if route.is_none() && queue.is_none() && service.is_empty() {
                break;
            }
            let mut doc = Document::new(&self.service, timestamp_ms);
            doc.add(&[], service);
            if let Some((key, r)) = route {
                doc.root
                    .insert(m::dim::ROUTE.to_owned(), key.as_str().into());
                let duration = duration_values(r);
                doc.add(
                    &[m::dim::ROUTE],
                    vec![
                        (m::ROUTE_COUNT, "Count", r.count.into()),
                        (m::ROUTE_ERRORS, "Count", r.errors.into()),
                        (m::ROUTE_DURATION, "Milliseconds", duration),
                    ],
                );
            }
            if let Some((name, q)) = queue {
                doc.root
                    .insert(m::dim::QUEUE.to_owned(), name.as_str().into());
                doc.add(
                    &[m::dim::QUEUE],
                    vec![(m::QUEUE_BATCH_FAILURES, "Count", q.failures.into())],
                );
            }
            lines.push(doc.render());
        }
        lines
    }
}

/// `RouteDuration`'s values: the one duration, or the mean once per event (capped).
fn duration_values(r: &RouteSnapshot) -> Value {
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    if r.count <= 1 {
        return json!(round(r.duration_ms));
    }
    let mean = round(r.duration_ms / r.count as f64);
    Value::Array(vec![json!(mean); r.count.min(MAX_EMF_VALUES) as usize])
}

/// One EMF document being built: root members and the `_aws` directives.
struct Document {
    root: Map<String, Value>,
    directives: Vec<Value>,
    timestamp_ms: i64,
}

impl Document {
    fn new(service: &str, timestamp_ms: i64) -> Self {
        let mut root = Map::new();
        root.insert(m::dim::SERVICE.to_owned(), service.into());
        Self {
            root,
            directives: Vec::new(),
            timestamp_ms,
        }
    }

    /// A directive for `[Service, extra..]` with these metrics (name, unit, value).
    fn add(&mut self, extra: &[&str], metrics: Vec<(&str, &str, Value)>) {
        if metrics.is_empty() {
            return;
        }
        let mut dims = vec![m::dim::SERVICE];
        dims.extend_from_slice(extra);
        let mut defs = Vec::with_capacity(metrics.len());
        for (name, unit, value) in metrics {
            defs.push(json!({ "Name": name, "Unit": unit }));
            self.root.insert(name.to_owned(), value);
        }
        self.directives.push(json!({
            "Namespace": m::NAMESPACE,
            "Dimensions": [dims],
            "Metrics": defs,
        }));
    }

    fn render(mut self) -> String {
        self.root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": self.directives,
            }),
        );
        Value::Object(self.root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).unwrap_or_default()
    }

    #[test]
    fn counts_only_known_keys_and_resets_on_take() {
        let metrics = Metrics::new("chat-dev", ["sendMessage", "$connect"], ["orders"]);
        metrics.route("sendMessage", Duration::from_millis(3), false);
        metrics.route("sendMessage", Duration::from_millis(5), true);
        metrics.route("nope", Duration::from_millis(5), true);
        metrics.queue_batch("orders", 2);
        metrics.queue_batch("other", 2);
        let s = metrics.take();
        assert_eq!(s.routes["sendMessage"].count, 2);
        assert_eq!(s.routes["sendMessage"].errors, 1);
        assert!((s.routes["sendMessage"].duration_ms - 8.0).abs() < 1e-9);
        // A take leaves out what recorded nothing; a snapshot shows every route.
        assert_eq!(s.routes.len(), 1);
        assert_eq!(
            s.queues["orders"],
            QueueSnapshot {
                batches: 1,
                failures: 2
            }
        );
        let after = metrics.snapshot();
        assert_eq!(after.routes.len(), 2);
        assert_eq!(after.routes["sendMessage"].count, 0);
        assert_eq!(after.routes["$connect"].count, 0);
    }

    #[test]
    fn one_line_for_one_invocation() {
        let metrics = Metrics::new("chat-dev", ["sendMessage"], []);
        metrics.route("sendMessage", Duration::from_micros(2500), true);
        metrics.fanout(3, 1);
        let lines = metrics.take().emf_lines(1_700_000_000_000);
        assert_eq!(lines.len(), 1);
        let doc = parse(&lines[0]);
        assert_eq!(doc["Service"], "chat-dev");
        assert_eq!(doc["Route"], "sendMessage");
        assert_eq!(doc["RouteCount"], 1);
        assert_eq!(doc["RouteErrors"], 1);
        assert_eq!(doc["RouteDuration"], 2.5);
        assert_eq!(doc["FanoutRecipients"], 3);
        assert_eq!(doc["FanoutGone"], 1);
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000_i64);
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(directives.len(), 2);
        assert_eq!(directives[0]["Namespace"], "Switchboard");
        assert_eq!(directives[0]["Dimensions"], json!([["Service"]]));
        assert_eq!(directives[1]["Dimensions"], json!([["Service", "Route"]]));
        assert_eq!(
            directives[1]["Metrics"][2],
            json!({"Name": "RouteDuration", "Unit": "Milliseconds"})
        );
        // Nothing recorded since: nothing to print.
        assert!(metrics.take().emf_lines(0).is_empty());
    }

    #[test]
    fn several_routes_make_several_lines_and_durations_keep_their_sum() {
        let metrics = Metrics::new("s", ["a", "b"], []);
        for _ in 0..4 {
            metrics.route("a", Duration::from_millis(2), false);
        }
        metrics.route("b", Duration::from_millis(1), false);
        let lines = metrics.snapshot().emf_lines(0);
        assert_eq!(lines.len(), 2);
        let a = parse(&lines[0]);
        assert_eq!(a["Route"], "a");
        assert_eq!(a["RouteDuration"], json!([2.0, 2.0, 2.0, 2.0]));
        assert_eq!(parse(&lines[1])["Route"], "b");
    }
}
