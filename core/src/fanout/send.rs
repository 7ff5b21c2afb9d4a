//! The caller's side of a sharded send (the first pages, the decision, the queueing),
//! and the queueing of shards and page tasks that consumers' page tasks share.

use futures_util::{FutureExt, StreamExt};
use serde_json::value::RawValue;

use super::message::{EncodedFrame, FrameField, PageTask, ShardHeader, Source, TaskKind};
use super::{FRAME_TTL, FanoutError, QUEUE, Sharding};
use crate::backend::{ConnectionStore, IdPage, StoreError};
use crate::queue::MAX_BODY_BYTES;
use crate::response::Frame;

/// Room left in a shard message for everything but the recipients and the frame.
const ENVELOPE_SLACK: usize = 512;
/// How many messages a caller (or a page task) sends at once.
const ENQUEUE_CONCURRENCY: usize = 16;
/// The id length assumed when deciding whether a frame travels inline, if the first
/// page holds none (API Gateway's ids are 16 characters).
const ID_GUESS: usize = 32;

/// What the caller does with a send.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Few enough recipients (every page read): post them inline, as before.
    Inline(Vec<String>),
    /// Sharded: `recipients` queued by the caller; `more` when consumers read further
    /// pages (the total is not known when the call returns).
    Queued {
        /// Recipients the caller read and queued.
        recipients: usize,
        /// Whether page tasks were queued for the rest.
        more: bool,
    },
}

/// One page of `source` after `after`.
pub(super) async fn read_page(
    store: &dyn ConnectionStore,
    source: &Source,
    after: Option<&str>,
    limit: usize,
) -> Result<IdPage, StoreError> {
    match source {
        Source::Room(room) => store.room_member_page(room, after, limit).await,
        Source::Scan { segment, segments } => {
            store
                .connection_id_page(*segment, *segments, after, limit)
                .await
        }
    }
}

/// The first `limit` ids of `source` (fewer when it has fewer), reading on past pages
/// that DynamoDB's filter left short.
async fn first_page(
    store: &dyn ConnectionStore,
    source: &Source,
    limit: usize,
) -> Result<IdPage, StoreError> {
    let mut page = read_page(store, source, None, limit).await?;
    while page.ids.len() < limit {
        let Some(after) = page.next.take() else {
            break;
        };
        let more = read_page(store, source, Some(&after), limit - page.ids.len()).await?;
        page.ids.extend(more.ids);
        page.next = more.next;
    }
    Ok(page)
}

/// A send to the recipients of `sources` (a room, or a broadcast's scan segments):
/// reads the first page of each concurrently and either hands the ids back to run
/// inline (every source exhausted, at most the threshold) or queues them as shards,
/// with a page task for each source that has more.
pub(crate) async fn send_paged(
    sharding: &Sharding,
    store: &dyn ConnectionStore,
    sources: Vec<Source>,
    except: Option<&str>,
    protect: Option<&str>,
    frame: &Frame,
) -> Result<Plan, FanoutError> {
    let limit = sharding.page_size.max(sharding.threshold.saturating_add(1));
    // Index-based closures: a closure over borrowed items makes the future's `Send`
    // higher-ranked, which handler futures cannot prove.
    let sources_ref = &sources;
    let reads = (0..sources.len()).map(|i| first_page(store, &sources_ref[i], limit).boxed());
    let pages = futures_util::future::try_join_all(reads).await?;
    let mut cursors = Vec::new();
    let mut ids = Vec::new();
    for (source, page) in sources.into_iter().zip(pages) {
        ids.extend(
            page.ids
                .into_iter()
                .filter(|id| Some(id.as_str()) != except),
        );
        if let Some(after) = page.next {
            cursors.push((source, after));
        }
    }
    let more = !cursors.is_empty();
    if !more && ids.len() <= sharding.threshold {
        return Ok(Plan::Inline(ids));
    }
    let send = Send::prepare(sharding, frame, protect, &ids).await?;
    let tasks = cursors.into_iter().map(|(source, after)| PageTask {
        kind: TaskKind::Page,
        send_id: send.id.clone(),
        source,
        page: 1,
        after,
        frame: send.inline(),
        frame_ref: send.key.clone(),
        binary: send.encoded.binary,
        protect: protect.map(str::to_owned),
        except: except.map(str::to_owned),
    });
    // The page tasks first: their chains start while the caller queues its shards.
    for task in tasks {
        sharding.queue.send(QUEUE, &task.message()?).await?;
    }
    queue_shards(sharding, &send.header(protect), &ids).await?;
    tracing::debug!(
        send_id = send.id,
        recipients = ids.len(),
        more,
        "fan-out sharded"
    );
    Ok(Plan::Queued {
        recipients: ids.len(),
        more,
    })
}

/// Queues `ids` (all read already: a user's connections) as shards, or `None` when
/// they are few enough to run inline (at most the threshold).
pub(crate) async fn enqueue(
    sharding: &Sharding,
    protect: Option<&str>,
    ids: &[String],
    frame: &Frame,
) -> Result<Option<usize>, FanoutError> {
    if ids.len() <= sharding.threshold {
        return Ok(None);
    }
    let send = Send::prepare(sharding, frame, protect, ids).await?;
    queue_shards(sharding, &send.header(protect), ids).await?;
    Ok(Some(ids.len()))
}

/// One sharded send's id and frame, serialised once (and stored when too large).
struct Send {
    id: String,
    encoded: EncodedFrame,
    /// The frame store's key, when the frame travels by reference.
    key: Option<String>,
}

impl Send {
    async fn prepare(
        sharding: &Sharding,
        frame: &Frame,
        protect: Option<&str>,
        ids: &[String],
    ) -> Result<Self, FanoutError> {
        let id = crate::ids::new_id();
        let encoded = EncodedFrame::new(frame)?;
        let longest = ids
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(ID_GUESS)
            .max(ID_GUESS);
        let full_shard = sharding.shard_size.saturating_mul(longest + 3);
        let fixed = ENVELOPE_SLACK + protect.map_or(0, str::len);
        let key = if encoded.json.get().len() + full_shard + fixed > MAX_BODY_BYTES {
            let key = format!("{id}-frame");
            sharding.frames.put(&key, frame, FRAME_TTL).await?;
            tracing::debug!(
                send_id = id,
                bytes = frame.len(),
                "fan-out frame stored by reference"
            );
            Some(key)
        } else {
            None
        };
        Ok(Self { id, encoded, key })
    }

    /// The frame's JSON string, when it travels inline.
    fn inline(&self) -> Option<&RawValue> {
        match self.key {
            Some(_) => None,
            None => Some(&self.encoded.json),
        }
    }

    fn header<'a>(&'a self, protect: Option<&'a str>) -> ShardHeader<'a> {
        ShardHeader {
            send_id: &self.id,
            page: 0,
            frame: match &self.key {
                Some(key) => FrameField::Stored(key),
                None => FrameField::Inline(&self.encoded.json),
            },
            binary: self.encoded.binary,
            protect,
        }
    }
}

/// Splits `ids` into shards of at most [`Sharding::shard_size`] (fewer when the frame
/// leaves less room in SQS's 256 KiB) and queues them; returns how many ids.
pub(super) async fn queue_shards(
    sharding: &Sharding,
    header: &ShardHeader<'_>,
    ids: &[String],
) -> Result<usize, FanoutError> {
    let frame_len = match header.frame {
        FrameField::Inline(json) => json.get().len(),
        FrameField::Stored(key) => key.len(),
    };
    let longest = ids.iter().map(String::len).max().unwrap_or(0) + 3;
    let fixed = frame_len + ENVELOPE_SLACK + header.protect.map_or(0, str::len);
    let room = MAX_BODY_BYTES.saturating_sub(fixed);
    let per_shard = sharding.shard_size.min(room / longest).max(1);
    let count = ids.len().div_ceil(per_shard);
    let mut sends = futures_util::stream::iter(0..count)
        .map(|i| {
            let chunk = &ids[i * per_shard..ids.len().min((i + 1) * per_shard)];
            async move {
                let shard = header.shard(u32::try_from(i).unwrap_or(u32::MAX), 0, chunk);
                sharding.queue.send(QUEUE, &shard.message()?).await?;
                Ok::<_, FanoutError>(())
            }
            .boxed()
        })
        .buffer_unordered(ENQUEUE_CONCURRENCY);
    while let Some(sent) = sends.next().await {
        sent?;
    }
    Ok(ids.len())
}
