//! Frames stored by reference: a frame too large to travel in every shard message with
//! its recipients is stored once, with a time to live, and the shards carry its key.
//! Consumers load it once per batch.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::backend::StoreError;
use crate::response::Frame;

/// Where frames stored by reference live: the embedded [`MemoryFrames`] locally, the
/// rooms table on AWS (`switchboard_aws::fanout::DynamoFrames`).
#[async_trait]
pub trait FrameStore: Send + Sync + 'static {
    /// Stores `frame` under `key` for at least `ttl`.
    async fn put(&self, key: &str, frame: &Frame, ttl: Duration) -> Result<(), StoreError>;
    /// The frame stored under `key`; `None` when there is none (never stored, or
    /// expired).
    async fn get(&self, key: &str) -> Result<Option<Frame>, StoreError>;
}

/// Frames in process memory, dropped once their time to live passed (on the next
/// `put`). Only consumers in the same process can read them: the local gateway's and
/// the simulator's.
#[derive(Debug, Default)]
pub struct MemoryFrames {
    frames: Mutex<HashMap<String, (Frame, Instant)>>,
}

impl MemoryFrames {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many frames it holds (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl FrameStore for MemoryFrames {
    async fn put(&self, key: &str, frame: &Frame, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut frames = self.frames.lock().unwrap_or_else(PoisonError::into_inner);
        frames.retain(|_, (_, until)| *until > now);
        frames.insert(key.to_owned(), (frame.clone(), now + ttl));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Frame>, StoreError> {
        let now = Instant::now();
        let frames = self.frames.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(frames
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(frame, _)| frame.clone()))
    }
}
