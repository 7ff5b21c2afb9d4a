//! The baseline: a plain tokio-tungstenite server speaking the same contract as
//! the gateway, written the straightforward way.
//!
//! * `{"action":"echo","data":S}` -> `{"action":"echo","data":S}` to the sender;
//! * `{"action":"broadcast","data":S}` -> `{"action":"broadcast","data":S}` to
//!   every open connection, sender included (serialized once, the frame cloned
//!   into each connection's queue);
//! * anything else -> `{"error":"..."}` to the sender.
//!
//! Each connection has a reader (its own task) and a writer task fed by an
//! unbounded mpsc; the registry of open connections is a mutex-guarded map.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    runtime::Runtime,
    sync::{mpsc, oneshot},
    task::JoinSet,
    time::timeout,
};
use tokio_tungstenite::{accept_async, tungstenite::Message};

use crate::{BoxError, Running};

/// Accept queue length (see [`launch`]).
const LISTEN_BACKLOG: u32 = 1024;
/// Upper bound on the upgrade handshake of one connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection silent for this long is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound on flushing the close handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

type Peers = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

#[derive(Deserialize)]
struct Inbound {
    action: String,
    data: String,
}

#[derive(Serialize)]
struct Outbound<'a> {
    action: &'a str,
    data: &'a str,
}

/// Binds 127.0.0.1:0 and serves on `rt` until [`Running::stop`].
pub(crate) fn launch(rt: &Runtime) -> Result<Running, BoxError> {
    // `TcpListener::bind` listens with a backlog of 128, which drops part of a
    // burst of 1000 connects (SYN-ACK retransmitted after 1 s); a server
    // expecting bursts sets a larger one.
    let listener = rt.block_on(async {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        socket.listen(LISTEN_BACKLOG)
    })?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let done = rt.spawn(serve(listener, stop_rx));
    Ok(Running::new(format!("ws://{addr}/ws"), stop_tx, done))
}

async fn serve(listener: TcpListener, mut stop: oneshot::Receiver<()>) {
    let peers: Peers = Arc::default();
    let mut conns = JoinSet::new();
    let mut next_id = 0u64;
    let mut reported_accept_error = false;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    next_id += 1;
                    conns.spawn(connection(tcp, next_id, Arc::clone(&peers)));
                }
                Err(e) => {
                    if !reported_accept_error {
                        eprintln!("bare server: accept failed: {e} (further accept errors not shown)");
                        reported_accept_error = true;
                    }
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    // Dropping every queue ends the writer tasks; the JoinSet aborts readers.
    peers.lock().unwrap_or_else(PoisonError::into_inner).clear();
    conns.shutdown().await;
}

async fn connection(tcp: TcpStream, id: u64, peers: Peers) {
    // Failing to set TCP_NODELAY only costs latency; carry on regardless.
    let _ = tcp.set_nodelay(true);
    let ws = match timeout(HANDSHAKE_TIMEOUT, accept_async(tcp)).await {
        Ok(Ok(ws)) => ws,
        _ => return,
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    peers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, tx.clone());

    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match timeout(IDLE_TIMEOUT, sink.send(msg)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
        // Flushes the close reply queued by the reader, if any.
        let _ = timeout(CLOSE_TIMEOUT, sink.close()).await;
    });

    while let Ok(Some(Ok(msg))) = timeout(IDLE_TIMEOUT, stream.next()).await {
        if let Message::Text(text) = msg {
            handle_text(text.as_str(), &tx, &peers);
        }
        // Ping/Pong/Close are answered by tungstenite; keep reading until the
        // stream ends so the close handshake completes.
    }

    peers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
    drop(tx);
    let _ = timeout(CLOSE_TIMEOUT, writer).await;
}

fn handle_text(text: &str, tx: &mpsc::UnboundedSender<Message>, peers: &Peers) {
    let Ok(inbound) = serde_json::from_str::<Inbound>(text) else {
        let _ = tx.send(Message::text(r#"{"error":"bad request"}"#));
        return;
    };
    let action = inbound.action.as_str();
    let out = Outbound {
        action,
        data: &inbound.data,
    };
    let Ok(json) = serde_json::to_string(&out) else {
        return;
    };
    match action {
        "echo" => {
            let _ = tx.send(Message::text(json));
        }
        "broadcast" => {
            let frame = Message::text(json);
            let peers = peers.lock().unwrap_or_else(PoisonError::into_inner);
            for peer in peers.values() {
                // A closed peer is being removed by its own task.
                let _ = peer.send(frame.clone());
            }
        }
        _ => {
            let _ = tx.send(Message::text(r#"{"error":"unknown action"}"#));
        }
    }
}
