//! Every type token and input property name the program sends exists in the pinned
//! Pulumi AWS SDK (`pulumi_aws` for Python, extracted by scripts/pulumi-aws-schema.sh
//! into target/pulumi-aws-schema.json), nested input types included, and every
//! required input is set. Without the file the test fails under CI=true and is skipped
//! (loudly) otherwise.

// Helpers outside #[test] functions unwrap too: a test failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

fn schema() -> Option<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pulumi-aws-schema.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).unwrap()),
        Err(e) => {
            let msg = format!(
                "{} is missing ({e}): run `bash scripts/pulumi-aws-schema.sh` (.ci/run does)",
                path.display()
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
            None
        }
    }
}

/// Checks `value` against the input type's properties (`props`), recursively.
fn check(
    schema: &Value,
    module: &str,
    props: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    // A secret is checked as the value inside it.
    let value = plain(value);
    let Some(obj) = value.as_object() else { return };
    for (k, v) in obj {
        let Some(prop) = props.get(k) else {
            errors.push(format!("{path}.{k}: no such input"));
            continue;
        };
        for t in prop["types"].as_array().unwrap() {
            let key = format!("{module}:{}", t.as_str().unwrap());
            let Some(nested) = schema["types"].get(&key) else {
                errors.push(format!("{path}.{k}: type {key} not in the schema"));
                continue;
            };
            let items: Vec<&Value> = match plain(v) {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for (i, item) in items.into_iter().enumerate() {
                check(
                    schema,
                    module,
                    nested,
                    item,
                    &format!("{path}.{k}[{i}]"),
                    errors,
                );
                if let Some(o) = item.as_object() {
                    for (name, p) in nested.as_object().unwrap() {
                        if p["required"] == true && !o.contains_key(name) {
                            errors.push(format!("{path}.{k}[{i}]: required {name} missing"));
                        }
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn tokens_and_properties_exist_in_the_pinned_sdk() {
    let Some(schema) = schema() else { return };
    assert_eq!(
        schema["version"],
        switchboard_deploy::aws::AWS_PROVIDER_VERSION,
        "the schema file and the program pin different provider versions"
    );
    // The chat, and the fixture (a route with an API key and throttling: the usage plan,
    // API keys, route settings), so every resource type the program declares is checked.
    let chat = run_example(false).await;
    let mut fixture_config = base_config();
    fixture_config.insert("switchboard:apiKeys".into(), "partner-a".into());
    let fixture = run(
        env!("CARGO_BIN_EXE_switchboard-deploy-fixture"),
        false,
        fixture_config,
    )
    .await;
    assert!(fixture.success, "{}", fixture.stderr);
    let mut errors = Vec::new();
    let mut checked = 0;
    let mut tokens = std::collections::BTreeSet::new();
    for r in chat.custom().chain(fixture.custom()) {
        tokens.insert(r.token.clone());
        let Some(resource) = schema["resources"].get(&r.token) else {
            errors.push(format!(
                "{}: no such resource type in pulumi_aws {}",
                r.token, schema["version"]
            ));
            continue;
        };
        let module = resource["module"].as_str().unwrap();
        let inputs = &resource["inputs"];
        check(
            &schema,
            module,
            inputs,
            &r.inputs,
            &format!("{} {}", r.token, r.name),
            &mut errors,
        );
        for (name, p) in inputs.as_object().unwrap() {
            if p["required"] == true && r.inputs.get(name).is_none() {
                errors.push(format!(
                    "{} {}: required input {name} missing",
                    r.token, r.name
                ));
            }
        }
        checked += 1;
    }
    assert!(checked > 50);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    for t in [
        "aws:apigateway/usagePlan:UsagePlan",
        "aws:apigateway/apiKey:ApiKey",
        "aws:apigateway/usagePlanKey:UsagePlanKey",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:cloudwatch/dashboard:Dashboard",
        "aws:sns/topic:Topic",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:cloudfront/originRequestPolicy:OriginRequestPolicy",
    ] {
        assert!(tokens.contains(t), "{t} was not checked");
    }
}

#[test]
fn the_check_catches_a_misspelt_property() {
    let Some(schema) = schema() else { return };
    let inputs = &schema["resources"]["aws:lambda/function:Function"]["inputs"];
    let mut errors = Vec::new();
    check(
        &schema,
        "lambda",
        inputs,
        &serde_json::json!({"memorySize": 1, "enviroment": {}, "environment": {"variabels": {}}}),
        "f",
        &mut errors,
    );
    assert_eq!(
        errors,
        [
            "f.enviroment: no such input",
            "f.environment[0].variabels: no such input"
        ]
    );
}
