//! The DynamoDB [`HistoryStore`]: room history in one table.
//!
//! # Table
//!
//! **History** (`{app}-{stage}-websocket-history`, see
//! [`history_table_for_app`](switchboard_core::names::table::history_table_for_app)):
//!
//! | attribute | type | role                                                                  |
//! |-----------|------|-----------------------------------------------------------------------|
//! | `room`    | S    | partition key                                                         |
//! | `seq`     | N    | sort key: the frame's `seq`; `0` is the room's counter item           |
//! | `frame`   | S    | the stamped frame, exactly as delivered                               |
//! | `last`    | N    | counter item: the room's latest `seq`                                 |
//! | `epoch`   | S    | counter item: the room's epoch                                        |
//! | `expires` | N    | epoch seconds; the table's TTL attribute                              |
//!
//! `seq` is allocated atomically by the counter item: `UpdateItem` with `ADD last 1`
//! and `SET epoch = if_not_exists(epoch, :new)`, so the item, and with it a new random
//! epoch, is created by the room's first send. The counter's `expires` moves to
//! now + retention on every send: it outlives the room's frames, and once it has
//! expired too (TTL deleted it) the next send starts again from 1 under a new epoch, so
//! clients learn their history is gone.
//!
//! # Calls per operation
//!
//! | operation     | DynamoDB calls                                                                                          |
//! |---------------|---------------------------------------------------------------------------------------------------------|
//! | `append`      | 1 `UpdateItem` (the counter, `ALL_NEW`) + 1 `PutItem` (the frame)                                       |
//! | `read_since`  | 1 `UpdateItem` (`ADD last 0`: reads the counter, creating it with an epoch if the room is new) + `Query` `seq BETWEEN from+1 AND last`, strongly consistent, `p` pages (none when there is nothing to read) |
//!
//! So a room send with history costs 2 DynamoDB calls more than one without.
//!
//! # Semantics and limits
//!
//! - TTL deletion is lazy (DynamoDB deletes expired items within days), so reads skip
//!   frames whose `expires` has passed, and the per-room bound is applied on read
//!   (`seq > last - max_frames`); frames past it stay until their TTL.
//! - Between a send's two calls its `seq` is allocated but not yet stored; a reader in
//!   that moment sees a hole that the send's live delivery fills (the send looks up
//!   members only after storing). A send that fails between the two calls leaves that
//!   `seq` missing for good: a resume from before it answers `recovered: false`.
//! - Frames are stored as text: a room with history only takes JSON objects.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, ReturnValue, ScalarAttributeType, SseSpecification,
};
use serde_json::{Map, Value};
use switchboard_core::backend::StoreError;
use switchboard_core::backend::history::{
    Clock, History, HistoryError, HistoryRule, HistoryStore, Position, new_epoch, stamp,
};
use switchboard_core::names::table::{HISTORY_COUNTER_SEQ, attr};
use switchboard_core::response::Frame;

use crate::AwsSettings;
use crate::dynamodb::{DynamoStore, attribute, build_error, n, s, sdk_error};

type Item = HashMap<String, AttributeValue>;

/// Pagination guard: at most this many pages per read.
const MAX_PAGES: usize = 10_000;

/// A [`HistoryStore`] on one DynamoDB table (see the [module docs](self)).
#[derive(Clone)]
pub struct DynamoHistory {
    client: Client,
    table: String,
    clock: Clock,
}

impl std::fmt::Debug for DynamoHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoHistory")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl DynamoHistory {
    /// History in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// History in `table`, with a client for these settings.
    pub fn from_settings(settings: &AwsSettings, table: impl Into<String>) -> Self {
        Self::new(crate::dynamodb_client(settings), table)
    }

    /// Reads and writes `expires` on `clock` (tests move time forward).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Forgets a room's counter, and with it its epoch and `seq`: the next send starts
    /// again from 1 under a new epoch, so resuming clients get `recovered: false` (what
    /// the counter's TTL does once a room has been quiet past its retention). The
    /// frames stay until their TTL but are never read again: the new epoch's reads
    /// stop at its own `last`, and its sends overwrite them. 1 `DeleteItem`.
    pub async fn reset(&self, room: &str) -> Result<(), HistoryError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(attr::ROOM, s(room))
            .key(attr::SEQ, counter_seq())
            .send()
            .await
            .map_err(|e| history_error(sdk_error("reset", e)))?;
        Ok(())
    }

    /// Creates the table (on-demand, encrypted), waits for it and enables TTL on
    /// `expires`. For local development and tests; deployments create it with the
    /// stack. Idempotent.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let seq = aws_sdk_dynamodb::types::AttributeDefinition::builder()
            .attribute_name(attr::SEQ)
            .attribute_type(ScalarAttributeType::N)
            .build()
            .map_err(|e| build_error(&e))?;
        let key = |name: &str, key_type| {
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|e| build_error(&e))
        };
        let request = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .sse_specification(SseSpecification::builder().enabled(true).build())
            .attribute_definitions(attribute(attr::ROOM)?)
            .attribute_definitions(seq)
            .key_schema(key(attr::ROOM, KeyType::Hash)?)
            .key_schema(key(attr::SEQ, KeyType::Range)?);
        match request.send().await {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(sdk_error("create_table", e)),
        }
        DynamoStore::wait_active(&self.client, &self.table).await?;
        DynamoStore::enable_ttl(&self.client, &self.table).await
    }

    fn now_secs(&self) -> i64 {
        (self.clock)()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// `ADD last :by` on the room's counter (created with a new epoch if missing);
    /// the counter's `last` and `epoch` after it.
    async fn bump(
        &self,
        operation: &'static str,
        room: &str,
        by: i64,
        expires: i64,
    ) -> Result<(u64, String), HistoryError> {
        // A read (`by` 0) must not shorten the counter's life.
        let expires_expr = if by == 0 {
            "if_not_exists(#x, :x)"
        } else {
            ":x"
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(attr::ROOM, s(room))
            .key(attr::SEQ, counter_seq())
            .update_expression(format!(
                "ADD #l :by SET #e = if_not_exists(#e, :e), #x = {expires_expr}"
            ))
            .expression_attribute_names("#l", attr::LAST)
            .expression_attribute_names("#e", attr::EPOCH)
            .expression_attribute_names("#x", attr::EXPIRES)
            .expression_attribute_values(":by", n(by))
            .expression_attribute_values(":e", s(new_epoch()))
            .expression_attribute_values(":x", n(expires))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| history_error(sdk_error(operation, e)))?;
        let item = out.attributes.unwrap_or_default();
        let last = number(&item, attr::LAST, operation)?;
        let epoch = match item.get(attr::EPOCH) {
            Some(AttributeValue::S(e)) => e.clone(),
            _ => return Err(malformed(operation, attr::EPOCH)),
        };
        Ok((last, epoch))
    }
}

#[async_trait]
impl HistoryStore for DynamoHistory {
    async fn append(
        &self,
        room: &str,
        rule: &HistoryRule,
        body: &Map<String, Value>,
    ) -> Result<Frame, HistoryError> {
        const OP: &str = "append";
        let retention = i64::try_from(rule.retention_period().as_secs()).unwrap_or(i64::MAX);
        let expires = self.now_secs().saturating_add(retention);
        let (seq, epoch) = self.bump(OP, room, 1, expires).await?;
        let frame = stamp(body, seq, &epoch)?;
        let text = frame.as_text().unwrap_or_default().to_owned();
        self.client
            .put_item()
            .table_name(&self.table)
            .item(attr::ROOM, s(room))
            .item(attr::SEQ, n(i64::try_from(seq).unwrap_or(i64::MAX)))
            .item(attr::FRAME, s(text))
            .item(attr::EXPIRES, n(expires))
            .send()
            .await
            .map_err(|e| history_error(sdk_error(OP, e)))?;
        Ok(frame)
    }

    async fn read_since(
        &self,
        room: &str,
        rule: &HistoryRule,
        since: u64,
    ) -> Result<History, HistoryError> {
        const OP: &str = "read_since";
        let now = self.now_secs();
        let retention = i64::try_from(rule.retention_period().as_secs()).unwrap_or(i64::MAX);
        let (last, epoch) = self
            .bump(OP, room, 0, now.saturating_add(retention))
            .await?;
        let bound = u64::try_from(rule.frame_limit()).unwrap_or(u64::MAX);
        let from = since.max(last.saturating_sub(bound));
        let mut frames = Vec::new();
        if from < last {
            for item in self.query(room, from + 1, last).await? {
                if number(&item, attr::EXPIRES, OP)? <= u64::try_from(now).unwrap_or(0) {
                    continue;
                }
                let seq = number(&item, attr::SEQ, OP)?;
                match item.get(attr::FRAME) {
                    Some(AttributeValue::S(text)) => frames.push((seq, Frame::text(text.clone()))),
                    _ => return Err(malformed(OP, attr::FRAME)),
                }
            }
        }
        Ok(History {
            epoch,
            last,
            frames,
        })
    }

    async fn position(&self, room: &str) -> Result<Option<Position>, HistoryError> {
        const OP: &str = "position";
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .consistent_read(true)
            .key(attr::ROOM, s(room))
            .key(attr::SEQ, counter_seq())
            .send()
            .await
            .map_err(|e| history_error(sdk_error(OP, e)))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        // An expired counter TTL has not deleted yet still numbers the next send (as
        // `read_since` and `append` see it), so it is reported as it is.
        let epoch = match item.get(attr::EPOCH) {
            Some(AttributeValue::S(e)) => e.clone(),
            _ => return Err(malformed(OP, attr::EPOCH)),
        };
        Ok(Some(Position {
            epoch,
            last: number(&item, attr::LAST, OP)?,
        }))
    }
}

impl DynamoHistory {
    /// The frames `first..=last` of a room, in order (strongly consistent).
    async fn query(&self, room: &str, first: u64, last: u64) -> Result<Vec<Item>, HistoryError> {
        const OP: &str = "read_since";
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#r = :r AND #s BETWEEN :a AND :b")
            .expression_attribute_names("#r", attr::ROOM)
            .expression_attribute_names("#s", attr::SEQ)
            .expression_attribute_values(":r", s(room))
            .expression_attribute_values(":a", n(i64::try_from(first).unwrap_or(i64::MAX)))
            .expression_attribute_values(":b", n(i64::try_from(last).unwrap_or(i64::MAX)));
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        for _ in 0..MAX_PAGES {
            let out = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| history_error(sdk_error(OP, e)))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
        Err(HistoryError::Backend {
            operation: OP,
            message: format!("more than {MAX_PAGES} pages"),
        })
    }
}

fn counter_seq() -> AttributeValue {
    n(i64::try_from(HISTORY_COUNTER_SEQ).unwrap_or(0))
}

fn number(item: &Item, name: &str, operation: &'static str) -> Result<u64, HistoryError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| malformed(operation, name)),
        _ => Err(malformed(operation, name)),
    }
}

fn malformed(operation: &'static str, name: &str) -> HistoryError {
    HistoryError::Backend {
        operation,
        message: format!("history item with a missing or mistyped `{name}`"),
    }
}

/// The connection store's classification of an SDK error, as a history error.
fn history_error(e: StoreError) -> HistoryError {
    match e {
        StoreError::Throttled { operation } => HistoryError::Unavailable {
            operation,
            message: "throttled".to_owned(),
        },
        StoreError::Unavailable { operation, message } => {
            HistoryError::Unavailable { operation, message }
        }
        other => HistoryError::Backend {
            operation: "dynamodb",
            message: other.to_string(),
        },
    }
}

/// The history of a Lambda function that has no history table
/// ([`SWITCHBOARD_HISTORY_TABLE`](switchboard_core::names::env::HISTORY_TABLE) unset):
/// every call fails, naming the variable. The deploy program sets it on every function
/// that can send to rooms, so this is a deployment out of step with the app.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unconfigured;

impl Unconfigured {
    fn error(operation: &'static str) -> HistoryError {
        HistoryError::Backend {
            operation,
            message: format!(
                "the app keeps room history, but this function has no {} (redeploy)",
                switchboard_core::names::env::HISTORY_TABLE
            ),
        }
    }
}

#[async_trait]
impl HistoryStore for Unconfigured {
    async fn append(
        &self,
        _room: &str,
        _rule: &HistoryRule,
        _body: &Map<String, Value>,
    ) -> Result<Frame, HistoryError> {
        Err(Self::error("append"))
    }

    async fn read_since(
        &self,
        _room: &str,
        _rule: &HistoryRule,
        _since: u64,
    ) -> Result<History, HistoryError> {
        Err(Self::error("read_since"))
    }

    async fn position(&self, _room: &str) -> Result<Option<Position>, HistoryError> {
        Err(Self::error("position"))
    }
}
