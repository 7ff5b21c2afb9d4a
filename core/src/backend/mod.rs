//! Backends: where connections are recorded and how frames reach them.
//!
//! Each trait has an embedded implementation (used by the local gateway and tests) and an
//! AWS one (DynamoDB, the `@connections` API).

pub mod history;
#[doc(hidden)]
pub mod memory;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::response::Frame;

/// The largest message (see [`crate::names::limits`]).
pub use crate::names::limits::MAX_MESSAGE_BYTES;

/// One open connection, as recorded on `$connect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionRecord {
    /// API Gateway's connection id.
    pub connection_id: String,
    /// Who connected (the identity's user name).
    pub username: String,
    /// Distinguishes the connections of one user: `{connectedAt}#{connectionId}`.
    pub session_key: String,
    /// When the connection opened, epoch milliseconds.
    pub connected_at: i64,
    /// When the record may be dropped (epoch seconds): connection start + maximum
    /// connection age + a margin. The DynamoDB TTL attribute.
    pub expires: i64,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The authorizer context (claims) of the connection.
    #[serde(default)]
    pub claims: Map<String, Value>,
}

impl ConnectionRecord {
    /// The session key for a connection.
    pub fn session_key_for(connected_at: i64, connection_id: &str) -> String {
        format!("{connected_at}#{connection_id}")
    }
}

/// A member of a room.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The member's connection.
    pub connection_id: String,
    /// The member's user name.
    pub username: String,
}

/// A room and how many connections are in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    /// The room's name.
    pub room: String,
    /// How many connections are in it.
    pub members: usize,
}

/// Errors of a connection store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend refused or failed the call.
    #[error("connection store: {operation} failed: {message}")]
    Backend {
        /// Which operation.
        operation: &'static str,
        /// What the backend said.
        message: String,
    },
    /// The backend is throttling; retry later.
    #[error("connection store: {operation} throttled")]
    Throttled {
        /// Which operation.
        operation: &'static str,
    },
    /// The backend could not be reached or did not answer in time (connection refused
    /// or reset, timeouts, 5xx), after the client's retries; retry later.
    #[error("connection store: {operation} unavailable: {message}")]
    Unavailable {
        /// Which operation.
        operation: &'static str,
        /// What failed (the error and its causes).
        message: String,
    },
    /// A conditional write lost a race.
    #[error("connection store: {operation}: {message}")]
    Conflict {
        /// Which operation.
        operation: &'static str,
        /// What collided.
        message: String,
    },
}

impl StoreError {
    /// Whether the store is unavailable for now ([`Throttled`](Self::Throttled) or
    /// [`Unavailable`](Self::Unavailable)): trying again later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Unavailable { .. })
    }
}

/// The error code callers get when the connection store is unavailable (throttled,
/// unreachable or timing out after retries): status 503, "try again".
pub const STORE_UNAVAILABLE: &str = "store_unavailable";

/// The error code callers get when `@connections` could reach none of a send's
/// recipients (network errors, 5xx or throttling after retries): status 503.
pub const CONNECTIONS_UNAVAILABLE: &str = "connections_unavailable";

/// A store failure as the caller sees it: an unavailable store is
/// `{"error":{"code":"store_unavailable",..}}` with status 503 (logged as a warning);
/// anything else (a malformed item, a lost conditional write) is `internal`.
impl From<StoreError> for crate::response::WsError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "connection store unavailable");
            Self::new(
                STORE_UNAVAILABLE,
                "the connection store is unavailable; try again",
            )
            .with_status(503)
        } else {
            Self::internal(e)
        }
    }
}

impl PostError {
    /// Whether `@connections` itself failed ([`Throttled`](Self::Throttled) or
    /// [`Other`](Self::Other): network, 5xx), as opposed to an answer about the
    /// connection or the frame.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Throttled | Self::Other(_))
    }
}

/// One page of connection ids, read for a sharded fan-out
/// ([`ConnectionStore::room_member_page`], [`ConnectionStore::connection_id_page`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdPage {
    /// The page's ids, records whose `expires` has passed left out. May be empty while
    /// [`next`](Self::next) is set: DynamoDB's `Limit` counts the items it read before
    /// that filter.
    pub ids: Vec<String>,
    /// Where the next page starts (an opaque cursor to pass back as `after`); `None`
    /// when this page was the last.
    pub next: Option<String>,
}

/// The parallel scan segment (`0..segments`) of a connection id in the embedded
/// store (and in the trait's default paging): FNV-1a of the id, so every id is in
/// exactly one segment. DynamoDB splits its `Scan` segments its own way.
pub fn scan_segment(connection_id: &str, segments: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in connection_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    u32::try_from(hash % u64::from(segments.max(1))).unwrap_or(0)
}

/// The page of `sorted` ids after `after`, at most `limit` long.
fn page_of(sorted: Vec<String>, after: Option<&str>, limit: usize) -> IdPage {
    let limit = limit.max(1);
    let mut rest = sorted
        .into_iter()
        .filter(|id| after.is_none_or(|a| id.as_str() > a));
    let ids: Vec<String> = rest.by_ref().take(limit).collect();
    let next = match rest.next() {
        Some(_) => ids.last().cloned(),
        None => None,
    };
    IdPage { ids, next }
}

/// Connection bookkeeping: who is connected, as whom, in which rooms.
#[async_trait]
pub trait ConnectionStore: Send + Sync + 'static {
    /// Records a new connection (`$connect`).
    async fn put_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError>;
    /// The record of a connection.
    async fn get_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError>;
    /// Removes a connection and its room memberships (`$disconnect`, or a 410 from
    /// `@connections`). Returns the removed record.
    async fn remove_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError>;
    /// Removes exactly this record and its memberships, when the caller holds the record
    /// (a refused `$connect`) or can rebuild its key from an event (`$disconnect`).
    /// DynamoDB deletes it by key, without the GSI lookup, which may not see a record
    /// written a moment ago; when no item has that key it falls back to the lookup by
    /// connection id, so a record is removed either way.
    async fn remove_record(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.remove_connection(&record.connection_id)
            .await
            .map(|_| ())
    }
    /// All connections of one user (one per session), skipping records whose
    /// `expires` has passed.
    async fn user_connections(&self, username: &str) -> Result<Vec<ConnectionRecord>, StoreError>;
    /// Every connection record.
    async fn list_connections(&self) -> Result<Vec<ConnectionRecord>, StoreError>;
    /// Every connection id (for broadcasts; cheaper than whole records), skipping
    /// records whose `expires` has passed (DynamoDB's TTL deletion lags by days).
    async fn connection_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Adds a connection to a room; `false` if it was already in it. The store does not
    /// check that the connection is recorded (that would cost a read on DynamoDB):
    /// callers add their own connection.
    async fn join_room(&self, room: &str, member: &Member) -> Result<bool, StoreError>;
    /// Removes a connection from a room; `false` if it was not in it.
    async fn leave_room(&self, room: &str, connection_id: &str) -> Result<bool, StoreError>;
    /// The members of a room, ordered by connection id. DynamoDB skips memberships
    /// whose `expires` has passed; the embedded store removes memberships with the
    /// connection, so it has none.
    async fn room_members(&self, room: &str) -> Result<Vec<Member>, StoreError>;
    /// One page of a room's member connection ids, ordered by connection id, at most
    /// `limit` (at least 1) of them, starting after the cursor `after` (the previous
    /// page's [`IdPage::next`]; `None`: from the start). Skips expired memberships as
    /// [`room_members`](Self::room_members) does. The default reads every member and
    /// cuts the page out; the embedded store and DynamoDB (`Query` with `Limit` and
    /// `ExclusiveStartKey`) read only the page.
    async fn room_member_page(
        &self,
        room: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<IdPage, StoreError> {
        let ids = self
            .room_members(room)
            .await?
            .into_iter()
            .map(|m| m.connection_id)
            .collect();
        Ok(page_of(ids, after, limit))
    }
    /// One page of parallel scan segment `segment` of `segments` of every live
    /// connection id (each id is in exactly one segment), at most `limit` (at least 1)
    /// of them, after the cursor `after`. The default reads every id and cuts the
    /// segment's page out ([`scan_segment`]); the embedded store reads only the page;
    /// DynamoDB runs `Scan` with `Segment`/`TotalSegments`, `Limit` and
    /// `ExclusiveStartKey`.
    async fn connection_id_page(
        &self,
        segment: u32,
        segments: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<IdPage, StoreError> {
        let mut ids: Vec<String> = self
            .connection_ids()
            .await?
            .into_iter()
            .filter(|id| scan_segment(id, segments) == segment)
            .collect();
        ids.sort_unstable();
        Ok(page_of(ids, after, limit))
    }
    /// The rooms a connection is in, ordered by name.
    async fn rooms_of(&self, connection_id: &str) -> Result<Vec<String>, StoreError>;
    /// Every room with its member count, ordered by name.
    async fn rooms(&self) -> Result<Vec<RoomSummary>, StoreError>;
}

/// What `GET @connections/{id}` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    /// When the connection opened, epoch milliseconds.
    pub connected_at: i64,
    /// When the client last sent a message, epoch milliseconds.
    pub last_active_at: i64,
    /// The client's address.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

/// Errors of the `@connections` API.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostError {
    /// 410: the connection is gone (closed, or never existed).
    #[error("connection {0} is gone")]
    Gone(String),
    /// 413: the payload is larger than API Gateway's 128 KB message limit.
    #[error("payload of {size} bytes exceeds the {limit}-byte limit")]
    PayloadTooLarge {
        /// The payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// 429 `LimitExceededException`, after retries.
    #[error("@connections throttled the call")]
    Throttled,
    /// 403: the caller may not manage connections of this API (wrong stage or policy).
    #[error("@connections refused the call: {0}")]
    Forbidden(String),
    /// Anything else (network, 5xx).
    #[error("@connections call failed: {0}")]
    Other(String),
}

/// The `@connections` management API: send to, inspect and close connections.
#[async_trait]
pub trait ConnectionsClient: Send + Sync + 'static {
    /// `POST @connections/{id}`: sends one frame.
    async fn post(&self, connection_id: &str, frame: &Frame) -> Result<(), PostError>;
    /// `GET @connections/{id}`.
    async fn get(&self, connection_id: &str) -> Result<ConnectionInfo, PostError>;
    /// `DELETE @connections/{id}`: closes the connection (its `$disconnect` follows).
    async fn delete(&self, connection_id: &str) -> Result<(), PostError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::WsError;

    #[test]
    fn unavailable_stores_are_503_store_unavailable() {
        for e in [
            StoreError::Unavailable {
                operation: "query",
                message: "connection refused".into(),
            },
            StoreError::Throttled { operation: "query" },
        ] {
            let ws = WsError::from(e);
            assert_eq!(ws.code(), STORE_UNAVAILABLE);
            assert_eq!(ws.status(), 503);
            assert!(
                !ws.message().contains("refused"),
                "no backend detail: {}",
                ws.message()
            );
        }
        for e in [
            StoreError::Backend {
                operation: "query",
                message: "malformed".into(),
            },
            StoreError::Conflict {
                operation: "put",
                message: "exists".into(),
            },
        ] {
            let ws = WsError::from(e);
            assert_eq!((ws.code(), ws.status()), ("internal", 500));
        }
        assert!(PostError::Other("reset".into()).is_unavailable());
        assert!(PostError::Throttled.is_unavailable());
        assert!(!PostError::Gone("c".into()).is_unavailable());
        assert!(!PostError::Forbidden("x".into()).is_unavailable());
    }
}
