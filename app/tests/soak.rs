//! Soak: the real `chat-app` binary (a child process, `--dev-auth`, a free port) holds
//! many connections for a while under periodic pings and random traffic.
//!
//! Size and length: `SWITCHBOARD_SOAK_CONNECTIONS` (default 10,000) and
//! `SWITCHBOARD_SOAK_SECS` (default 60). Needs `ulimit -n` above the connection count
//! (each process holds one side of every connection).
//!
//! Every client joins one room of ten; during the hold it pings (`{"action":"ping"}`)
//! every ~10 s (first ping at a random offset, so pings are spread evenly) and sends a
//! chat line to its room at random (on average every 30 s). Asserted:
//! - no connection closes or errors before the test closes it, and no error frame;
//! - every ping is answered with a pong;
//! - every chat line reaches every member of its room (the sender included), once;
//! - memory is flat: the gateway's RSS at the end of the hold is within
//!   [`RSS_TOLERANCE`] of its RSS after warm-up (everyone connected, joined and one full
//!   ping period into the hold);
//! - after every client closed: `$disconnect`s fired == connects == N, open == 0
//!   (`GET /local/stats`); then SIGTERM stops the gateway with exit status 0.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard::names::env;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const PING_EVERY: Duration = Duration::from_secs(10);
/// Mean time between two chat lines of one client.
const SEND_MEAN: Duration = Duration::from_secs(30);
const ROOM_SIZE: usize = 10;
/// Connections being set up at once.
const SETUP_CONCURRENCY: usize = 200;
/// Allowed RSS growth from warm-up to the end of the hold: 10 % plus 16 MB.
const RSS_TOLERANCE: (f64, u64) = (0.10, 16 << 20);
/// Bound on any one phase outside the hold (setup, draining, closing).
const PHASE: Duration = Duration::from_secs(120);
/// This test's knob: how many connections it holds (default 10,000).
const CONNECTIONS_ENV: &str = "SWITCHBOARD_SOAK_CONNECTIONS";
/// This test's knob: how long it holds them, in seconds (default 60).
const SECS_ENV: &str = "SWITCHBOARD_SOAK_SECS";

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// The soft limit on open files (`/proc/self/limits`), when known.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// xorshift64*: the test's own seeded randomness.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..max`.
    fn below(&mut self, max: Duration) -> Duration {
        let ms = u64::try_from(max.as_millis()).unwrap().max(1);
        Duration::from_millis(self.next() % ms)
    }
}

/// The gateway child process and its addresses.
struct Gateway {
    child: Child,
    ws_url: String,
    http_addr: String,
}

async fn spawn_gateway() -> Gateway {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak");
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-app"))
        .args(["--port", "0", "--dev-auth"])
        .current_dir(&dir)
        .env("RUST_LOG", "warn")
        .env_remove(env::LAMBDA_RUNTIME_API)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (ws_url, stats) = timeout(Duration::from_secs(30), async {
        let (mut ws, mut stats) = (None, None);
        while let Some(line) = lines.next_line().await.unwrap() {
            let line = line.trim();
            if let Some(url) = line.strip_prefix("WebSocket") {
                ws = Some(url.trim().trim_end_matches("?user=NAME").to_owned());
            } else if let Some(url) = line.strip_prefix("stats") {
                stats = Some(url.trim().to_owned());
            }
            if let (Some(ws), Some(stats)) = (&ws, &stats) {
                return (ws.clone(), stats.clone());
            }
        }
        panic!("the gateway exited before printing its addresses");
    })
    .await
    .expect("the gateway's banner");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http_addr = stats
        .strip_prefix("http://")
        .and_then(|s| s.strip_suffix("/local/stats"))
        .unwrap_or_else(|| panic!("stats URL {stats}"))
        .to_owned();
    Gateway {
        child,
        ws_url,
        http_addr,
    }
}

/// `GET /local/stats` from the child.
async fn stats(addr: &str) -> Value {
    timeout(Duration::from_secs(10), async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET /local/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    })
    .await
    .expect("GET /local/stats")
}

fn rss(stats: &Value) -> u64 {
    stats["rssBytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("no rssBytes in {stats}"))
}

/// Shared tallies of all clients.
#[derive(Default)]
struct Tally {
    /// Chat lines sent to each room.
    room_sent: Vec<AtomicU64>,
    ready: AtomicU64,
    pings: AtomicU64,
    pongs: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    /// Clients done with the drain: every ping answered.
    settled: AtomicU64,
}

/// What one client saw.
#[derive(Debug, Default)]
struct Report {
    room: usize,
    pings: u64,
    pongs: u64,
    sent: u64,
    received: u64,
    unexpected: Vec<String>,
}

fn ws_config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    c.read_buffer_size = 4 * 1024;
    c.write_buffer_size = 0;
    c
}

/// Phases the main task announces to every client.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Setup,
    Hold,
    Drain,
    Close,
}

async fn client(
    i: usize,
    url: String,
    rooms: usize,
    setup: Arc<Semaphore>,
    tally: Arc<Tally>,
    mut phase: watch::Receiver<Phase>,
) -> Report {
    let room = i % rooms;
    let mut report = Report {
        room,
        ..Report::default()
    };
    let mut rng = Rng::new(i as u64 + 1);
    let permit = setup.acquire().await.unwrap();
    let (mut ws, _) = timeout(
        PHASE,
        tokio_tungstenite::connect_async_with_config(
            format!("{url}?user=u{i}"),
            Some(ws_config()),
            true,
        ),
    )
    .await
    .expect("connect timed out")
    .unwrap_or_else(|e| panic!("client {i}: connect failed: {e}"));
    let join = format!(r#"{{"action":"join","room":"soak{room}"}}"#);
    ws.send(Message::text(join)).await.unwrap();
    drop(permit);
    let ping = Message::text(r#"{"action":"ping"}"#);
    let mut next_ping = Instant::now() + Duration::from_secs(3600);
    let mut next_send = next_ping;
    let mut joined = false;
    let mut current = Phase::Setup;
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    report.unexpected.push("the test went away".to_owned());
                    break;
                }
                current = *phase.borrow_and_update();
                match current {
                    Phase::Hold => {
                        next_ping = Instant::now() + rng.below(PING_EVERY);
                        next_send = Instant::now() + rng.below(SEND_MEAN * 2);
                    }
                    Phase::Drain => {
                        next_ping = Instant::now() + Duration::from_secs(3600);
                        next_send = next_ping;
                        if report.pongs == report.pings {
                            tally.settled.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Phase::Close => break,
                    Phase::Setup => {}
                }
            }
            () = tokio::time::sleep_until(next_ping) => {
                ws.send(ping.clone()).await.unwrap_or_else(|e| report.unexpected.push(format!("ping: {e}")));
                report.pings += 1;
                tally.pings.fetch_add(1, Ordering::Relaxed);
                next_ping += PING_EVERY;
            }
            () = tokio::time::sleep_until(next_send) => {
                let line = format!(
                    r#"{{"action":"sendMessage","room":"soak{room}","text":"hello from u{i} #{}"}}"#,
                    report.sent
                );
                ws.send(Message::text(line)).await.unwrap_or_else(|e| report.unexpected.push(format!("send: {e}")));
                report.sent += 1;
                tally.sent.fetch_add(1, Ordering::Relaxed);
                tally.room_sent[room].fetch_add(1, Ordering::Relaxed);
                next_send = Instant::now() + rng.below(SEND_MEAN * 2);
            }
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => {
                        report.unexpected.push(format!("{current:?}: {other:?}"));
                        break;
                    }
                };
                let v: Value = serde_json::from_str(text.as_str()).unwrap();
                match v["action"].as_str() {
                    Some("pong") => {
                        report.pongs += 1;
                        tally.pongs.fetch_add(1, Ordering::Relaxed);
                        if current == Phase::Drain && report.pongs == report.pings {
                            tally.settled.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some("message") => {
                        report.received += 1;
                        tally.received.fetch_add(1, Ordering::Relaxed);
                    }
                    Some("joined") if !joined => {
                        joined = true;
                        tally.ready.fetch_add(1, Ordering::Relaxed);
                    }
                    Some("presence") => {}
                    _ => report.unexpected.push(format!("frame: {v}")),
                }
            }
        }
    }
    if report.unexpected.is_empty() {
        // The test closes: 1000, then the server's answer and the end of the stream.
        let closed = timeout(PHASE, async {
            ws.close(None).await?;
            while let Some(m) = ws.next().await {
                m?;
            }
            Ok::<_, tokio_tungstenite::tungstenite::Error>(())
        })
        .await;
        match closed {
            Ok(Ok(())) => {}
            other => report.unexpected.push(format!("close: {other:?}")),
        }
    }
    report
}

/// Waits until `done()` holds, polling every 100 ms, within `limit`; `what` names it.
async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    let n = usize::try_from(env_or(CONNECTIONS_ENV, 10_000)).unwrap();
    let hold = Duration::from_secs(env_or(SECS_ENV, 60));
    assert!(n >= 1);
    if let Some(limit) = open_files_limit() {
        assert!(
            limit >= n as u64 + 256,
            "`ulimit -n` is {limit}: {n} connections need at least {} (set \
             SWITCHBOARD_SOAK_CONNECTIONS lower or raise the limit)",
            n + 256
        );
    }
    let rooms = n.div_ceil(ROOM_SIZE);
    let mut gw = spawn_gateway().await;
    let idle = stats(&gw.http_addr).await;
    eprintln!(
        "soak: {n} connections, {rooms} rooms, {hold:?}; gateway idle RSS {} MB",
        rss(&idle) >> 20
    );

    // Setup: everyone connects and joins, SETUP_CONCURRENCY at a time.
    let tally = Arc::new(Tally {
        room_sent: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
        ..Tally::default()
    });
    let setup = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let (phase, phases) = watch::channel(Phase::Setup);
    let began = Instant::now();
    let clients: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(client(
                i,
                gw.ws_url.clone(),
                rooms,
                Arc::clone(&setup),
                Arc::clone(&tally),
                phases.clone(),
            ))
        })
        .collect();
    wait_for("every client connected and joined", PHASE, || {
        tally.ready.load(Ordering::Relaxed) == n as u64
    })
    .await;
    eprintln!("soak: {n} connected and joined in {:?}", began.elapsed());
    let s = stats(&gw.http_addr).await;
    assert_eq!(s["openConnections"], n, "{s}");
    assert_eq!(s["connects"], n, "{s}");

    // Hold: pings and chat lines; RSS sampled after warm-up and at the end.
    phase.send(Phase::Hold).unwrap();
    let hold_start = Instant::now();
    let warm_up = PING_EVERY.min(hold / 2);
    sleep(warm_up).await;
    let warm = rss(&stats(&gw.http_addr).await);
    let mut samples = vec![warm];
    while hold_start.elapsed() + Duration::from_secs(10) < hold {
        sleep(Duration::from_secs(10)).await;
        samples.push(rss(&stats(&gw.http_addr).await));
    }
    sleep(hold.saturating_sub(hold_start.elapsed())).await;
    let end_stats = stats(&gw.http_addr).await;
    let end = rss(&end_stats);
    samples.push(end);
    eprintln!(
        "soak: RSS (MB) after warm-up .. end of hold: {:?}",
        samples.iter().map(|b| b >> 20).collect::<Vec<_>>()
    );

    // Drain: no new traffic; every ping answered, every chat line delivered.
    phase.send(Phase::Drain).unwrap();
    wait_for("every ping answered", PHASE, || {
        tally.settled.load(Ordering::Relaxed) == n as u64
    })
    .await;
    let sent = tally.sent.load(Ordering::Relaxed);
    let members = |room: usize| (0..n).filter(|i| i % rooms == room).count() as u64;
    let expected: u64 = tally
        .room_sent
        .iter()
        .enumerate()
        .map(|(room, s)| s.load(Ordering::Relaxed) * members(room))
        .sum();
    wait_for("every chat line delivered", PHASE, || {
        tally.received.load(Ordering::Relaxed) >= expected
    })
    .await;
    // Nothing more than expected arrives either (checked exactly per client below).
    sleep(Duration::from_millis(500)).await;
    phase.send(Phase::Close).unwrap();
    let mut reports = Vec::with_capacity(n);
    for c in clients {
        reports.push(timeout(PHASE, c).await.expect("client task").unwrap());
    }

    let unexpected: Vec<_> = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.unexpected.is_empty())
        .map(|(i, r)| format!("client {i}: {:?}", r.unexpected))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} clients saw unexpected closes/frames, e.g. {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)]
    );
    let pings: u64 = reports.iter().map(|r| r.pings).sum();
    let pongs: u64 = reports.iter().map(|r| r.pongs).sum();
    assert_eq!(pongs, pings, "every ping answered");
    if hold >= PING_EVERY {
        assert!(
            pings >= n as u64,
            "every client pinged at least once ({pings})"
        );
    }
    let mut sent_to = vec![0u64; rooms];
    let mut members = vec![0u64; rooms];
    for r in &reports {
        sent_to[r.room] += r.sent;
        members[r.room] += 1;
    }
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(
            r.received, sent_to[r.room],
            "client {i} got {} of the {} lines sent to its room",
            r.received, sent_to[r.room]
        );
    }
    let delivered: u64 = reports.iter().map(|r| r.received).sum();
    let should: u64 = (0..rooms).map(|r| sent_to[r] * members[r]).sum();
    assert_eq!(delivered, should);
    eprintln!(
        "soak: {pings} pings answered, {sent} chat lines, {delivered} deliveries, {} frames in, \
         {} frames out",
        end_stats["framesIn"], end_stats["framesOut"]
    );

    // Memory flat.
    let allowed = warm + (warm as f64 * RSS_TOLERANCE.0) as u64 + RSS_TOLERANCE.1;
    assert!(
        end <= allowed,
        "RSS grew from {} MB after warm-up to {} MB at the end (allowed {} MB)",
        warm >> 20,
        end >> 20,
        allowed >> 20
    );

    // Every close fired its $disconnect.
    let deadline = Instant::now() + PHASE;
    let s = loop {
        let s = stats(&gw.http_addr).await;
        if s["openConnections"] == 0 && s["closingConnections"] == 0 && s["disconnects"] == n {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "not every $disconnect fired: {s}"
        );
        sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(s["connects"], n, "{s}");
    assert_eq!(s["disconnects"], s["connects"], "{s}");
    assert_eq!(s["slowConsumerCloses"], 0, "{s}");
    eprintln!("soak: done in {:?}; final stats {s}", began.elapsed());

    // SIGTERM: a graceful stop, exit status 0.
    let pid = gw.child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = timeout(Duration::from_secs(15), gw.child.wait())
        .await
        .expect("the gateway exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}
