//! `--console`: does a console that stops reading slow the gateway down?
//!
//! One gateway; echo rounds alternate between no console and a console whose live
//! stream (`/local/stream`) is open on a socket that is never read (a hidden or stalled
//! tab). Before the measured rounds the stalled console gets a warm-up so that its
//! socket buffers and its bounded queue are full: what is measured is the steady state,
//! in which the gateway drops (and counts) its events. Prints both throughputs (medians)
//! and the median of each round's ratio (the pair runs back to back); the target is
//! within 5%.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Runtime;

use crate::client::Endpoint;
use crate::{BoxError, gateway, scenarios};

/// Echo messages per connection in each measured round (the main echo's are too few
/// for a stable figure).
const MESSAGES: usize = 500;

/// The gateway's `host:port`, from its `ws://host:port/ws` URL.
fn authority(ws_url: &str) -> &str {
    let rest = ws_url.strip_prefix("ws://").unwrap_or(ws_url);
    rest.split('/').next().unwrap_or(rest)
}

/// Opens the live stream on a socket with a small receive buffer and never reads it.
async fn stalled_console(host: &str) -> Result<TcpStream, BoxError> {
    let addr = host.parse()?;
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let mut stream = socket.connect(addr).await?;
    let head = format!("GET /local/stream HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    Ok(stream)
}

/// `GET /local/api/overview`'s `consoleQueues` (events queued and dropped per console).
async fn console_queues(host: &str) -> Result<serde_json::Value, BoxError> {
    let mut stream = TcpStream::connect(host).await?;
    let head =
        format!("GET /local/api/overview HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let value: serde_json::Value = serde_json::from_str(body)?;
    Ok(value["consoleQueues"].clone())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

async fn measure(endpoint: &Arc<Endpoint>, connections: usize) -> f64 {
    scenarios::echo(endpoint, connections, MESSAGES)
        .await
        .msgs_per_sec
}

/// Runs the comparison: `rounds` pairs of echo runs over `connections` connections.
pub(crate) fn run(
    rounds: usize,
    connections: usize,
    server_rt: &Runtime,
    client_rt: &Runtime,
) -> ExitCode {
    let running = match gateway::launch(server_rt) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the gateway could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = running.url().to_owned();
    let result = client_rt.block_on(compare(&url, rounds, connections));
    let _ = server_rt.block_on(running.stop());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Waits (up to 5 s) until the gateway has forgotten every console.
async fn no_console(host: &str) -> Result<(), BoxError> {
    for _ in 0..50 {
        if console_queues(host)
            .await?
            .as_array()
            .is_some_and(Vec::is_empty)
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err("a closed console is still subscribed after 5 s".into())
}

/// One measured run with a freshly stalled console (warmed up until its queue is full);
/// returns the throughput and the console's queue as the gateway reports it.
async fn with_console(
    endpoint: &Arc<Endpoint>,
    host: &str,
    connections: usize,
) -> Result<(f64, serde_json::Value), BoxError> {
    let console = stalled_console(host).await?;
    scenarios::echo(endpoint, connections, MESSAGES / 2).await;
    let rate = measure(endpoint, connections).await;
    let queues = console_queues(host).await?;
    drop(console);
    Ok((rate, queues))
}

async fn compare(url: &str, rounds: usize, connections: usize) -> Result<(), BoxError> {
    let host = authority(url).to_owned();
    let endpoint = Endpoint::resolve(url).await?;
    eprintln!("[console] warm-up");
    measure(&endpoint, connections).await;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut last_queues = serde_json::Value::Null;
    for round in 1..=rounds {
        // Alternate which goes first, so that drift favours neither.
        for console_first in [round % 2 == 0, round % 2 == 1] {
            if console_first {
                let (rate, queues) = with_console(&endpoint, &host, connections).await?;
                eprintln!(
                    "[console] round {round}: {rate:>9.0} msgs/s with a stalled console {queues}"
                );
                with.push(rate);
                last_queues = queues;
            } else {
                no_console(&host).await?;
                let rate = measure(&endpoint, connections).await;
                eprintln!("[console] round {round}: {rate:>9.0} msgs/s without a console");
                without.push(rate);
            }
        }
    }
    // Each round's pair ran back to back: the median of their ratios is robust to
    // the machine getting busier or quieter between rounds.
    let mut paired: Vec<f64> = with
        .iter()
        .zip(&without)
        .filter(|(_, wo)| **wo > 0.0)
        .map(|(w, wo)| w / wo)
        .collect();
    let pairs: Vec<String> = paired.iter().map(|r| format!("{r:.3}")).collect();
    let ratio = median(&mut paired);
    let (w, wo) = (median(&mut with), median(&mut without));
    println!(
        "console: echo, {connections} connections x {MESSAGES} messages, {rounds} rounds each way (medians)"
    );
    println!("  without a console           {wo:>10.0} msgs/s");
    println!("  with a stalled console      {w:>10.0} msgs/s");
    println!("  ratio per round             {}", pairs.join(" "));
    println!("  ratio (median of rounds)    {ratio:>10.3}   (target: at least 0.95)");
    println!("  the stalled console's queue {last_queues}   (events queued, dropped)");
    Ok(())
}
