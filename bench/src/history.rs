//! `--history`: what room history costs on the local gateway.
//!
//! - **Room send throughput, history off vs on**, one run, alternating rounds: two
//!   gateways serving the example chat's routes, one with `HistoryRule::all()` and one
//!   without. Per round and mode: `clients` connections join one room, one of them sends
//!   `messages` chat lines with `window` in flight (each ends when the sender got its
//!   own copy); the figure is deliveries/s (messages x clients / the time until every
//!   client has every line). The ratio is the median of on over the median of off
//!   (target >= 0.8).
//! - **Resume replay rate**: a reader leaves, 1,000 lines are sent, the reader
//!   reconnects and resumes; frames/s from sending `resume` to its `resumed` answer.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard::{App, HistoryRule};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use crate::BoxError;
use crate::client::{Endpoint, MSG_TIMEOUT, Ws};

/// One history scenario's sizes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HistorySizes {
    /// Connections in the room.
    pub(crate) clients: usize,
    /// Lines sent per round.
    pub(crate) messages: usize,
    /// Lines in flight.
    pub(crate) window: usize,
    /// Frames a reader misses before resuming.
    pub(crate) missed: usize,
}

impl HistorySizes {
    /// The full run.
    pub(crate) const FULL: Self = Self {
        clients: 100,
        messages: 2000,
        window: 16,
        missed: 1000,
    };
    /// `--quick`.
    pub(crate) const QUICK: Self = Self {
        clients: 20,
        messages: 300,
        window: 16,
        missed: 1000,
    };
}

/// The example chat's routes on a gateway, with or without history.
async fn gateway(history: bool) -> Result<LocalGateway, BoxError> {
    // Linked by `crate::gateway`: the chat's routes are in the registry.
    let _ = chat_app::MAX_TEXT_CHARS;
    let mut app = App::new().name("chat").dev_auth();
    if history {
        // Room enough for the replay scenario (the chat's own rule keeps 1,000).
        app = app.history(HistoryRule::all().max_frames(10_000));
    }
    let config = LocalConfig {
        addr: "127.0.0.1:0".parse()?,
        ..LocalConfig::default()
    };
    Ok(app.serve_local(config).await?)
}

/// A connection, its error as text.
async fn connect(endpoint: &Endpoint) -> Result<Ws, BoxError> {
    endpoint.connect().await.map_err(|e| e.reason().into())
}

/// The next JSON frame within [`MSG_TIMEOUT`].
async fn next_json(ws: &mut Ws) -> Result<Value, BoxError> {
    loop {
        match timeout(MSG_TIMEOUT, ws.next()).await {
            Err(_) => return Err("no frame within the message timeout".into()),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(serde_json::from_str(t.as_str())?),
            Ok(Some(Ok(Message::Close(c)))) => return Err(format!("closed: {c:?}").into()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => return Err("the stream ended".into()),
        }
    }
}

async fn send(ws: &mut Ws, v: &Value) -> Result<(), BoxError> {
    timeout(MSG_TIMEOUT, ws.send(Message::text(v.to_string())))
        .await
        .map_err(|_| "send timed out")??;
    Ok(())
}

/// Joins `room`, reading until the `joined` reply.
async fn join(ws: &mut Ws, room: &str) -> Result<(), BoxError> {
    send(ws, &json!({"action": "join", "room": room})).await?;
    while next_json(ws).await?["action"] != "joined" {}
    Ok(())
}

/// Counts `message` frames until `n` arrived.
async fn count_lines(mut ws: Ws, n: usize) -> Result<Ws, BoxError> {
    let mut got = 0;
    while got < n {
        let v = next_json(&mut ws).await?;
        if v.get("error").is_some() {
            return Err(format!("error frame: {v}").into());
        }
        if v["action"] == "message" {
            got += 1;
        }
    }
    Ok(ws)
}

/// One round of room sends: deliveries/s.
async fn room_round(url: &str, sizes: HistorySizes, round: usize) -> Result<f64, BoxError> {
    let endpoint = Endpoint::resolve(url).await?;
    let room = format!("bench-{round}");
    let mut clients = Vec::with_capacity(sizes.clients);
    for _ in 0..sizes.clients {
        let mut ws = connect(&endpoint).await?;
        join(&mut ws, &room).await?;
        clients.push(ws);
    }
    let mut sender = connect(&endpoint).await?;
    join(&mut sender, &room).await?;
    let started = Instant::now();
    let readers: Vec<_> = clients
        .into_iter()
        .map(|ws| tokio::spawn(count_lines(ws, sizes.messages)))
        .collect();
    // `window` lines in flight: each of the sender's own copies frees a slot.
    let (mut sent, mut echoed) = (0, 0);
    while echoed < sizes.messages {
        while sent < sizes.messages && sent - echoed < sizes.window {
            let text = format!("line {sent}");
            send(
                &mut sender,
                &json!({"action": "sendMessage", "room": room, "text": text}),
            )
            .await?;
            sent += 1;
        }
        let v = next_json(&mut sender).await?;
        if v.get("error").is_some() {
            return Err(format!("error frame: {v}").into());
        }
        if v["action"] == "message" {
            echoed += 1;
        }
    }
    for r in readers {
        drop(r.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((sizes.messages * (sizes.clients + 1)) as f64 / secs)
}

/// The resume replay rate: frames/s for `missed` frames.
async fn replay_rate(url: &str, missed: usize) -> Result<(usize, f64), BoxError> {
    let endpoint = Endpoint::resolve(url).await?;
    let mut writer = connect(&endpoint).await?;
    join(&mut writer, "replay").await?;
    let mut reader = connect(&endpoint).await?;
    join(&mut reader, "replay").await?;
    // The reader's position: the last frame it got (its own presence, or later).
    send(
        &mut writer,
        &json!({"action": "sendMessage", "room": "replay", "text": "mark"}),
    )
    .await?;
    let mark = loop {
        let v = next_json(&mut reader).await?;
        if v["text"] == "mark" {
            break v;
        }
    };
    let _ = timeout(MSG_TIMEOUT, reader.close(None)).await;
    drop(reader);
    for i in 0..missed {
        let text = format!("missed {i}");
        send(
            &mut writer,
            &json!({"action": "sendMessage", "room": "replay", "text": text}),
        )
        .await?;
        // Paced by the writer's own copy, so nothing queues unboundedly.
        while next_json(&mut writer).await?["text"] != text.as_str() {}
    }
    let mut reader = connect(&endpoint).await?;
    let request = json!({"action": "resume",
        "rooms": [{"room": "replay", "since": mark["seq"], "epoch": mark["epoch"]}]});
    let started = Instant::now();
    send(&mut reader, &request).await?;
    let mut frames = 0;
    loop {
        let v = next_json(&mut reader).await?;
        if v["action"] == "resumed" {
            if v["rooms"][0]["recovered"] != true {
                return Err(format!("not recovered: {v}").into());
            }
            break;
        }
        frames += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((frames, frames as f64 / secs))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the history scenarios and prints them.
pub(crate) async fn run(sizes: HistorySizes, rounds: usize) -> Result<(), BoxError> {
    let off = gateway(false).await?;
    let on = gateway(true).await?;
    let (mut offs, mut ons) = (Vec::new(), Vec::new());
    println!(
        "room send: {} clients + the sender, {} lines, {} in flight",
        sizes.clients, sizes.messages, sizes.window
    );
    for round in 1..=rounds {
        let order = if round % 2 == 1 {
            [false, true]
        } else {
            [true, false]
        };
        for history in order {
            let url = if history { on.ws_url() } else { off.ws_url() };
            let rate = timeout(Duration::from_secs(120), room_round(&url, sizes, round))
                .await
                .map_err(|_| "a round took over 120 s")??;
            println!(
                "  round {round} history {:<3} {rate:>12.0} deliveries/s",
                if history { "on" } else { "off" }
            );
            if history {
                ons.push(rate)
            } else {
                offs.push(rate)
            }
        }
    }
    let (off_median, on_median) = (median(&mut offs), median(&mut ons));
    println!(
        "room send median: off {off_median:.0}/s, on {on_median:.0}/s, ratio on/off {:.2} (target >= 0.8)",
        on_median / off_median.max(f64::MIN_POSITIVE)
    );
    let (frames, rate) = timeout(
        Duration::from_secs(120),
        replay_rate(&on.ws_url(), sizes.missed),
    )
    .await
    .map_err(|_| "the replay took over 120 s")??;
    println!("resume replay: {frames} frames at {rate:.0} frames/s");
    off.shutdown().await;
    on.shutdown().await;
    Ok(())
}
