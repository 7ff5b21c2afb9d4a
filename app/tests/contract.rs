//! The chat service's contract, checked by real tools:
//!
//! 1. `chat-app asyncapi` prints a document the official AsyncAPI parser
//!    (`@asyncapi/parser`, pinned in `tests/contract/package.json`) accepts with no error,
//!    and a broken copy of it is rejected (so the check can fail);
//! 2. `chat-app client-ts` prints exactly the committed `app/web/switchboard-client.ts`;
//! 3. `tsc --noEmit --strict` (pinned too) type-checks the client and the page
//!    (`app/web/tsconfig.json`), and rejects a wrong payload field and a wrong message
//!    field (so the types are real);
//! 4. the committed `.js` files are exactly what `tsc` emits for them;
//! 5. `node --test tests/contract/client.test.mjs` runs the compiled client's ordering,
//!    de-duplication, resume and request-id logic over a fake socket.
//!
//! Needs `node` and `tests/contract/node_modules` (`npm ci` in `tests/contract`); without
//! them the tests fail when `CI=true` and are skipped, loudly, otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Every node or tsc run is bounded.
const LIMIT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn contract_dir() -> PathBuf {
    root().join("tests/contract")
}

fn web_dir() -> PathBuf {
    root().join("app/web")
}

fn tsc() -> PathBuf {
    contract_dir().join("node_modules/typescript/bin/tsc")
}

/// `true` when the tools are there; else skips (or fails under `CI=true`).
fn tools_present(test: &str) -> bool {
    let mut missing = Vec::new();
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        missing.push("node (Node.js 20+) on PATH".to_owned());
    }
    for package in ["@asyncapi/parser", "typescript"] {
        if !contract_dir()
            .join("node_modules")
            .join(package)
            .join("package.json")
            .is_file()
        {
            missing.push(format!(
                "{package}: run `npm ci` in {}",
                contract_dir().display()
            ));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join("; ");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run (CI=true): missing {what}");
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED: {test} did not run: missing {what}. `bash .ci/run` installs everything. !!!!!!!!\n"
    );
    false
}

/// Runs a command to completion within [`LIMIT`], killing it after.
fn run(command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("{command:?} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `chat-app <args>`: the real binary, as `cargo run -- <args>` runs it.
fn chat_app(args: &[&str]) -> String {
    let output = run(Command::new(env!("CARGO_BIN_EXE_chat-app")).args(args));
    assert!(
        output.status.success(),
        "chat-app {args:?}: {}",
        text(&output)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A fresh scratch directory under `target/`.
fn scratch(name: &str) -> PathBuf {
    let dir = root()
        .join("target/tmp/contract")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn validate(file: &Path) -> Output {
    run(Command::new("node")
        .arg(contract_dir().join("validate-asyncapi.mjs"))
        .arg(file)
        .current_dir(contract_dir()))
}

#[test]
fn the_asyncapi_document_passes_the_asyncapi_parser() {
    if !tools_present("the AsyncAPI parser test") {
        return;
    }
    let dir = scratch("asyncapi");
    let printed = chat_app(&["asyncapi"]);
    let doc: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(
        doc,
        chat_app::app().asyncapi().unwrap(),
        "the CLI prints App::asyncapi"
    );
    let file = dir.join("asyncapi.json");
    std::fs::write(&file, &printed).unwrap();
    let output = validate(&file);
    let out = text(&output);
    assert!(
        output.status.success(),
        "the parser rejects the document:\n{out}"
    );
    let summary: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no summary in {out}"));
    assert_eq!(summary["valid"], true, "{out}");
    assert_eq!(summary["version"], "3.0.0", "{out}");
    // Ten routes received (the built-in ping and resume included) plus the pushed messages.
    assert!(summary["operations"].as_u64().unwrap() >= 14, "{out}");
    // The history protocol, as the parser read it: `resume` answered by `resumed`,
    // request ids correlated, room frames stamped.
    assert_eq!(
        summary["resumeReplies"],
        serde_json::json!(["Resumed", "ErrorFrame"]),
        "{out}"
    );
    assert_eq!(
        summary["correlated"]["joinRequest"], "$message.payload#/id",
        "{out}"
    );
    assert_eq!(
        summary["correlated"]["Joined"], "$message.payload#/id",
        "{out}"
    );
    assert_eq!(
        summary["correlated"]["ErrorFrame"], "$message.payload#/id",
        "{out}"
    );
    assert_eq!(
        summary["messageFields"]["Chat"],
        serde_json::json!(["epoch", "seq"]),
        "{out}"
    );
    assert_eq!(
        doc["components"]["messages"]["Chat"]["payload"]["allOf"][1]["$ref"],
        "#/components/schemas/RoomStamp"
    );
    // `resume`'s payload and answer as the wire protocol has them.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        doc["components"]["messages"]["resumeRequest"]["payload"]["allOf"][1]["$ref"],
        "#/components/schemas/ResumeRequest"
    );
    assert_eq!(
        schemas["ResumeRoom"]["properties"]["epoch"]["type"],
        serde_json::json!(["string", "null"])
    );
    assert_eq!(
        schemas["ResumeRoom"]["required"],
        serde_json::json!(["room"])
    );
    assert_eq!(
        schemas["Resumed"]["properties"]["action"]["const"],
        "resumed"
    );
    assert_eq!(
        schemas["ResumedRoom"]["anyOf"][0]["required"],
        serde_json::json!(["room", "epoch", "seq", "recovered"])
    );
    assert_eq!(
        doc["components"]["messages"]["Resumed"]["payload"]["allOf"][1]["$ref"],
        "#/components/schemas/Correlated"
    );

    // The check can fail: an operation naming a message its channel does not have.
    let mut broken = doc.clone();
    broken["operations"]["join"]["messages"][0]["$ref"] =
        serde_json::json!("#/channels/ws/messages/noSuchMessage");
    let file = dir.join("broken.json");
    std::fs::write(&file, serde_json::to_string(&broken).unwrap()).unwrap();
    let output = validate(&file);
    assert!(
        !output.status.success(),
        "a broken document passed: {}",
        text(&output)
    );
    assert!(text(&output).contains("error:"), "{}", text(&output));
}

#[test]
fn the_committed_client_is_the_generated_one() {
    let generated = chat_app(&["client-ts"]);
    assert_eq!(generated, chat_app::app().client_ts().unwrap());
    let committed = std::fs::read_to_string(web_dir().join("switchboard-client.ts")).unwrap();
    assert!(
        generated == committed,
        "app/web/switchboard-client.ts is stale: regenerate it with\n  \
         cargo run -p chat-app -- client-ts > app/web/switchboard-client.ts\n\
         then compile the page: (cd app/web && ../../tests/contract/node_modules/.bin/tsc -p .)"
    );
}

#[test]
fn tsc_type_checks_the_client_and_the_page() {
    if !tools_present("the tsc test") {
        return;
    }
    let output = run(Command::new("node")
        .arg(tsc())
        .args(["--noEmit", "--strict", "-p"])
        .arg(web_dir()));
    assert!(output.status.success(), "tsc: {}", text(&output));
}

/// Type-checks `use_ts` next to a copy of the client; returns tsc's output.
fn check_use(name: &str, use_ts: &str) -> Output {
    let dir = scratch(name);
    std::fs::copy(
        web_dir().join("switchboard-client.ts"),
        dir.join("switchboard-client.ts"),
    )
    .unwrap();
    std::fs::write(dir.join("use.ts"), use_ts).unwrap();
    // The page's compiler options, on this file.
    std::fs::write(
        dir.join("tsconfig.json"),
        r#"{"compilerOptions": {"target": "ES2020", "module": "ES2020", "moduleResolution": "bundler",
            "lib": ["ES2020", "DOM"], "strict": true, "noEmit": true, "types": []},
            "files": ["use.ts"]}"#,
    )
    .unwrap();
    run(Command::new("node")
        .arg(tsc())
        .args(["--noEmit", "--strict", "-p"])
        .arg(&dir))
}

const USE_HEADER: &str = "import { SwitchboardClient } from './switchboard-client.js';\n\
     const c = new SwitchboardClient({ url: 'ws://127.0.0.1:3000/ws' });\n";

#[test]
fn wrong_uses_of_the_client_do_not_type_check() {
    if !tools_present("the tsc test") {
        return;
    }
    // The control: right uses compile, so the failures below are about the fields.
    let right = format!(
        "{USE_HEADER}c.send('join', {{ room: 'lobby' }});\n\
         c.send('whoami');\n\
         c.send('placeOrder', {{ item: 'tea', qty: 2 }});\n\
         c.on('presence', (f) => {{ const e: 'join' | 'leave' = f.event; console.log(e, f.username); }});\n\
         c.on('orderPlaced', (f) => console.log(f.orderId, f.qty + 1));\n\
         c.hook('error', (e) => console.log(e.code));\n\
         c.on('message', (f) => {{ const s: number | undefined = f.seq; const e: string | undefined = f.epoch; console.log(s, e); }});\n\
         c.on('resumed', (f) => console.log(f.rooms.length, f.id));\n\
         c.hook('reset', (e) => {{ const r: 'resume' | 'epoch' | 'gap' = e.reason; console.log(e.room, e.seq, r); }});\n\
         c.hook('recovered', (e) => console.log(e.room, e.epoch));\n\
         c.request('join', {{ room: 'lobby' }}, {{ timeoutMs: 500 }}).then((j) => console.log(j.members.length, j.id));\n\
         c.request('resume', {{ rooms: [{{ room: 'lobby', since: 3, epoch: 'e' }}] }}).then((r) => console.log(r.rooms));\n\
         c.forgetRoom('lobby');\n"
    );
    let output = check_use("right", &right);
    assert!(output.status.success(), "right uses: {}", text(&output));

    let cases = [
        ("c.send('join', { rooom: 'lobby' });\n", "rooom"),
        ("c.send('join');\n", "Expected 2 arguments"),
        (
            "c.send('sendMessage', { room: 'lobby', text: 5 });\n",
            "number",
        ),
        ("c.send('noSuchRoute', {});\n", "noSuchRoute"),
        (
            "c.on('presence', (f) => console.log(f.nosuch));\n",
            "nosuch",
        ),
        (
            "c.on('message', (f) => { const n: number = f.text; console.log(n); });\n",
            "string",
        ),
        ("c.request('join', { rooom: 'lobby' });\n", "rooom"),
        (
            "c.request('members', { room: 'a' }).then((m) => console.log(m.nosuch));\n",
            "nosuch",
        ),
        (
            "c.on('message', (f) => { const s: string = f.seq; console.log(s); });\n",
            "number",
        ),
        ("c.send('resume', { rooms: [{ since: 1 }] });\n", "room"),
    ];
    for (i, (wrong, expected)) in cases.iter().enumerate() {
        let output = check_use(&format!("wrong-{i}"), &format!("{USE_HEADER}{wrong}"));
        let out = text(&output);
        assert!(!output.status.success(), "{wrong} type-checked");
        assert!(out.contains("error TS"), "{wrong}: {out}");
        assert!(
            out.contains(expected),
            "{wrong}: expected {expected:?} in {out}"
        );
    }
}

#[test]
fn the_committed_js_is_what_tsc_emits() {
    if !tools_present("the tsc output test") {
        return;
    }
    let dir = scratch("emit");
    let output = run(Command::new("node")
        .arg(tsc())
        .arg("-p")
        .arg(web_dir())
        .arg("--outDir")
        .arg(&dir));
    assert!(output.status.success(), "tsc: {}", text(&output));
    for js in ["chat.js", "switchboard-client.js"] {
        let emitted = std::fs::read_to_string(dir.join(js)).unwrap();
        let committed = std::fs::read_to_string(web_dir().join(js)).unwrap();
        assert!(
            emitted == committed,
            "app/web/{js} is not tsc's output for the .ts next to it: rebuild with\n  \
             (cd app/web && ../../tests/contract/node_modules/.bin/tsc -p .)"
        );
    }
    // And the gateway serves exactly those files.
    let app = chat_app::app();
    let assets = app.web_assets().unwrap();
    for (path, js) in [
        ("/chat.js", "chat.js"),
        ("/switchboard-client.js", "switchboard-client.js"),
    ] {
        let asset = assets.iter().find(|a| a.path == path).unwrap();
        assert_eq!(
            asset.content,
            std::fs::read_to_string(web_dir().join(js)).unwrap()
        );
        assert!(asset.content_type.starts_with("text/javascript"));
    }
}

#[test]
fn node_runs_the_clients_ordering_resume_and_request_tests() {
    if !tools_present("the client's node tests") {
        return;
    }
    let output = run(Command::new("node")
        .args(["--test", "--test-reporter=tap"])
        .arg(contract_dir().join("client.test.mjs"))
        .env(
            "SWITCHBOARD_CLIENT_JS",
            web_dir().join("switchboard-client.js"),
        )
        .current_dir(contract_dir()));
    let out = text(&output);
    assert!(output.status.success(), "node --test failed:\n{out}");
    // The runner's own count: every test ran and passed (none skipped, none missing).
    let count = |key: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `# {key}` line in:\n{out}"))
    };
    assert!(count("tests") >= 12, "{out}");
    assert_eq!(count("pass"), count("tests"), "{out}");
    assert_eq!(count("fail"), 0, "{out}");
}

/// One HTTP/1.1 GET on a fresh connection: (status line, headers, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}

#[tokio::test]
async fn the_local_gateway_serves_the_page_scripts_and_lists_them() {
    let state_dir =
        std::env::temp_dir().join(format!("switchboard-contract-{}", std::process::id()));
    let gw = chat_app::app()
        .serve_local(switchboard::local::LocalConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            state_dir,
            ..Default::default()
        })
        .await
        .unwrap();
    let addr = gw.local_addr();
    let check = async {
        let (status, _, page) = get(addr, "/").await;
        assert!(status.contains(" 200 "), "{status}");
        assert!(page.contains(r#"<script type="module" src="/chat.js"></script>"#));
        for (path, content) in [
            ("/chat.js", chat_app::CHAT_JS),
            ("/switchboard-client.js", chat_app::CLIENT_JS),
        ] {
            let (status, headers, body) = get(addr, path).await;
            assert!(status.contains(" 200 "), "{path}: {status}");
            assert!(
                headers.contains("content-type: text/javascript"),
                "{path}: {headers}"
            );
            assert_eq!(body, content, "{path}");
        }
        let (_, _, manifest) = get(addr, "/local/manifest").await;
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        let paths: Vec<&str> = manifest["webAssets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["/chat.js", "/switchboard-client.js"]);
    };
    tokio::time::timeout(Duration::from_secs(30), check)
        .await
        .unwrap();
    gw.shutdown().await;
}

#[test]
fn web_asset_paths_are_checked() {
    for (path, problem) in [
        ("chat.js", "start with `/`"),
        ("/", "web page"),
        ("/ws/x.js", "belong to the gateway"),
        ("/local/x.js", "belong to the gateway"),
        ("/a/../b.js", "segments"),
        ("/a b.js", "only ASCII"),
    ] {
        let err = switchboard::App::new()
            .web_asset(path, "text/plain", "x")
            .manifest()
            .unwrap_err()
            .to_string();
        assert!(err.contains(problem), "{path}: {err}");
    }
    assert!(
        switchboard::App::new()
            .web_asset("/js/app-1.2.js", "text/javascript", "x")
            .manifest()
            .is_ok()
    );
}
