//! Issue 16 under the fake engine: safe updates (plan A with a route, B without it, C
//! with new code), alarms and the dashboard, the checks made before anything is
//! registered, and the us-east-1 provider's inherited settings.

// Helpers outside #[test] functions unwrap too: a test failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::{Value, json};

const API: &str = "aws:apigatewayv2/api:Api";
const ROUTE: &str = "aws:apigatewayv2/route:Route";
const DEPLOYMENT: &str = "aws:apigatewayv2/deployment:Deployment";
const STAGE: &str = "aws:apigatewayv2/stage:Stage";

fn fixture_config() -> BTreeMap<String, String> {
    let mut c = base_config();
    c.insert("switchboard:apiKeys".into(), "partner-a".into());
    c
}

/// The logical name of the API a resource's `apiId` refers to.
fn api_name(run: &Run, r: &Registered) -> String {
    run.all(API)
        .into_iter()
        .find(|a| r.inputs["apiId"] == a.id.as_str())
        .map(|a| a.name.clone())
        .unwrap_or_default()
}

/// Plays one `pulumi up` from `before`'s state to `after`'s program with the engine's
/// order: every registration of `after`, in order, is created (new name), updated in
/// place, or — for a route whose API changed (`apiId` forces a replacement) — created
/// anew while the old one stays; a deployment whose `triggers` changed is replaced
/// and snapshots, when created, the routes then on its API (API Gateway); the stage
/// then serves it. Deletes (removed resources, old halves of replacements) come last
/// and do not change a snapshot. Returns the route keys the stage that CloudFront's
/// `ws` origin points to serves once the update is done. With `rename_api` false, the
/// API keeps one name whatever the route set (the design this replaces).
fn served_after_update(before: &Run, after: &Run, rename_api: bool) -> BTreeSet<String> {
    let api_of = |run: &Run, r: &Registered| {
        if rename_api {
            api_name(run, r)
        } else {
            "ws".to_owned()
        }
    };
    // (API, route key) of every route in the account, by (logical name).
    let mut cloud: Vec<(String, String, String)> = before
        .all(ROUTE)
        .into_iter()
        .map(|r| {
            (
                r.name.clone(),
                api_of(before, r),
                r.inputs["routeKey"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut snapshots: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in before.all(DEPLOYMENT) {
        let api = api_of(before, d);
        let keys = cloud
            .iter()
            .filter(|(_, a, _)| *a == api)
            .map(|(_, _, k)| k.clone())
            .collect();
        snapshots.insert(api, keys);
    }
    for r in &after.resources {
        if r.token == ROUTE {
            let (api, key) = (
                api_of(after, r),
                r.inputs["routeKey"].as_str().unwrap().to_owned(),
            );
            match cloud.iter_mut().find(|(n, a, _)| *n == r.name && *a == api) {
                Some(existing) => existing.2 = key,
                None => cloud.push((r.name.clone(), api, key)),
            }
        } else if r.token == DEPLOYMENT {
            let api = api_of(after, r);
            let old = before
                .all(DEPLOYMENT)
                .into_iter()
                .find(|d| api_of(before, d) == api);
            if old.is_none_or(|o| o.inputs["triggers"] != r.inputs["triggers"]) {
                let keys = cloud
                    .iter()
                    .filter(|(_, a, _)| *a == api)
                    .map(|(_, _, k)| k.clone())
                    .collect();
                snapshots.insert(api, keys);
            }
        }
    }
    // CloudFront's ws origin points at the API of `after`'s stage.
    let stage = after.find(STAGE, "ws");
    snapshots.remove(&api_of(after, stage)).unwrap_or_default()
}

fn route_keys(run: &Run) -> BTreeSet<String> {
    run.all(ROUTE)
        .into_iter()
        .filter(|r| r.inputs["apiId"] != run.find(API, "http").id.as_str())
        .map(|r| r.inputs["routeKey"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_removed_route_is_never_served_and_new_code_redeploys() {
    let fixture = env!("CARGO_BIN_EXE_switchboard-deploy-fixture");
    let example = env!("CARGO_BIN_EXE_switchboard-deploy");
    // Plan A: the chat plus `extraRoute`.
    let a = run(fixture, false, fixture_config()).await;
    assert!(a.success, "{}", a.stderr);
    // Plan B: `extraRoute` removed.
    let b = run_example(false).await;
    // Plan C: plan B with a new artifact (every function's code replaced).
    let mut c_config = base_config();
    c_config.insert(
        "switchboard:artifact".into(),
        artifact_with(example, "v2").display().to_string(),
    );
    let c = run(example, false, c_config).await;
    assert!(c.success, "{}", c.stderr);

    assert!(route_keys(&a).contains("extraRoute"));
    assert!(!route_keys(&b).contains("extraRoute"));
    // A -> B: the route set changed, so B's WebSocket API is a new one, with exactly
    // B's routes; CloudFront moves to it before A's API is deleted.
    assert_eq!(served_after_update(&a, &b, true), route_keys(&b));
    // What a single API would serve: the removed route, until some later deployment.
    assert!(served_after_update(&a, &b, false).contains("extraRoute"));
    let ws_origin = |run: &Run| {
        let d = run.find("aws:cloudfront/distribution:Distribution", "site");
        unsecret(&d.inputs["origins"])
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["originId"] == "ws")
            .unwrap()["domainName"]
            .clone()
    };
    let b_api = b
        .all(API)
        .into_iter()
        .find(|x| x.inputs["protocolType"] == "WEBSOCKET")
        .unwrap();
    assert_eq!(
        ws_origin(&b),
        format!("{}.execute-api.{REGION}.amazonaws.com", b_api.id)
    );

    // B -> C: same routes, same API; the deployment is replaced (its trigger holds the
    // artifact's digest) and registered after every function, route and integration.
    assert_eq!(a.all(API).len(), b.all(API).len());
    assert_eq!(
        b.all(API)
            .iter()
            .map(|x| x.name.clone())
            .collect::<Vec<_>>(),
        c.all(API)
            .iter()
            .map(|x| x.name.clone())
            .collect::<Vec<_>>()
    );
    let (tb, tc) = (
        &b.find(DEPLOYMENT, "ws").inputs["triggers"],
        &c.find(DEPLOYMENT, "ws").inputs["triggers"],
    );
    assert_eq!(tb["routes"], tc["routes"]);
    // The artifact's digest changed, and so did the snapshot's (the functions' code
    // path is an input of every function, followed from the integrations).
    assert_ne!(tb["artifact"], tc["artifact"]);
    assert_ne!(tb["snapshot"], tc["snapshot"]);
    assert_eq!(served_after_update(&b, &c, true), route_keys(&c));
    let pos = |run: &Run, t: &str, n: &str| {
        run.resources
            .iter()
            .position(|r| r.token == t && r.name == n)
            .unwrap()
    };
    let dep = pos(&c, DEPLOYMENT, "ws");
    for t in [
        "aws:lambda/function:Function",
        ROUTE,
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/routeResponse:RouteResponse",
        "aws:apigatewayv2/authorizer:Authorizer",
    ] {
        for r in c.all(t) {
            if t != "aws:lambda/function:Function" && api_name(&c, r) == "http" {
                continue;
            }
            assert!(
                pos(&c, t, &r.name) < dep,
                "{t} {} after the deployment",
                r.name
            );
        }
    }
    assert!(dep < pos(&c, STAGE, "ws"));
    assert_eq!(
        c.find(STAGE, "ws").inputs["deploymentId"],
        c.find(DEPLOYMENT, "ws").id.as_str()
    );
}

#[tokio::test]
async fn alarms_notify_the_topic_and_the_dashboard_shows_the_service() {
    let run = run_example(false).await;
    let topic = run.find("aws:sns/topic:Topic", "alarms");
    assert_eq!(topic.inputs["name"], "chat-dev-alarms");
    let topic_arn = format!("arn:aws:sns:{REGION}:{ACCOUNT}:alarms/{}", topic.id);
    let sub = run.find(
        "aws:sns/topicSubscription:TopicSubscription",
        "alarms-email",
    );
    assert_eq!(
        sub.inputs,
        json!({"topic": topic_arn, "protocol": "email", "endpoint": "ops@example.com"})
    );
    let alarms = run.all("aws:cloudwatch/metricAlarm:MetricAlarm");
    for a in &alarms {
        assert_eq!(a.inputs["alarmActions"], json!([topic_arn]), "{}", a.name);
        assert_eq!(a.inputs["okActions"], json!([topic_arn]), "{}", a.name);
        assert_eq!(a.inputs["treatMissingData"], "notBreaching");
    }
    let find = |n: &str| run.find("aws:cloudwatch/metricAlarm:MetricAlarm", n);
    let e = find("route-sendMessage-errors");
    assert_eq!(e.inputs["namespace"], "AWS/Lambda");
    assert_eq!(e.inputs["metricName"], "Errors");
    assert_eq!(
        e.inputs["dimensions"],
        json!({"FunctionName": "chat-dev-route-sendMessage"})
    );
    assert_eq!(e.inputs["statistic"], "Sum");
    assert_eq!(
        e.inputs["comparisonOperator"],
        "GreaterThanOrEqualToThreshold"
    );
    assert_eq!(
        find("authorizer-throttles").inputs["metricName"],
        "Throttles"
    );
    for q in run
        .all("aws:sqs/queue:Queue")
        .iter()
        .filter(|q| !q.name.ends_with("-dlq"))
    {
        let dlq = find(&format!("{}-dlq-depth", q.name));
        assert_eq!(
            dlq.inputs["metricName"],
            "ApproximateNumberOfMessagesVisible"
        );
        assert_eq!(
            dlq.inputs["dimensions"]["QueueName"],
            run.find("aws:sqs/queue:Queue", &format!("{}-dlq", q.name))
                .inputs["name"]
        );
        assert_eq!(dlq.inputs["threshold"], 0);
        assert_eq!(dlq.inputs["comparisonOperator"], "GreaterThanThreshold");
    }
    let ws = run
        .all(API)
        .into_iter()
        .find(|x| x.inputs["protocolType"] == "WEBSOCKET")
        .unwrap();
    let lat = find("ws-integration-latency");
    assert_eq!(lat.inputs["extendedStatistic"], "p99");
    assert_eq!(lat.inputs["threshold"], 5000);
    assert_eq!(
        lat.inputs["dimensions"],
        json!({"ApiId": ws.id, "Stage": "ws"})
    );
    assert_eq!(
        find("ws-integrationerror").inputs["metricName"],
        "IntegrationError"
    );
    let http = run.find(API, "http");
    assert_eq!(
        find("http-5xx").inputs["dimensions"],
        json!({"ApiId": http.id, "Stage": "$default"})
    );
    // The deny ratio: metric math over the runtime's EMF counters (names from core).
    use switchboard::names::metrics;
    let deny = find("authorizer-deny-ratio");
    let q = deny.inputs["metricQueries"].as_array().unwrap();
    assert_eq!(q.len(), 3);
    for (i, name) in [
        (0, metrics::AUTHORIZER_ALLOW),
        (1, metrics::AUTHORIZER_DENY),
    ] {
        assert_eq!(q[i]["metric"]["namespace"], metrics::NAMESPACE);
        assert_eq!(q[i]["metric"]["metricName"], name);
        assert_eq!(
            q[i]["metric"]["dimensions"],
            json!({metrics::dim::SERVICE: "chat-dev"})
        );
    }
    assert!(
        q[2]["expression"]
            .as_str()
            .unwrap()
            .contains("100 * deny / (allow + deny)")
    );
    assert_eq!(q[2]["returnData"], true);
    assert_eq!(deny.inputs["threshold"], 50);
    assert!(deny.inputs.get("metricName").is_none());
    // Every function's env names the service, the metrics' dimension value.
    for f in run.all("aws:lambda/function:Function") {
        assert_eq!(
            plain(&f.inputs["environment"])["variables"]["SWITCHBOARD_SERVICE"],
            "chat-dev"
        );
    }
    let dash = run.find("aws:cloudwatch/dashboard:Dashboard", "service");
    assert_eq!(dash.inputs["dashboardName"], "chat-dev-service");
    let body: Value = json_str(&dash.inputs["dashboardBody"]);
    let text = body.to_string();
    for needle in [
        "AWS/Lambda",
        "IntegrationError",
        "RouteCount",
        "AuthorizerDeny",
        "ApproximateNumberOfMessagesVisible",
        ws.id.as_str(),
    ] {
        assert!(text.contains(needle), "dashboard lacks {needle}");
    }
    assert_eq!(body["widgets"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn every_problem_is_reported_before_anything_is_registered() {
    let example = env!("CARGO_BIN_EXE_switchboard-deploy");
    // An x86-64 bootstrap next to a stale manifest hash, a certificate outside
    // us-east-1, and API keys without a route that needs one.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deploy-test/bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bootstrap.zip"), zip("bootstrap", &elf(0x3E))).unwrap();
    std::fs::write(dir.join("manifest.sha256"), "0".repeat(64)).unwrap();
    let mut config = base_config();
    config.insert(
        "switchboard:artifact".into(),
        dir.join("bootstrap.zip").display().to_string(),
    );
    config.insert(
        "switchboard:certificateArn".into(),
        "arn:aws:acm:eu-west-1:123456789012:certificate/x".into(),
    );
    config.insert("switchboard:apiKeys".into(), "partner-a".into());
    let run = run(example, false, config).await;
    assert!(!run.success);
    for part in [
        "not aarch64",
        "built from another manifest",
        "not in us-east-1",
        "no route needs an API key",
    ] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
    assert!(run.custom().next().is_none(), "nothing is registered");

    // A missing hash file says how to write it.
    let dir2 = dir.join("no-hash");
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::write(dir2.join("bootstrap.zip"), zip("bootstrap", &elf(0xB7))).unwrap();
    let mut config = base_config();
    config.insert(
        "switchboard:artifact".into(),
        dir2.join("bootstrap.zip").display().to_string(),
    );
    let missing = common::run(example, true, config).await;
    assert!(!missing.success);
    assert!(
        missing.stderr.contains("manifest --sha256 >"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn the_us_east_1_provider_inherits_the_stack_settings() {
    let mut config = base_config();
    config.insert("aws:profile".into(), "prod-admin".into());
    config.insert(
        "aws:assumeRoles".into(),
        r#"[{"roleArn": "arn:aws:iam::123456789012:role/deploy"}]"#.into(),
    );
    config.insert("aws:allowedAccountIds".into(), r#"["123456789012"]"#.into());
    let run = run(env!("CARGO_BIN_EXE_switchboard-deploy"), false, config).await;
    assert!(run.success, "{}", run.stderr);
    let p = run.find("pulumi:providers:aws", "us-east-1");
    assert_eq!(p.inputs["region"], "us-east-1");
    assert_eq!(p.inputs["profile"], "prod-admin");
    assert_eq!(
        p.inputs["assumeRoles"],
        json!([{"roleArn": "arn:aws:iam::123456789012:role/deploy"}])
    );
    assert_eq!(p.inputs["allowedAccountIds"], json!(["123456789012"]));
}
