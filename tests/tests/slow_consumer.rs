//! Slow consumers: a client that stops reading its socket, in a room with heavy traffic.
//!
//! What the gateway does (`LocalConfig::outbound_buffer`, `write_timeout`): every post to
//! a connection is a non-blocking push onto that connection's bounded outbound queue
//! (1,024 frames). Once the client stops reading, the kernel's socket buffers fill, the
//! connection's writer blocks, and its queue fills; the next post finds it full, asks the
//! connection to close with 1008 "Outbound buffer full" and answers 410 Gone, so the
//! fan-out removes the connection's record and later sends skip it. The writer, stuck
//! mid-write, gets two more seconds to finish; then the socket is dropped without a close
//! frame (none can be written into a full socket) and `$disconnect` runs with 1008
//! "Outbound buffer full". Senders never wait for it and never see an error; the other
//! members' deliveries go on at their own pace.
//!
//! The test sends more data than the kernel can buffer (its maximum receive plus send
//! buffer sizes, read from `/proc/sys/net/ipv4/tcp_{r,w}mem`, plus the outbound queue), so
//! the socket buffers cannot hide the stall.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::handler::{BoxedHandler, erase};
use switchboard::local::{LocalConfig, LocalGateway};
use switchboard::prelude::*;
use switchboard::registry::SourceLocation;
use switchboard::{RouteDef, RouteKind, RouteOptions};
use switchboard_tests::*;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message as WsMsg;

/// Bytes of padding in each room message.
const PAD: usize = 16 * 1024;
/// Fast members of the room.
const FAST: usize = 3;
/// The outbound queue (the default).
const OUTBOUND: usize = 1024;
/// The write timeout (the default).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long everything may take: a bound against hanging, not a performance target.
const ALL_WITHIN: Duration = Duration::from_secs(120);

/// One `$disconnect` seen: connection id, code, reason, when.
type Seen = (String, i64, String, Instant);

/// The `$disconnect`s seen.
#[derive(Clone, Default)]
struct Disconnects(Arc<Mutex<Vec<Seen>>>);

#[derive(Debug, Deserialize)]
struct Say {
    seq: u64,
}

/// A room message, fields in this order (the test reads `seq` from the frame's start).
#[derive(Serialize)]
struct Msg<'a> {
    action: &'static str,
    seq: u64,
    pad: &'a str,
}

async fn on_disconnect(ctx: Ctx, State(seen): State<Disconnects>) {
    let rc = &ctx.event().request_context;
    seen.0.lock().unwrap().push((
        ctx.connection_id().to_owned(),
        rc.disconnect_status_code.unwrap_or_default(),
        rc.disconnect_reason.clone().unwrap_or_default(),
        Instant::now(),
    ));
}

async fn join(ctx: Ctx) -> Result<Value, WsError> {
    ctx.join("r").await?;
    Ok(json!({"action": "joined", "connectionId": ctx.connection_id()}))
}

/// Sends a padded message to room `r` and answers with the delivery counts.
async fn say(ctx: Ctx, Json(say): Json<Say>) -> Result<Value, WsError> {
    let pad = "x".repeat(PAD);
    let d = ctx
        .room("r")
        .send(&Msg {
            action: "msg",
            seq: say.seq,
            pad: &pad,
        })
        .await?;
    Ok(json!({
        "action": "said",
        "seq": say.seq,
        "delivered": d.delivered,
        "gone": d.gone,
        "failed": d.failed,
    }))
}

fn def(
    key: &'static str,
    kind: RouteKind,
    function: &'static str,
    handler: fn() -> BoxedHandler,
) -> RouteDef {
    RouteDef {
        key,
        kind,
        function,
        module: module_path!(),
        location: SourceLocation {
            file: file!(),
            line: line!(),
        },
        options: RouteOptions::default(),
        doc: "",
        handler,
    }
}

async fn start_app(seen: &Disconnects) -> LocalGateway {
    let app = App::new()
        .dev_auth()
        .with_routes([
            def(
                "$disconnect",
                RouteKind::Disconnect,
                "on_disconnect",
                || erase(on_disconnect),
            ),
            def("join", RouteKind::Custom, "join", || erase(join)),
            def("say", RouteKind::Custom, "say", || erase(say)),
        ])
        .state(seen.clone());
    let config = LocalConfig {
        outbound_buffer: OUTBOUND,
        write_timeout: WRITE_TIMEOUT,
        ..config()
    };
    step("start", app.serve_local(config)).await.expect("start")
}

/// The largest buffer (third field) of `/proc/sys/net/ipv4/tcp_rmem` or `tcp_wmem`.
fn kernel_max(name: &str) -> Option<usize> {
    let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

/// Messages to send: more than the kernel buffers and the outbound queue hold together,
/// with half again as margin.
fn message_count() -> usize {
    let kernel =
        kernel_max("tcp_rmem").unwrap_or(32 << 20) + kernel_max("tcp_wmem").unwrap_or(4 << 20);
    (kernel / PAD + OUTBOUND) * 3 / 2
}

/// `{"action":"msg","seq":N,...`: N.
fn seq_of(text: &str) -> Option<u64> {
    let rest = text.strip_prefix(r#"{"action":"msg","seq":"#)?;
    rest[..rest.find(',')?].parse().ok()
}

async fn joined(gw: &LocalGateway, user: &str) -> (Ws, String) {
    let mut ws = connect(gw, user).await;
    let reply = request(&mut ws, json!({"action": "join"}), "joined").await;
    let id = reply["connectionId"].as_str().unwrap().to_owned();
    (ws, id)
}

async fn stats(gw: &LocalGateway) -> Value {
    let response = http(gw.local_addr(), "GET", "/local/stats", b"").await;
    assert_eq!(response.status, 200);
    response.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_without_stalling_anyone() {
    let seen = Disconnects::default();
    let gw = start_app(&seen).await;
    let n = message_count();
    eprintln!(
        "sending {n} messages of {} KB ({} MB) to {FAST} fast members and one that never reads",
        PAD / 1024,
        (n * PAD) >> 20
    );

    // The slow member joins, then never reads its socket again (it is kept, not dropped).
    let (slow, slow_id) = joined(&gw, "slow").await;
    let mut fast_ids = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..FAST {
        let (mut ws, id) = joined(&gw, &format!("fast{i}")).await;
        fast_ids.push(id);
        receivers.push(tokio::spawn(async move {
            let deadline = Instant::now() + ALL_WITHIN;
            let mut seqs = BTreeSet::new();
            let mut last = None::<Instant>;
            let mut max_gap = Duration::ZERO;
            while seqs.len() < n {
                let left = deadline.saturating_duration_since(Instant::now());
                let msg = match timeout(left, ws.next()).await {
                    Ok(Some(Ok(msg))) => msg,
                    other => panic!("fast{i}: after {} messages: {other:?}", seqs.len()),
                };
                let WsMsg::Text(text) = msg else { continue };
                let seq = seq_of(text.as_str()).unwrap_or_else(|| {
                    panic!("fast{i}: unexpected frame {}", &text[..80.min(text.len())])
                });
                assert!(seqs.insert(seq), "fast{i}: message {seq} twice");
                let now = Instant::now();
                if let Some(last) = last {
                    max_gap = max_gap.max(now - last);
                }
                last = Some(now);
            }
            (ws, seqs, max_gap, Instant::now())
        }));
    }

    // One sender, not in the room: writes every `say` at once and reads the replies.
    let sender = connect(&gw, "sender").await;
    let (mut tx, mut rx) = sender.split();
    let began = Instant::now();
    let writer = tokio::spawn(async move {
        for seq in 0..n as u64 {
            tx.send(WsMsg::text(
                json!({"action": "say", "seq": seq}).to_string(),
            ))
            .await
            .unwrap();
        }
        tx
    });
    let replies = tokio::spawn(async move {
        let deadline = Instant::now() + ALL_WITHIN;
        let mut replies = Vec::with_capacity(n);
        while replies.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, rx.next()).await {
                Ok(Some(Ok(WsMsg::Text(t)))) => {
                    replies.push(serde_json::from_str::<Value>(t.as_str()).unwrap());
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("sender: after {} replies: {other:?}", replies.len()),
            }
        }
        (rx, replies)
    });

    // Every fast member gets every message, never waiting long between two of them.
    let mut fast = Vec::new();
    for (i, r) in receivers.into_iter().enumerate() {
        let (ws, seqs, max_gap, done) = r.await.unwrap();
        assert_eq!(seqs.len(), n, "fast{i}");
        assert_eq!(seqs.last(), Some(&(n as u64 - 1)), "fast{i}");
        eprintln!(
            "fast{i}: {n} messages in {:?}, longest gap {max_gap:?}",
            done - began
        );
        // A sender waiting on the stalled client would show here as a gap of the write
        // timeout; the deliveries only ever wait for the machine.
        assert!(
            max_gap < WRITE_TIMEOUT / 2,
            "fast{i} waited {max_gap:?} between two messages"
        );
        fast.push(ws);
    }

    // The sender saw no error: every `say` answered, each delivered to the fast members;
    // the slow one counted as gone (410) when its buffer was full, then no longer a member.
    let (rx, replies) = replies.await.unwrap();
    let tx = writer.await.unwrap();
    let mut gone = 0;
    for r in &replies {
        assert_eq!(r["action"], "said", "{r}");
        assert_eq!(r["failed"], 0, "{r}");
        assert!(r["delivered"].as_u64().unwrap() >= FAST as u64, "{r}");
        gone += r["gone"].as_u64().unwrap();
    }
    assert!(gone >= 1, "the slow member never counted as gone");
    let last_replies = &replies[replies.len() - 10..];
    for r in last_replies {
        assert_eq!(
            r["delivered"], FAST,
            "the slow member is still in the room: {r}"
        );
        assert_eq!(r["gone"], 0, "{r}");
    }

    // Its `$disconnect` ran, with 1008, once; no one else's did.
    let deadline = Instant::now() + STEP;
    let (code, reason, at) = loop {
        let d = seen.0.lock().unwrap().clone();
        if let Some((id, code, reason, at)) = d.first() {
            assert_eq!(d.len(), 1, "{d:?}");
            assert_eq!(id, &slow_id);
            break (*code, reason.clone(), *at);
        }
        assert!(
            Instant::now() < deadline,
            "no $disconnect for the slow member"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(code, 1008);
    assert_eq!(reason, "Outbound buffer full");
    eprintln!("slow member dropped {:?} after the first send", at - began);
    let s = stats(&gw).await;
    assert_eq!(s["slowConsumerCloses"], 1, "{s}");
    assert_eq!(s["openConnections"], FAST + 1, "{s}");
    assert_eq!(s["disconnects"], 1, "{s}");
    let ids = store_ids(&gw).await;
    assert!(
        !ids.contains(&slow_id),
        "the slow member's record is gone: {ids:?}"
    );
    for id in &fast_ids {
        assert!(ids.contains(id), "{id} kept its record: {ids:?}");
    }

    // What the slow client finds when it reads at last: what the kernel held, in no
    // particular order and far fewer than were sent, then the end of the stream (no
    // close frame fits into a socket nobody reads).
    let mut slow = slow;
    let mut got = 0usize;
    let end = timeout(Duration::from_secs(30), async {
        loop {
            match slow.next().await {
                Some(Ok(WsMsg::Text(t))) => {
                    assert!(seq_of(t.as_str()).is_some());
                    got += 1;
                }
                Some(Ok(other)) => return format!("{other:?}"),
                Some(Err(e)) => return format!("error: {e}"),
                None => return "end of stream".to_owned(),
            }
        }
    })
    .await
    .expect("the slow client's stream ends");
    eprintln!("slow client read {got} messages, then: {end}");
    assert!(got < n - OUTBOUND, "{got} of {n} reached the slow client");

    // The others carry on.
    let mut tx = tx;
    let mut rx = rx;
    tx.send(WsMsg::text(json!({"action": "say", "seq": n}).to_string()))
        .await
        .unwrap();
    for (i, ws) in fast.iter_mut().enumerate() {
        let text = recv_text(ws).await;
        assert_eq!(seq_of(&text), Some(n as u64), "fast{i}");
    }
    let reply: Value = match step("reply", rx.next()).await {
        Some(Ok(WsMsg::Text(t))) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(reply["delivered"], FAST, "{reply}");
    drop((tx, rx, fast));
    shutdown(gw).await;
}
