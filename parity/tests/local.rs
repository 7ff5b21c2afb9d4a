//! The parity suite against the local gateway (what CI runs): the chat app with its
//! default authentication (the local issuer's tokens) on 127.0.0.1, every check through
//! the library, then once through the binary, whose JSON report is checked. Every
//! contract check must pass and every observation must equal the local value.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard_parity::{Options, Target, checks, env, run};

/// The gateway's idle timeout, and the idle wait the runner is told.
const IDLE_SECS: u64 = 5;
/// Every environment variable the binary reads, removed from its environment.
const ENV: [&str; 12] = [
    env::WS,
    env::HTTP,
    env::TOKEN_FROM,
    env::COGNITO_CLIENT_ID,
    env::COGNITO_REGION,
    env::COGNITO_ENDPOINT,
    env::USERNAME,
    env::PASSWORD,
    env::CONNECTIONS_ENDPOINT,
    env::IDLE_WAIT_SECS,
    env::JSON,
    env::ONLY,
];

async fn start() -> (LocalGateway, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-parity-{}",
        switchboard::ids::new_api_id()
    ));
    let config = LocalConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        idle_timeout: Duration::from_secs(IDLE_SECS),
        state_dir: dir.clone(),
        // As `cargo run` does: the AWS_* credentials when set, else the stand-in (the
        // runner signs with the same choice).
        sigv4: Some(switchboard::local::sigv4::SigV4Verifier::from_env_or_local()),
        ..LocalConfig::default()
    };
    let gw = tokio::time::timeout(Duration::from_secs(10), chat_app::app().serve_local(config))
        .await
        .expect("gateway start timed out")
        .expect("gateway start");
    (gw, dir)
}

fn options(gw: &LocalGateway) -> Options {
    Options {
        ws: Some(gw.ws_url()),
        http: Some(format!("http://{}", gw.local_addr())),
        idle_wait_secs: Some(IDLE_SECS),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_agrees_with_the_local_gateway() {
    let (gw, dir) = start().await;
    let target = Arc::new(Target::from_options(&options(&gw)).unwrap());
    let all = checks::all();
    let report = run(Arc::clone(&target), &all).await;
    let table = report.table();
    println!("{table}");
    // What one run costs the gateway (connections, frames), for the README's estimate.
    let stats = target.http_with("GET", "/local/stats", &[]).await.unwrap();
    assert_eq!(stats.status, 200);
    println!("after one run: {}", stats.text());
    assert_eq!(report.checks.len(), all.len());
    for row in &report.checks {
        assert_eq!(
            row.agree,
            Some(true),
            "{} ({}): {}\n{table}",
            row.check,
            row.target,
            row.detail
        );
        if row.kind == "observation" {
            assert_eq!(row.target, row.local, "{}", row.check);
        } else {
            assert_eq!(row.target, "pass", "{}", row.check);
        }
    }
    assert_eq!(report.contract_failures(), 0);
    assert!(report.loopback);

    // The binary: same target, its JSON report, exit code 0.
    let json = dir.join("parity.json");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-parity"));
    let o = options(&gw);
    cmd.args([
        "--ws",
        o.ws.as_deref().unwrap(),
        "--http",
        o.http.as_deref().unwrap(),
    ])
    .args(["--idle-wait-secs", &IDLE_SECS.to_string()])
    .arg("--json")
    .arg(&json)
    .kill_on_drop(true);
    for name in ENV {
        cmd.env_remove(name);
    }
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the binary's run timed out")
        .expect("run the binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = report["checks"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["check"].as_str().unwrap()).collect();
    let expected: Vec<&str> = all.iter().map(|c| c.name).collect();
    assert_eq!(names, expected);
    for row in rows {
        assert_eq!(row["agree"], true, "{row}");
        assert_eq!(row["target"], row["local"], "{row}");
        assert!(
            stdout.contains(row["check"].as_str().unwrap()),
            "table lacks {row}"
        );
    }
    assert_eq!(report["loopback"], true);

    tokio::time::timeout(Duration::from_secs(12), gw.shutdown())
        .await
        .expect("gateway shutdown timed out");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_binary_refuses_to_run_without_a_target() {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-parity"));
    cmd.kill_on_drop(true);
    for name in ENV {
        cmd.env_remove(name);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("timed out")
        .expect("run the binary");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no target"), "{stderr}");
    assert!(out.stdout.is_empty());
}
