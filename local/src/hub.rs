//! The local gateway's live connections, and the embedded `@connections` client that
//! writes to them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use switchboard_core::backend::{ConnectionInfo, ConnectionsClient, PostError};
use switchboard_core::identity::Identity;
use switchboard_core::response::Frame;

pub use switchboard_core::backend::MAX_MESSAGE_BYTES;

/// The close reason of a connection whose outbound buffer filled up (code 1008).
pub(crate) const SLOW_CONSUMER_REASON: &str = "Outbound buffer full";

/// A request to close a connection, with the close code and reason.
#[derive(Default)]
pub(crate) struct CloseSignal {
    notify: Notify,
    reason: Mutex<Option<(u16, String)>>,
}

impl CloseSignal {
    /// Asks the connection's task to close with `code` (the first request wins);
    /// `true` if this request is the one that counts.
    pub(crate) fn request(&self, code: u16, reason: &str) -> bool {
        let mut first = false;
        if let Ok(mut slot) = self.reason.lock()
            && slot.is_none()
        {
            *slot = Some((code, reason.to_owned()));
            first = true;
        }
        self.notify.notify_one();
        first
    }

    /// The close requested so far, if any.
    pub(crate) fn peek(&self) -> Option<(u16, String)> {
        self.reason.lock().ok().and_then(|s| s.clone())
    }

    pub(crate) async fn requested(&self) -> (u16, String) {
        loop {
            if let Some(r) = self.reason.lock().ok().and_then(|s| s.clone()) {
                return r;
            }
            self.notify.notified().await;
        }
    }
}

/// One open connection.
pub(crate) struct Live {
    pub(crate) id: String,
    pub(crate) tx: mpsc::Sender<Frame>,
    pub(crate) close: CloseSignal,
    pub(crate) connected_at: i64,
    pub(crate) last_active: AtomicI64,
    pub(crate) source_ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) identity: Identity,
    pub(crate) authorizer_fields: HashMap<String, Value>,
    /// Text frames read from the client (for the console).
    pub(crate) frames_in: AtomicU64,
    /// Frames written to the client (for the console).
    pub(crate) frames_out: AtomicU64,
    /// The usage plan share of the API key the connection presented, if one was needed.
    pub(crate) key: Option<Arc<crate::limits::KeyLimits>>,
}

impl Live {
    pub(crate) fn touch(&self, now_ms: i64) {
        self.last_active.store(now_ms, Ordering::Relaxed);
    }
}

/// The table of open connections.
#[derive(Default)]
pub(crate) struct Hub {
    live: RwLock<HashMap<String, Arc<Live>>>,
    /// The gateway's counters (`GET /local/stats`).
    pub(crate) stats: super::stats::Stats,
}

impl Hub {
    pub(crate) fn insert(&self, live: Arc<Live>) {
        if let Ok(mut map) = self.live.write() {
            map.insert(live.id.clone(), live);
        }
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<Live>> {
        self.live.write().ok().and_then(|mut m| m.remove(id))
    }

    pub(crate) fn live(&self, id: &str) -> Option<Arc<Live>> {
        self.live.read().ok().and_then(|m| m.get(id).cloned())
    }

    /// Every open connection (for the console).
    pub(crate) fn snapshot(&self) -> Vec<Arc<Live>> {
        self.live
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.live.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Asks every connection to close (graceful shutdown).
    pub(crate) fn close_all(&self, code: u16, reason: &str) {
        if let Ok(map) = self.live.read() {
            for live in map.values() {
                live.close.request(code, reason);
            }
        }
    }

    fn require(&self, id: &str) -> Result<Arc<Live>, PostError> {
        self.live(id).ok_or_else(|| PostError::Gone(id.to_owned()))
    }
}

#[async_trait]
impl ConnectionsClient for Hub {
    async fn post(&self, connection_id: &str, frame: &Frame) -> Result<(), PostError> {
        if frame.len() > MAX_MESSAGE_BYTES {
            return Err(PostError::PayloadTooLarge {
                size: frame.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let live = self.require(connection_id)?;
        match live.tx.try_send(frame.clone()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                // A client that stopped reading: drop it rather than let it hold memory
                // or stall senders. Its $disconnect follows.
                if live.close.request(1008, SLOW_CONSUMER_REASON) {
                    self.stats.slow_consumer_closed();
                }
                Err(PostError::Gone(connection_id.to_owned()))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(PostError::Gone(connection_id.to_owned()))
            }
        }
    }

    async fn get(&self, connection_id: &str) -> Result<ConnectionInfo, PostError> {
        let live = self.require(connection_id)?;
        Ok(ConnectionInfo {
            connected_at: live.connected_at,
            last_active_at: live.last_active.load(Ordering::Relaxed),
            source_ip: live.source_ip.clone(),
            user_agent: live.user_agent.clone(),
        })
    }

    async fn delete(&self, connection_id: &str) -> Result<(), PostError> {
        let live = self.require(connection_id)?;
        live.close.request(1000, "Connection deleted");
        Ok(())
    }
}
