//! The stage the deploy program would declare, planned from the app's manifest without
//! Pulumi, AWS or network: one API Gateway route (and function) per route key.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;

use switchboard_deploy::input::Input;
use switchboard_deploy::plan::default_artifact;
use switchboard_deploy::{StackConfig, plan_for};

use {{crate_name}}::{NAME, WEB_PAGE, app};

fn config() -> StackConfig {
    // The one setting without a default: the secret CloudFront sends to the APIs.
    StackConfig::from_lookup(
        |key| (key == "originSecret").then(|| "0123456789abcdef0123456789abcdef".to_owned()),
        "dev",
        Some("eu-west-1".to_owned()),
        NAME,
        &default_artifact(NAME),
    )
    .unwrap()
}

#[test]
fn every_route_gets_an_api_gateway_route_and_a_function() {
    let manifest = app().manifest().unwrap();
    let plan = plan_for(&manifest, &config(), WEB_PAGE).unwrap();
    plan.validate().unwrap();

    let route_keys: BTreeSet<&str> = plan
        .resources
        .iter()
        .filter(|r| r.token == "aws:apigatewayv2/route:Route")
        .filter_map(|r| match r.inputs.get("routeKey") {
            Some(Input::Str(key)) => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        route_keys,
        BTreeSet::from(["$connect", "$default", "$disconnect", "hello", "ping"])
    );

    // One function per route, plus the authorizer, the pre-sign-up trigger and the
    // sharded fan-out's consumer (`hello` takes a `Ctx`, which can send to rooms); all
    // from the same artifact.
    let functions: Vec<_> = plan
        .resources
        .iter()
        .filter(|r| r.token == "aws:lambda/function:Function")
        .collect();
    assert_eq!(functions.len(), route_keys.len() + 3);
    assert!(
        functions.iter().any(|f| f.name == "fanout"),
        "{:?}",
        functions.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
    for f in &functions {
        assert_eq!(
            f.inputs.get("code"),
            Some(&Input::Archive(default_artifact(NAME))),
            "{}",
            f.name
        );
    }

    // One WebSocket API and no HTTP API: the app declares no HTTP router.
    let apis: Vec<_> = plan
        .resources
        .iter()
        .filter(|r| r.token == "aws:apigatewayv2/api:Api")
        .map(|r| r.inputs.get("protocolType"))
        .collect();
    assert_eq!(apis, [Some(&Input::Str("WEBSOCKET".to_owned()))]);
}
