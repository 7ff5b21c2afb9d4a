//! The envelope: what a forwarded message looks like on the queue.
//!
//! ```json
//! {
//!   "v": 1,
//!   "queue": "orders",
//!   "route": "placeOrder",
//!   "requestId": "Xy1=",
//!   "sentAt": "2026-11-22T10:15:30.123Z",
//!   "sender": { "connectionId": "Xy1fAb3=", "identity": { "principalId": "alice", "context": { "username": "alice" } } },
//!   "payload": { "action": "placeOrder", "item": "tea", "qty": 2 }
//! }
//! ```
//!
//! The payload is the message exactly as the client sent it (for `forward = "..."`
//! routes) or as the handler serialised it (for [`Ctx::forward`](crate::Ctx::forward)).
//! Consumers written in other languages read the same JSON.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::identity::Identity;

/// The envelope format's version.
pub const ENVELOPE_VERSION: u32 = 1;

/// Who sent a forwarded message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sender {
    /// The connection the message came from (empty when it came from elsewhere).
    #[serde(default)]
    pub connection_id: String,
    /// The sender's identity, as the authorizer vouched for it.
    #[serde(default)]
    pub identity: Identity,
}

/// The envelope around a forwarded payload.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<P> {
    /// [`ENVELOPE_VERSION`].
    pub v: u32,
    /// The logical queue name.
    pub queue: String,
    /// The route that forwarded it, if a route did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// API Gateway's `requestId` of the frame that caused it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When it was forwarded (RFC 3339, UTC, milliseconds).
    pub sent_at: String,
    /// Who sent it.
    #[serde(default)]
    pub sender: Sender,
    /// The payload.
    pub payload: P,
}

/// An envelope as read off the queue, its payload not yet typed.
pub type RawEnvelope = Envelope<Box<RawValue>>;

/// Reads an envelope; the error says what is wrong, for the consumer's failure log.
pub fn parse(body: &str) -> Result<RawEnvelope, String> {
    let envelope: RawEnvelope =
        serde_json::from_str(body).map_err(|e| format!("not a Switchboard envelope: {e}"))?;
    if envelope.v != ENVELOPE_VERSION {
        return Err(format!(
            "envelope version {} is not supported (expected {ENVELOPE_VERSION})",
            envelope.v
        ));
    }
    Ok(envelope)
}

/// The current time as the envelope writes it.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_the_payload_verbatim() {
        let payload = RawValue::from_string(r#"{"action":"placeOrder","qty":2}"#.to_owned())
            .expect("valid JSON");
        let envelope = Envelope {
            v: ENVELOPE_VERSION,
            queue: "orders".to_owned(),
            route: Some("placeOrder".to_owned()),
            request_id: Some("r1".to_owned()),
            sent_at: now_rfc3339(),
            sender: Sender {
                connection_id: "c1".to_owned(),
                identity: Identity::anonymous(),
            },
            payload: &*payload,
        };
        let json = serde_json::to_string(&envelope).expect("serialises");
        let back = parse(&json).expect("parses");
        assert_eq!(back.payload.get(), r#"{"action":"placeOrder","qty":2}"#);
        assert_eq!(back.queue, "orders");
        assert_eq!(back.sender.connection_id, "c1");
        assert!(back.sent_at.ends_with('Z'), "{}", back.sent_at);
    }

    #[test]
    fn malformed_envelopes_say_why() {
        assert!(
            parse("not json")
                .unwrap_err()
                .contains("not a Switchboard envelope")
        );
        assert!(parse(r#"{"v":1}"#).unwrap_err().contains("missing field"));
        let wrong = r#"{"v":9,"queue":"q","sentAt":"x","payload":1}"#;
        assert!(parse(wrong).unwrap_err().contains("version 9"));
    }
}
