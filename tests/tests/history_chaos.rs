//! Seeded chaos on the embedded store: 20 readers are dropped (close, signed DELETE,
//! TCP reset) and reconnected at random while 3 writers send 2,000 lines to one room.
//! Each reader keeps what it got by `seq` (de-duplicating, as the TypeScript client
//! does) and resumes from the highest `seq` it has without a gap after every
//! reconnect; every resume must be `recovered`. At the end every reader holds the
//! complete gap-free sequence up to the last line, with each of the 2,000 lines once.
//!
//! The seed is fixed (`SEED`); `SWITCHBOARD_CHAOS_SEED` overrides it to explore.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use switchboard::local::LocalGateway;
use switchboard_tests::history::{DropBy, drop_connection, line};
use switchboard_tests::*;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

const SEED: u64 = 0x5eed_0015;
const READERS: usize = 20;
const WRITERS: usize = 3;
const LINES: usize = 2000;
const ROOM: &str = "chaos";
/// The whole test's bound: it fails rather than hang.
const BOUND: Duration = Duration::from_secs(90);

/// What one reader has of the room, by `seq`.
#[derive(Default)]
struct Received {
    frames: BTreeMap<u64, Value>,
    epoch: Option<String>,
    resumes: usize,
}

impl Received {
    /// The highest `seq` such that every frame `1..=seq` is here.
    fn contiguous(&self) -> u64 {
        let mut n = 0;
        for seq in self.frames.keys() {
            if *seq != n + 1 {
                break;
            }
            n = *seq;
        }
        n
    }

    fn take(&mut self, frame: Value) {
        if let Some(seq) = frame["seq"].as_u64() {
            self.frames.entry(seq).or_insert(frame);
        }
    }
}

/// Connects and resumes; returns the socket, having taken the replay and checked the
/// answer.
async fn resume(gw: &LocalGateway, got: &mut Received, who: &str) -> Ws {
    let mut ws = connect(gw, who).await;
    let since = got.contiguous();
    send_json(
        &mut ws,
        &json!({"action": "resume", "id": "r",
                "rooms": [{"room": ROOM, "since": since, "epoch": got.epoch}]}),
    )
    .await;
    let (resumed, replay) = recv_until(&mut ws, |f| f["action"] == "resumed").await;
    let entry = &resumed["rooms"][0];
    assert_eq!(entry["recovered"], true, "{who} since {since}: {resumed}");
    got.epoch = entry["epoch"].as_str().map(str::to_owned);
    got.resumes += 1;
    for frame in replay {
        got.take(frame);
    }
    ws
}

/// Reads room frames for `period` (a close or error ends it early).
async fn read_for(ws: &mut Ws, got: &mut Received, period: Duration) {
    let until = Instant::now() + period;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match timeout(left, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Text(t)))) => {
                if let Ok(v) = serde_json::from_str::<Value>(t.as_str()) {
                    got.take(v);
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return,
        }
    }
}

async fn reader(gw: Arc<LocalGateway>, i: usize, seed: u64, stop: Arc<AtomicBool>) -> Received {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
    let who = format!("reader{i}");
    let mut got = Received::default();
    while !stop.load(Ordering::Relaxed) {
        let mut ws = resume(&gw, &mut got, &who).await;
        let connected = Duration::from_millis(rng.random_range(10..120));
        read_for(&mut ws, &mut got, connected).await;
        let how = match rng.random_range(0..3) {
            0 => DropBy::Close,
            1 => DropBy::ServerDelete,
            _ => DropBy::Tcp,
        };
        let id = whoami_id_or_none(&mut ws, &mut got).await;
        match id {
            Some(id) => drop_connection(&gw, ws, &id, how).await,
            None => drop(ws),
        }
        // Offline for a while: frames sent meanwhile must come back on resume.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..80))).await;
    }
    got
}

/// `whoami` on a socket that also receives room frames (kept); `None` if the
/// connection ended meanwhile.
async fn whoami_id_or_none(ws: &mut Ws, got: &mut Received) -> Option<String> {
    use futures_util::SinkExt;
    let sent = ws
        .send(Message::text(json!({"action": "whoami"}).to_string()))
        .await;
    sent.ok()?;
    let until = Instant::now() + STEP;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(t.as_str()).ok()?;
                if v["action"] == "whoami" {
                    return v["connectionId"].as_str().map(str::to_owned);
                }
                got.take(v);
            }
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

async fn writer(gw: Arc<LocalGateway>, w: usize, lines: Vec<String>) {
    let mut ws = connect(&gw, &format!("writer{w}")).await;
    join(&mut ws, ROOM).await;
    for text in lines {
        send_json(&mut ws, &line(ROOM, &text)).await;
        // Paced by its own copy: stored and delivered before the next.
        recv_until(&mut ws, |f| f["text"] == text.as_str()).await;
    }
    close(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_readers_dropped_at_random_lose_nothing() {
    let seed = std::env::var("SWITCHBOARD_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    eprintln!("chaos seed {seed}");
    timeout(BOUND, chaos(seed))
        .await
        .expect("chaos within its bound");
}

async fn chaos(seed: u64) {
    let gw = Arc::new(start().await);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|i| tokio::spawn(reader(Arc::clone(&gw), i, seed, Arc::clone(&stop))))
        .collect();
    let all: Vec<String> = (0..LINES).map(|n| format!("line-{n}")).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mine = all.iter().skip(w).step_by(WRITERS).cloned().collect();
            tokio::spawn(writer(Arc::clone(&gw), w, mine))
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    // The last line's seq: everything up to it must reach every reader.
    let mut last_writer = connect(&gw, "closer").await;
    join(&mut last_writer, ROOM).await;
    send_json(&mut last_writer, &line(ROOM, "the-end")).await;
    let (end, _) = recv_until(&mut last_writer, |f| f["text"] == "the-end").await;
    let end_seq = end["seq"].as_u64().unwrap();
    stop.store(true, Ordering::Relaxed);

    let expected: HashSet<String> = all.iter().cloned().collect();
    let mut drops = 0;
    for r in readers {
        let mut got = r.await.expect("reader");
        drops += got.resumes;
        // Back once more, as a client that reconnects after the last drop.
        let mut ws = resume(&gw, &mut got, "final").await;
        close(&mut ws).await;
        assert!(
            got.contiguous() >= end_seq,
            "a reader has 1..={} of 1..={end_seq}",
            got.contiguous()
        );
        let lines: Vec<&str> = got
            .frames
            .values()
            .filter(|f| f["action"] == "message" && f["text"] != "the-end")
            .filter_map(|f| f["text"].as_str())
            .collect();
        assert_eq!(lines.len(), LINES, "each line once after de-duplication");
        let distinct: HashSet<String> = lines.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(distinct, expected);
    }
    eprintln!("{READERS} readers resumed {drops} times in all; last seq {end_seq}");
    assert!(
        drops > READERS * 2,
        "readers were dropped repeatedly: {drops}"
    );
    match Arc::try_unwrap(gw) {
        Ok(gw) => shutdown(gw).await,
        Err(_) => panic!("the gateway is still shared"),
    }
}
