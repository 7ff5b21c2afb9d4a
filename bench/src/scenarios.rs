//! The three scenarios, run against any [`Endpoint`].

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use tokio::{
    sync::mpsc,
    task::JoinSet,
    time::{Instant, timeout_at},
};
use tokio_tungstenite::tungstenite::Message;

use futures_util::StreamExt;

use crate::{
    client::{self, CLOSE_TIMEOUT, Endpoint, Failures, Inbound, MSG_TIMEOUT, Ws},
    stats::{micros, rate, summarize},
};

/// Handshakes in flight while setting up the echo and broadcast scenarios.
const SETUP_CONCURRENCY: usize = 64;
/// Pause after closing a scenario's connections, so the server has finished
/// its disconnect work before the next scenario starts.
const SETTLE: Duration = Duration::from_millis(300);

/// Results of the connect scenario.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ConnectReport {
    /// Upgrades attempted (all spawned at once).
    pub(crate) attempted: usize,
    /// Upgrades that succeeded.
    pub(crate) ok: usize,
    /// Upgrades that failed or timed out.
    pub(crate) failed: usize,
    /// From the first spawn to the last upgrade finishing.
    pub(crate) wall_ms: f64,
    /// `ok / wall`.
    pub(crate) connects_per_sec: f64,
    /// Per-upgrade time (TCP connect + handshake), microseconds.
    pub(crate) p50_us: u64,
    /// Per-upgrade time, microseconds.
    pub(crate) p99_us: u64,
    /// Per-upgrade time, microseconds.
    pub(crate) max_us: u64,
    /// Connections whose close handshake did not complete.
    pub(crate) unclean_closes: usize,
    /// Failure reasons and counts.
    pub(crate) failure_reasons: Vec<(String, usize)>,
    /// Whether a failure was "Too many open files".
    pub(crate) emfile: bool,
}

/// Results of the echo scenario.
#[derive(Debug, Default, Serialize)]
pub(crate) struct EchoReport {
    /// Connections opened.
    pub(crate) connections: usize,
    /// Connections that could not be opened.
    pub(crate) setup_failures: usize,
    /// Messages each connection sends.
    pub(crate) messages_per_connection: usize,
    /// Replies received and matched.
    pub(crate) ok: u64,
    /// Timeouts, error frames, send failures, messages lost to a dropped
    /// connection.
    pub(crate) errors: u64,
    /// Frames that were neither the expected reply nor an error.
    pub(crate) other_frames: u64,
    /// From releasing the clients to the last one finishing.
    pub(crate) wall_ms: f64,
    /// `ok / wall`.
    pub(crate) msgs_per_sec: f64,
    /// Round-trip time, microseconds.
    pub(crate) p50_us: u64,
    /// Round-trip time, microseconds.
    pub(crate) p99_us: u64,
    /// Round-trip time, microseconds.
    pub(crate) max_us: u64,
    /// Connections whose close handshake did not complete.
    pub(crate) unclean_closes: usize,
    /// Whether a setup failure was "Too many open files".
    pub(crate) emfile: bool,
}

/// One phase of the broadcast scenario: `messages` broadcasts with at most
/// `window` of them in flight (sent, not yet received by every client).
#[derive(Debug, Default, Serialize)]
pub(crate) struct BroadcastPhase {
    /// Broadcasts in flight at most: 1 measures time-to-all (latency), more
    /// measure throughput.
    pub(crate) window: usize,
    /// Broadcasts sent.
    pub(crate) messages: usize,
    /// `clients * messages`.
    pub(crate) expected_deliveries: u64,
    /// Deliveries received (distinct per client and message).
    pub(crate) deliveries: u64,
    /// `expected - received`.
    pub(crate) missing: u64,
    /// Broadcasts not seen by every client within the timeout.
    pub(crate) incomplete_messages: usize,
    /// The phase's first send to its last delivery.
    pub(crate) elapsed_ms: f64,
    /// `deliveries / elapsed`.
    pub(crate) deliveries_per_sec: f64,
    /// Per broadcast: send to the last client receiving it, microseconds. With
    /// a window > 1 this includes waiting behind the broadcasts before it.
    pub(crate) p50_time_to_all_us: u64,
    /// Per broadcast, microseconds.
    pub(crate) p99_time_to_all_us: u64,
    /// Per broadcast, microseconds.
    pub(crate) max_time_to_all_us: u64,
}

/// Results of the broadcast scenario: one set of clients, one or more phases.
#[derive(Debug, Default, Serialize)]
pub(crate) struct BroadcastReport {
    /// Clients connected (the sender is one of them and receives too).
    pub(crate) clients: usize,
    /// Clients that could not be connected.
    pub(crate) setup_failures: usize,
    /// The phases, in the order they ran.
    pub(crate) phases: Vec<BroadcastPhase>,
    /// Error frames received, plus send failures (all phases).
    pub(crate) errors: u64,
    /// Frames that were not one of our broadcasts (all phases).
    pub(crate) other_frames: u64,
    /// Same broadcast received twice by one client (all phases).
    pub(crate) duplicates: u64,
    /// Connections whose close handshake did not complete.
    pub(crate) unclean_closes: usize,
    /// Whether a setup failure was "Too many open files".
    pub(crate) emfile: bool,
}

/// `n` upgrades spawned at once; then all closed.
pub(crate) async fn connect(endpoint: &Arc<Endpoint>, n: usize) -> ConnectReport {
    let mut set = JoinSet::new();
    let start = Instant::now();
    for _ in 0..n {
        let endpoint = Arc::clone(endpoint);
        set.spawn(async move {
            let t0 = Instant::now();
            let res = endpoint.connect().await;
            (res, t0.elapsed(), Instant::now())
        });
    }
    let mut conns = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut failures = Failures::default();
    let mut last_done = start;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((Ok(ws), took, done)) => {
                conns.push(ws);
                times.push(micros(took));
                last_done = last_done.max(done);
            }
            Ok((Err(e), _, done)) => {
                failures.add(&e);
                last_done = last_done.max(done);
            }
            Err(join) => failures.add(&client::ConnectError::Io(std::io::Error::other(
                join.to_string(),
            ))),
        }
    }
    let wall = last_done - start;
    let (p50_us, p99_us, max_us) = summarize(&mut times);
    let ok = conns.len();
    let unclean_closes = client::close_all(conns).await;
    tokio::time::sleep(SETTLE).await;
    ConnectReport {
        attempted: n,
        ok,
        failed: failures.count,
        wall_ms: wall.as_secs_f64() * 1e3,
        connects_per_sec: rate(ok as u64, wall),
        p50_us,
        p99_us,
        max_us,
        unclean_closes,
        failure_reasons: failures.reasons,
        emfile: failures.emfile,
    }
}

#[derive(Default)]
struct EchoConnStats {
    rtts: Vec<u64>,
    errors: u64,
    other: u64,
}

enum EchoOutcome {
    Reply,
    ErrorFrame,
    Timeout,
    Closed,
}

/// `conns` connections, each sending `msgs` echo requests in a closed loop.
pub(crate) async fn echo(endpoint: &Arc<Endpoint>, conns: usize, msgs: usize) -> EchoReport {
    let (opened, failures) = client::connect_many(endpoint, conns, SETUP_CONCURRENCY).await;
    let connections = opened.len();
    let mut set = JoinSet::new();
    let start = Instant::now();
    for (i, ws) in opened.into_iter().enumerate() {
        set.spawn(echo_conn(ws, i, msgs));
    }
    let mut rtts = Vec::with_capacity(connections * msgs);
    let mut errors = 0;
    let mut other = 0;
    let mut back = Vec::with_capacity(connections);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((ws, st)) => {
                rtts.extend_from_slice(&st.rtts);
                errors += st.errors;
                other += st.other;
                back.push(ws);
            }
            Err(_) => errors += msgs as u64,
        }
    }
    let wall = start.elapsed();
    let ok = rtts.len() as u64;
    let (p50_us, p99_us, max_us) = summarize(&mut rtts);
    let unclean_closes = client::close_all(back).await;
    tokio::time::sleep(SETTLE).await;
    EchoReport {
        connections,
        setup_failures: failures.count,
        messages_per_connection: msgs,
        ok,
        errors,
        other_frames: other,
        wall_ms: wall.as_secs_f64() * 1e3,
        msgs_per_sec: rate(ok, wall),
        p50_us,
        p99_us,
        max_us,
        unclean_closes,
        emfile: failures.emfile,
    }
}

async fn echo_conn(mut ws: Ws, conn: usize, msgs: usize) -> (Ws, EchoConnStats) {
    let mut st = EchoConnStats {
        rtts: Vec::with_capacity(msgs),
        ..EchoConnStats::default()
    };
    for seq in 0..msgs {
        let data = client::payload('e', conn, seq);
        let req = client::request("echo", &data);
        let t0 = Instant::now();
        // The reply has exactly the request's shape: compare bytes first.
        let expected = req.clone();
        if !client::send_text(&mut ws, req).await {
            st.errors += (msgs - seq) as u64;
            break;
        }
        let deadline = t0 + MSG_TIMEOUT;
        let outcome = loop {
            match timeout_at(deadline, ws.next()).await {
                Err(_) => break EchoOutcome::Timeout,
                Ok(None | Some(Err(_))) => break EchoOutcome::Closed,
                Ok(Some(Ok(Message::Text(text)))) => {
                    if text.as_str() == expected {
                        break EchoOutcome::Reply;
                    }
                    match client::classify(text.as_str()) {
                        Inbound::Reply { action, data: d } if action == "echo" && d == data => {
                            break EchoOutcome::Reply;
                        }
                        Inbound::Error => break EchoOutcome::ErrorFrame,
                        // Includes a late reply to a message that timed out.
                        Inbound::Reply { .. } | Inbound::Other => st.other += 1,
                    }
                }
                Ok(Some(Ok(_))) => {}
            }
        };
        match outcome {
            EchoOutcome::Reply => st.rtts.push(micros(t0.elapsed())),
            EchoOutcome::ErrorFrame | EchoOutcome::Timeout => st.errors += 1,
            EchoOutcome::Closed => {
                st.errors += (msgs - seq) as u64;
                break;
            }
        }
    }
    (ws, st)
}

enum Cmd {
    Send(String),
    Stop,
}

#[derive(Default)]
struct BcastClientStats {
    errors: u64,
    other: u64,
    duplicates: u64,
    clean_close: bool,
}

/// `clients` connections; one of them sends broadcasts, phase after phase:
/// `(window, messages)` sends `messages` broadcasts keeping at most `window`
/// in flight (a broadcast leaves the window once every client received it, or
/// [`MSG_TIMEOUT`] after it was sent).
pub(crate) async fn broadcast(
    endpoint: &Arc<Endpoint>,
    clients: usize,
    phases: &[(usize, usize)],
) -> BroadcastReport {
    let (opened, failures) = client::connect_many(endpoint, clients, SETUP_CONCURRENCY).await;
    let n = opened.len();
    let mut report = BroadcastReport {
        clients: n,
        setup_failures: failures.count,
        emfile: failures.emfile,
        ..BroadcastReport::default()
    };
    if n == 0 {
        return report;
    }
    // Let the server finish any per-connection work (and any notices the app
    // sends on connect) before timing.
    tokio::time::sleep(SETTLE).await;

    let total: usize = phases.iter().map(|(_, m)| m).sum();
    // Every client stops on its own at this deadline at the latest.
    let hard_deadline = Instant::now()
        + MSG_TIMEOUT * u32::try_from(total + 2 * phases.len() + 2).unwrap_or(u32::MAX)
        + CLOSE_TIMEOUT;
    let (events_tx, mut events) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut cmds = Vec::with_capacity(n);
    let mut set = JoinSet::new();
    for ws in opened {
        let (tx, rx) = mpsc::unbounded_channel();
        cmds.push(tx);
        set.spawn(bcast_client(
            ws,
            rx,
            events_tx.clone(),
            total,
            hard_deadline,
        ));
    }
    drop(events_tx);

    let mut tally = Tally::new(total);
    let mut first = 0;
    for &(window, msgs) in phases {
        let range = first..first + msgs;
        first += msgs;
        let phase = run_phase(&cmds[0], &mut events, &mut tally, n, range, window.max(1)).await;
        report.phases.push(phase);
        if cmds[0].is_closed() {
            break;
        }
    }

    for tx in &cmds {
        // A client that already stopped has dropped its receiver: fine.
        let _ = tx.send(Cmd::Stop);
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(st) => {
                report.errors += st.errors;
                report.other_frames += st.other;
                report.duplicates += st.duplicates;
                if !st.clean_close {
                    report.unclean_closes += 1;
                }
            }
            Err(_) => report.unclean_closes += 1,
        }
    }
    tokio::time::sleep(SETTLE).await;
    report
}

/// Sends the broadcasts `range` (indexes into `tally`) through `sender`, at
/// most `window` in flight, and reports the phase.
async fn run_phase(
    sender: &mpsc::UnboundedSender<Cmd>,
    events: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    tally: &mut Tally,
    n: usize,
    range: std::ops::Range<usize>,
    window: usize,
) -> BroadcastPhase {
    let msgs = range.len();
    let mut phase = BroadcastPhase {
        window,
        messages: msgs,
        expected_deliveries: (n * msgs) as u64,
        ..BroadcastPhase::default()
    };
    let mut sent_at: Vec<Option<Instant>> = vec![None; msgs];
    // Broadcasts sent and not yet complete (or timed out), oldest first.
    let mut open: Vec<usize> = Vec::with_capacity(window);
    let mut next = range.start;
    let mut time_to_all = Vec::with_capacity(msgs);
    let mut first_send = None;
    let mut sender_gone = false;
    loop {
        while !sender_gone && open.len() < window && next < range.end {
            let text = client::request("broadcast", &client::payload('b', next, 0));
            let t = Instant::now();
            first_send.get_or_insert(t);
            if sender.send(Cmd::Send(text)).is_err() {
                sender_gone = true;
                break;
            }
            sent_at[next - range.start] = Some(t);
            open.push(next);
            next += 1;
        }
        let Some(&oldest) = open.first() else { break };
        let deadline = sent_at[oldest - range.start].map_or_else(Instant::now, |t| t + MSG_TIMEOUT);
        match timeout_at(deadline, events.recv()).await {
            Ok(Some((k, at))) => {
                tally.record(k, at);
                if tally.counts.get(k).is_some_and(|c| *c >= n)
                    && let Some(pos) = open.iter().position(|o| *o == k)
                {
                    open.remove(pos);
                    if let (Some(Some(sent)), Some(Some(last))) =
                        (sent_at.get(k - range.start), tally.last_at.get(k))
                    {
                        time_to_all.push(micros(*last - *sent));
                    }
                }
            }
            // Every client is gone: nothing more will arrive.
            Ok(None) => {
                phase.incomplete_messages += open.len();
                open.clear();
                break;
            }
            // The oldest broadcast timed out: it leaves the window.
            Err(_) => {
                open.remove(0);
                phase.incomplete_messages += 1;
            }
        }
    }
    phase.incomplete_messages += range.end - next;
    // Late deliveries still count as delivered (not as missing).
    if phase.incomplete_messages > 0 {
        let grace = Instant::now() + Duration::from_millis(500);
        while let Ok(Some((k, at))) = timeout_at(grace, events.recv()).await {
            tally.record(k, at);
        }
    }
    let deliveries: u64 = range.clone().map(|k| tally.counts[k] as u64).sum();
    let last = range.clone().filter_map(|k| tally.last_at[k]).max();
    let elapsed = match (first_send, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    };
    let (p50, p99, max) = summarize(&mut time_to_all);
    phase.deliveries = deliveries;
    phase.missing = phase.expected_deliveries.saturating_sub(deliveries);
    phase.elapsed_ms = elapsed.as_secs_f64() * 1e3;
    phase.deliveries_per_sec = rate(deliveries, elapsed);
    phase.p50_time_to_all_us = p50;
    phase.p99_time_to_all_us = p99;
    phase.max_time_to_all_us = max;
    phase
}

/// Deliveries per broadcast, as reported by the clients.
struct Tally {
    counts: Vec<usize>,
    last_at: Vec<Option<Instant>>,
}

impl Tally {
    fn new(msgs: usize) -> Self {
        Self {
            counts: vec![0; msgs],
            last_at: vec![None; msgs],
        }
    }

    fn record(&mut self, k: usize, at: Instant) {
        let (Some(count), Some(last)) = (self.counts.get_mut(k), self.last_at.get_mut(k)) else {
            return;
        };
        *count += 1;
        *last = Some(last.map_or(at, |t| t.max(at)));
    }
}

/// Parses the broadcast index out of a payload made by `payload('b', k, 0)`.
fn broadcast_index(data: &str) -> Option<usize> {
    data.strip_prefix('b')?.get(..6)?.parse().ok()
}

async fn bcast_client(
    mut ws: Ws,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::UnboundedSender<(usize, Instant)>,
    msgs: usize,
    hard_deadline: Instant,
) -> BcastClientStats {
    let mut st = BcastClientStats::default();
    let mut seen = vec![false; msgs];
    let mut broken = false;
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Send(text)) => {
                    if !client::send_text(&mut ws, text).await {
                        st.errors += 1;
                    }
                }
                Some(Cmd::Stop) | None => break,
            },
            frame = timeout_at(hard_deadline, ws.next()) => match frame {
                Err(_) => break,
                Ok(None | Some(Err(_))) => {
                    broken = true;
                    break;
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    let at = Instant::now();
                    match client::classify(text.as_str()) {
                        Inbound::Reply { action, data } if action == "broadcast" => {
                            match broadcast_index(&data).filter(|k| *k < msgs) {
                                Some(k) if seen[k] => st.duplicates += 1,
                                Some(k) => {
                                    seen[k] = true;
                                    let _ = events.send((k, at));
                                }
                                None => st.other += 1,
                            }
                        }
                        Inbound::Error => st.errors += 1,
                        Inbound::Reply { .. } | Inbound::Other => st.other += 1,
                    }
                }
                Ok(Some(Ok(_))) => {}
            },
        }
    }
    st.clean_close = !broken && client::close(ws).await;
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_index_roundtrip() {
        assert_eq!(broadcast_index(&client::payload('b', 17, 0)), Some(17));
        assert_eq!(broadcast_index(&client::payload('e', 17, 0)), None);
    }
}
