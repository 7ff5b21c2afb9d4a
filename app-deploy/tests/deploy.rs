//! The real deploy binary under a fake Pulumi engine: every resource's type, name and
//! key properties, in update and preview mode, and what one more route adds.

// Helpers outside #[test] functions unwrap too: a test failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{Value, json};

const P: &str = "chat-dev";

/// The resources the chat app's stage must have, by (type, name).
fn expected(
    route_slugs: &[(String, bool)],
    http: bool,
    queues: &[(String, bool)],
) -> BTreeSet<(String, String)> {
    let mut v: Vec<(&str, String)> = vec![
        ("pulumi:providers:aws", "us-east-1".into()),
        ("aws:cloudwatch/logGroup:LogGroup", "functions".into()),
        ("aws:cloudwatch/logGroup:LogGroup", "ws-access".into()),
        ("aws:iam/role:Role", "apigateway-cloudwatch".into()),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "apigateway-cloudwatch".into(),
        ),
        (
            "aws:apigateway/account:Account",
            "apigateway-account".into(),
        ),
        ("aws:dynamodb/table:Table", "connections".into()),
        ("aws:dynamodb/table:Table", "rooms".into()),
        // The chat keeps room history.
        ("aws:dynamodb/table:Table", "history".into()),
        ("aws:apigatewayv2/api:Api", ws_api_name()),
        ("aws:iam/role:Role", "pre-signup".into()),
        ("aws:lambda/function:Function", "pre-signup".into()),
        ("aws:cognito/userPool:UserPool", "users".into()),
        ("aws:cognito/userPoolClient:UserPoolClient", "web".into()),
        ("aws:lambda/permission:Permission", "pre-signup".into()),
        ("aws:iam/role:Role", "authorizer".into()),
        ("aws:lambda/function:Function", "authorizer".into()),
        ("aws:apigatewayv2/authorizer:Authorizer", "ws".into()),
        ("aws:lambda/permission:Permission", "authorizer".into()),
        ("aws:apigatewayv2/deployment:Deployment", "ws".into()),
        ("aws:apigatewayv2/stage:Stage", "ws".into()),
        ("aws:s3/bucket:Bucket", "web".into()),
        (
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "web".into(),
        ),
        ("aws:s3/bucketObjectv2:BucketObjectv2", "index".into()),
        (
            "aws:s3/bucketObjectv2:BucketObjectv2",
            "asset-chat.js".into(),
        ),
        (
            "aws:s3/bucketObjectv2:BucketObjectv2",
            "asset-switchboard-client.js".into(),
        ),
        (
            "aws:cloudfront/originAccessControl:OriginAccessControl",
            "web".into(),
        ),
        ("aws:wafv2/ipSet:IpSet", "blocked".into()),
        ("aws:wafv2/ipSet:IpSet", "allowed".into()),
        ("aws:wafv2/webAcl:WebAcl", "web".into()),
        ("aws:acm/certificate:Certificate", "site".into()),
        ("aws:route53/record:Record", "site-validation".into()),
        (
            "aws:acm/certificateValidation:CertificateValidation",
            "site".into(),
        ),
        ("aws:cloudfront/distribution:Distribution", "site".into()),
        ("aws:s3/bucketPolicy:BucketPolicy", "web".into()),
        ("aws:route53/record:Record", "site-A".into()),
        ("aws:route53/record:Record", "site-AAAA".into()),
        (
            "aws:cloudfront/originRequestPolicy:OriginRequestPolicy",
            "apis".into(),
        ),
        ("aws:sns/topic:Topic", "alarms".into()),
        (
            "aws:sns/topicSubscription:TopicSubscription",
            "alarms-email".into(),
        ),
        ("aws:cloudwatch/dashboard:Dashboard", "service".into()),
    ];
    // Alarms: errors and throttles per function (all but the pre-sign-up trigger),
    // DLQ depth per queue, the WebSocket API's errors and latency, the deny ratio.
    let alarm = "aws:cloudwatch/metricAlarm:MetricAlarm";
    let mut watched: Vec<String> = route_slugs.iter().map(|(s, _)| s.clone()).collect();
    watched.push("authorizer".into());
    watched.extend(
        queues
            .iter()
            .filter(|(_, c)| *c)
            .map(|(q, _)| format!("queue-{q}")),
    );
    if http {
        watched.push("http".into());
        v.push((alarm, "http-5xx".into()));
        v.push((alarm, "http-integration-latency".into()));
    }
    for slug in watched {
        v.push((alarm, format!("{slug}-errors")));
        v.push((alarm, format!("{slug}-throttles")));
    }
    for (q, _) in queues {
        v.push((alarm, format!("queue-{q}-dlq-depth")));
    }
    for name in [
        "ws-integrationerror",
        "ws-executionerror",
        "ws-integration-latency",
        "authorizer-deny-ratio",
    ] {
        v.push((alarm, name.into()));
    }
    for (q, consumer) in queues {
        v.push(("aws:sqs/queue:Queue", format!("queue-{q}")));
        v.push(("aws:sqs/queue:Queue", format!("queue-{q}-dlq")));
        if *consumer {
            v.push(("aws:iam/role:Role", format!("queue-{q}")));
            v.push(("aws:lambda/function:Function", format!("queue-{q}")));
            v.push((
                "aws:lambda/eventSourceMapping:EventSourceMapping",
                format!("queue-{q}"),
            ));
        }
    }
    if http {
        for t in [
            "aws:apigatewayv2/api:Api",
            "aws:apigatewayv2/authorizer:Authorizer",
            "aws:apigatewayv2/integration:Integration",
            "aws:apigatewayv2/route:Route",
            "aws:apigatewayv2/stage:Stage",
            "aws:lambda/permission:Permission",
            "aws:lambda/function:Function",
            "aws:iam/role:Role",
        ] {
            v.push((t, "http".into()));
        }
    }
    for (slug, two_way) in route_slugs {
        for t in [
            "aws:iam/role:Role",
            "aws:lambda/function:Function",
            "aws:apigatewayv2/integration:Integration",
            "aws:apigatewayv2/route:Route",
            "aws:lambda/permission:Permission",
        ] {
            v.push((t, slug.clone()));
        }
        if *two_way {
            v.push(("aws:apigatewayv2/routeResponse:RouteResponse", slug.clone()));
        }
    }
    v.into_iter().map(|(t, n)| (t.to_owned(), n)).collect()
}

/// The WebSocket API's logical name for the chat app (keyed by its route set).
fn ws_api_name() -> String {
    let m = chat_app::app().manifest().unwrap();
    switchboard_deploy::plan::api_logical_name(
        &switchboard_deploy::Service::from_manifest(&m).unwrap(),
    )
}

/// Whether the chat app has an HTTP API (the manifest's `http`, when present, is non-null).
fn has_http() -> bool {
    let m = serde_json::to_value(chat_app::app().manifest().unwrap()).unwrap();
    m.get("http").is_some_and(|h| !h.is_null())
}

/// The slug the program names a route's resources with.
fn slug(key: &str) -> String {
    match key {
        "$connect" => "ws-connect".to_owned(),
        "$disconnect" => "ws-disconnect".to_owned(),
        "$default" => "ws-default".to_owned(),
        k => format!("route-{k}"),
    }
}

/// The chat's routes (slug, two-way), from its manifest.
fn chat_routes() -> Vec<(String, bool)> {
    let m = chat_app::app().manifest().unwrap();
    m.routes
        .iter()
        .map(|r| (slug(r.key), !matches!(r.key, "$connect" | "$disconnect")))
        .collect()
}

/// The chat's queues, with whether each has a consumer, from its manifest.
fn chat_queues() -> Vec<(String, bool)> {
    let m = serde_json::to_value(chat_app::app().manifest().unwrap()).unwrap();
    m.get("queues")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|q| {
            (
                q["name"].as_str().unwrap().to_owned(),
                !q["consumer"].is_null(),
            )
        })
        .collect()
}

fn assert_no_nulls(path: &str, v: &Value) {
    match v {
        Value::Null => panic!("{path} is null: the program must not send nulls"),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| assert_no_nulls(&format!("{path}[{i}]"), x)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| assert_no_nulls(&format!("{path}.{k}"), x)),
        _ => {}
    }
}

/// The sharded fan-out's resources (issue 17): the chat app sends to rooms, so it has
/// the fan-out queue, its dead-letter queue, the `fanout` function, its role, its event
/// source mapping and their alarms.
fn fanout_resources() -> Vec<(String, String)> {
    let alarm = "aws:cloudwatch/metricAlarm:MetricAlarm";
    [
        ("aws:sqs/queue:Queue", "queue-switchboard-fanout"),
        ("aws:sqs/queue:Queue", "queue-switchboard-fanout-dlq"),
        ("aws:iam/role:Role", "fanout"),
        ("aws:lambda/function:Function", "fanout"),
        ("aws:lambda/eventSourceMapping:EventSourceMapping", "fanout"),
        (alarm, "fanout-errors"),
        (alarm, "fanout-throttles"),
        (alarm, "queue-switchboard-fanout-dlq-depth"),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n.to_owned()))
    .collect()
}

#[tokio::test]
async fn the_fanout_function_consumes_its_queue_and_senders_get_its_url() {
    let run = run_example(false).await;
    let fanout = run.find("aws:lambda/function:Function", "fanout");
    assert_eq!(fanout.inputs["handler"], "fanout");
    // Reserved concurrency from config (`fanoutConcurrency`, default 10); no other
    // function reserves any.
    assert_eq!(fanout.inputs["reservedConcurrentExecutions"], 10);
    let route = run.find("aws:lambda/function:Function", "route-sendMessage");
    assert!(route.inputs.get("reservedConcurrentExecutions").is_none());
    let vars = env(&run, "fanout");
    for var in [
        "SWITCHBOARD_QUEUE_URL_SWITCHBOARD_FANOUT",
        "SWITCHBOARD_QUEUE_URL_SWITCHBOARD_FANOUT_DLQ",
        "SWITCHBOARD_MANAGEMENT_ENDPOINT",
        "SWITCHBOARD_ROOMS_TABLE",
    ] {
        assert!(vars.contains_key(var), "fanout lacks {var}: {vars:?}");
    }
    // A route that sends to rooms may shard: it gets the queue, not the DLQ.
    let sender = env(&run, "route-sendMessage");
    assert!(sender.contains_key("SWITCHBOARD_QUEUE_URL_SWITCHBOARD_FANOUT"));
    assert!(!sender.contains_key("SWITCHBOARD_QUEUE_URL_SWITCHBOARD_FANOUT_DLQ"));
    // A standard queue (no groups, no deduplication window, no FIFO throughput limit)
    // whose dead-letter queue is standard too, as SQS requires.
    let queue = run.find("aws:sqs/queue:Queue", "queue-switchboard-fanout");
    let dlq = run.find("aws:sqs/queue:Queue", "queue-switchboard-fanout-dlq");
    assert_eq!(queue.inputs["fifoQueue"], false);
    assert_eq!(dlq.inputs["fifoQueue"], false);
    assert_eq!(queue.inputs["name"], "chat-dev-switchboard-fanout");
    assert_eq!(dlq.inputs["name"], "chat-dev-switchboard-fanout-dlq");
    let redrive = json_str(&queue.inputs["redrivePolicy"]);
    assert_eq!(redrive["maxReceiveCount"], 5);
    assert_eq!(
        redrive["deadLetterTargetArn"],
        format!("arn:aws:sqs:{REGION}:{ACCOUNT}:chat-dev-switchboard-fanout-dlq")
    );
    assert!(dlq.inputs.get("redrivePolicy").is_none_or(Value::is_null));
    assert_eq!(
        sender["SWITCHBOARD_QUEUE_URL_SWITCHBOARD_FANOUT"],
        format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/chat-dev-switchboard-fanout")
    );
    assert_eq!(
        vars["SWITCHBOARD_QUEUE_URL_SWITCHBOARD_FANOUT_DLQ"],
        format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/chat-dev-switchboard-fanout-dlq")
    );
    // The app's own queues stay FIFO.
    for (q, _) in chat_queues() {
        let own = run.find("aws:sqs/queue:Queue", &format!("queue-{q}"));
        assert_eq!(own.inputs["fifoQueue"], true, "{q}");
    }
    let esm = run.find("aws:lambda/eventSourceMapping:EventSourceMapping", "fanout");
    assert_eq!(esm.inputs["batchSize"], 10);
    assert_eq!(
        esm.inputs["functionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
}

/// A function's environment (secret or not: the authorizer's and `http`'s hold the
/// origin secret, so the whole property is sent as a secret).
fn env(run: &Run, name: &str) -> serde_json::Map<String, Value> {
    plain(&run.find("aws:lambda/function:Function", name).inputs["environment"])["variables"]
        .as_object()
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn update_registers_every_resource_with_its_key_properties() {
    let run = run_example(false).await;
    let manifest = chat_app::app().manifest().unwrap();

    // Exactly the expected resources, once each, plus the stack.
    let names: BTreeSet<_> = run.names().into_iter().collect();
    let mut want = expected(&chat_routes(), has_http(), &chat_queues());
    want.extend(fanout_resources());
    assert_eq!(names, want);
    assert_eq!(
        run.names().len(),
        names.len(),
        "a resource was registered twice"
    );
    let stack: Vec<_> = run.resources.iter().filter(|r| !r.custom).collect();
    assert_eq!(stack.len(), 1);
    assert_eq!(stack[0].token, "pulumi:pulumi:Stack");

    for r in run.custom() {
        assert_no_nulls(&format!("{} {}", r.token, r.name), &r.inputs);
        assert!(
            !r.inputs.to_string().contains(UNKNOWN),
            "{} {} has unknowns in update mode",
            r.token,
            r.name
        );
        assert_eq!(r.version, "7.51.1", "{} {}", r.token, r.name);
    }

    // WebSocket API.
    let api = run.find("aws:apigatewayv2/api:Api", &ws_api_name());
    assert_eq!(
        api.inputs["apiKeySelectionExpression"],
        "$request.header.x-api-key"
    );
    assert_eq!(api.inputs["protocolType"], "WEBSOCKET");
    assert_eq!(
        api.inputs["routeSelectionExpression"],
        "$request.body.action"
    );
    assert_eq!(api.inputs["name"], format!("{P}-ws"));

    // Routes, integrations, permissions, route responses, functions.
    for route in &manifest.routes {
        let slug = slug(route.key);
        let f = run.find("aws:lambda/function:Function", &slug);
        assert_eq!(f.inputs["handler"], format!("ws:{}", route.key));
        assert_eq!(f.inputs["runtime"], "provided.al2023");
        assert_eq!(f.inputs["architectures"], json!(["arm64"]));
        assert_eq!(f.inputs["name"], format!("{P}-{slug}"));
        assert_eq!(
            f.inputs["memorySize"],
            json!(route.options.memory_mb.unwrap_or(256))
        );
        assert_eq!(
            f.inputs["timeout"],
            json!(route.options.timeout_secs.unwrap_or(10))
        );
        assert_eq!(
            f.inputs["code"]["4dabf18193072939515e22adb298388d"],
            "0def7320c3a5731c473e5ecbe6d01bc7"
        );
        assert!(
            f.inputs["code"]["path"]
                .as_str()
                .unwrap()
                .ends_with("bootstrap.zip")
        );
        let role = run.find("aws:iam/role:Role", &slug);
        assert_eq!(
            f.inputs["role"],
            format!(
                "arn:aws:iam::{ACCOUNT}:role/{}",
                role.inputs["name"].as_str().unwrap()
            )
        );
        let e = env(&run, &slug);
        assert_eq!(e["SWITCHBOARD_SERVICE"], P);
        assert!(
            !e.contains_key("SWITCHBOARD_ORIGIN_SECRET"),
            "only the authorizer and http check the origin"
        );
        assert_eq!(
            e["SWITCHBOARD_CONNECTIONS_TABLE"],
            "chat-dev-websocket-connections"
        );
        assert_eq!(e["SWITCHBOARD_ROOMS_TABLE"], "chat-dev-websocket-rooms");
        // The history table goes to exactly the functions that can send.
        assert_eq!(
            e.get("SWITCHBOARD_HISTORY_TABLE").map(|v| v.as_str()),
            route
                .capabilities
                .connections
                .then_some(Some("chat-dev-websocket-history")),
            "{slug}"
        );
        let api_id = &api.id;
        assert_eq!(
            e["SWITCHBOARD_MANAGEMENT_ENDPOINT"],
            format!("https://{api_id}.execute-api.{REGION}.amazonaws.com/ws")
        );

        let integration = run.find("aws:apigatewayv2/integration:Integration", &slug);
        assert_eq!(integration.inputs["integrationType"], "AWS_PROXY");
        assert_eq!(integration.inputs["apiId"], api.id.as_str());
        assert!(
            integration.inputs["integrationUri"]
                .as_str()
                .unwrap()
                .contains(&format!("function:{P}-{slug}/invocations"))
        );
        let r = run.find("aws:apigatewayv2/route:Route", &slug);
        assert_eq!(r.inputs["routeKey"], route.key);
        assert_eq!(
            r.inputs["target"],
            format!("integrations/{}", integration.id)
        );
        // No chat route needs an API key.
        assert!(r.inputs.get("apiKeyRequired").is_none(), "{slug}");
        if route.key == "$connect" {
            let authorizer = run.find("aws:apigatewayv2/authorizer:Authorizer", "ws");
            assert_eq!(r.inputs["authorizationType"], "CUSTOM");
            assert_eq!(r.inputs["authorizerId"], authorizer.id.as_str());
        } else {
            assert_eq!(r.inputs["authorizationType"], "NONE");
            assert!(r.inputs.get("authorizerId").is_none());
        }
        let perm = run.find("aws:lambda/permission:Permission", &slug);
        assert_eq!(perm.inputs["principal"], "apigateway.amazonaws.com");
        assert_eq!(perm.inputs["function"], format!("{P}-{slug}"));
        assert_eq!(
            perm.inputs["sourceArn"],
            format!(
                "arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/{}",
                route.key
            )
        );
        if !matches!(route.key, "$connect" | "$disconnect") {
            let rr = run.find("aws:apigatewayv2/routeResponse:RouteResponse", &slug);
            assert_eq!(rr.inputs["routeId"], r.id.as_str());
            assert_eq!(rr.inputs["routeResponseKey"], "$default");
            assert_eq!(r.inputs["routeResponseSelectionExpression"], "$default");
        }
    }

    // Authorizer and pre-sign-up functions.
    let pool = run.find("aws:cognito/userPool:UserPool", "users");
    let client = run.find("aws:cognito/userPoolClient:UserPoolClient", "web");
    let auth = run.find("aws:lambda/function:Function", "authorizer");
    assert_eq!(auth.inputs["handler"], "ws:authorizer");
    let e = env(&run, "authorizer");
    let issuer = format!("https://cognito-idp.{REGION}.amazonaws.com/{}", pool.id);
    assert_eq!(e["SWITCHBOARD_JWT_ISSUER"], issuer.as_str());
    assert_eq!(
        e["SWITCHBOARD_JWKS_URL"],
        format!("{issuer}/.well-known/jwks.json")
    );
    assert_eq!(e["SWITCHBOARD_JWT_AUDIENCE"], client.id.as_str());
    assert_eq!(e["SWITCHBOARD_ORIGIN_SECRET"], ORIGIN_SECRET);
    unsecret(&auth.inputs["environment"]);
    assert!(!e.contains_key("SWITCHBOARD_ORIGIN_SECRET_PREVIOUS"));
    let authorizer = run.find("aws:apigatewayv2/authorizer:Authorizer", "ws");
    assert_eq!(authorizer.inputs["authorizerType"], "REQUEST");
    assert!(
        authorizer.inputs["authorizerUri"]
            .as_str()
            .unwrap()
            .contains("function:chat-dev-authorizer/invocations")
    );
    let perm = run.find("aws:lambda/permission:Permission", "authorizer");
    assert_eq!(
        perm.inputs["sourceArn"],
        format!(
            "arn:aws:execute-api:{REGION}:{ACCOUNT}:{}/authorizers/{}",
            api.id, authorizer.id
        )
    );
    let pre = run.find("aws:lambda/function:Function", "pre-signup");
    assert_eq!(pre.inputs["handler"], "cognito:pre-signup");
    assert_eq!(
        env(&run, "pre-signup")["SWITCHBOARD_AUTO_CONFIRM_USERS"],
        "true"
    );
    assert_eq!(
        pool.inputs["lambdaConfig"]["preSignUp"],
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:chat-dev-pre-signup")
    );
    let perm = run.find("aws:lambda/permission:Permission", "pre-signup");
    assert_eq!(perm.inputs["principal"], "cognito-idp.amazonaws.com");
    assert_eq!(client.inputs["userPoolId"], pool.id.as_str());
    assert_eq!(client.inputs["generateSecret"], false);
    // The reference design's token and temporary password lifetimes, set explicitly.
    assert_eq!(client.inputs["refreshTokenValidity"], 30);
    assert_eq!(
        client.inputs["tokenValidityUnits"],
        json!({"refreshToken": "days"})
    );
    assert_eq!(
        pool.inputs["passwordPolicy"]["temporaryPasswordValidityDays"],
        7
    );

    // Stage and deployment.
    let stage = run.find("aws:apigatewayv2/stage:Stage", "ws");
    let deployment = run.find("aws:apigatewayv2/deployment:Deployment", "ws");
    assert_eq!(stage.inputs["name"], "ws");
    assert_eq!(stage.inputs["deploymentId"], deployment.id.as_str());
    assert_eq!(
        stage.inputs["defaultRouteSettings"]["throttlingRateLimit"],
        200
    );
    assert_eq!(
        stage.inputs["defaultRouteSettings"]["throttlingBurstLimit"],
        100
    );
    let logs = run.find("aws:cloudwatch/logGroup:LogGroup", "ws-access");
    assert_eq!(
        stage.inputs["accessLogSettings"]["destinationArn"],
        logs_arn(logs)
    );
    let triggers = &deployment.inputs["triggers"];
    assert_eq!(triggers["routes"].as_str().unwrap().len(), 8);
    assert_eq!(triggers["snapshot"].as_str().unwrap().len(), 64);
    assert_eq!(triggers["artifact"].as_str().unwrap().len(), 64);
    assert!(
        stage.inputs.get("routeSettings").is_none(),
        "no chat route is throttled"
    );
    // The deployment comes after every route (it snapshots them).
    let pos = |t: &str, n: &str| {
        run.resources
            .iter()
            .position(|r| r.token == t && r.name == n)
            .unwrap()
    };
    let dep_pos = pos("aws:apigatewayv2/deployment:Deployment", "ws");
    for r in run
        .all("aws:apigatewayv2/route:Route")
        .into_iter()
        .filter(|r| r.inputs["apiId"] == api.id.as_str())
    {
        assert!(
            pos("aws:apigatewayv2/route:Route", &r.name) < dep_pos,
            "route {} after the deployment",
            r.name
        );
    }
    for r in run.all("aws:apigatewayv2/routeResponse:RouteResponse") {
        assert!(pos("aws:apigatewayv2/routeResponse:RouteResponse", &r.name) < dep_pos);
    }
    assert!(
        pos("aws:apigateway/account:Account", "apigateway-account")
            < pos("aws:apigatewayv2/stage:Stage", "ws")
    );

    // Tables: the runtime's schema.
    let c = run.find("aws:dynamodb/table:Table", "connections");
    assert_eq!(c.inputs["name"], "chat-dev-websocket-connections");
    assert_eq!(c.inputs["hashKey"], "username");
    assert_eq!(c.inputs["rangeKey"], "sessionKey");
    assert_eq!(c.inputs["billingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        c.inputs["globalSecondaryIndexes"],
        json!([{"name": "chat-dev-websocket-connections-index-connection", "hashKey": "connectionId", "projectionType": "ALL"}])
    );
    let r = run.find("aws:dynamodb/table:Table", "rooms");
    assert_eq!(r.inputs["hashKey"], "room");
    assert_eq!(r.inputs["rangeKey"], "connectionId");
    assert_eq!(
        r.inputs["globalSecondaryIndexes"],
        json!([{"name": "chat-dev-websocket-rooms-index-connection", "hashKey": "connectionId", "rangeKey": "room", "projectionType": "ALL"}])
    );
    assert_eq!(
        r.inputs["ttl"],
        json!({"attributeName": "expires", "enabled": true})
    );
    assert_eq!(r.inputs["serverSideEncryption"], json!({"enabled": true}));
    let h = run.find("aws:dynamodb/table:Table", "history");
    assert_eq!(h.inputs["name"], "chat-dev-websocket-history");
    assert_eq!(
        (&h.inputs["hashKey"], &h.inputs["rangeKey"]),
        (&json!("room"), &json!("seq"))
    );
    assert_eq!(
        h.inputs["attributes"],
        json!([{"name": "room", "type": "S"}, {"name": "seq", "type": "N"}])
    );
    assert_eq!(
        h.inputs["ttl"],
        json!({"attributeName": "expires", "enabled": true})
    );
    assert_eq!(h.inputs["serverSideEncryption"], json!({"enabled": true}));

    // The page and CloudFront.
    let bucket = run.find("aws:s3/bucket:Bucket", "web");
    let object = run.find("aws:s3/bucketObjectv2:BucketObjectv2", "index");
    assert_eq!(object.inputs["content"], chat_app::WEB_PAGE);
    assert_eq!(object.inputs["bucket"], bucket.id.as_str());
    // The page's scripts (App::web_asset) sit next to it, at the paths it imports.
    for (name, key, content) in [
        ("asset-chat.js", "chat.js", chat_app::CHAT_JS),
        (
            "asset-switchboard-client.js",
            "switchboard-client.js",
            chat_app::CLIENT_JS,
        ),
    ] {
        let asset = run.find("aws:s3/bucketObjectv2:BucketObjectv2", name);
        assert_eq!(asset.inputs["key"], key);
        assert_eq!(asset.inputs["content"], content);
        assert_eq!(
            asset.inputs["contentType"],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(asset.inputs["bucket"], bucket.id.as_str());
    }
    let pab = run.find(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "web",
    );
    for k in [
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ] {
        assert_eq!(pab.inputs[k], true);
    }
    let d = run.find("aws:cloudfront/distribution:Distribution", "site");
    assert_eq!(d.inputs["aliases"], json!(["chat.example.com"]));
    let origins = unsecret(&d.inputs["origins"]).as_array().unwrap();
    let oac = run.find(
        "aws:cloudfront/originAccessControl:OriginAccessControl",
        "web",
    );
    assert_eq!(origins[0]["originAccessControlId"], oac.id.as_str());
    assert_eq!(
        origins[0]["domainName"],
        format!("{}.s3.{REGION}.amazonaws.com", bucket.id)
    );
    assert_eq!(
        origins[1]["domainName"],
        format!("{}.execute-api.{REGION}.amazonaws.com", api.id)
    );
    let behaviors = d.inputs["orderedCacheBehaviors"].as_array().unwrap();
    let patterns: Vec<_> = behaviors
        .iter()
        .map(|b| b["pathPattern"].as_str().unwrap())
        .collect();
    if has_http() {
        assert_eq!(patterns, ["/ws", "/ws/*", "/http/*"]);
    } else {
        assert_eq!(patterns, ["/ws", "/ws/*"]);
    }
    let orp = run.find(
        "aws:cloudfront/originRequestPolicy:OriginRequestPolicy",
        "apis",
    );
    assert_eq!(
        orp.inputs["headersConfig"],
        json!({"headerBehavior": "allExcept", "headers": {"items": ["host"]}})
    );
    assert_eq!(
        orp.inputs["cookiesConfig"],
        json!({"cookieBehavior": "none"})
    );
    assert_eq!(
        orp.inputs["queryStringsConfig"],
        json!({"queryStringBehavior": "all"})
    );
    for b in behaviors {
        assert_eq!(b["cachePolicyId"], "4135ea2d-6df8-44a3-9df3-4b5a84be39ad");
        assert_eq!(b["originRequestPolicyId"], orp.id.as_str());
        let origin = if b["pathPattern"] == "/http/*" {
            "http"
        } else {
            "ws"
        };
        let cached = if origin == "http" {
            json!(["GET", "HEAD", "OPTIONS"])
        } else {
            json!(["GET", "HEAD"])
        };
        assert_eq!(b["cachedMethods"], cached);
        assert_eq!(b["targetOriginId"], origin);
        assert!(origins.iter().any(|o| o["originId"] == origin));
    }
    assert_eq!(d.inputs["defaultCacheBehavior"]["targetOriginId"], "web");

    // The HTTP API, when the app has one.
    if has_http() {
        let http = run.find("aws:apigatewayv2/api:Api", "http");
        assert_eq!(
            env(&run, "http")["SWITCHBOARD_ORIGIN_SECRET"],
            ORIGIN_SECRET
        );
        assert_eq!(http.inputs["protocolType"], "HTTP");
        let jwt = run.find("aws:apigatewayv2/authorizer:Authorizer", "http");
        assert_eq!(jwt.inputs["authorizerType"], "JWT");
        assert_eq!(jwt.inputs["jwtConfiguration"]["issuer"], issuer.as_str());
        assert_eq!(
            jwt.inputs["jwtConfiguration"]["audiences"],
            json!([client.id])
        );
        let route = run.find("aws:apigatewayv2/route:Route", "http");
        assert_eq!(route.inputs["routeKey"], "$default");
        assert_eq!(route.inputs["authorizationType"], "JWT");
        assert_eq!(route.inputs["authorizerId"], jwt.id.as_str());
        let integration = run.find("aws:apigatewayv2/integration:Integration", "http");
        assert_eq!(
            route.inputs["target"],
            format!("integrations/{}", integration.id)
        );
        assert_eq!(integration.inputs["payloadFormatVersion"], "2.0");
        let stage = run.find("aws:apigatewayv2/stage:Stage", "http");
        assert_eq!(stage.inputs["name"], "$default");
        assert_eq!(stage.inputs["autoDeploy"], true);
        let f = run.find("aws:lambda/function:Function", "http");
        assert_eq!(f.inputs["handler"], "http");
        let e = env(&run, "http");
        assert_eq!(e["SWITCHBOARD_JWT_ISSUER"], issuer.as_str());
        assert_eq!(
            e["SWITCHBOARD_CONNECTIONS_TABLE"],
            "chat-dev-websocket-connections"
        );
        let perm = run.find("aws:lambda/permission:Permission", "http");
        assert_eq!(
            perm.inputs["sourceArn"],
            format!(
                "arn:aws:execute-api:{REGION}:{ACCOUNT}:{}/*/$default",
                http.id
            )
        );
        assert_eq!(run.outputs["httpApiUrl"], "https://chat.example.com/http");
        assert_eq!(
            origins[2]["domainName"],
            format!("{}.execute-api.{REGION}.amazonaws.com", http.id)
        );
    }
    let cert_validation = run.find(
        "aws:acm/certificateValidation:CertificateValidation",
        "site",
    );
    let cert = run.find("aws:acm/certificate:Certificate", "site");
    assert_eq!(
        d.inputs["viewerCertificate"]["acmCertificateArn"],
        cert_validation.inputs["certificateArn"]
    );
    assert_eq!(
        cert_validation.inputs["certificateArn"].as_str().unwrap(),
        format!("arn:aws:acm:{REGION}:{ACCOUNT}:site/{}", cert.id)
    );
    let acl = run.find("aws:wafv2/webAcl:WebAcl", "web");
    assert_eq!(
        d.inputs["webAclId"],
        format!("arn:aws:wafv2:{REGION}:{ACCOUNT}:web/{}", acl.id)
    );

    // us-east-1 things use the us-east-1 provider.
    let provider = run.find("pulumi:providers:aws", "us-east-1");
    assert_eq!(provider.inputs, json!({"region": "us-east-1"}));
    let provider_ref = format!(
        "urn:pulumi:{STACK}::{PROJECT}::pulumi:providers:aws::us-east-1::{}",
        provider.id
    );
    for (t, n) in [
        ("aws:acm/certificate:Certificate", "site"),
        (
            "aws:acm/certificateValidation:CertificateValidation",
            "site",
        ),
        ("aws:wafv2/webAcl:WebAcl", "web"),
        ("aws:wafv2/ipSet:IpSet", "allowed"),
        ("aws:wafv2/ipSet:IpSet", "blocked"),
    ] {
        assert_eq!(run.find(t, n).provider, provider_ref, "{t} {n}");
    }
    assert_eq!(
        run.find("aws:lambda/function:Function", "authorizer")
            .provider,
        ""
    );

    // WAF: block list, rate rule, allow list with default block.
    assert_eq!(acl.inputs["scope"], "CLOUDFRONT");
    assert_eq!(acl.inputs["defaultAction"], json!({"block": {}}));
    let rules = acl.inputs["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[1]["statement"]["rateBasedStatement"]["limit"], 1500);
    assert_eq!(
        run.find("aws:wafv2/ipSet:IpSet", "allowed").inputs["addresses"],
        json!(["203.0.113.0/24"])
    );
    assert_eq!(
        run.find("aws:wafv2/ipSet:IpSet", "blocked").inputs["addresses"],
        json!(["198.51.100.7/32"])
    );

    // DNS: validation record from the certificate, aliases to the distribution.
    let v = run.find("aws:route53/record:Record", "site-validation");
    assert_eq!(v.inputs["name"], "_abc.chat.example.com.");
    assert_eq!(v.inputs["records"], json!(["_xyz.acm-validations.aws."]));
    let a = run.find("aws:route53/record:Record", "site-A");
    assert_eq!(a.inputs["aliases"][0]["name"], "d1234abcd.cloudfront.net");
    assert_eq!(a.inputs["zoneId"], "Z0123456789ABC");

    // Outputs.
    let o = &run.outputs;
    assert_eq!(o["wssUrl"], "wss://chat.example.com/ws");
    assert_eq!(o["httpsUrl"], "https://chat.example.com/");
    assert_eq!(
        o["managementEndpoint"],
        format!("https://{}.execute-api.{REGION}.amazonaws.com/ws", api.id)
    );
    assert_eq!(o["connectionsTable"], "chat-dev-websocket-connections");
    assert_eq!(o["roomsTable"], "chat-dev-websocket-rooms");
    assert_eq!(o["userPoolId"], pool.id.as_str());
    assert_eq!(o["userPoolClientId"], client.id.as_str());
    // Only CloudFront's URLs reach the APIs: no raw execute-api URL to connect to.
    assert!(o.get("websocketApiUrl").is_none());
    for (k, v) in o.as_object().unwrap() {
        if k != "managementEndpoint" {
            assert!(!v.to_string().contains("execute-api"), "output {k}: {v}");
        }
    }
    let topic = run.find("aws:sns/topic:Topic", "alarms");
    assert_eq!(
        o["alarmTopicArn"],
        format!("arn:aws:sns:{REGION}:{ACCOUNT}:alarms/{}", topic.id)
    );
    assert!(o.get("usagePlanId").is_none(), "no route needs a key");
    for (q, _) in chat_queues() {
        let queue = run.find("aws:sqs/queue:Queue", &format!("queue-{q}"));
        assert_eq!(
            o["queueUrls"][&q],
            format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/chat-dev-{q}.fifo")
        );
        assert_eq!(queue.inputs["name"], format!("chat-dev-{q}.fifo"));
    }
}

#[tokio::test]
async fn queues_get_a_dlq_a_consumer_and_their_producers() {
    let run = run_example(false).await;
    let manifest = serde_json::to_value(chat_app::app().manifest().unwrap()).unwrap();
    let queues = manifest
        .get("queues")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for q in &queues {
        let name = q["name"].as_str().unwrap();
        let queue = run.find("aws:sqs/queue:Queue", &format!("queue-{name}"));
        let dlq = run.find("aws:sqs/queue:Queue", &format!("queue-{name}-dlq"));
        assert_eq!(queue.inputs["fifoQueue"], true);
        assert_eq!(dlq.inputs["fifoQueue"], true);
        assert_eq!(dlq.inputs["name"], format!("chat-dev-{name}-dlq.fifo"));
        let redrive = json_str(&queue.inputs["redrivePolicy"]);
        assert_eq!(redrive["maxReceiveCount"], 5);
        assert_eq!(
            redrive["deadLetterTargetArn"],
            format!("arn:aws:sqs:{REGION}:{ACCOUNT}:chat-dev-{name}-dlq.fifo")
        );
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:chat-dev-{name}.fifo");
        let var = switchboard::queue::queue_url_env_var(name);
        for producer in q["producers"].as_array().unwrap() {
            let slug = slug(producer.as_str().unwrap());
            assert_eq!(
                env(&run, &slug)[&var],
                format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/chat-dev-{name}.fifo")
            );
            let policy =
                run.find("aws:iam/role:Role", &slug).inputs["inlinePolicies"][0]["policy"].clone();
            let doc = json_str(&policy);
            assert!(
                doc["Statement"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["Action"] == json!(["sqs:SendMessage"])
                        && s["Resource"] == json!([queue_arn])),
                "{doc}"
            );
        }
        if let Some(c) = q["consumer"].as_object() {
            let f = run.find("aws:lambda/function:Function", &format!("queue-{name}"));
            assert_eq!(f.inputs["handler"], format!("queue:{name}"));
            let timeout = c
                .get("options")
                .and_then(|o| o.get("timeoutSecs"))
                .or(c.get("timeoutSecs"))
                .and_then(Value::as_u64)
                .unwrap_or(10);
            assert_eq!(f.inputs["timeout"], timeout);
            assert!(queue.inputs["visibilityTimeoutSeconds"].as_u64().unwrap() >= 6 * timeout);
            let e = env(&run, &format!("queue-{name}"));
            assert!(e.contains_key("SWITCHBOARD_MANAGEMENT_ENDPOINT"));
            let m = run.find(
                "aws:lambda/eventSourceMapping:EventSourceMapping",
                &format!("queue-{name}"),
            );
            assert_eq!(m.inputs["eventSourceArn"], queue_arn.as_str());
            assert_eq!(
                m.inputs["functionResponseTypes"],
                json!(["ReportBatchItemFailures"])
            );
            assert_eq!(
                m.inputs["functionName"],
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:chat-dev-queue-{name}")
            );
            let doc = json_str(
                &run.find("aws:iam/role:Role", &format!("queue-{name}"))
                    .inputs["inlinePolicies"][0]["policy"],
            );
            assert!(doc.to_string().contains("sqs:ReceiveMessage"));
            assert!(doc.to_string().contains("sqs:ChangeMessageVisibility"));
        }
    }
}

fn logs_arn(r: &Registered) -> String {
    format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:{}/{}", r.name, r.id)
}

#[tokio::test]
async fn preview_registers_the_same_resources_with_unknowns() {
    let update = run_example(false).await;
    let preview = run_example(true).await;
    assert_eq!(preview.names(), update.names());
    // Values known before anything exists are sent as such ...
    let api = preview.find("aws:apigatewayv2/api:Api", &ws_api_name());
    assert_eq!(api.inputs["protocolType"], "WEBSOCKET");
    let c = preview.find("aws:dynamodb/table:Table", "connections");
    assert_eq!(
        c.inputs,
        update
            .find("aws:dynamodb/table:Table", "connections")
            .inputs
    );
    // ... and values computed from other resources are unknown, never null.
    let f = preview.find("aws:lambda/function:Function", "route-echo");
    assert_eq!(f.inputs["role"], UNKNOWN);
    assert_eq!(f.inputs["handler"], "ws:echo");
    assert_eq!(
        preview
            .find("aws:apigatewayv2/route:Route", "route-echo")
            .inputs["apiId"],
        UNKNOWN
    );
    for r in preview.custom() {
        assert_no_nulls(&format!("{} {}", r.token, r.name), &r.inputs);
    }
}

/// The fixture's stack configuration: the base one plus an API key.
fn fixture_config() -> std::collections::BTreeMap<String, String> {
    let mut config = base_config();
    config.insert("switchboard:apiKeys".into(), "partner-a".into());
    config
}

#[tokio::test]
async fn one_more_route_adds_exactly_its_own_resources() {
    let base = run_example(false).await;
    let fixture = run(
        env!("CARGO_BIN_EXE_switchboard-deploy-fixture"),
        false,
        fixture_config(),
    )
    .await;
    assert!(fixture.success, "{}", fixture.stderr);
    let api_token = "aws:apigatewayv2/api:Api";
    let without_api = |r: &Run| -> BTreeSet<(String, String)> {
        r.names()
            .into_iter()
            .filter(|(t, _)| t != api_token)
            .collect()
    };
    let (before, after) = (without_api(&base), without_api(&fixture));
    assert!(before.is_subset(&after));
    let added: BTreeSet<(String, String)> = after.difference(&before).cloned().collect();
    let s = "route-extraRoute".to_owned();
    let mut want: BTreeSet<(String, String)> = [
        "aws:apigatewayv2/route:Route",
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/routeResponse:RouteResponse",
        "aws:lambda/permission:Permission",
        "aws:lambda/function:Function",
        "aws:iam/role:Role",
    ]
    .into_iter()
    .map(|t| (t.to_owned(), s.clone()))
    .collect();
    // Its alarms; and since it needs an API key: the usage plan and the configured key.
    for (t, n) in [
        (
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            format!("{s}-errors"),
        ),
        (
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            format!("{s}-throttles"),
        ),
        ("aws:apigateway/usagePlan:UsagePlan", "ws".to_owned()),
        ("aws:apigateway/apiKey:ApiKey", "key-partner-a".to_owned()),
        (
            "aws:apigateway/usagePlanKey:UsagePlanKey",
            "key-partner-a".to_owned(),
        ),
    ] {
        want.insert((t.to_owned(), n));
    }
    assert_eq!(added, want);
    // A different route set is a different WebSocket API (see ws_api's docs).
    let apis = |r: &Run| {
        r.all(api_token)
            .iter()
            .filter(|a| a.inputs["protocolType"] == "WEBSOCKET")
            .map(|a| a.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(apis(&base).len(), 1);
    assert_ne!(apis(&base), apis(&fixture));
    let f = fixture.find("aws:lambda/function:Function", &s);
    assert_eq!(f.inputs["handler"], "ws:extraRoute");
    assert_eq!(f.inputs["memorySize"], 512);
    assert_eq!(f.inputs["timeout"], 7);
    // The new route forces a new deployment.
    let trig = |r: &Run| {
        r.find("aws:apigatewayv2/deployment:Deployment", "ws")
            .inputs["triggers"]
            .clone()
    };
    assert_ne!(trig(&base), trig(&fixture));

    // API keys: checked on $connect only (API Gateway's WebSocket behaviour).
    let api = fixture.find(api_token, &apis(&fixture)[0]);
    for r in fixture.all("aws:apigatewayv2/route:Route") {
        let required = r.inputs.get("apiKeyRequired").cloned();
        if r.inputs["routeKey"] == "$connect" {
            assert_eq!(required, Some(json!(true)));
        } else {
            assert_eq!(required, None, "{}", r.name);
        }
    }
    // Per-route throttling: the stage's route settings.
    let stage = fixture.find("aws:apigatewayv2/stage:Stage", "ws");
    assert_eq!(
        stage.inputs["routeSettings"],
        json!([{"routeKey": "extraRoute", "throttlingRateLimit": 50, "throttlingBurstLimit": 20}])
    );
    let plan = fixture.find("aws:apigateway/usagePlan:UsagePlan", "ws");
    assert_eq!(
        plan.inputs["apiStages"],
        json!([{"apiId": api.id, "stage": "ws"}])
    );
    assert_eq!(
        plan.inputs["throttleSettings"],
        json!({"rateLimit": 100, "burstLimit": 200})
    );
    assert_eq!(
        plan.inputs["quotaSettings"],
        json!({"limit": 100000, "period": "DAY"})
    );
    let key = fixture.find("aws:apigateway/apiKey:ApiKey", "key-partner-a");
    assert_eq!(key.inputs["name"], "chat-dev-partner-a");
    assert_eq!(key.inputs["enabled"], true);
    let plan_key = fixture.find("aws:apigateway/usagePlanKey:UsagePlanKey", "key-partner-a");
    assert_eq!(plan_key.inputs["keyId"], key.id.as_str());
    assert_eq!(plan_key.inputs["usagePlanId"], plan.id.as_str());
    assert_eq!(plan_key.inputs["keyType"], "API_KEY");
    let pos = |t: &str, n: &str| {
        fixture
            .resources
            .iter()
            .position(|r| r.token == t && r.name == n)
            .unwrap()
    };
    assert!(
        pos("aws:apigatewayv2/stage:Stage", "ws") < pos("aws:apigateway/usagePlan:UsagePlan", "ws")
    );
    assert_eq!(fixture.outputs["usagePlanId"], plan.id.as_str());
    assert_eq!(fixture.outputs["apiKeyIds"], json!({"partner-a": key.id}));
}

#[tokio::test]
async fn bad_configuration_fails_with_every_problem() {
    let mut config = base_config();
    config.insert("switchboard:rateLimit".into(), "many".into());
    config.remove("aws:region");
    let run = run(env!("CARGO_BIN_EXE_switchboard-deploy"), false, config).await;
    assert!(!run.success);
    assert!(run.stderr.contains("rateLimit"), "{}", run.stderr);
    assert!(run.stderr.contains("aws:region"), "{}", run.stderr);
    assert!(
        run.custom().next().is_none(),
        "nothing is registered with a bad configuration"
    );
}

#[tokio::test]
async fn a_missing_artifact_is_reported() {
    let mut config = base_config();
    config.insert(
        "switchboard:artifact".into(),
        "/nonexistent/bootstrap.zip".into(),
    );
    let run = run(env!("CARGO_BIN_EXE_switchboard-deploy"), true, config).await;
    assert!(!run.success);
    assert!(run.stderr.contains("cargo lambda build"), "{}", run.stderr);
}
