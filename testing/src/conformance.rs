//! A conformance suite for [`ConnectionStore`] implementations: the semantics of the
//! [`MemoryStore`](switchboard_core::backend::memory::MemoryStore), checked with `assert!`s.
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_store_conforms() {
//!     switchboard_testing::conformance::run_all(&MyStore::new(), "my-store").await;
//! }
//! ```
//!
//! Every connection id, user and room a check creates starts with the `prefix` it is
//! given (plus a per-check part), and checks of the whole store (`list_connections`,
//! `connection_ids`, `rooms`) look only at names with that prefix: runs with distinct
//! prefixes can share a store. Each check removes what it created.
//!
//! Not public API: its checks change when the contract does.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use switchboard_core::backend::{
    ConnectionRecord, ConnectionStore, Member, RoomSummary, StoreError,
};
use switchboard_core::names::limits::{MAX_CONNECTION_AGE_SECS, RECORD_TTL_MARGIN_SECS};

/// Runs every check, each under its own extension of `prefix`.
pub async fn run_all(store: &dyn ConnectionStore, prefix: &str) {
    connections(store, &format!("{prefix}.conn.")).await;
    several_connections_per_user(store, &format!("{prefix}.user.")).await;
    duplicate_put_conflicts(store, &format!("{prefix}.dup.")).await;
    rooms(store, &format!("{prefix}.rooms.")).await;
    remove_cleans_rooms(store, &format!("{prefix}.clean.")).await;
    remove_record_by_key(store, &format!("{prefix}.key.")).await;
}

/// `remove_record` removes exactly the given record and its memberships, and leaves the
/// user's other connections alone.
pub async fn remove_record_by_key(store: &dyn ConnectionStore, p: &str) {
    let user = format!("{p}carol");
    // Live records: reads skip those whose `expires` passed.
    let t0 = now_millis();
    let a = record(&format!("{p}a="), &user, t0);
    let b = record(&format!("{p}b="), &user, t0 + 1_000);
    let room = format!("{p}room");
    for r in [&a, &b] {
        ok(store.put_connection(r).await, "put");
        let joined = ok(
            store
                .join_room(&room, &member(&r.connection_id, &user))
                .await,
            "join",
        );
        assert!(joined);
    }
    ok(store.remove_record(&a).await, "remove_record");
    assert!(ok(store.get_connection(&a.connection_id).await, "get").is_none());
    assert!(ok(store.rooms_of(&a.connection_id).await, "rooms_of").is_empty());
    assert_eq!(
        ok(store.room_members(&room).await, "members"),
        vec![member(&b.connection_id, &user)]
    );
    assert_eq!(
        ids_of(&ok(store.user_connections(&user).await, "user")),
        vec![b.connection_id.as_str()]
    );
    ok(store.remove_connection(&b.connection_id).await, "cleanup");
}

/// A record as `$connect` writes it: session key from the start time and id, `expires`
/// the start + the maximum connection age + the margin.
pub fn record(connection_id: &str, username: &str, connected_at: i64) -> ConnectionRecord {
    ConnectionRecord {
        connection_id: connection_id.to_owned(),
        username: username.to_owned(),
        session_key: ConnectionRecord::session_key_for(connected_at, connection_id),
        connected_at,
        expires: connected_at / 1000 + MAX_CONNECTION_AGE_SECS + RECORD_TTL_MARGIN_SECS,
        source_ip: None,
        user_agent: None,
        claims: Map::new(),
    }
}

/// A member.
pub fn member(connection_id: &str, username: &str) -> Member {
    Member {
        connection_id: connection_id.to_owned(),
        username: username.to_owned(),
    }
}

/// Now, epoch milliseconds.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The value of a store call, or a panic naming the call.
#[track_caller]
pub fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error: {e}"),
    }
}

fn ids_of(records: &[ConnectionRecord]) -> Vec<&str> {
    records.iter().map(|r| r.connection_id.as_str()).collect()
}

fn sorted_by_id(mut records: Vec<ConnectionRecord>) -> Vec<ConnectionRecord> {
    records.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
    records
}

async fn rooms_with_prefix(store: &dyn ConnectionStore, prefix: &str) -> Vec<RoomSummary> {
    ok(store.rooms().await, "rooms")
        .into_iter()
        .filter(|r| r.room.starts_with(prefix))
        .collect()
}

fn summary(room: &str, members: usize) -> RoomSummary {
    RoomSummary {
        room: room.to_owned(),
        members,
    }
}

/// Put, get (every field round-trips), per-user and whole-store listings, removal.
pub async fn connections(store: &dyn ConnectionStore, p: &str) {
    let t0 = now_millis();
    let alice = format!("{p}alice");
    let bob = format!("{p}bob");
    let mut a1 = record(&format!("{p}a1="), &alice, t0);
    a1.source_ip = Some("192.0.2.10".into());
    a1.user_agent = Some("conformance/1.0 (é)".into());
    let mut claims = Map::new();
    claims.insert("username".into(), Value::from(alice.clone()));
    claims.insert("groups".into(), json!(["admin", "ops"]));
    claims.insert(
        "n".into(),
        json!({"int": 42, "float": 2.5, "null": null, "t": true}),
    );
    a1.claims = claims;
    let a2 = record(&format!("{p}a2="), &alice, t0 + 1_000);
    let b1 = record(&format!("{p}b1="), &bob, t0 + 2_000);

    for r in [&a1, &a2, &b1] {
        ok(store.put_connection(r).await, "put_connection");
    }

    assert_eq!(
        ok(store.get_connection(&a1.connection_id).await, "get"),
        Some(a1.clone()),
        "get_connection returns the record as written (claims, optional fields)"
    );
    assert_eq!(
        ok(store.get_connection(&b1.connection_id).await, "get"),
        Some(b1.clone())
    );
    assert_eq!(
        ok(store.get_connection(&format!("{p}nobody=")).await, "get"),
        None,
        "an unknown connection id has no record"
    );

    let of_alice = sorted_by_id(ok(store.user_connections(&alice).await, "user_connections"));
    assert_eq!(of_alice, vec![a1.clone(), a2.clone()]);
    assert_eq!(
        ok(store.user_connections(&bob).await, "user_connections"),
        vec![b1.clone()]
    );
    assert!(
        ok(
            store.user_connections(&format!("{p}nobody")).await,
            "user_connections"
        )
        .is_empty()
    );

    let listed: Vec<ConnectionRecord> = ok(store.list_connections().await, "list_connections")
        .into_iter()
        .filter(|r| r.connection_id.starts_with(p))
        .collect();
    assert_eq!(
        listed,
        vec![a1.clone(), a2.clone(), b1.clone()],
        "list_connections holds every record, ordered by connection id"
    );

    let ids: BTreeSet<String> = ok(store.connection_ids().await, "connection_ids")
        .into_iter()
        .filter(|id| id.starts_with(p))
        .collect();
    let expected: BTreeSet<String> = [&a1, &a2, &b1]
        .iter()
        .map(|r| r.connection_id.clone())
        .collect();
    assert_eq!(ids, expected, "connection_ids holds every connection id");

    assert_eq!(
        ok(store.remove_connection(&a2.connection_id).await, "remove"),
        Some(a2.clone()),
        "remove_connection returns the removed record"
    );
    assert_eq!(
        ok(store.get_connection(&a2.connection_id).await, "get"),
        None
    );
    assert_eq!(
        ok(store.remove_connection(&a2.connection_id).await, "remove"),
        None,
        "removing twice finds nothing the second time"
    );
    assert_eq!(
        ids_of(&ok(
            store.user_connections(&alice).await,
            "user_connections"
        )),
        vec![a1.connection_id.as_str()]
    );
    assert!(
        !ok(store.connection_ids().await, "connection_ids").contains(&a2.connection_id),
        "a removed connection is not listed"
    );

    for r in [&a1, &b1] {
        assert!(ok(store.remove_connection(&r.connection_id).await, "remove").is_some());
    }
    assert!(
        ok(store.list_connections().await, "list_connections")
            .iter()
            .all(|r| !r.connection_id.starts_with(p))
    );
}

/// One user, several sessions: each has its own record, removing one keeps the others.
pub async fn several_connections_per_user(store: &dyn ConnectionStore, p: &str) {
    let t0 = now_millis();
    let user = format!("{p}carol");
    let records: Vec<ConnectionRecord> = (0..3)
        .map(|i| record(&format!("{p}c{i}="), &user, t0 + i * 10))
        .collect();
    for r in &records {
        ok(store.put_connection(r).await, "put_connection");
    }
    let found = sorted_by_id(ok(store.user_connections(&user).await, "user_connections"));
    assert_eq!(found, records, "every session of the user is listed");
    let keys: BTreeSet<&str> = found.iter().map(|r| r.session_key.as_str()).collect();
    assert_eq!(keys.len(), 3, "sessions have distinct session keys");
    for r in &records {
        assert_eq!(
            ok(store.get_connection(&r.connection_id).await, "get"),
            Some(r.clone())
        );
    }

    ok(
        store.remove_connection(&records[1].connection_id).await,
        "remove",
    );
    let left = sorted_by_id(ok(store.user_connections(&user).await, "user_connections"));
    assert_eq!(left, vec![records[0].clone(), records[2].clone()]);

    for r in [&records[0], &records[2]] {
        ok(store.remove_connection(&r.connection_id).await, "remove");
    }
    assert!(ok(store.user_connections(&user).await, "user_connections").is_empty());
}

/// A second put of the same connection is a conflict and leaves the first record alone.
pub async fn duplicate_put_conflicts(store: &dyn ConnectionStore, p: &str) {
    let first = record(&format!("{p}d="), &format!("{p}dave"), now_millis());
    ok(store.put_connection(&first).await, "put_connection");
    let err = store.put_connection(&first).await;
    assert!(
        matches!(
            err,
            Err(StoreError::Conflict {
                operation: "put_connection",
                ..
            })
        ),
        "a duplicate put_connection is a Conflict, got {err:?}"
    );
    let mut changed = first.clone();
    changed.source_ip = Some("198.51.100.7".into());
    changed.expires += 60;
    assert!(
        matches!(
            store.put_connection(&changed).await,
            Err(StoreError::Conflict { .. })
        ),
        "a put of the same session with other fields is a Conflict"
    );
    assert_eq!(
        ok(store.get_connection(&first.connection_id).await, "get"),
        Some(first.clone()),
        "a refused put does not overwrite"
    );
    ok(
        store.remove_connection(&first.connection_id).await,
        "remove",
    );
    ok(store.put_connection(&first).await, "put after remove");
    ok(
        store.remove_connection(&first.connection_id).await,
        "remove",
    );
}

/// Join (idempotent), leave, members ordered by connection id, rooms of a connection
/// ordered by name, room counts, rooms vanish when empty.
pub async fn rooms(store: &dyn ConnectionStore, p: &str) {
    let lobby = format!("{p}lobby");
    // Byte order: 'Z' < 'a' < 'é'.
    let (upper, lower, accented) = (format!("{p}Zed"), format!("{p}alpha"), format!("{p}été"));
    let mc = member(&format!("{p}c="), &format!("{p}carol"));
    let ma = member(&format!("{p}a="), &format!("{p}alice"));
    let mb = member(&format!("{p}b="), &format!("{p}bob"));

    // The store does not require a recorded connection.
    assert!(ok(store.join_room(&lobby, &mc).await, "join"));
    assert!(ok(store.join_room(&lobby, &ma).await, "join"));
    assert!(
        !ok(store.join_room(&lobby, &ma).await, "join"),
        "joining twice answers false"
    );
    assert!(ok(store.join_room(&lobby, &mb).await, "join"));
    assert_eq!(
        ok(store.room_members(&lobby).await, "room_members"),
        vec![ma.clone(), mb.clone(), mc.clone()],
        "members are ordered by connection id"
    );

    for room in [&accented, &upper, &lower] {
        assert!(ok(store.join_room(room, &ma).await, "join"));
    }
    assert!(ok(store.join_room(&lower, &mb).await, "join"));
    assert_eq!(
        ok(store.rooms_of(&ma.connection_id).await, "rooms_of"),
        vec![
            upper.clone(),
            lower.clone(),
            lobby.clone(),
            accented.clone()
        ],
        "rooms_of is ordered by room name"
    );
    assert_eq!(
        ok(store.rooms_of(&mb.connection_id).await, "rooms_of"),
        vec![lower.clone(), lobby.clone()]
    );
    assert!(ok(store.rooms_of(&format!("{p}nobody=")).await, "rooms_of").is_empty());
    assert!(
        ok(
            store.room_members(&format!("{p}nowhere")).await,
            "room_members"
        )
        .is_empty()
    );
    assert_eq!(
        rooms_with_prefix(store, p).await,
        vec![
            summary(&upper, 1),
            summary(&lower, 2),
            summary(&lobby, 3),
            summary(&accented, 1)
        ],
        "rooms() counts members, ordered by name"
    );

    assert!(ok(
        store.leave_room(&lobby, &mb.connection_id).await,
        "leave"
    ));
    assert!(
        !ok(store.leave_room(&lobby, &mb.connection_id).await, "leave"),
        "leaving twice answers false"
    );
    assert!(!ok(
        store
            .leave_room(&format!("{p}nowhere"), &ma.connection_id)
            .await,
        "leave"
    ));
    assert!(!ok(
        store.leave_room(&lobby, &format!("{p}nobody=")).await,
        "leave"
    ));
    assert_eq!(
        ok(store.room_members(&lobby).await, "room_members"),
        vec![ma.clone(), mc.clone()]
    );
    assert_eq!(
        ok(store.rooms_of(&mb.connection_id).await, "rooms_of"),
        vec![lower.clone()]
    );

    assert!(ok(
        store.leave_room(&accented, &ma.connection_id).await,
        "leave"
    ));
    assert!(
        ok(store.room_members(&accented).await, "room_members").is_empty(),
        "the last member left"
    );
    assert_eq!(
        rooms_with_prefix(store, p).await,
        vec![summary(&upper, 1), summary(&lower, 2), summary(&lobby, 2)],
        "an empty room is not listed"
    );

    for (room, m) in [
        (&lobby, &ma),
        (&lobby, &mc),
        (&upper, &ma),
        (&lower, &ma),
        (&lower, &mb),
    ] {
        assert!(ok(store.leave_room(room, &m.connection_id).await, "leave"));
    }
    assert!(rooms_with_prefix(store, p).await.is_empty());
}

/// Removing a connection removes its memberships, recorded or not.
pub async fn remove_cleans_rooms(store: &dyn ConnectionStore, p: &str) {
    let t0 = now_millis();
    let a = record(&format!("{p}a="), &format!("{p}alice"), t0);
    let b = record(&format!("{p}b="), &format!("{p}bob"), t0 + 1);
    let (r1, r2, r3) = (format!("{p}r1"), format!("{p}r2"), format!("{p}r3"));
    ok(store.put_connection(&a).await, "put_connection");
    ok(store.put_connection(&b).await, "put_connection");
    let ma = member(&a.connection_id, &a.username);
    let mb = member(&b.connection_id, &b.username);
    for room in [&r1, &r2, &r3] {
        assert!(ok(store.join_room(room, &ma).await, "join"));
    }
    assert!(ok(store.join_room(&r1, &mb).await, "join"));

    assert_eq!(
        ok(store.remove_connection(&a.connection_id).await, "remove"),
        Some(a.clone())
    );
    assert!(
        ok(store.rooms_of(&a.connection_id).await, "rooms_of").is_empty(),
        "a removed connection is in no room"
    );
    assert_eq!(
        ok(store.room_members(&r1).await, "room_members"),
        vec![mb.clone()]
    );
    assert_eq!(
        rooms_with_prefix(store, p).await,
        vec![summary(&r1, 1)],
        "rooms only the removed connection was in are gone"
    );

    // A connection in a room without a record (e.g. gone before `$connect` finished).
    let ghost = member(&format!("{p}ghost="), &format!("{p}ghost"));
    assert!(ok(store.join_room(&r2, &ghost).await, "join"));
    assert_eq!(
        ok(
            store.remove_connection(&ghost.connection_id).await,
            "remove"
        ),
        None,
        "an unrecorded connection has no record to return"
    );
    assert!(
        ok(store.rooms_of(&ghost.connection_id).await, "rooms_of").is_empty(),
        "its memberships are removed all the same"
    );

    ok(store.remove_connection(&b.connection_id).await, "remove");
    assert!(rooms_with_prefix(store, p).await.is_empty());
    assert!(ok(store.get_connection(&b.connection_id).await, "get").is_none());
}
