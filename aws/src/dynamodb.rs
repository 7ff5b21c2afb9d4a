//! The DynamoDB [`ConnectionStore`]: two tables, one global secondary index each, no
//! scans on the paths a message takes.
//!
//! # Tables
//!
//! **Connections** (`{app}-{stage}-websocket-connections`, see [`TableNames::for_app`]):
//!
//! | attribute      | type | role                                                        |
//! |----------------|------|-------------------------------------------------------------|
//! | `username`     | S    | partition key                                               |
//! | `sessionKey`   | S    | sort key: `{connectedAt}#{connectionId}`                    |
//! | `connectionId` | S    | key of the GSI `{table}-index-connection` (projection ALL)  |
//! | `connectedAt`  | N    | epoch milliseconds                                          |
//! | `expires`      | N    | epoch seconds; the table's TTL attribute                    |
//! | `sourceIp`     | S    | optional                                                    |
//! | `userAgent`    | S    | optional                                                    |
//! | `claims`       | S    | the authorizer context as a JSON object (exact round trip)  |
//!
//! Claims are stored as a JSON string rather than a map: JSON numbers, `null` and nested
//! values round-trip exactly, and nothing ever queries inside them. An absent `claims`
//! attribute reads as an empty map.
//!
//! **Rooms** (`{app}-{stage}-websocket-rooms`), one item per membership:
//!
//! | attribute      | type | role                                                              |
//! |----------------|------|-------------------------------------------------------------------|
//! | `room`         | S    | partition key                                                     |
//! | `connectionId` | S    | sort key; partition key of the GSI `{table}-index-connection`     |
//! | `username`     | S    | the member's user name                                            |
//! | `expires`      | N    | epoch seconds; TTL, so memberships of vanished connections expire |
//!
//! The rooms GSI `{table}-index-connection` has `connectionId` as partition key and `room`
//! as sort key (projection ALL): "the rooms of connection C" is a query, ordered by room.
//!
//! The trait's [`join_room`](ConnectionStore::join_room) receives only a [`Member`], not
//! the connection's record, so a membership's `expires` is *now* +
//! [`MAX_CONNECTION_AGE_SECS`] + [`RECORD_TTL_MARGIN_SECS`]: never earlier than the
//! connection's own `expires`, and written without a read.
//!
//! # Calls per operation
//!
//! `n` is the number of items involved, `p` the number of pages (1 MB each, or the page
//! size set with [`DynamoStore::with_page_size`]). Reads are eventually consistent (GSI
//! reads cannot be anything else).
//!
//! | operation           | DynamoDB calls                                                                                      |
//! |---------------------|-----------------------------------------------------------------------------------------------------|
//! | `put_connection`    | 1 `PutItem`, condition `attribute_not_exists(sessionKey)` (failure: `Conflict`)                     |
//! | `get_connection`    | 1 `Query` on the connections GSI                                                                    |
//! | `remove_connection` | 1 `Query` on the connections GSI + 1 `DeleteItem` (`ALL_OLD`), concurrently with the room cleanup: `Query` on the rooms GSI (`p`) + `BatchWriteItem` deletes (`ceil(rooms/25)`, unprocessed items retried with bounded backoff). No rooms: 3 calls |
//! | `remove_record`     | 1 `DeleteItem` by key (`ALL_OLD`; when no item had that key, the `remove_connection` lookup follows), concurrently with the same room cleanup. No rooms: 2 calls. `$disconnect` uses it with the key rebuilt from the event (user name, `connectedAt`), saving the GSI `Query` |
//! | `user_connections`  | `Query` by `username` (`p`)                                                                         |
//! | `list_connections`  | `Scan` of the connections table (`p`)                                                               |
//! | `connection_ids`    | `Scan` of the connections table projecting `connectionId` (`p`)                                     |
//! | `join_room`         | 1 `PutItem`, condition `attribute_not_exists(connectionId)` (failure: `Ok(false)`)                  |
//! | `leave_room`        | 1 `DeleteItem` with `ReturnValues=ALL_OLD` (`true` when an item was deleted)                        |
//! | `room_members`      | `Query` by `room` (`p`), ordered by connection id                                                   |
//! | `room_member_page`  | 1 `Query` by `room` projecting `connectionId`, `Limit` = the page size, `ExclusiveStartKey` from the cursor (the last connection id) |
//! | `connection_id_page`| 1 `Scan` of one parallel segment (`Segment`/`TotalSegments`) projecting `connectionId`, `Limit`, `ExclusiveStartKey` from the cursor (the key as JSON) |
//! | `rooms_of`          | `Query` on the rooms GSI (`p`), ordered by room                                                     |
//! | `rooms`             | `Scan` of the rooms table projecting `room` (`p`), counted in memory: a **scan**, for admin pages |
//!
//! # Differences from the [`MemoryStore`](switchboard_core::backend::memory::MemoryStore)
//!
//! - `put_connection` rejects a second record with the same user *and* session key
//!   (`{connectedAt}#{connectionId}`, so the same connection id and start time); it cannot
//!   see the same connection id recorded under another user without a read.
//! - `user_connections` is ordered by session key (oldest connection first);
//!   `list_connections` and `connection_ids` are sorted by connection id after the scan.
//! - Key attributes cannot be empty strings in DynamoDB: `put_connection` and `join_room`
//!   with an empty user name, session key, connection id or room are `Backend` errors
//!   (without a call); reads with an empty key find nothing.
//! - The GSIs are eventually consistent: a `remove_connection` issued milliseconds after
//!   `put_connection` may not find the record yet; the TTL removes it.
//!
//! # Errors
//!
//! The client retries transient errors itself (standard mode, 3 attempts, every call
//! bounded by 9 s: see [the crate documentation](crate)). After that,
//! `ProvisionedThroughputExceededException`, `ThrottlingException` and
//! `RequestLimitExceeded` become [`StoreError::Throttled`]; no answer (connection refused
//! or reset, a timeout) or a 5xx becomes [`StoreError::Unavailable`]; anything else
//! [`StoreError::Backend`] with the SDK error and its causes. An item with a missing or
//! mistyped attribute is a `Backend` error naming the attribute. Callers of a handler
//! see `Throttled` and `Unavailable` as a `store_unavailable` error (503), the others as
//! `internal`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType,
    SseSpecification, TableStatus, TimeToLiveSpecification, TimeToLiveStatus, WriteRequest,
};
use serde_json::{Map, Value};

use super::AwsSettings;
use switchboard_core::backend::{
    ConnectionRecord, ConnectionStore, IdPage, Member, RoomSummary, StoreError,
};
use switchboard_core::dispatch::{MAX_CONNECTION_AGE_SECS, RECORD_TTL_MARGIN_SECS};

pub use switchboard_core::names::table::{
    CONNECTION_INDEX_SUFFIX, CONNECTIONS_TABLE_SUFFIX, ROOMS_TABLE_SUFFIX, TableNames, attr,
};

/// The most items one `BatchWriteItem` call takes.
pub const BATCH_WRITE_LIMIT: usize = 25;

/// How many `BatchWriteItem` calls one chunk gets (the first plus retries of
/// `UnprocessedItems`) before the operation reports [`StoreError::Throttled`].
const BATCH_ATTEMPTS: u32 = 6;

/// The first backoff before retrying unprocessed items; doubled on each retry.
const BATCH_BACKOFF: Duration = Duration::from_millis(25);

/// Pagination stops with an error after this many pages (a runaway guard: at 1 MB per
/// page, far more than a connection store ever holds).
const MAX_PAGES: usize = 100_000;

/// How long [`DynamoStore::create_tables`] waits for a table to become active.
const CREATE_WAIT: Duration = Duration::from_secs(120);

/// Reads `SWITCHBOARD_CONNECTIONS_TABLE` and `SWITCHBOARD_ROOMS_TABLE`, collecting what
/// is missing.
pub fn table_names_from_env(problems: &mut Vec<String>) -> Option<TableNames> {
    let connections = crate::required(crate::env::CONNECTIONS_TABLE, problems);
    let rooms = crate::required(crate::env::ROOMS_TABLE, problems);
    Some(TableNames::new(connections?, rooms?))
}

type Item = HashMap<String, AttributeValue>;

/// The filter of the reads a fan-out relies on (room members, a user's connections,
/// every connection id): items whose `expires` (`#e`) has passed (`:now`, epoch
/// seconds) are skipped, because DynamoDB's TTL deletion lags by up to days and a
/// fan-out must not post to them. Items without `expires` are kept.
const LIVE_FILTER: &str = "attribute_not_exists(#e) OR #e > :now";

/// A [`ConnectionStore`] on two DynamoDB tables (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
    connections_index: String,
    rooms_index: String,
    page_size: Option<i32>,
}

impl DynamoStore {
    /// A store on these tables.
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self {
            connections_index: tables.connections_index(),
            rooms_index: tables.rooms_index(),
            client,
            tables,
            page_size: None,
        }
    }

    /// A store with a client for these settings ([`super::dynamodb_client`]).
    pub fn from_settings(settings: &AwsSettings, tables: TableNames) -> Self {
        Self::new(super::dynamodb_client(settings), tables)
    }

    /// Sets `Limit` on every paginated `Query` and `Scan` (tests force small pages with
    /// it). `0` means no limit: DynamoDB's 1 MB pages.
    pub fn with_page_size(mut self, items: u32) -> Self {
        self.page_size = match items {
            0 => None,
            n => Some(i32::try_from(n).unwrap_or(i32::MAX)),
        };
        self
    }

    /// The tables.
    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates both tables with their GSIs (on-demand billing, server-side encryption with
    /// the AWS managed KMS key), waits for them to be active and enables TTL on `expires`.
    /// For local development and tests; deployments create the tables with the stack.
    /// Idempotent: existing tables are left as they are (TTL is still enabled if off).
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let connections = self
            .client
            .create_table()
            .table_name(&self.tables.connections)
            .billing_mode(BillingMode::PayPerRequest)
            .sse_specification(SseSpecification::builder().enabled(true).build())
            .attribute_definitions(attribute(attr::USERNAME)?)
            .attribute_definitions(attribute(attr::SESSION_KEY)?)
            .attribute_definitions(attribute(attr::CONNECTION_ID)?)
            .key_schema(key(attr::USERNAME, KeyType::Hash)?)
            .key_schema(key(attr::SESSION_KEY, KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&self.connections_index)
                    .key_schema(key(attr::CONNECTION_ID, KeyType::Hash)?)
                    .projection(projection_all())
                    .build()
                    .map_err(|e| build_error(&e))?,
            );
        let rooms = self
            .client
            .create_table()
            .table_name(&self.tables.rooms)
            .billing_mode(BillingMode::PayPerRequest)
            .sse_specification(SseSpecification::builder().enabled(true).build())
            .attribute_definitions(attribute(attr::ROOM)?)
            .attribute_definitions(attribute(attr::CONNECTION_ID)?)
            .key_schema(key(attr::ROOM, KeyType::Hash)?)
            .key_schema(key(attr::CONNECTION_ID, KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&self.rooms_index)
                    .key_schema(key(attr::CONNECTION_ID, KeyType::Hash)?)
                    .key_schema(key(attr::ROOM, KeyType::Range)?)
                    .projection(projection_all())
                    .build()
                    .map_err(|e| build_error(&e))?,
            );
        for (table, request) in [
            (&self.tables.connections, connections),
            (&self.tables.rooms, rooms),
        ] {
            match request.send().await {
                Ok(_) => {}
                Err(e) if e.code() == Some("ResourceInUseException") => {}
                Err(e) => return Err(sdk_error("create_tables", e)),
            }
            Self::wait_active(&self.client, table).await?;
            Self::enable_ttl(&self.client, table).await?;
        }
        Ok(())
    }

    /// Waits (bounded) for `table` to be active.
    pub(crate) async fn wait_active(client: &Client, table: &str) -> Result<(), StoreError> {
        const OP: &str = "create_tables";
        let deadline = tokio::time::Instant::now() + CREATE_WAIT;
        loop {
            let out = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| sdk_error(OP, e))?;
            let status = out.table.and_then(|t| t.table_status);
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Backend {
                    operation: OP,
                    message: format!(
                        "table {table} is not active after {CREATE_WAIT:?} (status {status:?})"
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Enables TTL on `expires` for `table`, unless it is on already.
    pub(crate) async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
        const OP: &str = "create_tables";
        let current = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        let status = current
            .time_to_live_description
            .and_then(|d| d.time_to_live_status);
        if matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            return Ok(());
        }
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(attr::EXPIRES)
            .build()
            .map_err(|e| build_error(&e))?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        Ok(())
    }

    /// Runs a query to its last page.
    async fn query_all(
        &self,
        operation: &'static str,
        query: QueryFluentBuilder,
        limit: Option<i32>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        for _ in 0..MAX_PAGES {
            let out = query
                .clone()
                .set_limit(limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(operation, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
        Err(runaway(operation))
    }

    /// Runs a scan to its last page.
    async fn scan_all(
        &self,
        operation: &'static str,
        scan: ScanFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        for _ in 0..MAX_PAGES {
            let out = scan
                .clone()
                .set_limit(self.page_size)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(operation, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
        Err(runaway(operation))
    }

    /// Deletes the connection's item(s) found through the connections GSI; the deleted
    /// record, if any.
    async fn remove_record_by_id(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        const OP: &str = "remove_connection";
        let query = self
            .client
            .query()
            .table_name(&self.tables.connections)
            .index_name(&self.connections_index)
            .key_condition_expression("#c = :c")
            .projection_expression("#u, #k")
            .expression_attribute_names("#c", attr::CONNECTION_ID)
            .expression_attribute_names("#u", attr::USERNAME)
            .expression_attribute_names("#k", attr::SESSION_KEY)
            .expression_attribute_values(":c", s(connection_id));
        // No `Limit`: one connection id has one item, and one page then needs no second
        // call to learn there is nothing more.
        let found = self.query_all(OP, query, None).await?;
        let mut removed = None;
        for item in found {
            let table = &self.tables.connections;
            let username = string(&item, attr::USERNAME, table, OP)?;
            let session_key = string(&item, attr::SESSION_KEY, table, OP)?;
            let out = self
                .client
                .delete_item()
                .table_name(table)
                .key(attr::USERNAME, s(username))
                .key(attr::SESSION_KEY, s(session_key))
                .return_values(ReturnValue::AllOld)
                .send()
                .await
                .map_err(|e| sdk_error(OP, e))?;
            // Empty when a concurrent removal won: that one reports the record.
            if let Some(old) = out.attributes.filter(|a| !a.is_empty()) {
                let record = record_from_item(&old, table, OP)?;
                if removed.is_none() {
                    removed = Some(record);
                }
            }
        }
        Ok(removed)
    }

    /// Deletes every membership of a connection: rooms GSI query, then `BatchWriteItem`
    /// in chunks of 25.
    async fn remove_memberships(&self, connection_id: &str) -> Result<(), StoreError> {
        const OP: &str = "remove_connection";
        let query = self
            .client
            .query()
            .table_name(&self.tables.rooms)
            .index_name(&self.rooms_index)
            .key_condition_expression("#c = :c")
            .projection_expression("#r")
            .expression_attribute_names("#c", attr::CONNECTION_ID)
            .expression_attribute_names("#r", attr::ROOM)
            .expression_attribute_values(":c", s(connection_id));
        let items = self.query_all(OP, query, self.page_size).await?;
        let mut deletes = Vec::with_capacity(items.len());
        for item in &items {
            let room = string(item, attr::ROOM, &self.tables.rooms, OP)?;
            let key = HashMap::from([
                (attr::ROOM.to_owned(), s(room)),
                (attr::CONNECTION_ID.to_owned(), s(connection_id)),
            ]);
            let delete = DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(|e| build_error(&e))?;
            deletes.push(WriteRequest::builder().delete_request(delete).build());
        }
        for chunk in deletes.chunks(BATCH_WRITE_LIMIT) {
            self.batch_write(OP, &self.tables.rooms, chunk.to_vec())
                .await?;
        }
        Ok(())
    }

    /// One `BatchWriteItem` on one table, retrying unprocessed items with exponential
    /// backoff, at most [`BATCH_ATTEMPTS`] calls.
    async fn batch_write(
        &self,
        operation: &'static str,
        table: &str,
        mut requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut backoff = BATCH_BACKOFF;
        for attempt in 1..=BATCH_ATTEMPTS {
            let out = self
                .client
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .map_err(|e| sdk_error(operation, e))?;
            requests = out
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            if attempt < BATCH_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        tracing::warn!(
            table,
            unprocessed = requests.len(),
            "BatchWriteItem left items unprocessed after {BATCH_ATTEMPTS} attempts"
        );
        Err(StoreError::Throttled { operation })
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        const OP: &str = "put_connection";
        non_empty(OP, attr::USERNAME, &record.username)?;
        non_empty(OP, attr::SESSION_KEY, &record.session_key)?;
        non_empty(OP, attr::CONNECTION_ID, &record.connection_id)?;
        let item = record_to_item(record).map_err(|e| StoreError::Backend {
            operation: OP,
            message: format!("cannot encode the claims: {e}"),
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.connections)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", attr::SESSION_KEY)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict {
                    operation: OP,
                    message: format!(
                        "connection {} is already recorded (session {})",
                        record.connection_id, record.session_key
                    ),
                })
            }
            Err(e) => Err(sdk_error(OP, e)),
        }
    }

    async fn get_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        const OP: &str = "get_connection";
        if connection_id.is_empty() {
            return Ok(None);
        }
        let out = self
            .client
            .query()
            .table_name(&self.tables.connections)
            .index_name(&self.connections_index)
            .key_condition_expression("#c = :c")
            .expression_attribute_names("#c", attr::CONNECTION_ID)
            .expression_attribute_values(":c", s(connection_id))
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        out.items
            .unwrap_or_default()
            .first()
            .map(|item| record_from_item(item, &self.tables.connections, OP))
            .transpose()
    }

    async fn remove_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        if connection_id.is_empty() {
            return Ok(None);
        }
        // The record and the memberships are independent: remove them concurrently.
        let (record, memberships) = tokio::join!(
            self.remove_record_by_id(connection_id),
            self.remove_memberships(connection_id)
        );
        let record = record?;
        memberships?;
        Ok(record)
    }

    async fn remove_record(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        const OP: &str = "remove_record";
        if record.connection_id.is_empty() {
            return Ok(());
        }
        let delete = async {
            if record.username.is_empty() || record.session_key.is_empty() {
                return self
                    .remove_record_by_id(&record.connection_id)
                    .await
                    .map(|_| ());
            }
            let out = self
                .client
                .delete_item()
                .table_name(&self.tables.connections)
                .key(attr::USERNAME, s(record.username.clone()))
                .key(attr::SESSION_KEY, s(record.session_key.clone()))
                .return_values(ReturnValue::AllOld)
                .send()
                .await
                .map_err(|e| sdk_error(OP, e))?;
            if out.attributes.is_some_and(|a| !a.is_empty()) {
                return Ok(());
            }
            // Nothing under that key (the record was written with another user name or
            // start time, or is gone already): look the connection id up.
            self.remove_record_by_id(&record.connection_id)
                .await
                .map(|_| ())
        };
        let (deleted, memberships) =
            tokio::join!(delete, self.remove_memberships(&record.connection_id));
        deleted?;
        memberships
    }

    async fn user_connections(&self, username: &str) -> Result<Vec<ConnectionRecord>, StoreError> {
        const OP: &str = "user_connections";
        if username.is_empty() {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.tables.connections)
            .key_condition_expression("#u = :u")
            .expression_attribute_names("#u", attr::USERNAME)
            .expression_attribute_values(":u", s(username))
            .filter_expression(LIVE_FILTER)
            .expression_attribute_names("#e", attr::EXPIRES)
            .expression_attribute_values(":now", n(now_secs()));
        self.query_all(OP, query, self.page_size)
            .await?
            .iter()
            .map(|item| record_from_item(item, &self.tables.connections, OP))
            .collect()
    }

    async fn list_connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        const OP: &str = "list_connections";
        let scan = self.client.scan().table_name(&self.tables.connections);
        let mut all = self
            .scan_all(OP, scan)
            .await?
            .iter()
            .map(|item| record_from_item(item, &self.tables.connections, OP))
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        Ok(all)
    }

    async fn connection_ids(&self) -> Result<Vec<String>, StoreError> {
        const OP: &str = "connection_ids";
        let scan = self
            .client
            .scan()
            .table_name(&self.tables.connections)
            .projection_expression("#c")
            .expression_attribute_names("#c", attr::CONNECTION_ID)
            .filter_expression(LIVE_FILTER)
            .expression_attribute_names("#e", attr::EXPIRES)
            .expression_attribute_values(":now", n(now_secs()));
        let mut ids = self
            .scan_all(OP, scan)
            .await?
            .iter()
            .map(|item| string(item, attr::CONNECTION_ID, &self.tables.connections, OP))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn join_room(&self, room: &str, member: &Member) -> Result<bool, StoreError> {
        const OP: &str = "join_room";
        non_empty(OP, attr::ROOM, room)?;
        non_empty(OP, attr::CONNECTION_ID, &member.connection_id)?;
        let expires = now_secs() + MAX_CONNECTION_AGE_SECS + RECORD_TTL_MARGIN_SECS;
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.rooms)
            .item(attr::ROOM, s(room))
            .item(attr::CONNECTION_ID, s(&member.connection_id))
            .item(attr::USERNAME, s(&member.username))
            .item(attr::EXPIRES, n(expires))
            .condition_expression("attribute_not_exists(#c)")
            .expression_attribute_names("#c", attr::CONNECTION_ID)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(OP, e)),
        }
    }

    async fn leave_room(&self, room: &str, connection_id: &str) -> Result<bool, StoreError> {
        const OP: &str = "leave_room";
        if room.is_empty() || connection_id.is_empty() {
            return Ok(false);
        }
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.rooms)
            .key(attr::ROOM, s(room))
            .key(attr::CONNECTION_ID, s(connection_id))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn room_members(&self, room: &str) -> Result<Vec<Member>, StoreError> {
        const OP: &str = "room_members";
        if room.is_empty() {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.tables.rooms)
            .key_condition_expression("#r = :r")
            .projection_expression("#c, #u")
            .expression_attribute_names("#r", attr::ROOM)
            .expression_attribute_names("#c", attr::CONNECTION_ID)
            .expression_attribute_names("#u", attr::USERNAME)
            .expression_attribute_values(":r", s(room))
            .filter_expression(LIVE_FILTER)
            .expression_attribute_names("#e", attr::EXPIRES)
            .expression_attribute_values(":now", n(now_secs()));
        let table = &self.tables.rooms;
        self.query_all(OP, query, self.page_size)
            .await?
            .iter()
            .map(|item| {
                Ok(Member {
                    connection_id: string(item, attr::CONNECTION_ID, table, OP)?,
                    username: string(item, attr::USERNAME, table, OP)?,
                })
            })
            .collect()
    }

    async fn room_member_page(
        &self,
        room: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<IdPage, StoreError> {
        const OP: &str = "room_member_page";
        if room.is_empty() {
            return Ok(IdPage::default());
        }
        let start = after.map(|a| {
            HashMap::from([
                (attr::ROOM.to_owned(), s(room)),
                (attr::CONNECTION_ID.to_owned(), s(a)),
            ])
        });
        let out = self
            .client
            .query()
            .table_name(&self.tables.rooms)
            .key_condition_expression("#r = :r")
            .projection_expression("#c")
            .expression_attribute_names("#r", attr::ROOM)
            .expression_attribute_names("#c", attr::CONNECTION_ID)
            .expression_attribute_values(":r", s(room))
            .filter_expression(LIVE_FILTER)
            .expression_attribute_names("#e", attr::EXPIRES)
            .expression_attribute_values(":now", n(now_secs()))
            .limit(page_limit(limit))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        let table = &self.tables.rooms;
        let ids = ids_of(out.items.unwrap_or_default(), table, OP)?;
        let next = match out.last_evaluated_key {
            Some(key) if !key.is_empty() => Some(string(&key, attr::CONNECTION_ID, table, OP)?),
            _ => None,
        };
        Ok(IdPage { ids, next })
    }

    async fn connection_id_page(
        &self,
        segment: u32,
        segments: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<IdPage, StoreError> {
        const OP: &str = "connection_id_page";
        let segments = segments.max(1);
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let out = self
            .client
            .scan()
            .table_name(&self.tables.connections)
            .segment(to_i32(segment.min(segments - 1)))
            .total_segments(to_i32(segments))
            .projection_expression("#c")
            .expression_attribute_names("#c", attr::CONNECTION_ID)
            .filter_expression(LIVE_FILTER)
            .expression_attribute_names("#e", attr::EXPIRES)
            .expression_attribute_values(":now", n(now_secs()))
            .limit(page_limit(limit))
            .set_exclusive_start_key(after.map(|a| decode_cursor(a, OP)).transpose()?)
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        let ids = ids_of(out.items.unwrap_or_default(), &self.tables.connections, OP)?;
        let next = match out.last_evaluated_key {
            Some(key) if !key.is_empty() => Some(encode_cursor(&key, OP)?),
            _ => None,
        };
        Ok(IdPage { ids, next })
    }

    async fn rooms_of(&self, connection_id: &str) -> Result<Vec<String>, StoreError> {
        const OP: &str = "rooms_of";
        if connection_id.is_empty() {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.tables.rooms)
            .index_name(&self.rooms_index)
            .key_condition_expression("#c = :c")
            .projection_expression("#r")
            .expression_attribute_names("#c", attr::CONNECTION_ID)
            .expression_attribute_names("#r", attr::ROOM)
            .expression_attribute_values(":c", s(connection_id));
        self.query_all(OP, query, self.page_size)
            .await?
            .iter()
            .map(|item| string(item, attr::ROOM, &self.tables.rooms, OP))
            .collect()
    }

    async fn rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
        const OP: &str = "rooms";
        let scan = self
            .client
            .scan()
            .table_name(&self.tables.rooms)
            .projection_expression("#r")
            .expression_attribute_names("#r", attr::ROOM);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for item in self.scan_all(OP, scan).await? {
            *counts
                .entry(string(&item, attr::ROOM, &self.tables.rooms, OP)?)
                .or_default() += 1;
        }
        // The fan-out's frames stored by reference share the table; not a room.
        counts.remove(switchboard_core::names::fanout::FRAME_ROOM);
        Ok(counts
            .into_iter()
            .map(|(room, members)| RoomSummary { room, members })
            .collect())
    }
}

/// Whether a raw response is a 5xx.
pub(crate) trait ServerError {
    fn is_server_error(&self) -> bool;
}

impl ServerError for aws_smithy_runtime_api::http::Response {
    fn is_server_error(&self) -> bool {
        self.status().is_server_error()
    }
}

/// Unit tests' errors carry no response.
impl ServerError for () {
    fn is_server_error(&self) -> bool {
        false
    }
}

/// Maps an SDK error: throttling codes to [`StoreError::Throttled`]; no answer
/// (connection refused or reset, timeouts, an unreadable response) or a 5xx, after the
/// SDK's retries, to [`StoreError::Unavailable`]; the rest to [`StoreError::Backend`],
/// each with the error and its causes.
pub(crate) fn sdk_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug + ServerError,
{
    if matches!(
        err.code(),
        Some(
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
        )
    ) {
        return StoreError::Throttled { operation };
    }
    let message = DisplayErrorContext(&err).to_string();
    let unavailable = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => e.raw().is_server_error(),
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable { operation, message }
    } else {
        StoreError::Backend { operation, message }
    }
}

pub(crate) fn build_error(err: &aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend {
        operation: "create_tables",
        message: DisplayErrorContext(err).to_string(),
    }
}

/// A page size as DynamoDB's `Limit` (at least 1).
fn page_limit(limit: usize) -> i32 {
    i32::try_from(limit.max(1)).unwrap_or(i32::MAX)
}

/// The `connectionId` of every item of a page.
fn ids_of(
    items: Vec<Item>,
    table: &str,
    operation: &'static str,
) -> Result<Vec<String>, StoreError> {
    items
        .iter()
        .map(|item| string(item, attr::CONNECTION_ID, table, operation))
        .collect()
}

/// A scan's `LastEvaluatedKey` (string attributes: the connections table's key) as an
/// opaque cursor: a JSON object of the attributes' values.
fn encode_cursor(key: &Item, operation: &'static str) -> Result<String, StoreError> {
    let mut object = Map::new();
    for (name, value) in key {
        match value {
            AttributeValue::S(v) => {
                object.insert(name.clone(), Value::String(v.clone()));
            }
            other => {
                return Err(malformed(
                    operation,
                    "LastEvaluatedKey",
                    name,
                    &format!("is {}, expected S", type_name(other)),
                ));
            }
        }
    }
    Ok(Value::Object(object).to_string())
}

/// The `ExclusiveStartKey` an [`encode_cursor`] cursor stands for.
fn decode_cursor(cursor: &str, operation: &'static str) -> Result<Item, StoreError> {
    let bad = |why: &str| StoreError::Backend {
        operation,
        message: format!("a scan cursor {why}"),
    };
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(cursor) else {
        return Err(bad("is not a JSON object"));
    };
    object
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(v) => Ok((name, s(v))),
            _ => Err(bad("holds a value that is not a string")),
        })
        .collect()
}

fn runaway(operation: &'static str) -> StoreError {
    StoreError::Backend {
        operation,
        message: format!("pagination did not end after {MAX_PAGES} pages"),
    }
}

/// DynamoDB refuses empty strings in key attributes; say so before the call.
fn non_empty(operation: &'static str, name: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::Backend {
            operation,
            message: format!("`{name}` is empty; DynamoDB key attributes cannot be empty"),
        });
    }
    Ok(())
}

pub(crate) fn attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| build_error(&e))
}

pub(crate) fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| build_error(&e))
}

fn projection_all() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::All)
        .build()
}

pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn record_to_item(record: &ConnectionRecord) -> Result<Item, serde_json::Error> {
    let mut item = HashMap::from([
        (attr::USERNAME.to_owned(), s(&record.username)),
        (attr::SESSION_KEY.to_owned(), s(&record.session_key)),
        (attr::CONNECTION_ID.to_owned(), s(&record.connection_id)),
        (attr::CONNECTED_AT.to_owned(), n(record.connected_at)),
        (attr::EXPIRES.to_owned(), n(record.expires)),
        (
            attr::CLAIMS.to_owned(),
            s(serde_json::to_string(&record.claims)?),
        ),
    ]);
    if let Some(ip) = &record.source_ip {
        item.insert(attr::SOURCE_IP.to_owned(), s(ip));
    }
    if let Some(agent) = &record.user_agent {
        item.insert(attr::USER_AGENT.to_owned(), s(agent));
    }
    Ok(item)
}

fn malformed(operation: &'static str, table: &str, name: &str, problem: &str) -> StoreError {
    StoreError::Backend {
        operation,
        message: format!("malformed item in table {table}: attribute `{name}` {problem}"),
    }
}

fn type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::B(_) => "B",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::Null(_) => "NULL",
        AttributeValue::M(_) => "M",
        AttributeValue::L(_) => "L",
        AttributeValue::Ss(_) => "SS",
        AttributeValue::Ns(_) => "NS",
        AttributeValue::Bs(_) => "BS",
        _ => "an unknown type",
    }
}

/// A string attribute that may be absent.
fn opt_string(
    item: &Item,
    name: &str,
    table: &str,
    operation: &'static str,
) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(other) => Err(malformed(
            operation,
            table,
            name,
            &format!("is {}, expected S", type_name(other)),
        )),
    }
}

/// A required string attribute.
fn string(
    item: &Item,
    name: &str,
    table: &str,
    operation: &'static str,
) -> Result<String, StoreError> {
    opt_string(item, name, table, operation)?
        .ok_or_else(|| malformed(operation, table, name, "is missing"))
}

/// A required integral number attribute.
fn integer(
    item: &Item,
    name: &str,
    table: &str,
    operation: &'static str,
) -> Result<i64, StoreError> {
    match item.get(name) {
        None => Err(malformed(operation, table, name, "is missing")),
        Some(AttributeValue::N(v)) => v
            .parse::<i64>()
            .ok()
            .or_else(|| {
                // DynamoDB normalises numbers, but hand-written items may say `1.0e3`.
                v.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| malformed(operation, table, name, &format!("is not an integer: {v}"))),
        Some(other) => Err(malformed(
            operation,
            table,
            name,
            &format!("is {}, expected N", type_name(other)),
        )),
    }
}

fn record_from_item(
    item: &Item,
    table: &str,
    operation: &'static str,
) -> Result<ConnectionRecord, StoreError> {
    let claims = match opt_string(item, attr::CLAIMS, table, operation)? {
        None => Map::new(),
        Some(json) => match serde_json::from_str::<Value>(&json) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(malformed(
                    operation,
                    table,
                    attr::CLAIMS,
                    "is not a JSON object",
                ));
            }
            Err(e) => {
                return Err(malformed(
                    operation,
                    table,
                    attr::CLAIMS,
                    &format!("is not JSON: {e}"),
                ));
            }
        },
    };
    Ok(ConnectionRecord {
        connection_id: string(item, attr::CONNECTION_ID, table, operation)?,
        username: string(item, attr::USERNAME, table, operation)?,
        session_key: string(item, attr::SESSION_KEY, table, operation)?,
        connected_at: integer(item, attr::CONNECTED_AT, table, operation)?,
        expires: integer(item, attr::EXPIRES, table, operation)?,
        source_ip: opt_string(item, attr::SOURCE_IP, table, operation)?,
        user_agent: opt_string(item, attr::USER_AGENT, table, operation)?,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;

    fn service_error(code: &str) -> SdkError<PutItemError, ()> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("the service said so")
            .build();
        SdkError::service_error(PutItemError::generic(meta), ())
    }

    #[test]
    fn throttling_codes_map_to_throttled() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            let err = sdk_error("put_connection", service_error(code));
            assert!(
                matches!(
                    err,
                    StoreError::Throttled {
                        operation: "put_connection"
                    }
                ),
                "{code}: {err:?}"
            );
        }
    }

    #[test]
    fn no_answer_and_5xx_map_to_unavailable() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;

        let refused: SdkError<PutItemError, Response> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let timeout: SdkError<PutItemError, Response> =
            SdkError::timeout_error("operation timed out");
        let meta = ErrorMetadata::builder().code("InternalServerError").build();
        let status = StatusCode::try_from(500_u16).unwrap();
        let server: SdkError<PutItemError, Response> = SdkError::service_error(
            PutItemError::generic(meta),
            Response::new(status, SdkBody::empty()),
        );
        for (err, cause) in [
            (refused, "connection refused"),
            (timeout, "timed out"),
            (server, "InternalServerError"),
        ] {
            match sdk_error("put_connection", err) {
                e @ StoreError::Unavailable { operation, .. } => {
                    assert_eq!(operation, "put_connection");
                    assert!(e.is_unavailable());
                    assert!(e.to_string().contains(cause), "{e}");
                }
                other => panic!("{cause}: unexpected {other:?}"),
            }
        }
        // A 4xx the service explains is not an outage.
        let meta = ErrorMetadata::builder().code("ValidationException").build();
        let status = StatusCode::try_from(400_u16).unwrap();
        let client: SdkError<PutItemError, Response> = SdkError::service_error(
            PutItemError::generic(meta),
            Response::new(status, SdkBody::empty()),
        );
        assert!(matches!(
            sdk_error("put_connection", client),
            StoreError::Backend { .. }
        ));
    }

    #[test]
    fn other_errors_keep_the_sdk_message() {
        let err = sdk_error("put_connection", service_error("ValidationException"));
        match err {
            StoreError::Backend { operation, message } => {
                assert_eq!(operation, "put_connection");
                assert!(message.contains("ValidationException"), "{message}");
                assert!(message.contains("the service said so"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn table_names() {
        let t = TableNames::for_app("chat", "dev");
        assert_eq!(t.connections, "chat-dev-websocket-connections");
        assert_eq!(t.rooms, "chat-dev-websocket-rooms");
        assert_eq!(
            t.connections_index(),
            "chat-dev-websocket-connections-index-connection"
        );
        assert_eq!(t.rooms_index(), "chat-dev-websocket-rooms-index-connection");
    }

    fn sample() -> ConnectionRecord {
        let mut claims = Map::new();
        claims.insert("username".into(), Value::from("alice"));
        claims.insert("n".into(), serde_json::json!({"x": [1, 2.5, null, true]}));
        ConnectionRecord {
            connection_id: "abc=".into(),
            username: "alice".into(),
            session_key: ConnectionRecord::session_key_for(1_700_000_000_123, "abc="),
            connected_at: 1_700_000_000_123,
            expires: 1_700_008_100,
            source_ip: Some("192.0.2.1".into()),
            user_agent: None,
            claims,
        }
    }

    #[test]
    fn items_round_trip() {
        let record = sample();
        let item = record_to_item(&record).unwrap();
        assert!(!item.contains_key(attr::USER_AGENT));
        assert_eq!(record_from_item(&item, "t", "op").unwrap(), record);
    }

    #[test]
    fn malformed_items_name_the_attribute() {
        let mut item = record_to_item(&sample()).unwrap();
        item.remove(attr::CONNECTED_AT);
        let err = record_from_item(&item, "t", "op").unwrap_err().to_string();
        assert!(err.contains("`connectedAt` is missing"), "{err}");

        let mut item = record_to_item(&sample()).unwrap();
        item.insert(attr::EXPIRES.into(), s("soon"));
        let err = record_from_item(&item, "t", "op").unwrap_err().to_string();
        assert!(err.contains("`expires` is S, expected N"), "{err}");

        let mut item = record_to_item(&sample()).unwrap();
        item.insert(attr::CLAIMS.into(), s("[1]"));
        let err = record_from_item(&item, "t", "op").unwrap_err().to_string();
        assert!(err.contains("`claims` is not a JSON object"), "{err}");

        let mut item = record_to_item(&sample()).unwrap();
        item.insert(attr::EXPIRES.into(), n(0));
        item.insert(attr::CONNECTED_AT.into(), AttributeValue::N("1.5".into()));
        let err = record_from_item(&item, "t", "op").unwrap_err().to_string();
        assert!(err.contains("`connectedAt` is not an integer"), "{err}");

        let mut item = record_to_item(&sample()).unwrap();
        item.insert(attr::CONNECTED_AT.into(), AttributeValue::N("1e3".into()));
        assert_eq!(
            record_from_item(&item, "t", "op").unwrap().connected_at,
            1000
        );
    }
}
