//! `switchboard new`: the built binary generates a service against the crates as
//! `cargo package` makes them (what a user downloads from crates.io); the service's own
//! tests pass, and `cargo run` serves its handler over a real WebSocket.
//!
//! The publishable crates are packaged into `target/template-test/package` and unpacked
//! into `target/template-test/packaged`, laid out like a checkout (`switchboard/`,
//! `deploy/`, `core/`, ...) so that `--switchboard-path` takes it; the service's
//! `[patch.crates-io]` sends the crates' own dependencies on each other there too. A
//! file is rewritten only when its contents change (packaged files all carry the same
//! old mtime, and cargo decides freshness by mtime).
//!
//! The generated workspace builds into `target/template-test` (not `target/debug`: the
//! outer `cargo test` holds that directory's lock while tests run). Re-runs are
//! incremental; a cold build compiles Switchboard and its dependencies once more.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

/// A cold build of the generated workspace (Switchboard, the AWS SDK, Pulumi Gestalt) on
/// two shared cores; a bound, not an expectation.
const BUILD_LIMIT: Duration = Duration::from_secs(60 * 60);
const WAIT: Duration = Duration::from_secs(20);

/// The crates published to crates.io, and their directories in a checkout.
const PUBLISHED: &[(&str, &str)] = &[
    ("switchboard-macros", "macros"),
    ("switchboard-core", "core"),
    ("switchboard-aws", "aws"),
    ("switchboard-local", "local"),
    ("switchboard-contract", "contract"),
    ("switchboard-testing", "testing"),
    ("switchboard", "switchboard"),
    ("switchboard-deploy", "deploy"),
    ("switchboard-cli", "cli"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn temp_dir(test: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "switchboard-new-{test}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The cargo running these tests (the same toolchain), with the generated workspace's
/// own target directory, without the variables cargo set for this test: build scripts
/// watch some (ring: `CARGO_PKG_NAME`), and leaking them would rebuild half the graph
/// whenever the service is built from a shell instead.
fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(dir).env(
        "CARGO_TARGET_DIR",
        repo().join("target").join("template-test"),
    );
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_by_cargo = ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_"]
            .iter()
            .any(|p| key.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&key);
        if set_by_cargo {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `cmd` to completion within `limit`, output to `log`; kills it past the limit.
fn run_logged(mut cmd: Command, log: &Path, limit: Duration) -> (bool, String) {
    let file = std::fs::File::create(log).unwrap();
    let mut child = cmd
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let out = std::fs::read_to_string(log).unwrap_or_default();
    (status.is_some_and(|s| s.success()), out)
}

/// Makes `dest` hold exactly the files of `src`, writing only those whose contents
/// differ (so that unchanged files keep their mtime and cargo's fingerprints hold).
fn sync_dir(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let mut keep = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let (from, to) = (entry.path(), dest.join(&name));
        keep.insert(name);
        if entry.file_type().unwrap().is_dir() {
            if to.is_file() {
                std::fs::remove_file(&to).unwrap();
            }
            sync_dir(&from, &to);
        } else {
            let new = std::fs::read(&from).unwrap();
            if to.is_dir() {
                std::fs::remove_dir_all(&to).unwrap();
            }
            if std::fs::read(&to).ok().as_deref() != Some(new.as_slice()) {
                std::fs::write(&to, new).unwrap();
            }
        }
    }
    for entry in std::fs::read_dir(dest).unwrap() {
        let entry = entry.unwrap();
        if !keep.contains(&entry.file_name()) {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
}

/// Packages the published crates (`cargo package`, several at once: their dependencies
/// on each other resolve through cargo's local overlay) and unpacks them into
/// `target/template-test/packaged/DIR`, `DIR` being the crate's directory in a checkout.
/// `--no-verify`: building the generated service against these crates is the
/// verification (and `.ci/run`'s clippy and tests build the same sources).
fn package_and_unpack(tmp: &Path) -> PathBuf {
    let root = repo();
    let target = root.join("target").join("template-test");
    let mut package = cargo(&root);
    package.args(["package", "--no-verify", "--allow-dirty"]);
    for (name, _) in PUBLISHED {
        package.args(["-p", name]);
    }
    let (ok, log) = run_logged(package, &tmp.join("package.log"), BUILD_LIMIT);
    assert!(ok, "cargo package:\n{}", tail(&log));

    let staging = tmp.join("unpacked");
    std::fs::create_dir_all(&staging).unwrap();
    let packaged = target.join("packaged");
    let version = env!("CARGO_PKG_VERSION");
    for (name, dir) in PUBLISHED {
        let krate = target
            .join("package")
            .join(format!("{name}-{version}.crate"));
        let out = Command::new("tar")
            .arg("xzf")
            .arg(&krate)
            .arg("-C")
            .arg(&staging)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tar xzf {}: {}",
            krate.display(),
            text(&out.stderr)
        );
        sync_dir(
            &staging.join(format!("{name}-{version}")),
            &packaged.join(dir),
        );
    }
    packaged
}

fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(8000);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_generated_against_the_packaged_crates_passes_its_tests_and_serves() {
    let root = repo();
    let tmp = temp_dir("e2e");
    let packaged = package_and_unpack(&tmp);

    // The published CLI carries its template, byte for byte what this binary embeds.
    for (path, contents) in switchboard_cli::TEMPLATE_FILES {
        let file = packaged.join("cli").join("template").join(path);
        let shipped = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{} is not in the packaged CLI: {e}", file.display()));
        assert_eq!(shipped, *contents, "{path}");
    }

    let dir = tmp.join("demo-svc");
    let out = switchboard(&[
        "new",
        "demo-svc",
        "--path",
        dir.to_str().unwrap(),
        "--switchboard-path",
        packaged.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("cargo run") && stdout.contains("bash .ci/run"),
        "{stdout}"
    );
    let packaged = packaged.canonicalize().unwrap();
    let mut manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains(&format!(
        "switchboard = {{ path = \"{}/switchboard\" }}",
        packaged.display()
    )));
    // The packaged crates name each other by version (crates.io): send those here too.
    // (The facade and the deploy crate are the service's path dependencies already,
    // and nothing depends on the CLI.)
    manifest.push_str("\n[patch.crates-io]\n");
    let direct = ["switchboard", "switchboard-deploy", "switchboard-cli"];
    for (name, dir) in PUBLISHED.iter().filter(|(name, _)| !direct.contains(name)) {
        manifest.push_str(&format!(
            "{name} = {{ path = \"{}\" }}\n",
            packaged.join(dir).display()
        ));
    }
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();

    // This checkout's lock: the same versions, nothing new to resolve or download.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let mut fmt = cargo(&dir);
    fmt.args(["fmt", "--check"]);
    let (ok, log) = run_logged(fmt, &tmp.join("fmt.log"), WAIT * 3);
    assert!(ok, "cargo fmt --check in the generated service:\n{log}");

    let mut test = cargo(&dir);
    test.args(["test", "--offline", "--workspace"]);
    let start = Instant::now();
    let (ok, log) = run_logged(test, &tmp.join("test.log"), BUILD_LIMIT);
    eprintln!(
        "cargo test in the generated service: {:.0} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        ok,
        "cargo test in the generated service failed:\n{}",
        tail(&log)
    );
    for test in [
        "hello_greets_by_name_or_as_the_caller ... ok",
        "a_bad_name_is_an_error_frame_and_the_connection_stays ... ok",
        "the_manifest_lists_hello ... ok",
        "page_sign_in_and_hello_over_a_real_socket ... ok",
        "every_route_gets_an_api_gateway_route_and_a_function ... ok",
    ] {
        assert!(log.contains(test), "`{test}` missing from:\n{}", tail(&log));
    }

    // `cargo run` (the workspace's default member) on a free port; cargo execs the
    // service, so killing the child stops it.
    let mut child = tokio::process::Command::from({
        let mut run = cargo(&dir);
        run.args(["run", "--offline", "--", "--port", "0", "--dev-auth"]);
        run
    })
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(tmp.join("run.log")).unwrap())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    // The banner names the address: "  WebSocket    ws://127.0.0.1:PORT/ws?user=NAME".
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ws_url = tokio::time::timeout(BUILD_LIMIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.trim().strip_prefix("WebSocket") {
                return url.trim().trim_end_matches("?user=NAME").to_owned();
            }
        }
        let log = std::fs::read_to_string(tmp.join("run.log")).unwrap_or_default();
        panic!(
            "the service exited before printing its address:\n{}",
            tail(&log)
        );
    })
    .await
    .unwrap();

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}?user=alice"))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"action":"hello","name":"Bob"}"#))
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(
        reply,
        json!({"action": "hello", "message": "Hello, Bob!", "from": "alice"})
    );
    ws.close(None).await.unwrap();
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn generated_rust_is_rustfmt_clean_for_the_shortest_and_longest_names() {
    let tmp = temp_dir("fmt");
    // 64 characters, Cargo's limit.
    let long = format!("ab{}", "-b".repeat(31));
    assert_eq!(long.len(), 64);
    for name in ["a", long.as_str()] {
        let dir = tmp.join(name);
        let out = switchboard(&["new", name, "--path", dir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut files = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        assert_eq!(files.len(), 6, "{files:?}");
        let out = Command::new("rustfmt")
            .args(["--edition", "2024", "--check"])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn bad_names_existing_directories_and_non_checkouts_are_refused() {
    let tmp = temp_dir("refuse");
    for name in ["Demo", "demo_svc", "1demo", "fn", "demo-"] {
        let out = switchboard(&["new", name, "--path", tmp.join("x").to_str().unwrap()]);
        assert!(!out.status.success(), "{name}");
        assert!(
            text(&out.stderr).contains("invalid service name"),
            "{name}: {}",
            text(&out.stderr)
        );
    }
    assert!(!tmp.join("x").exists());

    let out = switchboard(&["new", "demo", "--path", tmp.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );

    let out = switchboard(&[
        "new",
        "demo",
        "--path",
        tmp.join("y").to_str().unwrap(),
        "--switchboard-path",
        tmp.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not a Switchboard checkout"));
    assert!(!tmp.join("y").exists());

    // A name longer than the deploy program's app-name limit works, with a note.
    let name = "a-rather-long-service-name";
    let out = switchboard(&["new", name, "--path", tmp.join(name).to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("pulumi config set app"));
    let _ = std::fs::remove_dir_all(&tmp);
}
