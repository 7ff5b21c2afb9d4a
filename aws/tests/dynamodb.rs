//! The DynamoDB connection store against a moto server: the conformance suite, GSI
//! lookups, pagination, conditional-write races, TTL and table settings, batch deletes,
//! and the number of DynamoDB calls each operation makes.
//!
//! The endpoint comes from `SWITCHBOARD_TEST_MOTO`; start a server with
//! `eval "$(bash scripts/moto.sh start)"`. With `SWITCHBOARD_SKIP_MOTO=1` and no endpoint
//! the moto tests return early.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, ProjectionType, SseStatus, TimeToLiveStatus,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use switchboard_aws::dynamodb::{
    BATCH_WRITE_LIMIT, CONNECTION_INDEX_SUFFIX, DynamoStore, TableNames, attr,
};
use switchboard_aws::{AwsSettings, dynamodb_client};
use switchboard_core::backend::memory::MemoryStore;
use switchboard_core::backend::{ConnectionStore, Member, RoomSummary, StoreError};
use switchboard_core::dispatch::{MAX_CONNECTION_AGE_SECS, RECORD_TTL_MARGIN_SECS};
use switchboard_testing::conformance::{self, member, now_millis, ok, record};

use switchboard_testing::moto_endpoint;

/// One DynamoDB call, as the SDK was asked to make it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Call {
    operation: String,
    /// `Query`: the index, if any.
    index: Option<String>,
    /// `BatchWriteItem`: the number of write requests.
    batch: usize,
}

/// Records every operation the client executes (once per operation, not per retry).
#[derive(Clone, Debug, Default)]
struct Calls(Arc<Mutex<Vec<Call>>>);

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "switchboard-test-call-recorder"
    }

    // Once per execution, after the operation's configuration (which holds its
    // `Metadata`) is in the bag; `read_before_execution` runs before that.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or_else(|| "?".to_owned(), |m| m.name().to_owned());
        let input = context.input();
        let index = input
            .downcast_ref::<QueryInput>()
            .and_then(|q| q.index_name.clone());
        let batch = input.downcast_ref::<BatchWriteItemInput>().map_or(0, |b| {
            b.request_items.iter().flatten().map(|(_, v)| v.len()).sum()
        });
        self.0.lock().unwrap().push(Call {
            operation,
            index,
            batch,
        });
        Ok(())
    }
}

impl Calls {
    /// The calls since the last `take`.
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The operation names since the last `take`, sorted (concurrent calls have no
    /// order).
    fn ops(&self) -> Vec<String> {
        let mut ops: Vec<String> = self.take().into_iter().map(|c| c.operation).collect();
        ops.sort();
        ops
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

struct Fixture {
    store: DynamoStore,
    client: Client,
    calls: Calls,
    tables: TableNames,
    prefix: String,
}

impl Fixture {
    /// Fresh tables named after the test; `None` when moto tests are skipped.
    async fn new(test: &str) -> Option<Self> {
        Self::with_page_size(test, 0).await
    }

    async fn with_page_size(test: &str, page_size: u32) -> Option<Self> {
        let endpoint = moto_endpoint(test)?;
        let calls = Calls::default();
        let base = dynamodb_client(&AwsSettings::local(endpoint));
        let client = Client::from_conf(
            base.config()
                .to_builder()
                .interceptor(calls.clone())
                .build(),
        );
        let prefix = format!("{test}-{:08x}", rand::random::<u32>());
        let tables = TableNames::new(format!("{prefix}-connections"), format!("{prefix}-rooms"));
        let store = DynamoStore::new(client.clone(), tables.clone()).with_page_size(page_size);
        store.create_tables().await.unwrap();
        calls.take();
        Some(Self {
            store,
            client,
            calls,
            tables,
            prefix,
        })
    }

    /// Best effort: moto keeps tables as long as it runs.
    async fn drop_tables(self) {
        for table in [&self.tables.connections, &self.tables.rooms] {
            let _ = self.client.delete_table().table_name(table).send().await;
        }
    }
}

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    conformance::run_all(&MemoryStore::new(), "mem").await;
}

#[tokio::test]
async fn dynamo_store_passes_the_conformance_suite() {
    let Some(fx) = Fixture::new("conformance").await else {
        return;
    };
    conformance::run_all(&fx.store, &fx.prefix).await;
    // Twice on the same tables: the suite cleans up after itself.
    conformance::run_all(&fx.store, &format!("{}-again", fx.prefix)).await;
    fx.drop_tables().await;
}

#[tokio::test]
async fn dynamo_store_passes_the_conformance_suite_with_tiny_pages() {
    let Some(fx) = Fixture::with_page_size("conformance-paged", 2).await else {
        return;
    };
    conformance::run_all(&fx.store, &fx.prefix).await;
    fx.drop_tables().await;
}

#[tokio::test]
async fn remove_finds_the_item_through_the_connection_index() {
    let Some(fx) = Fixture::new("gsi-remove").await else {
        return;
    };
    let t0 = now_millis();
    let first = record("gsi-1=", "erin", t0);
    let second = record("gsi-2=", "erin", t0 + 5);
    ok(fx.store.put_connection(&first).await, "put");
    ok(fx.store.put_connection(&second).await, "put");
    fx.calls.take();

    let removed = ok(fx.store.remove_connection("gsi-2=").await, "remove");
    assert_eq!(removed, Some(second.clone()));
    let calls = fx.calls.take();
    let index = fx.tables.connections_index();
    assert!(
        calls
            .iter()
            .any(|c| c.operation == "Query" && c.index.as_deref() == Some(index.as_str())),
        "remove_connection queried {index}: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.operation == "Query" && c.index == Some(fx.tables.rooms_index())),
        "remove_connection queried the rooms index: {calls:?}"
    );

    // The base table item (username, sessionKey) is gone; the user's other one is not.
    let raw = |r: &switchboard_core::backend::ConnectionRecord| {
        fx.client
            .get_item()
            .table_name(&fx.tables.connections)
            .key(attr::USERNAME, AttributeValue::S(r.username.clone()))
            .key(attr::SESSION_KEY, AttributeValue::S(r.session_key.clone()))
            .consistent_read(true)
            .send()
    };
    assert!(raw(&second).await.unwrap().item.is_none());
    let kept = raw(&first).await.unwrap().item.unwrap();
    assert_eq!(
        kept.get(attr::CONNECTION_ID),
        Some(&AttributeValue::S("gsi-1=".into()))
    );
    assert_eq!(
        ok(fx.store.get_connection("gsi-1=").await, "get"),
        Some(first)
    );
    fx.drop_tables().await;
}

#[tokio::test]
async fn pagination_past_one_page() {
    let Some(fx) = Fixture::with_page_size("paging", 3).await else {
        return;
    };
    let s = &fx.store;
    let t0 = now_millis();

    // Exactly one page's worth: the last page comes back with a LastEvaluatedKey that
    // leads to an empty page.
    let trio: Vec<_> = (0..3)
        .map(|i| record(&format!("trio-{i}="), "trio", t0 + i))
        .collect();
    for r in &trio {
        ok(s.put_connection(r).await, "put");
    }
    assert_eq!(
        ok(s.user_connections("trio").await, "user_connections"),
        trio
    );

    // 30 sessions of one user: 10+ pages.
    let many: Vec<_> = (0..30)
        .map(|i| record(&format!("many-{i:02}="), "many", t0 + 100 + i))
        .collect();
    for r in &many {
        ok(s.put_connection(r).await, "put");
    }
    fx.calls.take();
    let got = ok(s.user_connections("many").await, "user_connections");
    assert_eq!(
        got, many,
        "ordered by session key, nothing lost between pages"
    );
    let pages = fx.calls.take().len();
    assert!(pages >= 10, "30 items in pages of 3 took {pages} calls");

    let listed = ok(s.list_connections().await, "list_connections");
    assert_eq!(listed.len(), 33);
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].connection_id < w[1].connection_id)
    );
    assert!(fx.calls.take().len() >= 11);
    let ids = ok(s.connection_ids().await, "connection_ids");
    assert_eq!(ids.len(), 33);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        33,
        "no duplicates across pages"
    );

    // 30 members in one room, one connection in 30 rooms.
    let members: Vec<Member> = (0..30)
        .rev()
        .map(|i| member(&format!("m-{i:02}="), &format!("user-{i}")))
        .collect();
    for m in &members {
        assert!(ok(s.join_room("crowd", m).await, "join"));
    }
    let mut expected = members.clone();
    expected.sort();
    assert_eq!(ok(s.room_members("crowd").await, "room_members"), expected);

    let hopper = member("many-00=", "many");
    let rooms: Vec<String> = (0..30).map(|i| format!("room-{i:02}")).collect();
    for room in rooms.iter().rev() {
        assert!(ok(s.join_room(room, &hopper).await, "join"));
    }
    assert_eq!(ok(s.rooms_of("many-00=").await, "rooms_of"), rooms);

    let summaries = ok(s.rooms().await, "rooms");
    assert_eq!(summaries.len(), 31);
    assert_eq!(
        summaries[0],
        RoomSummary {
            room: "crowd".into(),
            members: 30
        }
    );
    assert!(summaries[1..].iter().all(|r| r.members == 1));

    // Removal pages through the rooms index and deletes all 30 memberships.
    fx.calls.take();
    assert!(ok(s.remove_connection("many-00=").await, "remove").is_some());
    let calls = fx.calls.take();
    let batches: Vec<usize> = calls
        .iter()
        .filter(|c| c.operation == "BatchWriteItem")
        .map(|c| c.batch)
        .collect();
    assert_eq!(batches, vec![25, 5], "{calls:?}");
    assert!(ok(s.rooms_of("many-00=").await, "rooms_of").is_empty());
    assert_eq!(ok(s.rooms().await, "rooms").len(), 1);
    fx.drop_tables().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_writes_have_one_winner() {
    let Some(fx) = Fixture::new("races").await else {
        return;
    };
    let store = Arc::new(fx.store.clone());

    let joiner = member("race-1=", "rita");
    let joins: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            let joiner = joiner.clone();
            tokio::spawn(async move { store.join_room("arena", &joiner).await })
        })
        .collect();
    let mut joined = 0;
    for j in joins {
        if ok(j.await.unwrap(), "join") {
            joined += 1;
        }
    }
    assert_eq!(joined, 1, "exactly one concurrent join_room answers true");
    assert_eq!(
        ok(store.room_members("arena").await, "room_members"),
        vec![joiner]
    );

    let rec = record("race-2=", "rita", now_millis());
    let puts: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            let rec = rec.clone();
            tokio::spawn(async move { store.put_connection(&rec).await })
        })
        .collect();
    let (mut won, mut conflicts) = (0, 0);
    for p in puts {
        match p.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(
        (won, conflicts),
        (1, 19),
        "exactly one concurrent put_connection succeeds"
    );
    fx.drop_tables().await;
}

#[tokio::test]
async fn ttl_attributes_and_table_settings() {
    let Some(fx) = Fixture::new("settings").await else {
        return;
    };
    let rec = record("ttl-1=", "tess", now_millis());
    ok(fx.store.put_connection(&rec).await, "put");
    let item = fx
        .client
        .get_item()
        .table_name(&fx.tables.connections)
        .key(attr::USERNAME, AttributeValue::S(rec.username.clone()))
        .key(
            attr::SESSION_KEY,
            AttributeValue::S(rec.session_key.clone()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        item.get(attr::EXPIRES),
        Some(&AttributeValue::N(rec.expires.to_string())),
        "the record's expires is the TTL attribute"
    );
    assert_eq!(
        item.get(attr::CONNECTED_AT),
        Some(&AttributeValue::N(rec.connected_at.to_string()))
    );
    assert_eq!(
        item.get(attr::CLAIMS),
        Some(&AttributeValue::S("{}".into()))
    );

    let before = chrono::Utc::now().timestamp();
    assert!(ok(
        fx.store
            .join_room("ttl-room", &member("ttl-1=", "tess"))
            .await,
        "join"
    ));
    let after = chrono::Utc::now().timestamp();
    let membership = fx
        .client
        .get_item()
        .table_name(&fx.tables.rooms)
        .key(attr::ROOM, AttributeValue::S("ttl-room".into()))
        .key(attr::CONNECTION_ID, AttributeValue::S("ttl-1=".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expires: i64 = match membership.get(attr::EXPIRES) {
        Some(AttributeValue::N(n)) => n.parse().unwrap(),
        other => panic!("membership expires: {other:?}"),
    };
    let ttl = MAX_CONNECTION_AGE_SECS + RECORD_TTL_MARGIN_SECS;
    assert!(
        (before + ttl..=after + ttl).contains(&expires),
        "membership expires {expires} is join time + {ttl}s"
    );
    assert!(expires >= rec.expires, "never before the connection's own");

    for (table, index, range) in [
        (&fx.tables.connections, fx.tables.connections_index(), None),
        (&fx.tables.rooms, fx.tables.rooms_index(), Some(attr::ROOM)),
    ] {
        let ttl = fx
            .client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        assert_eq!(ttl.time_to_live_status, Some(TimeToLiveStatus::Enabled));
        assert_eq!(ttl.attribute_name.as_deref(), Some(attr::EXPIRES));

        let desc = fx
            .client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        assert_eq!(
            desc.sse_description.and_then(|s| s.status),
            Some(SseStatus::Enabled),
            "{table}: server-side encryption"
        );
        assert_eq!(
            desc.billing_mode_summary.and_then(|b| b.billing_mode),
            Some(BillingMode::PayPerRequest),
            "{table}: on-demand"
        );
        let gsis = desc.global_secondary_indexes.unwrap_or_default();
        assert_eq!(gsis.len(), 1, "{table}: one GSI");
        let gsi = &gsis[0];
        assert_eq!(gsi.index_name.as_deref(), Some(index.as_str()));
        assert!(index.ends_with(CONNECTION_INDEX_SUFFIX));
        let keys: Vec<(String, KeyType)> = gsi
            .key_schema
            .iter()
            .flatten()
            .map(|k| (k.attribute_name.clone(), k.key_type.clone()))
            .collect();
        let mut expected = vec![(attr::CONNECTION_ID.to_owned(), KeyType::Hash)];
        if let Some(range) = range {
            expected.push((range.to_owned(), KeyType::Range));
        }
        assert_eq!(keys, expected, "{table}: GSI keys");
        assert_eq!(
            gsi.projection
                .as_ref()
                .and_then(|p| p.projection_type.clone()),
            Some(ProjectionType::All)
        );
    }

    // Idempotent.
    fx.store.create_tables().await.unwrap();
    fx.drop_tables().await;
}

#[tokio::test]
async fn removal_batch_deletes_sixty_memberships() {
    let Some(fx) = Fixture::new("batch").await else {
        return;
    };
    let rec = record("batch-1=", "bart", now_millis());
    ok(fx.store.put_connection(&rec).await, "put");
    let m = member("batch-1=", "bart");
    let other = member("batch-2=", "lisa");
    for i in 0..60 {
        assert!(ok(
            fx.store.join_room(&format!("r{i:02}"), &m).await,
            "join"
        ));
    }
    assert!(ok(fx.store.join_room("r00", &other).await, "join"));
    fx.calls.take();

    assert_eq!(
        ok(fx.store.remove_connection("batch-1=").await, "remove"),
        Some(rec)
    );
    let calls = fx.calls.take();
    let batches: Vec<usize> = calls
        .iter()
        .filter(|c| c.operation == "BatchWriteItem")
        .map(|c| c.batch)
        .collect();
    assert_eq!(batches, vec![25, 25, 10], "chunks of {BATCH_WRITE_LIMIT}");
    assert!(
        calls.len() <= 3 + 60_usize.div_ceil(BATCH_WRITE_LIMIT),
        "{} calls: {calls:?}",
        calls.len()
    );
    assert!(ok(fx.store.rooms_of("batch-1=").await, "rooms_of").is_empty());
    assert_eq!(
        ok(fx.store.rooms().await, "rooms"),
        vec![RoomSummary {
            room: "r00".into(),
            members: 1
        }]
    );
    assert_eq!(
        ok(fx.store.room_members("r00").await, "room_members"),
        vec![other]
    );
    fx.drop_tables().await;
}

#[tokio::test]
async fn calls_per_operation() {
    let Some(fx) = Fixture::new("calls").await else {
        return;
    };
    let s = &fx.store;
    let c = &fx.calls;
    let mut table: BTreeMap<&str, usize> = BTreeMap::new();
    let t0 = now_millis();
    let a = record("calls-a=", "cal", t0);
    let b = record("calls-b=", "cal", t0 + 1);

    ok(s.put_connection(&a).await, "put");
    assert_eq!(c.ops(), strs(&["PutItem"]), "put_connection");
    assert!(s.put_connection(&a).await.is_err());
    assert_eq!(c.ops(), strs(&["PutItem"]), "put_connection (conflict)");
    ok(s.put_connection(&b).await, "put");
    c.take();
    table.insert("put_connection", 1);

    assert!(ok(s.get_connection("calls-a=").await, "get").is_some());
    assert_eq!(c.ops(), strs(&["Query"]), "get_connection");
    assert!(ok(s.get_connection("calls-none=").await, "get").is_none());
    assert_eq!(c.ops(), strs(&["Query"]), "get_connection (absent)");
    table.insert("get_connection", 1);

    assert!(ok(
        s.join_room("lobby", &member("calls-a=", "cal")).await,
        "join"
    ));
    assert_eq!(c.ops(), strs(&["PutItem"]), "join_room");
    assert!(!ok(
        s.join_room("lobby", &member("calls-a=", "cal")).await,
        "join"
    ));
    assert_eq!(c.ops(), strs(&["PutItem"]), "join_room (again)");
    table.insert("join_room", 1);

    assert!(ok(s.leave_room("lobby", "calls-a=").await, "leave"));
    assert_eq!(c.ops(), strs(&["DeleteItem"]), "leave_room");
    assert!(!ok(s.leave_room("lobby", "calls-a=").await, "leave"));
    assert_eq!(c.ops(), strs(&["DeleteItem"]), "leave_room (absent)");
    table.insert("leave_room", 1);

    ok(
        s.join_room("lobby", &member("calls-b=", "cal")).await,
        "join",
    );
    c.take();
    for (name, ops) in [
        ("user_connections", "Query"),
        ("list_connections", "Scan"),
        ("connection_ids", "Scan"),
        ("room_members", "Query"),
        ("rooms_of", "Query"),
        ("rooms", "Scan"),
    ] {
        match name {
            "user_connections" => assert_eq!(ok(s.user_connections("cal").await, name).len(), 2),
            "list_connections" => assert_eq!(ok(s.list_connections().await, name).len(), 2),
            "connection_ids" => assert_eq!(ok(s.connection_ids().await, name).len(), 2),
            "room_members" => assert_eq!(ok(s.room_members("lobby").await, name).len(), 1),
            "rooms_of" => assert_eq!(ok(s.rooms_of("calls-b=").await, name).len(), 1),
            _ => assert_eq!(ok(s.rooms().await, name).len(), 1),
        }
        assert_eq!(c.ops(), strs(&[ops]), "{name}: one page");
        table.insert(name, 1);
    }

    // No rooms: connection GSI query + delete + rooms GSI query.
    assert!(ok(s.remove_connection("calls-a=").await, "remove").is_some());
    assert_eq!(
        c.ops(),
        strs(&["DeleteItem", "Query", "Query"]),
        "remove_connection without rooms"
    );
    table.insert("remove_connection (no rooms)", 3);

    // In one room: + one BatchWriteItem.
    assert!(ok(s.remove_connection("calls-b=").await, "remove").is_some());
    assert_eq!(
        c.ops(),
        strs(&["BatchWriteItem", "DeleteItem", "Query", "Query"]),
        "remove_connection in one room"
    );

    // Unknown connection: nothing to delete.
    assert!(ok(s.remove_connection("calls-none=").await, "remove").is_none());
    assert_eq!(
        c.ops(),
        strs(&["Query", "Query"]),
        "remove_connection (unknown)"
    );

    eprintln!("DynamoDB calls per operation (one page): {table:#?}");
    fx.drop_tables().await;
}

#[tokio::test]
async fn malformed_items_are_errors_naming_the_attribute() {
    let Some(fx) = Fixture::new("malformed").await else {
        return;
    };
    fx.client
        .put_item()
        .table_name(&fx.tables.connections)
        .item(attr::USERNAME, AttributeValue::S("mal".into()))
        .item(attr::SESSION_KEY, AttributeValue::S("1#bad=".into()))
        .item(attr::CONNECTION_ID, AttributeValue::S("bad=".into()))
        // Live (reads skip expired items): the missing `connectedAt` is the fault.
        .item(attr::EXPIRES, AttributeValue::N("4000000000".into()))
        .send()
        .await
        .unwrap();
    for result in [
        fx.store.get_connection("bad=").await.map(|_| ()),
        fx.store.user_connections("mal").await.map(|_| ()),
        fx.store.list_connections().await.map(|_| ()),
    ] {
        match result {
            Err(StoreError::Backend { message, .. }) => {
                assert!(message.contains("`connectedAt` is missing"), "{message}");
            }
            other => panic!("expected a Backend error, got {other:?}"),
        }
    }
    // Its keys are intact: removal deletes it, then reports the malformed record.
    match fx.store.remove_connection("bad=").await {
        Err(StoreError::Backend { message, .. }) => assert!(message.contains("connectedAt")),
        other => panic!("expected a Backend error, got {other:?}"),
    }
    assert!(ok(fx.store.connection_ids().await, "connection_ids").is_empty());

    fx.client
        .put_item()
        .table_name(&fx.tables.rooms)
        .item(attr::ROOM, AttributeValue::S("broken".into()))
        .item(attr::CONNECTION_ID, AttributeValue::S("x=".into()))
        .item(attr::USERNAME, AttributeValue::N("7".into()))
        .send()
        .await
        .unwrap();
    match fx.store.room_members("broken").await {
        Err(StoreError::Backend { operation, message }) => {
            assert_eq!(operation, "room_members");
            assert!(message.contains("`username` is N, expected S"), "{message}");
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }
    fx.drop_tables().await;
}

#[tokio::test]
async fn missing_tables_are_backend_errors() {
    let Some(endpoint) = moto_endpoint("missing-tables") else {
        return;
    };
    let store = DynamoStore::from_settings(
        &AwsSettings::local(endpoint),
        TableNames::for_app("no-such-app", &format!("{:08x}", rand::random::<u32>())),
    );
    match store.get_connection("x=").await {
        Err(StoreError::Backend { operation, message }) => {
            assert_eq!(operation, "get_connection");
            assert!(message.contains("ResourceNotFoundException"), "{message}");
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }
    match store.join_room("r", &member("x=", "u")).await {
        Err(StoreError::Backend { operation, .. }) => assert_eq!(operation, "join_room"),
        other => panic!("expected a Backend error, got {other:?}"),
    }
}

/// Records and memberships whose `expires` passed (TTL deletion lags by days) are
/// skipped by the reads a fan-out uses, on DynamoDB and the embedded store alike.
#[tokio::test]
async fn reads_skip_records_whose_expires_passed() {
    let memory = MemoryStore::new();
    expired_fixture(&memory).await;
    assert_eq!(ok(memory.connection_ids().await, "ids"), strs(&["live-1="]));
    assert_eq!(
        ok(memory.user_connections("tess").await, "user").len(),
        1,
        "only the live one"
    );
    let Some(fx) = Fixture::new("expired").await else {
        return;
    };
    expired_fixture(&fx.store).await;
    // A membership past its TTL, written as DynamoDB keeps it until the TTL sweep.
    let past = chrono::Utc::now().timestamp() - 60;
    fx.client
        .put_item()
        .table_name(&fx.tables.rooms)
        .item(attr::ROOM, AttributeValue::S("r".into()))
        .item(attr::CONNECTION_ID, AttributeValue::S("dead-1=".into()))
        .item(attr::USERNAME, AttributeValue::S("tess".into()))
        .item(attr::EXPIRES, AttributeValue::N(past.to_string()))
        .send()
        .await
        .unwrap();
    ok(
        fx.store.join_room("r", &member("live-1=", "tess")).await,
        "join",
    );
    let ids = ok(fx.store.connection_ids().await, "ids");
    assert_eq!(ids, strs(&["live-1="]));
    let mine = ok(fx.store.user_connections("tess").await, "user");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].connection_id, "live-1=");
    let members = ok(fx.store.room_members("r").await, "members");
    assert_eq!(members, vec![member("live-1=", "tess")]);
    fx.drop_tables().await;
}

/// One live connection and one whose `expires` passed a minute ago, both of `tess`.
async fn expired_fixture(store: &dyn ConnectionStore) {
    let now = now_millis();
    ok(
        store.put_connection(&record("live-1=", "tess", now)).await,
        "put live",
    );
    let mut dead = record("dead-1=", "tess", now - 1000);
    dead.expires = now / 1000 - 60;
    ok(store.put_connection(&dead).await, "put dead");
}

// ---- paged reads of a sharded fan-out ----

/// Every page of a room's members at `limit` per page: the ids in order and the
/// number of pages read. Fails if a page is longer than `limit`.
async fn room_pages(store: &dyn ConnectionStore, room: &str, limit: usize) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut after) = (Vec::new(), 0, None::<String>);
    loop {
        let page = ok(
            store.room_member_page(room, after.as_deref(), limit).await,
            "room page",
        );
        pages += 1;
        assert!(
            page.ids.len() <= limit,
            "page of {} > {limit}",
            page.ids.len()
        );
        ids.extend(page.ids);
        match page.next {
            Some(next) => after = Some(next),
            None => return (ids, pages),
        }
        assert!(pages < 1000, "paging does not end");
    }
}

/// Every id of every segment of a `segments`-way scan at `limit` per page, segment by
/// segment.
async fn scan_pages(store: &dyn ConnectionStore, segments: u32, limit: usize) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for segment in 0..segments {
        let (mut ids, mut after, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let page = ok(
                store
                    .connection_id_page(segment, segments, after.as_deref(), limit)
                    .await,
                "scan page",
            );
            assert!(page.ids.len() <= limit);
            ids.extend(page.ids);
            pages += 1;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
            assert!(pages < 1000, "paging does not end");
        }
        all.push(ids);
    }
    all
}

/// Rooms of page size - 1, = and + 1 members read in pages of 4: every member once, in
/// order. `exact`: the store knows a page is the last (the embedded store); DynamoDB
/// may answer one more, empty page after a full one.
async fn paging_boundaries(store: &dyn ConnectionStore, exact: bool) {
    const PAGE: usize = 4;
    for n in [PAGE - 1, PAGE, PAGE + 1] {
        let room = format!("page-{n}");
        let want: Vec<String> = (0..n).map(|i| format!("m{i:02}=")).collect();
        for id in want.iter().rev() {
            ok(store.join_room(&room, &member(id, "u")).await, "join");
        }
        let (got, pages) = room_pages(store, &room, PAGE).await;
        assert_eq!(got, want, "room of {n}");
        if exact {
            assert_eq!(pages, n.div_ceil(PAGE), "pages for {n}");
        } else {
            assert!((n.div_ceil(PAGE)..=n.div_ceil(PAGE) + 1).contains(&pages));
        }
    }
    let (empty, _) = room_pages(store, "page-none", PAGE).await;
    assert!(empty.is_empty());
}

/// 23 live connections and one expired: a 4-way scan in pages of 3 covers every live
/// id exactly once and skips the expired one.
async fn segments_cover_once(store: &dyn ConnectionStore) {
    let now = now_millis();
    let mut want = BTreeSet::new();
    for i in 0..23 {
        let id = format!("seg-{i:02}=");
        ok(
            store
                .put_connection(&record(&id, &format!("u{i}"), now))
                .await,
            "put",
        );
        want.insert(id);
    }
    let mut dead = record("seg-dead=", "ghost", now - 1000);
    dead.expires = now / 1000 - 60;
    ok(store.put_connection(&dead).await, "put dead");
    let segments = scan_pages(store, 4, 3).await;
    let mut seen = BTreeSet::new();
    for ids in &segments {
        for id in ids {
            assert!(seen.insert(id.clone()), "{id} in two segments or pages");
        }
    }
    assert_eq!(seen, want, "every live connection, the expired one skipped");
}

#[tokio::test]
async fn paged_reads_on_the_embedded_store() {
    let memory = MemoryStore::new();
    paging_boundaries(&memory, true).await;
    segments_cover_once(&memory).await;
    // The embedded store spreads ids over segments: more than one is used.
    let used = scan_pages(&memory, 4, 100)
        .await
        .iter()
        .filter(|ids| !ids.is_empty())
        .count();
    assert!(used > 1, "segments used: {used}");
}

#[tokio::test]
async fn paged_reads_on_dynamodb() {
    let Some(fx) = Fixture::new("paged-reads").await else {
        return;
    };
    paging_boundaries(&fx.store, false).await;
    segments_cover_once(&fx.store).await;
    // A membership past its TTL, as DynamoDB keeps it until the sweep: not in a page.
    let past = chrono::Utc::now().timestamp() - 60;
    fx.client
        .put_item()
        .table_name(&fx.tables.rooms)
        .item(attr::ROOM, AttributeValue::S("page-4".into()))
        .item(attr::CONNECTION_ID, AttributeValue::S("m00-dead=".into()))
        .item(attr::USERNAME, AttributeValue::S("ghost".into()))
        .item(attr::EXPIRES, AttributeValue::N(past.to_string()))
        .send()
        .await
        .unwrap();
    let (ids, _) = room_pages(&fx.store, "page-4", 2).await;
    assert_eq!(ids, strs(&["m00=", "m01=", "m02=", "m03="]));
    // A cursor that is not one of ours is an error, not a panic.
    let bad = fx.store.connection_id_page(0, 4, Some("not json"), 3).await;
    assert!(matches!(bad, Err(StoreError::Backend { .. })), "{bad:?}");
    fx.drop_tables().await;
}

/// Frames stored by reference live in the rooms table under a reserved partition: they
/// round-trip (text and binary), a missing key is `None`, and `rooms()` does not list
/// them as a room.
#[tokio::test]
async fn fanout_frames_by_reference_in_the_rooms_table() {
    use switchboard_aws::fanout::DynamoFrames;
    use switchboard_core::fanout::FrameStore;
    use switchboard_core::response::Frame;
    let Some(fx) = Fixture::new("frames").await else {
        return;
    };
    let frames = DynamoFrames::new(fx.client.clone(), fx.tables.rooms.clone());
    let ttl = std::time::Duration::from_secs(60);
    let text = Frame::text(format!(r#"{{"data":"{}"}}"#, "\\\"".repeat(60 * 1024)));
    let binary = Frame::binary(vec![0u8, 159, 146, 150, 255]);
    frames.put("send-1-frame", &text, ttl).await.unwrap();
    frames.put("send-2-frame", &binary, ttl).await.unwrap();
    assert_eq!(frames.get("send-1-frame").await.unwrap(), Some(text));
    assert_eq!(frames.get("send-2-frame").await.unwrap(), Some(binary));
    assert_eq!(frames.get("never-stored").await.unwrap(), None);
    ok(
        fx.store.join_room("lobby", &member("a=", "ann")).await,
        "join",
    );
    let rooms = ok(fx.store.rooms().await, "rooms");
    assert_eq!(
        rooms,
        vec![RoomSummary {
            room: "lobby".into(),
            members: 1
        }]
    );
    fx.drop_tables().await;
}
