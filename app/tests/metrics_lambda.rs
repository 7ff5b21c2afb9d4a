//! The real `chat-app` binary in Lambda mode (fake Runtime API, no AWS): the EMF lines a
//! role prints after each invocation, parsed from its stdout, and the origin check of the
//! `$connect` authorizer (issue 16). Needs no moto: the invocations touch no table.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::{Value, json};
use support::function;
use switchboard::names::{env, headers, metrics};
use switchboard::testing::events::{authorizer, websocket};
use switchboard::testing::lambda::FunctionEnv;

fn vars() -> FunctionEnv {
    FunctionEnv::local()
        .set(env::CONNECTIONS_TABLE, "unused-connections")
        .set(env::ROOMS_TABLE, "unused-rooms")
        .set(env::SERVICE, "chat-test")
}

#[tokio::test]
async fn a_route_function_prints_one_emf_line_per_invocation() {
    let mut f = function("ws:ping", &vars()).await;
    let ping = websocket::message("ping", "N5OsJdBsIAMCJ_Q=")
        .body(r#"{"action":"ping"}"#)
        .build();
    for _ in 0..2 {
        assert_eq!(f.reply(&ping).await["action"], "pong");
    }
    let docs = f.emf_documents(2).await;
    assert_eq!(docs.len(), 2, "{:?}", f.stdout_lines());
    for doc in &docs {
        assert_eq!(doc["Service"], "chat-test");
        assert_eq!(doc["Route"], "ping");
        // Per invocation: counters start from zero each time.
        assert_eq!(doc[metrics::ROUTE_COUNT], 1);
        assert_eq!(doc[metrics::ROUTE_ERRORS], 0);
        assert!(
            doc[metrics::ROUTE_DURATION]
                .as_f64()
                .is_some_and(|ms| ms >= 0.0)
        );
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], metrics::NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            json!([[metrics::dim::SERVICE, metrics::dim::ROUTE]])
        );
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                metrics::ROUTE_COUNT,
                metrics::ROUTE_ERRORS,
                metrics::ROUTE_DURATION
            ]
        );
        assert!(doc["_aws"]["Timestamp"].as_i64().is_some_and(|t| t > 0));
    }
    f.kill().await.unwrap();
}

#[tokio::test]
async fn the_authorizer_function_checks_the_origin_and_counts_its_decisions() {
    let vars = vars()
        // An issuer nothing listens on: a request refused before any JWT work needs none.
        .set(env::JWT_ISSUER, "http://127.0.0.1:9/pool")
        .set(env::ORIGIN_SECRET, "the-current-secret")
        .set(env::ORIGIN_SECRET_PREVIOUS, "the-previous-secret");
    let mut f = function("ws:authorizer", &vars).await;
    let effect = |answer: &Value| answer["policyDocument"]["Statement"][0]["Effect"].clone();
    let direct = f
        .response(&authorizer::request().token("a.b.c").build())
        .await;
    assert_eq!(effect(&direct), "Deny");
    let guessed = authorizer::request()
        .token("a.b.c")
        .header(headers::ORIGIN, "a-guess")
        .build();
    assert_eq!(effect(&f.response(&guessed).await), "Deny");
    // Through CloudFront but without a token: the authorizer runs (401, "Unauthorized").
    let anonymous = authorizer::request()
        .header(headers::ORIGIN, "the-previous-secret")
        .build();
    let answer = f.invoke(&anonymous).await;
    assert!(answer.is_error(), "{answer:?}");
    assert_eq!(answer.body()["errorMessage"], "Unauthorized");

    let docs = f.emf_documents(3).await;
    assert_eq!(docs.len(), 3, "{:?}", f.stdout_lines());
    for doc in &docs {
        assert_eq!(doc["Service"], "chat-test");
        assert_eq!(doc[metrics::AUTHORIZER_DENY], 1);
        assert_eq!(doc[metrics::AUTHORIZER_ALLOW], 0);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[metrics::dim::SERVICE]])
        );
    }
    // The missing secret's warning is not printed when secrets are set.
    assert!(
        !f.stdout_lines()
            .iter()
            .any(|l| l.contains("is not set: requests are not checked")),
    );
    f.kill().await.unwrap();
}

#[tokio::test]
async fn without_a_secret_the_authorizer_warns_once_at_start() {
    let vars = vars().set(env::JWT_ISSUER, "http://127.0.0.1:9/pool");
    let mut f = function("ws:authorizer", &vars).await;
    let answer = f.invoke(&authorizer::request().build()).await;
    assert_eq!(answer.body()["errorMessage"], "Unauthorized");
    let _ = f.invoke(&authorizer::request().build()).await;
    let warnings = f
        .stdout_lines()
        .into_iter()
        .filter(|l| l.contains(env::ORIGIN_SECRET) && l.contains("WARN"))
        .count();
    assert_eq!(warnings, 1, "{:?}", f.stdout_lines());
    f.kill().await.unwrap();
}
