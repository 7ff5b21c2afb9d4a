//! Graceful shutdown of the local gateway, and its counters (`GET /local/stats`).
//!
//! `LocalGateway::shutdown` stops accepting, lets the embedded queue consumers finish the
//! batch they are running (while the sockets are still open), then closes every socket
//! with 1001 and fires every `$disconnect`. The app here registers its handlers by hand
//! (`App::with_routes`, `App::with_consumers`) so that it runs alone, without the chat
//! app's; its `$disconnect` and its consumer record what they did.
//!
//! SIGTERM/SIGINT on the real binary: `app/tests/signals.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::consumer::{ConsumerDef, ConsumerOptions, erase_consumer};
use switchboard::handler::{BoxedHandler, erase};
use switchboard::local::LocalGateway;
use switchboard::prelude::*;
use switchboard::registry::SourceLocation;
use switchboard::{RouteDef, RouteKind, RouteOptions};
use switchboard_tests::*;
use tokio::time::{Instant, timeout};

/// How long the consumer works on each message.
const JOB_TIME: Duration = Duration::from_millis(400);
/// Messages per consumer batch.
const BATCH: u32 = 2;

/// What the handlers did, in order.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Value>>>);

impl Recorder {
    fn push(&self, v: Value) {
        self.0.lock().unwrap().push(v);
    }

    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct Job {
    seq: u64,
}

/// `$disconnect`: records the connection, status code and reason.
async fn on_disconnect(ctx: Ctx, State(rec): State<Recorder>) {
    let rc = &ctx.event().request_context;
    rec.push(json!({
        "event": "disconnect",
        "connectionId": ctx.connection_id(),
        "code": rc.disconnect_status_code,
        "reason": rc.disconnect_reason,
    }));
}

/// `whoami`: the caller's connection id.
async fn whoami(ctx: Ctx) -> Value {
    json!({"action": "whoami", "connectionId": ctx.connection_id()})
}

/// `job`: forwarded to the `jobs` queue once it answers.
async fn accept_job(Json(job): Json<Job>) -> Json<Value> {
    Json(json!({"action": "queued", "seq": job.seq}))
}

/// The `jobs` consumer: a slow job; when done, tells the sender and records it.
async fn slow_job(ctx: QueueCtx, job: switchboard::consumer::Message<Job>) -> Result<(), String> {
    let rec: Recorder = ctx.state().ok_or("no recorder")?;
    rec.push(json!({"event": "started", "seq": job.body.seq}));
    tokio::time::sleep(JOB_TIME).await;
    ctx.user(job.username().to_owned())
        .send(&json!({"action": "done", "seq": job.body.seq}))
        .await
        .map_err(|e| e.to_string())?;
    rec.push(json!({"event": "finished", "seq": job.body.seq}));
    Ok(())
}

fn here(line: u32) -> SourceLocation {
    SourceLocation {
        file: file!(),
        line,
    }
}

fn route(
    key: &'static str,
    kind: RouteKind,
    function: &'static str,
    options: RouteOptions,
    handler: fn() -> BoxedHandler,
) -> RouteDef {
    RouteDef {
        key,
        kind,
        function,
        module: module_path!(),
        location: here(line!()),
        options,
        doc: "",
        handler,
    }
}

fn app(rec: &Recorder) -> App {
    let consumer = ConsumerDef {
        queue: "jobs",
        function: "slow_job",
        module: module_path!(),
        location: here(line!()),
        options: ConsumerOptions {
            batch_size: Some(BATCH),
            ..ConsumerOptions::default()
        },
        doc: "",
        consumer: || erase_consumer(slow_job),
    };
    App::new()
        .dev_auth()
        .with_routes([
            route(
                "$disconnect",
                RouteKind::Disconnect,
                "on_disconnect",
                RouteOptions::default(),
                || erase(on_disconnect),
            ),
            route(
                "whoami",
                RouteKind::Custom,
                "whoami",
                RouteOptions::default(),
                || erase(whoami),
            ),
            route(
                "job",
                RouteKind::Custom,
                "accept_job",
                RouteOptions {
                    forward: Some("jobs"),
                    ..RouteOptions::default()
                },
                || erase(accept_job),
            ),
        ])
        .with_consumers([consumer])
        .state(rec.clone())
}

async fn start_app(rec: &Recorder) -> LocalGateway {
    step("start", app(rec).serve_local(config()))
        .await
        .expect("start")
}

async fn stats(gw: &LocalGateway) -> Value {
    let response = http(gw.local_addr(), "GET", "/local/stats", b"").await;
    assert_eq!(response.status, 200, "GET /local/stats");
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "GET /local/stats"
    );
    response.json()
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001_and_fires_every_disconnect() {
    const CLIENTS: usize = 25;
    let rec = Recorder::default();
    let gw = start_app(&rec).await;
    let mut clients = Vec::new();
    let mut ids = BTreeSet::new();
    for i in 0..CLIENTS {
        let mut ws = connect(&gw, &format!("u{i}")).await;
        ids.insert(whoami_id(&mut ws).await);
        clients.push(ws);
    }
    assert_eq!(ids.len(), CLIENTS);
    assert_eq!(gw.open_connections(), CLIENTS);

    // Every client reads until the server's close frame, concurrently with the shutdown.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| tokio::spawn(async move { expect_close(&mut ws, 1001).await }))
        .collect();
    let began = Instant::now();
    timeout(Duration::from_secs(12), gw.shutdown())
        .await
        .expect("shutdown within its grace period");
    let took = began.elapsed();
    for r in readers {
        let reason = r.await.unwrap();
        assert_eq!(reason, "Going away");
    }
    // `shutdown` returns once every `$disconnect` ran: no waiting needed.
    let disconnects = rec.of_kind("disconnect");
    assert_eq!(disconnects.len(), CLIENTS, "{disconnects:?}");
    let seen: BTreeSet<String> = disconnects
        .iter()
        .map(|d| d["connectionId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ids, "one $disconnect per connection");
    for d in &disconnects {
        assert_eq!(d["code"], 1001, "{d}");
        assert_eq!(d["reason"], "Going away", "{d}");
    }
    // Well within the 5 s grace: nothing waited for a timeout.
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

#[tokio::test]
async fn shutdown_lets_a_running_consumer_batch_finish_before_closing_sockets() {
    let rec = Recorder::default();
    let gw = start_app(&rec).await;
    let mut ws = connect(&gw, "ann").await;
    // Four jobs of one user (one message group): the consumer takes two per batch.
    for seq in 0..4 {
        let reply = request(&mut ws, json!({"action": "job", "seq": seq}), "queued").await;
        assert_eq!(reply["seq"], seq, "{reply}");
    }
    // Shut down while the first batch is running.
    let deadline = Instant::now() + STEP;
    while rec.of_kind("started").is_empty() {
        assert!(Instant::now() < deadline, "the consumer never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (stopped, frames) = tokio::join!(timeout(Duration::from_secs(12), gw.shutdown()), async {
        // Everything the client gets up to the server's close frame.
        let mut frames = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, futures_util::StreamExt::next(&mut ws)).await {
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                    frames.push(serde_json::from_str::<Value>(t.as_str()).unwrap());
                }
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f))))) => {
                    frames.push(json!({"close": u16::from(f.code), "reason": f.reason.as_str()}));
                    return frames;
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("no close frame: {other:?} after {frames:?}"),
            }
        }
    });
    stopped.expect("shutdown within its grace period");
    // The batch running when the shutdown began (job 0, and job 1 if it was already
    // queued when the consumer polled) finished, and its results reached the client
    // before the 1001; the consumer took no new batch after the shutdown began.
    let started: Vec<Value> = rec
        .of_kind("started")
        .iter()
        .map(|e| e["seq"].clone())
        .collect();
    let finished: Vec<Value> = rec
        .of_kind("finished")
        .iter()
        .map(|e| e["seq"].clone())
        .collect();
    assert!(
        started == [json!(0)] || started == [json!(0), json!(1)],
        "one batch of at most {BATCH}: {started:?}"
    );
    assert_eq!(finished, started, "every started job finished");
    let mut expected: Vec<Value> = started
        .iter()
        .map(|seq| json!({"action": "done", "seq": seq}))
        .collect();
    expected.push(json!({"close": 1001, "reason": "Going away"}));
    assert_eq!(frames, expected);
    assert_eq!(rec.of_kind("disconnect").len(), 1);
}

#[tokio::test]
async fn stats_count_connections_frames_and_disconnects() {
    let rec = Recorder::default();
    let gw = start_app(&rec).await;
    let s = stats(&gw).await;
    assert_eq!(s["openConnections"], 0, "{s}");
    assert_eq!(s["connects"], 0, "{s}");
    assert!(s["uptimeMs"].is_u64(), "{s}");
    if cfg!(target_os = "linux") {
        assert!(s["rssBytes"].as_u64().unwrap() > 1024 * 1024, "{s}");
    }

    let mut a = connect(&gw, "a").await;
    let mut b = connect(&gw, "b").await;
    for _ in 0..3 {
        whoami_id(&mut a).await;
    }
    whoami_id(&mut b).await;
    let s = stats(&gw).await;
    assert_eq!(s["openConnections"], 2, "{s}");
    assert_eq!(s["connects"], 2, "{s}");
    assert_eq!(s["disconnects"], 0, "{s}");
    assert_eq!(s["framesIn"], 4, "{s}");
    assert_eq!(s["framesOut"], 4, "{s}");
    assert_eq!(s["slowConsumerCloses"], 0, "{s}");

    close(&mut a).await;
    let deadline = Instant::now() + STEP;
    let s = loop {
        let s = stats(&gw).await;
        if s["disconnects"] == 1 {
            break s;
        }
        assert!(Instant::now() < deadline, "no $disconnect counted: {s}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(s["openConnections"], 1, "{s}");
    assert_eq!(s["connects"], 2, "{s}");
    assert_eq!(rec.of_kind("disconnect").len(), 1);
    close(&mut b).await;
    shutdown(gw).await;
}
