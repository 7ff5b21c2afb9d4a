//! Policy checks over what the real program registered (update mode): IAM without `*`
//! actions, a role for every Lambda, an integration and a permission for every route,
//! HTTPS-only CloudFront, and a connections table with SSE and TTL.

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
        assert_eq!(
            text.contains("dynamodb:PutItem"),
            route.capabilities.store,
            "{slug}"
        );
        assert_eq!(text.contains("sqs:SendMessage"), sends, "{slug}");
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
    for o in d.inputs["origins"].as_array().unwrap() {
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
