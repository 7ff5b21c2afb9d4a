//! The real `chat-app` binary's exposure flags: `--dev-auth` or `--no-sigv4` on an address
//! other than loopback stop it at start with the reason; `--force-dev-auth` lets dev auth
//! through with a warning; `--expose-local-endpoints` prints a one-time admin secret; the
//! banner says what is open to whom and which key signs `@connections` (never its secret).
//! Binding `0.0.0.0` here listens on every interface, but only this test talks to it, and
//! it does not (it reads the banner and stops the process).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![cfg(unix)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

fn chat_app(args: &[&str]) -> Command {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("exposure-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-app"));
    command
        .args(args)
        .current_dir(&dir)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("AWS_ACCESS_KEY_ID", "AKIDCLITEST")
        .env("AWS_SECRET_ACCESS_KEY", "cli-test-secret-key")
        .env("AWS_REGION", "eu-west-1")
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn dev_auth_or_no_sigv4_off_loopback_refuse_to_start() {
    for (args, wanted) in [
        (
            &["--addr", "0.0.0.0", "--port", "0", "--dev-auth"][..],
            &[
                "--dev-auth is refused when binding 0.0.0.0",
                "--force-dev-auth",
            ][..],
        ),
        (
            &["--addr", "::", "--port", "0", "--no-sigv4"][..],
            &["--no-sigv4 is refused when binding ::"][..],
        ),
    ] {
        let out = timeout(WAIT, chat_app(args).output())
            .await
            .unwrap()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for w in wanted {
            assert!(stderr.contains(w), "{args:?}: {stderr}");
        }
    }
}

#[tokio::test]
async fn forced_and_exposed_the_banner_says_so() {
    let mut child = chat_app(&[
        "--addr",
        "0.0.0.0",
        "--port",
        "0",
        "--dev-auth",
        "--force-dev-auth",
        "--expose-local-endpoints",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = timeout(WAIT, async {
        let mut banner = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            let last = line.starts_with("Ctrl-C");
            banner.push(line);
            if last {
                return banner.join("\n");
            }
        }
        panic!("exited before its banner ended: {banner:?}");
    })
    .await
    .unwrap();
    child.kill().await.unwrap();
    assert!(banner.contains("warning: --force-dev-auth"), "{banner}");
    assert!(banner.contains("every interface"), "{banner}");
    assert!(
        banner.contains("loopback clients, and others with the admin secret"),
        "{banner}"
    );
    let secret = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin secret "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no admin secret line: {banner}"));
    assert_eq!(secret.len(), 43, "{secret}");
    // @connections: the environment's key and region, never the secret key.
    assert!(
        banner.contains("region eu-west-1, access key id AKIDCLITEST"),
        "{banner}"
    );
    assert!(!banner.contains("cli-test-secret-key"), "{banner}");
}
