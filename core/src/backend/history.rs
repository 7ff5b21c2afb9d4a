//! Room history: which rooms keep what they were sent ([`HistoryConfig`],
//! [`HistoryRule`]), the backend that allocates each frame's `seq` and stores it
//! ([`HistoryStore`]), and the embedded backend ([`MemoryHistory`]).
//!
//! A room with history gets every frame sent to it through `room(r).send(..)` as the
//! app's JSON object with `"seq"` (per room, gap-free from 1) and `"epoch"` (a string
//! that changes whenever the room's history was lost or reset) added at the top level
//! ([`stamp`]). A frame that is not a JSON object cannot carry them and is refused
//! ([`HistoryError::NotAnObject`]): nothing is sent, nothing is stored.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::response::{Frame, WsError};

pub use crate::names::history::{
    DEFAULT_MAX_FRAMES, DEFAULT_RETENTION_SECS, EPOCH_FIELD, SEQ_FIELD,
};

/// Which rooms keep history, and for how long: the first rule whose pattern matches a
/// room's name applies.
#[derive(Clone, Debug, Default)]
pub struct HistoryConfig {
    rules: Vec<HistoryRule>,
}

impl HistoryConfig {
    /// Adds a rule (after the ones already there: earlier rules win).
    pub fn push(&mut self, rule: HistoryRule) {
        self.rules.push(rule);
    }

    /// Whether any room keeps history.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule for `room`, if it keeps history.
    pub fn rule_for(&self, room: &str) -> Option<&HistoryRule> {
        self.rules.iter().find(|r| glob_match(&r.pattern, room))
    }
}

/// History for the rooms whose names match a pattern: how long frames are kept and
/// how many at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRule {
    pattern: String,
    retention: Duration,
    max_frames: usize,
}

impl HistoryRule {
    /// History for rooms matching `pattern`, a glob: `*` matches any run of characters
    /// (`*` alone: every room; `game-*`: a prefix), `?` one character, anything else
    /// itself. Defaults: frames kept [`DEFAULT_RETENTION_SECS`] seconds, at most
    /// [`DEFAULT_MAX_FRAMES`] per room.
    pub fn rooms(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            retention: Duration::from_secs(DEFAULT_RETENTION_SECS),
            max_frames: DEFAULT_MAX_FRAMES,
        }
    }

    /// History for every room.
    pub fn all() -> Self {
        Self::rooms("*")
    }

    /// How long a frame is kept (at least one second).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention.max(Duration::from_secs(1));
        self
    }

    /// The most frames a room keeps (at least one); older ones are dropped first.
    pub fn max_frames(mut self, n: usize) -> Self {
        self.max_frames = n.max(1);
        self
    }

    /// The pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// How long a frame is kept.
    pub fn retention_period(&self) -> Duration {
        self.retention
    }

    /// The most frames a room keeps.
    pub fn frame_limit(&self) -> usize {
        self.max_frames
    }
}

/// Whether `name` matches the glob `pattern` (`*` any run, `?` one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point (the last `*`): linear in practice,
    // never recursive.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Errors of room history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// A frame sent to a room with history is not a JSON object, so it cannot carry
    /// `seq` and `epoch`. Nothing was sent or stored.
    #[error("room `{room}` keeps history: only JSON objects can be sent to it")]
    NotAnObject {
        /// The room.
        room: String,
    },
    /// The backend refused or failed the call.
    #[error("room history: {operation} failed: {message}")]
    Backend {
        /// Which operation.
        operation: &'static str,
        /// What the backend said.
        message: String,
    },
    /// The backend is throttling or unreachable; retry later.
    #[error("room history: {operation} unavailable: {message}")]
    Unavailable {
        /// Which operation.
        operation: &'static str,
        /// What failed.
        message: String,
    },
}

/// The error code of [`HistoryError::NotAnObject`].
pub const NOT_AN_OBJECT: &str = "not_an_object";

impl From<HistoryError> for WsError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::NotAnObject { .. } => WsError::new(NOT_AN_OBJECT, e.to_string()),
            HistoryError::Unavailable { .. } => {
                tracing::warn!(error = %e, "room history unavailable");
                WsError::new(
                    crate::backend::STORE_UNAVAILABLE,
                    "room history is unavailable; try again",
                )
                .with_status(503)
            }
            HistoryError::Backend { .. } => WsError::internal(e),
        }
    }
}

/// What a running service keeps history with: the app's rules and the backend.
#[derive(Clone)]
pub struct RoomHistory {
    /// Which rooms keep history, for how long.
    pub config: HistoryConfig,
    /// Where it is kept.
    pub store: Arc<dyn HistoryStore>,
}

impl std::fmt::Debug for RoomHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomHistory")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RoomHistory {
    /// The rule for `room`, if it keeps history.
    pub fn rule_for(&self, room: &str) -> Option<&HistoryRule> {
        self.config.rule_for(room)
    }
}

/// The most bytes [`stamp`] adds to a frame with an epoch of ours: `"seq":`, 20 digits,
/// `,"epoch":`, a quoted epoch of up to 32 characters, a comma.
pub const STAMP_OVERHEAD_BYTES: usize = 72;

/// The JSON object of a frame sent to a room with history, or
/// [`HistoryError::NotAnObject`].
pub fn object_of(frame: &Frame, room: &str) -> Result<Map<String, Value>, HistoryError> {
    let not_an_object = || HistoryError::NotAnObject {
        room: room.to_owned(),
    };
    let text = frame.as_text().ok_or_else(not_an_object)?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(not_an_object()),
    }
}

/// A room's history from some point on, as [`HistoryStore::read_since`] answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// The room's epoch.
    pub epoch: String,
    /// The room's latest `seq` (0 if nothing was ever sent).
    pub last: u64,
    /// The kept frames with `seq` above the one asked for, in order, each exactly as it
    /// was delivered.
    pub frames: Vec<(u64, Frame)>,
}

impl History {
    /// Whether the frames after `since` are all still kept: nothing to replay, or the
    /// first kept frame is `since + 1`.
    pub fn complete_after(&self, since: u64) -> bool {
        match self.frames.first() {
            None => since == self.last,
            Some((first, _)) => *first == since + 1,
        }
    }
}

/// Where room history lives: allocates each frame's `seq` atomically and stores the
/// frame; reads what is kept. Embedded: [`MemoryHistory`]; AWS: a DynamoDB table
/// (`switchboard_aws::history`).
#[async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    /// Allocates the room's next `seq`, stamps `body` with it and the room's epoch
    /// ([`stamp`]), stores the frame under `rule`'s retention, and returns it.
    async fn append(
        &self,
        room: &str,
        rule: &HistoryRule,
        body: &Map<String, Value>,
    ) -> Result<Frame, HistoryError>;

    /// The room's epoch, latest `seq`, and the frames with `seq > since` still kept
    /// under `rule` (a room never sent to gets an epoch now, so the client has one).
    async fn read_since(
        &self,
        room: &str,
        rule: &HistoryRule,
        since: u64,
    ) -> Result<History, HistoryError>;

    /// The room's epoch and latest `seq`, read only: `None` for a room never sent to (or
    /// whose counter DynamoDB's TTL deleted). Unlike [`read_since`](Self::read_since) it creates nothing
    /// and reads no frames (the local console's rooms list).
    async fn position(&self, room: &str) -> Result<Option<Position>, HistoryError>;
}

/// Where a room's history stands ([`HistoryStore::position`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The room's epoch.
    pub epoch: String,
    /// The room's latest `seq`.
    pub last: u64,
}

/// The frame of `body` with `"seq"` and `"epoch"` set at the top level (replacing the
/// app's own keys of those names).
pub fn stamp(body: &Map<String, Value>, seq: u64, epoch: &str) -> Result<Frame, HistoryError> {
    let mut out = Vec::with_capacity(64);
    let write = |out: &mut Vec<u8>| -> Result<(), serde_json::Error> {
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(SEQ_FIELD.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(b",\"");
        out.extend_from_slice(EPOCH_FIELD.as_bytes());
        out.extend_from_slice(b"\":");
        serde_json::to_writer(&mut *out, epoch)?;
        for (k, v) in body {
            if k == SEQ_FIELD || k == EPOCH_FIELD {
                continue;
            }
            out.push(b',');
            serde_json::to_writer(&mut *out, k)?;
            out.push(b':');
            serde_json::to_writer(&mut *out, v)?;
        }
        out.push(b'}');
        Ok(())
    };
    write(&mut out).map_err(|e| HistoryError::Backend {
        operation: "stamp",
        message: e.to_string(),
    })?;
    String::from_utf8(out)
        .map(Frame::text)
        .map_err(|e| HistoryError::Backend {
            operation: "stamp",
            message: e.to_string(),
        })
}

/// A new random epoch: 16 URL-safe characters.
pub fn new_epoch() -> String {
    crate::ids::new_id().trim_end_matches('=').to_owned()
}

/// The embedded history's clock: the current time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

struct Stream {
    epoch: String,
    last: u64,
    /// (seq, stored at, frame), oldest first.
    frames: VecDeque<(u64, SystemTime, Frame)>,
}

impl Stream {
    fn new() -> Self {
        Self {
            epoch: new_epoch(),
            last: 0,
            frames: VecDeque::new(),
        }
    }

    /// Drops frames past the rule's retention or bound.
    fn trim(&mut self, rule: &HistoryRule, now: SystemTime) {
        let oldest_kept = now.checked_sub(rule.retention).unwrap_or(UNIX_EPOCH);
        while let Some((_, at, _)) = self.frames.front() {
            if *at <= oldest_kept || self.frames.len() > rule.max_frames {
                self.frames.pop_front();
            } else {
                break;
            }
        }
    }
}

/// The embedded [`HistoryStore`]: one bounded stream per room, in memory. Each room's
/// epoch is random per process, so a restarted gateway tells clients their history
/// was lost.
pub struct MemoryHistory {
    rooms: Mutex<HashMap<String, Stream>>,
    clock: Clock,
}

impl Default for MemoryHistory {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemTime::now))
    }
}

impl std::fmt::Debug for MemoryHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHistory").finish_non_exhaustive()
    }
}

impl MemoryHistory {
    /// An empty history on the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty history on `clock` (tests move time forward to expire frames).
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stream>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl HistoryStore for MemoryHistory {
    async fn append(
        &self,
        room: &str,
        rule: &HistoryRule,
        body: &Map<String, Value>,
    ) -> Result<Frame, HistoryError> {
        let now = (self.clock)();
        let mut rooms = self.rooms();
        let stream = rooms.entry(room.to_owned()).or_insert_with(Stream::new);
        let seq = stream.last + 1;
        let frame = stamp(body, seq, &stream.epoch)?;
        stream.last = seq;
        stream.frames.push_back((seq, now, frame.clone()));
        stream.trim(rule, now);
        Ok(frame)
    }

    async fn read_since(
        &self,
        room: &str,
        rule: &HistoryRule,
        since: u64,
    ) -> Result<History, HistoryError> {
        let now = (self.clock)();
        let mut rooms = self.rooms();
        let stream = rooms.entry(room.to_owned()).or_insert_with(Stream::new);
        stream.trim(rule, now);
        let start = stream.frames.partition_point(|(seq, _, _)| *seq <= since);
        Ok(History {
            epoch: stream.epoch.clone(),
            last: stream.last,
            frames: stream
                .frames
                .range(start..)
                .map(|(seq, _, f)| (*seq, f.clone()))
                .collect(),
        })
    }

    async fn position(&self, room: &str) -> Result<Option<Position>, HistoryError> {
        Ok(self.rooms().get(room).map(|stream| Position {
            epoch: stream.epoch.clone(),
            last: stream.last,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(n: u64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("n".into(), Value::from(n));
        m.insert("seq".into(), Value::from("app's own"));
        m
    }

    fn parse(f: &Frame) -> Value {
        serde_json::from_str(f.as_text().unwrap()).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "lobby"));
        assert!(glob_match("game-*", "game-1"));
        assert!(!glob_match("game-*", "lobby"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*-x-*", "a-x-b"));
        assert!(!glob_match("*-x-*", "a-y-b"));
        assert!(glob_match("lobby", "lobby"));
        assert!(!glob_match("lobby", "lobby2"));
    }

    #[test]
    fn first_matching_rule_wins() {
        let mut c = HistoryConfig::default();
        c.push(HistoryRule::rooms("game-*").max_frames(5));
        c.push(HistoryRule::all().max_frames(9));
        assert_eq!(c.rule_for("game-1").map(|r| r.frame_limit()), Some(5));
        assert_eq!(c.rule_for("lobby").map(|r| r.frame_limit()), Some(9));
        assert!(HistoryConfig::default().rule_for("x").is_none());
    }

    #[tokio::test]
    async fn seq_is_gap_free_and_stamped() {
        let h = MemoryHistory::new();
        let rule = HistoryRule::all();
        let a = parse(&h.append("r", &rule, &body(1)).await.unwrap());
        let b = parse(&h.append("r", &rule, &body(2)).await.unwrap());
        let other = parse(&h.append("q", &rule, &body(3)).await.unwrap());
        assert_eq!((a["seq"].as_u64(), b["seq"].as_u64()), (Some(1), Some(2)));
        assert_eq!(other["seq"], 1, "each room counts from 1");
        assert_eq!(a["epoch"], b["epoch"]);
        assert_ne!(a["epoch"], other["epoch"], "an epoch per room");
        assert_eq!(a["n"], 1);
        let read = h.read_since("r", &rule, 1).await.unwrap();
        assert_eq!(read.last, 2);
        assert_eq!(read.frames.len(), 1);
        assert_eq!(parse(&read.frames[0].1), b, "replayed exactly as delivered");
        assert!(read.complete_after(1));
    }

    #[tokio::test]
    async fn position_reads_without_creating() {
        let h = MemoryHistory::new();
        let rule = HistoryRule::all();
        assert_eq!(h.position("r").await.unwrap(), None, "never sent to");
        assert_eq!(
            h.position("r").await.unwrap(),
            None,
            "and the read made nothing"
        );
        let a = parse(&h.append("r", &rule, &body(1)).await.unwrap());
        h.append("r", &rule, &body(2)).await.unwrap();
        let at = h.position("r").await.unwrap().unwrap();
        assert_eq!(at.last, 2);
        assert_eq!(a["epoch"], at.epoch.as_str());
    }

    #[tokio::test]
    async fn bounded_per_room() {
        let h = MemoryHistory::new();
        let rule = HistoryRule::all().max_frames(3);
        for i in 0..10 {
            h.append("r", &rule, &body(i)).await.unwrap();
        }
        let read = h.read_since("r", &rule, 0).await.unwrap();
        let seqs: Vec<u64> = read.frames.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![8, 9, 10]);
        assert!(!read.complete_after(0), "1..=7 were dropped");
        assert!(h.read_since("r", &rule, 7).await.unwrap().complete_after(7));
        let caught_up = h.read_since("r", &rule, 10).await.unwrap();
        assert!(caught_up.frames.is_empty() && caught_up.complete_after(10));
    }

    #[tokio::test]
    async fn retention_on_an_injected_clock() {
        let now = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(1_000_000)));
        let clock_now = Arc::clone(&now);
        let h = MemoryHistory::with_clock(Arc::new(move || *clock_now.lock().unwrap()));
        let rule = HistoryRule::all().retention(Duration::from_secs(60));
        h.append("r", &rule, &body(1)).await.unwrap();
        *now.lock().unwrap() += Duration::from_secs(30);
        h.append("r", &rule, &body(2)).await.unwrap();
        assert_eq!(h.read_since("r", &rule, 0).await.unwrap().frames.len(), 2);
        *now.lock().unwrap() += Duration::from_secs(31);
        let read = h.read_since("r", &rule, 0).await.unwrap();
        assert_eq!(read.frames.iter().map(|f| f.0).collect::<Vec<_>>(), [2]);
        *now.lock().unwrap() += Duration::from_secs(60);
        let read = h.read_since("r", &rule, 0).await.unwrap();
        assert!(read.frames.is_empty());
        assert_eq!(read.last, 2, "the counter outlives the frames");
        assert!(!read.complete_after(0));
        assert!(!read.complete_after(1));
        assert!(read.complete_after(2));
    }

    #[tokio::test]
    async fn epochs_differ_between_processes() {
        let rule = HistoryRule::all();
        let a = MemoryHistory::new()
            .read_since("r", &rule, 0)
            .await
            .unwrap();
        let b = MemoryHistory::new()
            .read_since("r", &rule, 0)
            .await
            .unwrap();
        assert_ne!(a.epoch, b.epoch);
        assert_eq!(a.last, 0);
        assert!(a.complete_after(0));
    }

    #[test]
    fn stamp_replaces_the_apps_keys() {
        let mut m = body(4);
        m.insert("epoch".into(), Value::from(7));
        let v = parse(&stamp(&m, 9, "e\"x").unwrap());
        assert_eq!(v["seq"], 9);
        assert_eq!(v["epoch"], "e\"x");
        assert_eq!(v["n"], 4);
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
    }
}
