//! The chat page and the local console in a real browser: starts the local gateway (the
//! local issuer's tokens, as `cargo run` does) on 127.0.0.1, then runs
//! `node tests/browser/chat.mjs URL OUT_DIR`, which drives Debian's `chromium` with
//! playwright-core: two users sign in, join one room, see each other's messages, the
//! page's HTTP API calls and heartbeat work, and the page reconnects by itself after the
//! server drops its socket, showing the lines sent while it was away (resumed from the
//! room's history) in order and once each; and `console.mjs`, which watches two users chat in the
//! console and drives the service from it. Screenshots land in `target/browser/`.
//!
//! Needs `node`, `tests/browser/node_modules` (`npm ci` in `tests/browser`) and chromium
//! (`/usr/bin/chromium`, or `CHROMIUM=path`); `.ci/run` provides all three. Without them
//! the test fails when `CI=true` and is skipped, loudly, otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use switchboard::local::LocalConfig;
use switchboard_tests::*;
use tokio::process::Command;

/// The whole browser session (every step inside is bounded by 15 s).
const BROWSER_LIMIT: Duration = Duration::from_secs(150);

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn node_works() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What is missing to run the browser test, if anything.
fn missing(browser_dir: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !node_works() {
        missing.push("node (Node.js 20+) on PATH".to_owned());
    }
    if !browser_dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push(format!(
            "playwright-core: run `npm ci` in {}",
            browser_dir.display()
        ));
    }
    if chromium().is_none() {
        missing.push(
            "chromium: `apt-get install -y --no-install-recommends chromium`, or set CHROMIUM"
                .to_owned(),
        );
    }
    missing
}

/// The browser tests' prerequisites; `None` (after saying so, loudly) when they are
/// missing outside CI.
fn ready() -> Option<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_dir = root.join("browser");
    let missing = missing(&browser_dir);
    if !missing.is_empty() {
        let what = missing.join("; ");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the browser test cannot run (CI=true): missing {what}");
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: the browser test did not run: missing {what}. \
             `bash .ci/run` installs everything. !!!!!!!!\n"
        );
        return None;
    }
    let out_dir = root.join("../target/browser");
    std::fs::create_dir_all(&out_dir).unwrap();
    Some((browser_dir, out_dir))
}

/// One chromium at a time: two on two cores make every bounded wait tighter.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `node SCRIPT URL OUT_DIR` and returns the JSON summary it prints (its `ok` true).
async fn run_script(browser_dir: &Path, script: &str, url: &str, out_dir: &Path) -> Value {
    let mut command = Command::new("node");
    command
        .arg(browser_dir.join(script))
        .arg(url)
        .arg(out_dir)
        .current_dir(browser_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = chromium() {
        command.env("CHROMIUM", path);
    }
    // The key `config()`'s gateway checks @connections calls with (`sigv4.mjs` signs).
    use switchboard::names::local_credentials as key;
    command
        .env("SIGV4_ACCESS_KEY_ID", key::ACCESS_KEY_ID)
        .env("SIGV4_SECRET_ACCESS_KEY", key::SECRET_ACCESS_KEY)
        .env("SIGV4_REGION", key::REGION);
    let child = command.spawn().expect("node starts");
    let output = match tokio::time::timeout(BROWSER_LIMIT, child.wait_with_output()).await {
        Ok(output) => output.expect("node ran"),
        Err(_) => panic!("the browser test did not finish within {BROWSER_LIMIT:?}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary in: {stdout}\nstderr: {stderr}"));
    assert_eq!(summary["ok"], true, "{summary}");
    summary
}

fn assert_screenshots(out_dir: &Path, names: &[&str]) {
    for name in names {
        let png = std::fs::read(out_dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            png.len() > 1000 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name} is not a screenshot"
        );
    }
}

fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "switchboard-browser-{}",
        switchboard::ids::new_api_id()
    ))
}

/// Waits until closing the browser closed every socket: every `$disconnect` ran and the
/// store is empty again.
async fn wait_store_empty(gw: &switchboard::local::LocalGateway) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let records = store_records(gw).await;
        if records.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "records left after the browser closed: {records:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_users_chat_in_chromium_and_the_page_reconnects() {
    let Some((browser_dir, out_dir)) = ready() else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let shots = ["chat.png", "chat-bob.png", "chat-reconnected.png"];
    for name in shots {
        let _ = std::fs::remove_file(out_dir.join(name));
    }
    let gw = step(
        "gateway start",
        chat_app::app().serve_local(LocalConfig {
            state_dir: state_dir(),
            ..config()
        }),
    )
    .await
    .unwrap();
    let summary = run_script(&browser_dir, "chat.mjs", &gw.http_url(), &out_dir).await;
    let dropped_and_back = summary["reconnectedAs"]
        .as_str()
        .is_some_and(is_aws_connection_id);
    assert!(dropped_and_back, "{summary}");
    assert_ne!(summary["statusAfterDrop"], "connected", "{summary}");
    // The lines bob sent while alice was away reached her page by the client's resume:
    // in order, once each, after the line from before the drop.
    assert_eq!(
        summary["aliceSawFromBob"],
        serde_json::json!([
            "hello from bob",
            "while you were away 1",
            "while you were away 2",
            "while you were away 3"
        ]),
        "{summary}"
    );
    let since = summary["resume"]["rooms"][0]["since"].as_u64().unwrap_or(0);
    let last = summary["resumed"]["rooms"][0]["seq"].as_u64().unwrap_or(0);
    assert!(since > 0 && last >= since + 3, "{summary}");
    assert_eq!(
        summary["resumed"]["rooms"][0]["recovered"], true,
        "{summary}"
    );
    assert_screenshots(&out_dir, &shots);
    wait_store_empty(&gw).await;
    shutdown(gw).await;
}

/// The console (`/local/`) drives the running chat app: see `tests/browser/console.mjs`.
/// The `orders` queue is the test's own (one delivery before the dead-letter queue, 1 s
/// visibility), holding one message the consumer cannot read: it becomes the dead letter
/// the console redrives.
#[tokio::test]
async fn the_console_shows_and_drives_the_running_chat() {
    use std::sync::Arc;
    use switchboard::queue::memory::MemoryQueue;
    use switchboard::queue::{OutgoingMessage, Queue, QueueSettings};

    let Some((browser_dir, out_dir)) = ready() else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let shots = [
        "console-overview.png",
        "console-connections.png",
        "console-rooms.png",
        "console-frames.png",
        "console-routes.png",
        "console-queues.png",
    ];
    for name in shots {
        let _ = std::fs::remove_file(out_dir.join(name));
    }
    let settings = QueueSettings {
        visibility_timeout: Duration::from_secs(1),
        max_receive_count: 1,
        ..QueueSettings::default()
    };
    let queue = Arc::new(MemoryQueue::new().with_queue("orders", settings));
    let gw = step(
        "gateway start",
        chat_app::app()
            .queue(Arc::clone(&queue))
            .serve_local(LocalConfig {
                state_dir: state_dir(),
                ..config()
            }),
    )
    .await
    .unwrap();
    let poison = OutgoingMessage::new("not an envelope: a poison order", "poison", "poison-1");
    queue.send("orders", &poison).await.unwrap();

    let summary = run_script(&browser_dir, "console.mjs", &gw.http_url(), &out_dir).await;
    assert_eq!(summary["redriven"], true, "{summary}");
    assert_screenshots(&out_dir, &shots);
    wait_store_empty(&gw).await;
    shutdown(gw).await;
}
