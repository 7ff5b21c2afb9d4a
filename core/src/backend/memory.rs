//! The embedded connection store: in-process maps behind one lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::RwLock;

use async_trait::async_trait;

use super::{
    ConnectionRecord, ConnectionStore, IdPage, Member, RoomSummary, StoreError, scan_segment,
};

#[derive(Default)]
struct Inner {
    /// Ordered, so a fan-out's scan pages by connection id.
    connections: BTreeMap<String, ConnectionRecord>,
    by_user: HashMap<String, BTreeSet<String>>,
    rooms: BTreeMap<String, BTreeMap<String, String>>,
    rooms_of: HashMap<String, BTreeSet<String>>,
}

/// An in-process [`ConnectionStore`]: the default of the local gateway and of tests.
/// Nothing survives a restart (neither do the connections it describes).
#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters more than losing the store; recover the guard.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn leave(&mut self, room: &str, connection_id: &str) -> bool {
        let Some(members) = self.rooms.get_mut(room) else {
            return false;
        };
        let removed = members.remove(connection_id).is_some();
        if members.is_empty() {
            self.rooms.remove(room);
        }
        if let Some(rooms) = self.rooms_of.get_mut(connection_id) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.rooms_of.remove(connection_id);
            }
        }
        removed
    }
}

/// Up to `limit` (at least 1) ids of `rest` and, if more follow, the cursor after them.
fn page_from<'a>(rest: &mut impl Iterator<Item = &'a String>, limit: usize) -> IdPage {
    let ids: Vec<String> = rest.by_ref().take(limit.max(1)).cloned().collect();
    let next = match rest.next() {
        Some(_) => ids.last().cloned(),
        None => None,
    };
    IdPage { ids, next }
}

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn put_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        let mut inner = self.write();
        if inner.connections.contains_key(&record.connection_id) {
            return Err(StoreError::Conflict {
                operation: "put_connection",
                message: format!("connection {} is already recorded", record.connection_id),
            });
        }
        inner
            .by_user
            .entry(record.username.clone())
            .or_default()
            .insert(record.connection_id.clone());
        inner
            .connections
            .insert(record.connection_id.clone(), record.clone());
        Ok(())
    }

    async fn get_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        Ok(self.read().connections.get(connection_id).cloned())
    }

    async fn remove_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        let mut inner = self.write();
        let rooms: Vec<String> = inner
            .rooms_of
            .get(connection_id)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        for room in rooms {
            inner.leave(&room, connection_id);
        }
        let record = inner.connections.remove(connection_id);
        if let Some(record) = &record
            && let Some(ids) = inner.by_user.get_mut(&record.username)
        {
            ids.remove(connection_id);
            if ids.is_empty() {
                inner.by_user.remove(&record.username);
            }
        }
        Ok(record)
    }

    async fn user_connections(&self, username: &str) -> Result<Vec<ConnectionRecord>, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let inner = self.read();
        Ok(inner
            .by_user
            .get(username)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.connections.get(id).cloned())
            .filter(|r| r.expires > now)
            .collect())
    }

    async fn list_connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        let mut all: Vec<ConnectionRecord> = self.read().connections.values().cloned().collect();
        all.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        Ok(all)
    }

    async fn connection_ids(&self) -> Result<Vec<String>, StoreError> {
        // Records whose `expires` passed are skipped, as DynamoDB's reads skip them.
        let now = chrono::Utc::now().timestamp();
        Ok(self
            .read()
            .connections
            .values()
            .filter(|r| r.expires > now)
            .map(|r| r.connection_id.clone())
            .collect())
    }

    async fn join_room(&self, room: &str, member: &Member) -> Result<bool, StoreError> {
        let mut inner = self.write();
        let members = inner.rooms.entry(room.to_owned()).or_default();
        let added = !members.contains_key(&member.connection_id);
        if added {
            members.insert(member.connection_id.clone(), member.username.clone());
        }
        inner
            .rooms_of
            .entry(member.connection_id.clone())
            .or_default()
            .insert(room.to_owned());
        Ok(added)
    }

    async fn leave_room(&self, room: &str, connection_id: &str) -> Result<bool, StoreError> {
        Ok(self.write().leave(room, connection_id))
    }

    async fn room_members(&self, room: &str) -> Result<Vec<Member>, StoreError> {
        Ok(self
            .read()
            .rooms
            .get(room)
            .into_iter()
            .flatten()
            .map(|(id, user)| Member {
                connection_id: id.clone(),
                username: user.clone(),
            })
            .collect())
    }

    async fn room_member_page(
        &self,
        room: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<IdPage, StoreError> {
        let inner = self.read();
        let Some(members) = inner.rooms.get(room) else {
            return Ok(IdPage::default());
        };
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        let mut rest = members.range((start, Bound::Unbounded)).map(|(id, _)| id);
        Ok(page_from(&mut rest, limit))
    }

    async fn connection_id_page(
        &self,
        segment: u32,
        segments: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<IdPage, StoreError> {
        // Records whose `expires` passed are skipped, as DynamoDB's reads skip them.
        let now = chrono::Utc::now().timestamp();
        let inner = self.read();
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        let mut rest = inner
            .connections
            .range((start, Bound::Unbounded))
            .filter(|(id, r)| r.expires > now && scan_segment(id, segments) == segment)
            .map(|(id, _)| id);
        Ok(page_from(&mut rest, limit))
    }

    async fn rooms_of(&self, connection_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .read()
            .rooms_of
            .get(connection_id)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
        Ok(self
            .read()
            .rooms
            .iter()
            .map(|(room, members)| RoomSummary {
                room: room.clone(),
                members: members.len(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, user: &str) -> ConnectionRecord {
        ConnectionRecord {
            connection_id: id.to_owned(),
            username: user.to_owned(),
            session_key: ConnectionRecord::session_key_for(1, id),
            connected_at: 1,
            expires: 4_000_000_000,
            source_ip: None,
            user_agent: None,
            claims: Default::default(),
        }
    }

    fn member(id: &str, user: &str) -> Member {
        Member {
            connection_id: id.to_owned(),
            username: user.to_owned(),
        }
    }

    #[tokio::test]
    async fn connections_users_and_rooms() {
        let s = MemoryStore::new();
        s.put_connection(&record("a=", "alice")).await.unwrap();
        s.put_connection(&record("b=", "alice")).await.unwrap();
        s.put_connection(&record("c=", "bob")).await.unwrap();
        assert!(s.put_connection(&record("c=", "bob")).await.is_err());
        assert_eq!(s.user_connections("alice").await.unwrap().len(), 2);
        assert!(s.join_room("r", &member("a=", "alice")).await.unwrap());
        assert!(!s.join_room("r", &member("a=", "alice")).await.unwrap());
        assert!(s.join_room("r", &member("c=", "bob")).await.unwrap());
        assert!(s.join_room("q", &member("a=", "alice")).await.unwrap());
        assert_eq!(s.rooms_of("a=").await.unwrap(), vec!["q", "r"]);
        assert_eq!(s.room_members("r").await.unwrap().len(), 2);
        let removed = s.remove_connection("a=").await.unwrap();
        assert_eq!(removed.map(|r| r.username), Some("alice".to_owned()));
        assert_eq!(
            s.room_members("r").await.unwrap(),
            vec![member("c=", "bob")]
        );
        assert!(s.rooms_of("a=").await.unwrap().is_empty());
        assert_eq!(
            s.rooms().await.unwrap(),
            vec![RoomSummary {
                room: "r".into(),
                members: 1
            }]
        );
        assert_eq!(s.user_connections("alice").await.unwrap().len(), 1);
        assert!(s.leave_room("r", "c=").await.unwrap());
        assert!(!s.leave_room("r", "c=").await.unwrap());
        assert!(s.rooms().await.unwrap().is_empty());
        assert_eq!(s.connection_ids().await.unwrap().len(), 2);
    }
}
