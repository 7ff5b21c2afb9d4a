//! Policy checks over what the real program registered (update mode): IAM without `*`
//! actions, a role for every Lambda, an integration and a permission for every route,
//! HTTPS-only CloudFront, a connections table with SSE and TTL, and no way to an API
//! around CloudFront (and its WAF).

// Helpers outside #[test] functions unwrap too: a test failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        other => panic!("a statement without actions: {other}"),
    }
}

#[tokio::test]
async fn the_stage_passes_the_policy_checks() {
    let run = run_example(false).await;

    // IAM: no `*` in any action, no `*` resource; inline policies and the bucket policy.
    let mut documents: Vec<(String, Value)> = Vec::new();
    for role in run.all("aws:iam/role:Role") {
        documents.push((
            format!("trust of {}", role.name),
            json_str(&role.inputs["assumeRolePolicy"]),
        ));
        for p in role
            .inputs
            .get("inlinePolicies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            documents.push((format!("policy of {}", role.name), json_str(&p["policy"])));
        }
    }
    for p in run.all("aws:s3/bucketPolicy:BucketPolicy") {
        documents.push(("bucket policy".into(), json_str(&p.inputs["policy"])));
    }
    assert!(documents.len() > 10);
    let mut checked = 0;
    for (what, doc) in &documents {
        for s in doc["Statement"].as_array().unwrap() {
            for a in actions(s) {
                assert!(!a.contains('*'), "{what}: action {a} has a wildcard");
                checked += 1;
            }
            if let Some(resources) = s.get("Resource") {
                for r in resources.as_array().unwrap() {
                    assert_ne!(r, "*", "{what}: a statement on every resource");
                }
            }
        }
    }
    assert!(checked > 20);

    // Least privilege: only functions whose handlers send get ManageConnections POST.
    let manifest = chat_app::app().manifest().unwrap();
    for route in &manifest.routes {
        let slug = match route.key {
            "$connect" => "ws-connect".to_owned(),
            "$disconnect" => "ws-disconnect".to_owned(),
            "$default" => "ws-default".to_owned(),
            k => format!("route-{k}"),
        };
        let sends = serde_json::to_value(route.options)
            .unwrap()
            .get("forward")
            .is_some();
        let role = run.find("aws:iam/role:Role", &slug);
        let text = role.inputs["inlinePolicies"].to_string();
        assert_eq!(
            text.contains("/ws/POST/@connections/*"),
            route.capabilities.connections,
            "{slug}"
        );
        // `Scan` is only in the connection store's statement (`PutItem` is in the
        // history table's too).
        assert_eq!(
            text.contains("dynamodb:Scan"),
            route.capabilities.store,
            "{slug}"
        );
        // The history table: exactly the functions that can send (the chat keeps
        // history in every room; `resume` reads it).
        assert_eq!(
            text.contains("dynamodb:UpdateItem"),
            route.capabilities.connections,
            "{slug}"
        );
        // A function that posts and reads the store may shard a send onto the fan-out
        // queue (issue 17).
        let shards = route.capabilities.connections && route.capabilities.store;
        assert_eq!(text.contains("sqs:SendMessage"), sends || shards, "{slug}");
        assert!(
            !text.contains("sqs:ReceiveMessage"),
            "{slug} consumes no queue"
        );
    }
    let auth = run.find("aws:iam/role:Role", "authorizer").inputs["inlinePolicies"].to_string();
    assert!(
        !auth.contains("dynamodb:") && !auth.contains("execute-api:"),
        "{auth}"
    );

    // Every Lambda has a role registered in the stack.
    for f in run.all("aws:lambda/function:Function") {
        let role_arn = f.inputs["role"].as_str().unwrap();
        assert!(
            run.all("aws:iam/role:Role")
                .iter()
                .any(|r| role_arn
                    .ends_with(&format!(":role/{}", r.inputs["name"].as_str().unwrap()))),
            "function {} has role {role_arn}, not one of the stack's",
            f.name
        );
    }

    // Every route has an integration (to a function) and a permission for that function.
    for route in run.all("aws:apigatewayv2/route:Route") {
        let target = route.inputs["target"].as_str().unwrap();
        let id = target.strip_prefix("integrations/").unwrap();
        let integration = run
            .by_id("aws:apigatewayv2/integration:Integration", id)
            .unwrap_or_else(|| panic!("route {} targets no integration", route.name));
        assert_eq!(integration.inputs["apiId"], route.inputs["apiId"]);
        let uri = integration.inputs["integrationUri"].as_str().unwrap();
        let function = run
            .all("aws:lambda/function:Function")
            .into_iter()
            .find(|f| uri.contains(&format!("function:{}/", f.inputs["name"].as_str().unwrap())))
            .unwrap_or_else(|| {
                panic!(
                    "integration {} invokes no function of the stack",
                    integration.name
                )
            });
        let key = route.inputs["routeKey"].as_str().unwrap();
        let api_id = route.inputs["apiId"].as_str().unwrap();
        assert!(
            run.all("aws:lambda/permission:Permission").iter().any(|p| {
                p.inputs["function"] == function.inputs["name"]
                    && p.inputs["principal"] == "apigateway.amazonaws.com"
                    && p.inputs["sourceArn"].as_str().unwrap()
                        == format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/{key}")
            }),
            "route {key} has no permission scoped to its API for {}",
            function.name
        );
    }

    // CloudFront: HTTPS only, TLS 1.2 minimum, HTTPS to the origins.
    let d = run.find("aws:cloudfront/distribution:Distribution", "site");
    let mut behaviors = vec![d.inputs["defaultCacheBehavior"].clone()];
    behaviors.extend(
        d.inputs["orderedCacheBehaviors"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    for b in &behaviors {
        let policy = b["viewerProtocolPolicy"].as_str().unwrap();
        assert!(matches!(policy, "redirect-to-https" | "https-only"), "{b}");
    }
    assert_eq!(
        d.inputs["viewerCertificate"]["minimumProtocolVersion"],
        "TLSv1.2_2021"
    );
    for o in plain(&d.inputs["origins"]).as_array().unwrap() {
        if let Some(c) = o.get("customOriginConfig") {
            assert_eq!(c["originProtocolPolicy"], "https-only", "{o}");
            assert_eq!(c["originSslProtocols"], serde_json::json!(["TLSv1.2"]));
        } else {
            assert!(
                o.get("originAccessControlId").is_some(),
                "the S3 origin is read with OAC: {o}"
            );
        }
    }

    // The connections table: SSE and TTL on.
    let t = run.find("aws:dynamodb/table:Table", "connections");
    assert_eq!(t.inputs["serverSideEncryption"]["enabled"], true);
    assert_eq!(t.inputs["ttl"]["enabled"], true);
    assert_eq!(t.inputs["ttl"]["attributeName"], "expires");
}

/// The origin secret a function requires (its `SWITCHBOARD_ORIGIN_SECRET`), if any.
fn origin_secret_of(run: &Run, function_name: &str) -> Option<String> {
    let f = run
        .all("aws:lambda/function:Function")
        .into_iter()
        .find(|f| f.inputs["name"] == function_name)?;
    plain(&f.inputs["environment"])["variables"]["SWITCHBOARD_ORIGIN_SECRET"]
        .as_str()
        .map(str::to_owned)
}

/// The function an integration invokes (by its name), from its URI.
fn integration_function(run: &Run, integration_id: &str) -> String {
    let integration = run
        .by_id("aws:apigatewayv2/integration:Integration", integration_id)
        .unwrap();
    let uri = integration.inputs["integrationUri"].as_str().unwrap();
    let name = uri.split("function:").nth(1).unwrap();
    name.split('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn no_api_is_reachable_around_cloudfront() {
    for (bin, config) in [
        (env!("CARGO_BIN_EXE_switchboard-deploy"), base_config()),
        (env!("CARGO_BIN_EXE_switchboard-deploy-fixture"), {
            let mut c = base_config();
            c.insert("switchboard:apiKeys".into(), "partner-a".into());
            c
        }),
    ] {
        let run = run(bin, false, config).await;
        assert!(run.success, "{}", run.stderr);
        let d = run.find("aws:cloudfront/distribution:Distribution", "site");
        // The origins are a secret as a whole: they carry the origin secret.
        let origins = unsecret(&d.inputs["origins"]).as_array().unwrap().clone();
        let apis = run.all("aws:apigatewayv2/api:Api");
        assert!(!apis.is_empty());
        for api in &apis {
            // 1. CloudFront reaches the API only with the secret header.
            let host = format!("{}.execute-api.{REGION}.amazonaws.com", api.id);
            let origin = origins
                .iter()
                .find(|o| o["domainName"] == host.as_str())
                .unwrap_or_else(|| panic!("API {} is not a CloudFront origin", api.name));
            assert_eq!(
                origin["customHeaders"],
                serde_json::json!([{"name": "x-switchboard-origin", "value": ORIGIN_SECRET}]),
                "{}",
                api.name
            );
            // 2. Whatever reaches the API first checks that header.
            let routes: Vec<_> = run
                .all("aws:apigatewayv2/route:Route")
                .into_iter()
                .filter(|r| r.inputs["apiId"] == api.id.as_str())
                .collect();
            assert!(!routes.is_empty());
            if api.inputs["protocolType"] == "WEBSOCKET" {
                // Every message arrives on a connection that passed $connect, and
                // $connect passes the REQUEST authorizer first.
                let connect = routes
                    .iter()
                    .find(|r| r.inputs["routeKey"] == "$connect")
                    .expect("a WebSocket API without $connect lets anyone connect");
                assert_eq!(connect.inputs["authorizationType"], "CUSTOM");
                let authorizer = run
                    .by_id(
                        "aws:apigatewayv2/authorizer:Authorizer",
                        connect.inputs["authorizerId"].as_str().unwrap(),
                    )
                    .unwrap();
                let uri = authorizer.inputs["authorizerUri"].as_str().unwrap();
                let name = uri
                    .split("function:")
                    .nth(1)
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap();
                assert_eq!(origin_secret_of(&run, name).as_deref(), Some(ORIGIN_SECRET));
            } else {
                // Every HTTP route's integration is a function that checks the header.
                for r in &routes {
                    let id = r.inputs["target"]
                        .as_str()
                        .unwrap()
                        .strip_prefix("integrations/")
                        .unwrap();
                    let name = integration_function(&run, id);
                    assert_eq!(
                        origin_secret_of(&run, &name).as_deref(),
                        Some(ORIGIN_SECRET),
                        "HTTP route {} reaches {name}, which does not check the origin",
                        r.inputs["routeKey"]
                    );
                }
            }
        }
        // 3. The checkers are updated before CloudFront (a rotation never locks out).
        let pos = |name: &str| run.resources.iter().position(|r| r.name == name).unwrap();
        for f in ["authorizer", "http"] {
            if run.resources.iter().any(|r| r.name == f) {
                assert!(pos(f) < pos("site"), "{f} after the distribution");
            }
        }
        // 4. No output hands out an API's own URL (the management API is IAM-signed).
        for (k, v) in run.outputs.as_object().unwrap() {
            if k != "managementEndpoint" {
                assert!(!v.to_string().contains("execute-api"), "output {k}: {v}");
            }
        }
    }
}

#[tokio::test]
async fn a_plain_text_or_missing_origin_secret_is_refused() {
    let mut config = base_config();
    config.remove("switchboard:originSecret");
    let missing = run(env!("CARGO_BIN_EXE_switchboard-deploy"), true, config).await;
    assert!(!missing.success);
    assert!(
        missing
            .stderr
            .contains("pulumi config set --secret originSecret"),
        "{}",
        missing.stderr
    );
    assert!(missing.custom().next().is_none());
}
