//! The fan-out queue's messages: shards (recipients to post to) and page tasks (where
//! to read the next recipients), and the frame as they carry it, serialised once.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::FanoutError;
use crate::queue::OutgoingMessage;
use crate::response::Frame;

/// What a fan-out queue message asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskKind {
    /// Post the frame to the listed recipients ([`Shard`]).
    #[default]
    Shard,
    /// Read one page of recipients, queue them as shards and the next page as a task.
    Page,
}

/// Reads only `kind` (the rest is skipped without allocating), so a message is parsed
/// once more into exactly its type.
#[derive(Deserialize)]
pub(crate) struct Probe {
    #[serde(default)]
    pub kind: TaskKind,
}

/// Where the recipients of a paged send come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A room's members ([`crate::backend::ConnectionStore::room_member_page`]).
    Room(String),
    /// One parallel scan segment of every connection
    /// ([`crate::backend::ConnectionStore::connection_id_page`]).
    Scan {
        /// This segment, `0..segments`.
        segment: u32,
        /// How many segments the scan has.
        segments: u32,
    },
}

impl Source {
    /// The sources of a broadcast: every segment of a `segments`-way scan.
    pub fn scan(segments: u32) -> Vec<Self> {
        let segments = segments.max(1);
        (0..segments)
            .map(|segment| Self::Scan { segment, segments })
            .collect()
    }

    /// A short label for message ids and logs.
    fn label(&self) -> String {
        match self {
            Self::Room(_) => "r".to_owned(),
            Self::Scan { segment, .. } => format!("s{segment}"),
        }
    }
}

/// One shard as it sits in the queue (or, with the recipients still owed, in the
/// dead-letter queue): for inspecting messages. Consumers read it without copying the
/// frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shard {
    /// The send this shard belongs to (shared by its shards).
    pub send_id: String,
    /// The page of the send's recipients it came from (0: read by the caller).
    #[serde(default)]
    pub page: u32,
    /// The shard's number within its page.
    pub shard: u32,
    /// How many times this shard's recipients were queued before (0: first).
    pub attempt: u32,
    /// The frame: its text, or base64 of its bytes when [`binary`](Self::binary). Empty
    /// when the frame is stored by reference ([`frame_ref`](Self::frame_ref)).
    #[serde(default)]
    pub frame: String,
    /// The key of the frame in the fan-out's frame store, when it was too large to
    /// travel with the recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_ref: Option<String>,
    /// Whether the frame is binary.
    #[serde(default)]
    pub binary: bool,
    /// The connection whose record a 410 must keep (the caller during `$connect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect: Option<String>,
    /// The connections still owed the frame.
    pub recipients: Vec<String>,
}

/// The frame as messages carry it: a JSON string (the text, or base64 of the bytes),
/// serialised once per send and copied verbatim into every message; or the key of a
/// stored copy.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FrameField<'a> {
    /// The frame itself, as a JSON string.
    Inline(&'a RawValue),
    /// The key of the frame in the frame store.
    Stored(&'a str),
}

/// A frame serialised once for a send.
#[derive(Debug)]
pub(crate) struct EncodedFrame {
    /// The JSON string.
    pub json: Box<RawValue>,
    /// Whether the string is base64 of a binary frame.
    pub binary: bool,
}

impl EncodedFrame {
    /// The one serialisation of the frame.
    pub(super) fn new(frame: &Frame) -> Result<Self, FanoutError> {
        let malformed = |e: serde_json::Error| FanoutError::Malformed(e.to_string());
        Ok(match frame.as_text() {
            Some(text) => Self {
                json: serde_json::value::to_raw_value(text).map_err(malformed)?,
                binary: false,
            },
            None => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(frame.as_bytes());
                Self {
                    json: serde_json::value::to_raw_value(&b64).map_err(malformed)?,
                    binary: true,
                }
            }
        })
    }
}

/// The frame a message's JSON string field stands for.
pub(crate) fn decode_frame(json: &RawValue, binary: bool) -> Result<Frame, FanoutError> {
    let text: String =
        serde_json::from_str(json.get()).map_err(|e| FanoutError::Malformed(e.to_string()))?;
    if binary {
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Frame::binary)
            .map_err(|e| FanoutError::Malformed(format!("frame: {e}")))
    } else {
        Ok(Frame::text(text))
    }
}

/// A shard, as consumers read it (the frame borrowed from the body, unparsed).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShardIn<'a> {
    pub send_id: String,
    #[serde(default)]
    pub page: u32,
    pub shard: u32,
    #[serde(default)]
    pub attempt: u32,
    #[serde(borrow, default)]
    pub frame: Option<&'a RawValue>,
    #[serde(default)]
    pub frame_ref: Option<String>,
    #[serde(default)]
    pub binary: bool,
    #[serde(default)]
    pub protect: Option<String>,
    pub recipients: Vec<String>,
}

impl<'a> ShardIn<'a> {
    /// Where the frame is.
    pub(super) fn frame_field(&self) -> Result<FrameField<'_>, FanoutError> {
        frame_field(self.frame, self.frame_ref.as_deref())
    }
}

fn frame_field<'a>(
    frame: Option<&'a RawValue>,
    frame_ref: Option<&'a str>,
) -> Result<FrameField<'a>, FanoutError> {
    match (frame, frame_ref) {
        (Some(json), _) => Ok(FrameField::Inline(json)),
        (None, Some(key)) => Ok(FrameField::Stored(key)),
        (None, None) => Err(FanoutError::Malformed("no frame and no frame_ref".into())),
    }
}

/// A shard, as the caller and consumers write it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShardOut<'a> {
    pub kind: TaskKind,
    pub send_id: &'a str,
    pub page: u32,
    pub shard: u32,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_ref: Option<&'a str>,
    pub binary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protect: Option<&'a str>,
    pub recipients: &'a [String],
}

/// What every shard of one send (or page) shares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShardHeader<'a> {
    pub send_id: &'a str,
    pub page: u32,
    pub frame: FrameField<'a>,
    pub binary: bool,
    pub protect: Option<&'a str>,
}

impl<'a> ShardHeader<'a> {
    /// Shard `shard`, attempt `attempt`, of these recipients.
    pub(super) fn shard(&self, shard: u32, attempt: u32, recipients: &'a [String]) -> ShardOut<'a> {
        let (frame, frame_ref) = match self.frame {
            FrameField::Inline(json) => (Some(json), None),
            FrameField::Stored(key) => (None, Some(key)),
        };
        ShardOut {
            kind: TaskKind::Shard,
            send_id: self.send_id,
            page: self.page,
            shard,
            attempt,
            frame,
            frame_ref,
            binary: self.binary,
            protect: self.protect,
            recipients,
        }
    }
}

impl ShardOut<'_> {
    /// The queue message (the group and deduplication ids are informative: the fan-out
    /// queue is standard).
    pub(super) fn message(&self) -> Result<OutgoingMessage, FanoutError> {
        let body =
            serde_json::to_string(self).map_err(|e| FanoutError::Malformed(e.to_string()))?;
        let id = format!(
            "{}-{}-{}-{}",
            self.send_id, self.page, self.shard, self.attempt
        );
        Ok(OutgoingMessage::new(body, id.clone(), id))
    }
}

/// A page task: read the page of `source` after `after`, queue its recipients as
/// shards and the page after it as the next task.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageTask<'a> {
    #[serde(default)]
    pub kind: TaskKind,
    pub send_id: String,
    pub source: Source,
    /// The page's number within its source (the caller read page 0).
    pub page: u32,
    /// The cursor the page starts after.
    pub after: String,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_ref: Option<String>,
    #[serde(default)]
    pub binary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect: Option<String>,
    /// The connection the send leaves out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
}

impl<'a> PageTask<'a> {
    /// Where the frame is.
    pub(super) fn frame_field(&self) -> Result<FrameField<'_>, FanoutError> {
        frame_field(self.frame, self.frame_ref.as_deref())
    }

    /// The queue message.
    pub(super) fn message(&self) -> Result<OutgoingMessage, FanoutError> {
        let body =
            serde_json::to_string(self).map_err(|e| FanoutError::Malformed(e.to_string()))?;
        let id = format!("{}-{}-p{}", self.send_id, self.source.label(), self.page);
        Ok(OutgoingMessage::new(body, id.clone(), id))
    }
}
